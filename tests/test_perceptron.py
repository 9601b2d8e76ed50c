"""experiments.perceptron end to end through run() and main() on the smoke configuration."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import common, perceptron
from experiments.configs.perceptron import DEFAULT, SMOKE

SMALL = dataclasses.replace(SMOKE, test_examples=100)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("perceptron")
    return workdir, perceptron.run(SMALL, workdir, quiet=True)


def test_writes_results_and_figures(smoke_run):
    workdir, doc = smoke_run
    on_disk = json.loads((workdir / "results.json").read_text())
    assert on_disk["experiment"] == "perceptron" and on_disk["status"] == "done"
    assert on_disk["config"]["learning_rate"] == 0.025 and on_disk["environment"]["jax"]
    assert [r["loss"] for r in on_disk["runs"]] == ["perceptron", "hinge"]
    for run in on_disk["runs"]:
        epochs = run["history"]["epochs"]
        assert epochs["epoch"] == [1, 2, 3]
        assert len(epochs["train_loss"]) == len(epochs["test_accuracy"]) == 3
        assert 0 <= run["final"]["test_accuracy"] <= 1
        assert run["final"]["test_accuracy"] == on_disk["summary"]["test_accuracy"][run["loss"]]
        assert run["final_weights"] == epochs["weights"][-1]
    for name in ("decision_boundaries.png", "epoch_curves.png", "test_accuracy_seeds.png"):
        assert (workdir / name).stat().st_size > 0


def test_both_losses_start_from_the_same_weights_and_data_follow_the_rule(smoke_run):
    _, doc = smoke_run
    w0 = doc["summary"]["initial_weights"]
    assert all(r["initial_weights"] == w0 for r in doc["runs"])
    data = doc["summary"]["data"]
    for split, n in (("train", 20), ("test", 100)):
        x, y = np.array(data[f"x_{split}"]), np.array(data[f"y_{split}"])
        assert x.shape == (n, 2) and ((x >= 0) & (x < 1)).all()
        np.testing.assert_array_equal(y, np.where(x[:, 0] <= x[:, 1], -1, 1))


def test_seed_statistics_are_those_of_the_per_seed_accuracies(smoke_run):
    _, doc = smoke_run
    stats = doc["summary"]["seeds"]
    assert stats["seeds"] == [0, 1, 2, 3]
    for name in ("perceptron", "hinge"):
        acc = np.array(stats[name]["test_accuracy"])
        assert acc.shape == (4,)
        assert acc[0] == doc["summary"]["test_accuracy"][name]  # seed 0 is the detailed run
        assert stats[name]["mean"] == pytest.approx(acc.mean())
        assert stats[name]["std"] == pytest.approx(acc.std(ddof=1))


def test_a_seed_gives_the_same_results_alone_and_within_the_vmapped_seeds(smoke_run, tmp_path):
    _, doc = smoke_run
    alone = perceptron.run(dataclasses.replace(SMALL, seed=2, repeats=1), tmp_path, quiet=True)
    assert "seeds" not in alone["summary"]
    assert not (tmp_path / "test_accuracy_seeds.png").exists()
    assert alone["summary"]["initial_weights"] != doc["summary"]["initial_weights"]
    for name in ("perceptron", "hinge"):
        vmapped = doc["summary"]["seeds"][name]["test_accuracy"][2]
        assert alone["summary"]["test_accuracy"][name] == pytest.approx(vmapped)


def test_deterministic_for_a_seed(smoke_run, tmp_path):
    _, doc = smoke_run
    again = perceptron.run(SMALL, tmp_path / "again", quiet=True)
    assert again["runs"] == doc["runs"]
    assert again["summary"]["seeds"] == doc["summary"]["seeds"]
    assert again["summary"]["data"] == doc["summary"]["data"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("losses", ("perceptron", "logistic")),
        ("losses", ()),
        ("train_examples", 0),
        ("test_examples", 0),
        ("epochs", 0),
        ("repeats", 0),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
    ],
)
def test_bad_config_values_raise_naming_the_parameter(field, value, tmp_path):
    with pytest.raises(ValueError, match=field):
        perceptron.run(dataclasses.replace(SMALL, **{field: value}), tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_main_runs_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "cli"
    assert perceptron.main(["--smoke", "--out", str(out), "--test-examples", "100"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"] == dataclasses.asdict(SMALL) | {"losses": list(SMALL.losses)}
    printed = capsys.readouterr().out
    assert "perceptron" in printed and "mean +- std over 4 seeds" in printed


def test_cli_options_map_onto_the_config():
    args = perceptron.parse_args(
        ["--seeds", "100", "--lr", "0.05", "--no-shuffle", "--losses", "hinge", "--epochs", "5"]
    )
    config = common.config_from_args(args, DEFAULT, SMOKE, renames=perceptron.CLI_RENAMES)
    assert config == dataclasses.replace(
        DEFAULT, repeats=100, learning_rate=0.05, shuffle=False, losses=("hinge",), epochs=5
    )
    assert perceptron.parse_args([]).shuffle is None  # unset: the config's shuffle=True


def test_default_config_is_the_issue_setup():
    assert (DEFAULT.train_examples, DEFAULT.test_examples) == (20, 1000)
    assert (DEFAULT.epochs, DEFAULT.learning_rate) == (10, 0.025)
    assert DEFAULT.losses == ("perceptron", "hinge") and DEFAULT.repeats == 1
