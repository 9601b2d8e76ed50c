"""experiments.lr_range_test end to end on a tiny slice of the real Fashion-MNIST."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import lr_range_test
from experiments.configs.lr_range_test import DEFAULT, SMOKE
from jaxsched import loop, sweep

TINY = dataclasses.replace(
    SMOKE,
    learning_rates=(1e6, 0.1, 1e-4),
    train_examples=256,
    eval_examples=128,
    eval_batch_size=128,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lr_range")
    return workdir, lr_range_test.run(TINY, workdir, quiet=True)


def test_writes_results_and_figures(tiny_run):
    workdir, doc = tiny_run
    on_disk = json.loads((workdir / "results.json").read_text())
    assert on_disk["status"] == "done" and on_disk["experiment"] == "lr_range_test"
    assert on_disk["config"]["learning_rates"] == [1e6, 0.1, 1e-4]
    assert on_disk["environment"]["device_count"] >= 1
    assert [r["learning_rate"] for r in on_disk["runs"]] == [1e6, 0.1, 1e-4]
    for name in ("lr_range_test.png", "loss_per_iteration.png"):
        assert (workdir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["summary"] == on_disk["summary"]


def test_divergence_is_a_result_and_the_bounds_come_from_the_rest(tiny_run):
    _, doc = tiny_run
    s = doc["summary"]
    assert s["diverged"] == [1e6]
    by_lr = {r["learning_rate"]: r for r in doc["runs"]}
    assert by_lr[1e6]["history"]["status"] == "diverged"
    assert by_lr[0.1]["final"]["train_loss"] < by_lr[1e-4]["final"]["train_loss"]
    assert (s["lr_min"], s["lr_max"]) == (1e-4, 0.1)
    assert len(by_lr[0.1]["history"]["steps"]["loss"]) == 256 // TINY.batch_size


def test_rerun_reuses_completed_runs(tiny_run, monkeypatch):
    workdir, doc = tiny_run

    def no_training(*args, **kwargs):
        raise AssertionError("a completed learning rate was trained again")

    monkeypatch.setattr(loop, "fit", no_training)
    monkeypatch.setattr(sweep, "fit_grid", no_training)
    again = lr_range_test.run(TINY, workdir, quiet=True)
    assert again["runs"] == doc["runs"]
    with pytest.raises(AssertionError, match="trained again"):
        lr_range_test.run(TINY, workdir, quiet=True, fresh=True)


def test_the_fit_grid_path_equals_one_loop_fit_per_rate(tiny_run, tmp_path):
    _, doc = tiny_run
    assert doc["summary"]["grid_strategy"] == "auto"
    assert {r["grid_strategy"] for r in doc["runs"]} <= {"vmap", "map", "sequential"}
    looped = lr_range_test.run(
        dataclasses.replace(TINY, grid_strategy="loop"), tmp_path, quiet=True
    )
    assert looped["summary"]["grid_strategy"] == "loop"
    for grid_run, loop_run in zip(doc["runs"], looped["runs"], strict=True):
        g, f = grid_run["history"], loop_run["history"]
        assert g["status"] == f["status"]
        np.testing.assert_allclose(g["steps"]["loss"], f["steps"]["loss"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            g["epochs"]["val_accuracy"], f["epochs"]["val_accuracy"], atol=1e-6
        )


def test_cli_overrides_reach_the_config(tmp_path, monkeypatch):
    seen = {}

    def fake_run(config, workdir, **kwargs):
        seen.update(config=config, workdir=workdir)
        return {
            "summary": {
                "lr_min": 0.1,
                "lr_max": 1.0,
                "rule": "",
                "diverged": [],
                "mean_epoch_time_s": 1.0,
            }
        }

    monkeypatch.setattr(lr_range_test, "run", fake_run)
    lr_range_test.main(
        [
            "--epochs",
            "2",
            "--lrs",
            "0.5",
            "0.05",
            "--batch-size",
            "128",
            "--seed",
            "7",
            "--out",
            str(tmp_path),
        ]
    )
    assert seen["config"] == dataclasses.replace(
        DEFAULT, epochs=2, learning_rates=(0.5, 0.05), batch_size=128, seed=7
    )
    assert seen["workdir"] == tmp_path
    lr_range_test.main(["--smoke"])
    assert seen["config"] == SMOKE and str(seen["workdir"]).endswith("_smoke")


def test_sweep_method_end_to_end(tmp_path):
    config = dataclasses.replace(
        TINY, method="sweep", sweep_start=1e-5, sweep_end=1e3, sweep_steps=40
    )
    doc = lr_range_test.run(config, tmp_path, quiet=True)
    (run,) = doc["runs"]
    steps = run["history"]["steps"]
    assert 12 <= len(steps["loss"]) <= 40
    assert steps["learning_rate"][0] == pytest.approx(1e-5, rel=1e-4)
    assert all(np.diff(steps["learning_rate"]) > 0)
    s = doc["summary"]
    assert 1e-5 <= s["lr_min"] < s["lr_max"] <= 1e3
    assert (tmp_path / "lr_sweep.png").stat().st_size > 0
    with pytest.raises(ValueError, match="method"):
        lr_range_test.run(dataclasses.replace(config, method="bisect"), tmp_path)
