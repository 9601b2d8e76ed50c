"""Run identity: finished work is reused only by the run that made it, never overwritten, and an
interrupted grid keeps every finished chunk (issue 14's "Observed" items 1, 4, 6 and 7)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import batch_augmentation, lr_range_test
from jaxsched import loop, runs, sweep

# lr_range_test grid on a tiny slice: 3 rates, 128 images, one epoch.
GRID = ["--smoke", "--quiet", "--lrs", "0.1", "0.01", "0.001", "--grid-strategy", "sequential"]
GRID += ["--epochs", "1"]
# batch_augmentation: ResNet-8, baseline and M=1, 2 epochs on 96 images.
AUG = ["--smoke", "--quiet", "--dataset", "fashion_mnist", "--copies", "1", "--epochs", "2"]
AUG += ["--train-examples", "96", "--validation-examples", "32", "--test-examples", "32"]


def _doc(out):
    return json.loads((out / "results.json").read_text())


def _aside(out, name):
    return sorted(p.name for p in out.iterdir() if p.name.startswith(f"{name}.superseded-"))


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained although the work was finished or refused")

    monkeypatch.setattr(loop, "fit", refuse)
    monkeypatch.setattr(sweep, "fit_grid", refuse)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "out"
    assert lr_range_test.main([*GRID, "--out", str(out)]) == 0
    return out, _doc(out)


def test_results_record_the_identity_and_the_files_read(grid_run):
    _, doc = grid_run
    identity = doc["identity"]
    assert identity["config"] == doc["config"]
    (source,) = identity["data"]
    assert source["dataset"] == "fashion_mnist" and source["format"] == "idx"
    assert {f["name"].split(".")[0] for f in source["files"]} >= {
        "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    }
    assert all(len(f["sha256"]) == 64 for f in source["files"])
    assert identity["digest"] == runs.identity(doc["config"], [source], 1)["digest"]


def test_same_command_reuses_without_training(grid_run, no_training, capsys):
    out, doc = grid_run
    assert lr_range_test.main([*GRID, "--out", str(out)]) == 0
    assert _doc(out)["runs"] == doc["runs"]


def test_other_config_over_finished_results_is_refused(grid_run, no_training, capsys):
    out, doc = grid_run
    before = (out / "results.json").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        lr_range_test.main([*GRID, "--seed", "1", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "config.seed: 0 -> 1" in err and "--fresh" in err, err
    assert (out / "results.json").read_bytes() == before


def test_fresh_sets_the_old_results_aside(tmp_path):
    out = tmp_path / "out"
    assert lr_range_test.main([*GRID, "--out", str(out), "--lrs", "0.1"]) == 0
    old = _doc(out)
    again = [*GRID, "--out", str(out), "--lrs", "0.1", "--seed", "1"]
    with pytest.raises(SystemExit):
        lr_range_test.main(again)
    assert lr_range_test.main([*again, "--fresh"]) == 0
    (aside,) = _aside(out, "results.json")
    assert json.loads((out / aside).read_text()) == old
    assert _doc(out)["config"]["seed"] == 1


def test_corrupt_results_json_is_named_and_kept(tmp_path, capsys, no_training):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"runs": [')
    with pytest.raises(SystemExit) as exit_info:
        lr_range_test.main([*GRID, "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(out / "results.json") in err and "--fresh" in err, err
    assert (out / "results.json").read_text() == '{"runs": ['


def test_interrupted_grid_keeps_finished_chunks_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    argv = [*GRID, "--grid-chunk", "1", "--out", str(out)]
    real_fit_grid, calls = sweep.fit_grid, []

    def interrupted_second_call(*args, **kwargs):
        calls.append(kwargs["hyperparams"]["learning_rate"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit_grid(*args, **kwargs)

    monkeypatch.setattr(sweep, "fit_grid", interrupted_second_call)
    assert lr_range_test.main(argv) == 130
    partial = _doc(out)
    assert partial["status"] == "running"
    assert [r["learning_rate"] for r in partial["runs"]] == [0.1]
    assert "interrupted" in capsys.readouterr().err

    calls.clear()

    def counted(*args, **kwargs):
        calls.append(kwargs["hyperparams"]["learning_rate"])
        return real_fit_grid(*args, **kwargs)

    monkeypatch.setattr(sweep, "fit_grid", counted)
    assert lr_range_test.main(argv) == 0
    assert len(calls) == 2  # only the two missing rates trained
    done = _doc(out)
    assert done["status"] == "done"
    assert done["runs"][0] == partial["runs"][0]


@pytest.mark.slow
def test_checkpoints_of_another_seed_are_never_resumed(tmp_path, capsys):
    """Observed 1: batch_augmentation reused checkpoints/<run> whatever the config."""
    out, clean = tmp_path / "out", tmp_path / "clean"
    assert batch_augmentation.main([*AUG, "--out", str(out)]) == 0
    # An interrupted study leaves checkpoints but no finished results.json.
    (out / "results.json").unlink()
    with pytest.raises(SystemExit) as exit_info:
        batch_augmentation.main([*AUG, "--seed", "1", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "checkpoints" in capsys.readouterr().err
    assert batch_augmentation.main([*AUG, "--seed", "1", "--fresh", "--out", str(out)]) == 0
    assert _aside(out, "checkpoints")
    assert batch_augmentation.main([*AUG, "--seed", "1", "--out", str(clean)]) == 0
    got, want = _doc(out), _doc(clean)
    assert got["config"]["seed"] == 1
    for a, b in zip(got["runs"], want["runs"], strict=True):
        np.testing.assert_allclose(a["history"]["steps"]["loss"], b["history"]["steps"]["loss"])


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_stops_cleanly_with_the_finished_chunk(tmp_path):
    """SIGINT (Ctrl-C) mid-grid: exit status 130, no crash, the finished chunk on disk."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "experiments.lr_range_test", *GRID, "--grid-chunk", "1"]
    process = subprocess.Popen(
        [*command, "--out", str(out)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not (out / "results.json").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no chunk finished in 240 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    partial = _doc(out)
    if process.returncode == 0:  # it finished before the signal arrived
        assert partial["status"] == "done"
        return
    assert process.returncode == 130, err[-2000:]
    assert "interrupted: finished runs are kept in" in err
    assert partial["status"] == "running" and partial["runs"]
