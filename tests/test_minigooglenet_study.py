"""experiments.minigooglenet end to end at its smoke size on the real Fashion-MNIST: the three
parts recorded, a second invocation reusing them, and bad flags refused before any work."""

import dataclasses
import json
import math

import pytest

from experiments import minigooglenet
from experiments.configs.minigooglenet import SMOKE
from jaxsched import find, loop, validation

FIGURES = ("lr_sweep.png", "epochs.png", "loss_vs_batch.png")


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained although it should not have")

    monkeypatch.setattr(loop, "fit", refuse)
    monkeypatch.setattr(find, "sweep_history", refuse)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("minigooglenet")
    assert minigooglenet.main(["--smoke", "--quiet", "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@pytest.mark.slow
def test_the_three_parts_are_recorded(smoke_run):
    out, doc = smoke_run
    assert doc["status"] == "done"
    parts = {r["part"]: r for r in doc["runs"]}
    assert list(parts) == ["lr_find", "clr", "batch_growth"]
    s = doc["summary"]
    assert s["lr_source"] == "lr_find" and 0 < s["lr_min"] < s["lr_max"]
    assert parts["lr_find"]["final"]["updates"] == SMOKE.sweep_steps
    for part in ("clr", "batch_growth"):
        for key in ("final_val_accuracy", "best_val_accuracy", "seconds_per_epoch"):
            assert _finite(s[part][key]), (part, key)
        assert all(_finite(v) for v in parts[part]["history"]["steps"]["loss"])
    assert s["clr"]["epochs"] == SMOKE.epochs
    table = s["batch_growth"]["table"]
    assert [r["batch_size"] for r in table] == [32, 64]
    assert all(_finite(r["mean_train_loss"]) for r in table)
    sizes = parts["batch_growth"]["history"]["steps"]["batch_size"]
    assert sizes == sorted(sizes) and sorted(set(sizes)) == [32, 64]
    rates = parts["batch_growth"]["history"]["steps"]["learning_rate"]
    assert rates == [pytest.approx(s["lr_max"], rel=1e-6)] * len(rates)
    for name in FIGURES:
        assert (out / name).stat().st_size > 0


@pytest.mark.slow
def test_a_second_invocation_reuses_the_finished_parts(smoke_run, capsys, no_training):
    out, before = smoke_run
    capsys.readouterr()
    assert minigooglenet.main(["--smoke", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for part in ("lr_find", "clr", "batch_growth"):
        assert f"{part}: reusing the completed run" in printed
    after = json.loads((out / "results.json").read_text())
    assert after["runs"] == before["runs"] and after["summary"] == before["summary"]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--width", "0"], "--width"),
        (["--b-start", "48"], "--b-start"),
        (["--b-start", "64", "--b-end", "32"], "--b-start"),
        (["--b-end", "512"], "--b-end"),  # more than the 256 smoke training examples
        (["--sweep-steps", "5"], "--sweep-steps"),
        (["--gamma", "1.5"], "--gamma"),
        (["--lr-min", "0.1"], "--lr-max"),
    ],
)
def test_bad_flags_are_usage_errors_before_any_work(argv, flag, tmp_path, capsys, no_training):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        minigooglenet.main(["--smoke", "--quiet", "--out", str(out), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err, err
    assert not (out / "results.json").exists()


def test_config_checks():
    assert SMOKE.batch_sizes() == [32, 64]
    with pytest.raises(validation.ConfigError, match="sweep_epochs"):
        dataclasses.replace(SMOKE, sweep_steps=None, sweep_epochs=1)  # 1 x 8 updates < 12
    assert dataclasses.replace(SMOKE, lr_min=0.01, lr_max=0.1).parts() == ("clr", "batch_growth")


def test_a_sweep_without_suggestion_names_the_bound_flags():
    run = {"final": {"lr_min": None, "lr_max": None, "message": "no suggestion: diverged"}}
    with pytest.raises(validation.ConfigError, match="no suggestion") as error:
        minigooglenet._bounds(SMOKE, run)
    assert error.value.describe(lambda f: "--" + f.replace("_", "-")).startswith(
        "--lr-min and --lr-max must be given"
    )
