"""Resumable runs: an interrupted fit resumes from its orbax checkpoint to the same numbers."""

import asyncio
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import chex
import numpy as np
import pytest

from jaxsched import checkpoints, data, loop, optimizers, schedules
from jaxsched.models import LeNet5


class Interrupt(Exception):
    pass


def fit(train_ds, test_ds, directory, **kwargs):
    tx = optimizers.make("sgd", schedules.cyclic_lr(0.01, 0.1, 8), momentum=0.9)
    return loop.fit(
        LeNet5(hidden_dropout=0.1),
        tx,
        train_ds,
        epochs=3,
        batch_size=64,
        eval_data=test_ds,
        restore_best="val_loss",
        checkpoint_dir=directory,
        sync_every=2,
        quiet=True,
        **kwargs,
    )


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_numbers(fashion_small, tmp_path):
    train_ds, test_ds = fashion_small
    reference_state, reference = fit(train_ds, test_ds, tmp_path / "whole")

    def interrupt_in_epoch_3(history):
        if len(history.steps["loss"]) > 2 * 8 + 2:  # 8 updates per epoch
            raise Interrupt
        return False

    with pytest.raises(Interrupt):
        fit(train_ds, test_ds, tmp_path / "cut", stop_when=interrupt_in_epoch_3)
    state, history = fit(train_ds, test_ds, tmp_path / "cut", resume=True)

    assert history.status == "done" and history.epochs["epoch"] == [1, 2, 3]
    assert (
        history.steps == reference.steps
        and history.epochs["val_loss"] == reference.epochs["val_loss"]
    )
    assert history.best_epoch == reference.best_epoch
    chex.assert_trees_all_close(state.params, reference_state.params, atol=1e-6)
    chex.assert_trees_all_close(state.batch_stats, reference_state.batch_stats, atol=1e-6)
    chex.assert_trees_all_equal(state.opt_state, reference_state.opt_state)


def test_resuming_a_finished_run_trains_nothing(fashion_small, tmp_path):
    train_ds, test_ds = fashion_small
    _, first = fit(train_ds, test_ds, tmp_path)
    _, again = fit(train_ds, test_ds, tmp_path, resume=True)
    assert again.steps == first.steps and again.status == first.status
    assert again.num_compilations == first.num_compilations  # nothing new was compiled


def test_without_resume_a_checkpoint_dir_starts_afresh(fashion_small, tmp_path):
    train_ds, test_ds = fashion_small
    _, first = fit(train_ds, test_ds, tmp_path)
    _, second = fit(train_ds, test_ds, tmp_path)
    assert second.steps == first.steps


# --- identity and unreadable checkpoints: 3 epochs of 4 updates on 256 images -------------------

IDENTITY = {"run": "test", "seed": 0}


@pytest.fixture(scope="module")
def small_run(fashion_small, tmp_path_factory):
    """An uninterrupted run with checkpoints (steps 2 and 3 kept) and its results."""
    train_ds, test_ds = fashion_small
    datasets = (
        data.Dataset(train_ds.images[:256], train_ds.labels[:256]),
        data.Dataset(test_ds.images[:128], test_ds.labels[:128]),
    )
    directory = tmp_path_factory.mktemp("small") / "whole"
    state, history = fit(*datasets, directory, checkpoint_identity=IDENTITY)
    assert sorted(os.listdir(directory)) == ["2", "3", checkpoints.IDENTITY_FILE]
    return datasets, directory, state, history


def copy_of(small_run, tmp_path):
    return Path(shutil.copytree(small_run[1], tmp_path / "cut"))


def truncate_all(step_dir):
    for path in (step_dir / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"")


def overwrite_arrays(step_dir):
    """Garbage in the array store (OCDBT manifests and data files), metadata left readable:
    orbax then fails inside its concurrent reads (the "Event loop is closed" case)."""
    for path in (step_dir / "state").rglob("*"):
        if path.is_file() and ("manifest" in path.name or path.parent.name == "d"):
            path.write_bytes(b"not a checkpoint")


def snapshot(directory):
    return {
        str(p.relative_to(directory)): p.read_bytes() if p.is_file() else None
        for p in sorted(directory.rglob("*"))
    }


@pytest.fixture
def unraisable(monkeypatch):
    """What reaches sys.unraisablehook during the test (the filter wraps this hook)."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(repr(u.exc_value)))
    return seen


def resume(small_run, directory, **kwargs):
    """Resumes, recording how many updates the history held at each host sync / epoch."""
    (train_ds, test_ds), seen = small_run[0], []

    def record(history):
        seen.append(len(history.steps["loss"]))
        return False

    kwargs = {"checkpoint_identity": IDENTITY, **kwargs}
    state, history = fit(train_ds, test_ds, directory, resume=True, stop_when=record, **kwargs)
    return state, history, seen


def assert_same_run(state, history, small_run):
    _, _, reference_state, reference = small_run
    assert history.status == "done" and history.epochs["epoch"] == [1, 2, 3]
    np.testing.assert_allclose(history.steps["loss"], reference.steps["loss"], rtol=1e-6)
    assert history.epochs["val_loss"] == reference.epochs["val_loss"]
    chex.assert_trees_all_close(state.params, reference_state.params, rtol=1e-6)


def corrupt_names(directory):
    return sorted(n for n in os.listdir(directory) if ".corrupt-" in n)


@pytest.mark.parametrize("corrupt", [truncate_all, overwrite_arrays])
def test_an_unreadable_checkpoint_falls_back_to_the_previous(
    small_run, tmp_path, unraisable, corrupt
):
    directory = copy_of(small_run, tmp_path)
    corrupt(directory / "3")
    message = (
        rf"checkpoint {re.escape(str(directory))}/3 is unreadable \(.+\); "
        r"moved it to 3\.corrupt-\d{8}T\d{6}Z; resuming from step 2$"
    )
    with pytest.warns(checkpoints.CheckpointWarning, match=message) as caught:
        state, history, seen = resume(small_run, directory)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert min(seen) > 2 * 4  # only epoch 3 was trained: it resumed from step 2
    assert_same_run(state, history, small_run)
    assert not any("Event loop is closed" in u for u in unraisable)
    # The corrupt folder is kept aside; step 3 was saved afresh next to it.
    (aside,) = corrupt_names(directory)
    assert sorted(os.listdir(directory)) == sorted(["2", "3", aside, checkpoints.IDENTITY_FILE])
    assert checkpoints.read_identity(directory) == IDENTITY


def test_with_no_readable_checkpoint_the_run_starts_afresh(small_run, tmp_path, unraisable):
    directory = copy_of(small_run, tmp_path)
    overwrite_arrays(directory / "3")
    truncate_all(directory / "2")
    with pytest.warns(checkpoints.CheckpointWarning, match="starting afresh") as caught:
        state, history, seen = resume(small_run, directory)
    assert len(caught) == 2
    assert min(seen) == 2  # trained from the first update (sync_every=2)
    assert_same_run(state, history, small_run)
    assert not any("Event loop is closed" in u for u in unraisable)
    assert [n.split(".")[0] for n in corrupt_names(directory)] == ["2", "3"]


@pytest.mark.parametrize(
    "kwargs, differs",
    [
        ({"seed": 1, "checkpoint_identity": {**IDENTITY, "seed": 1}}, "seed: 0 stored, 1 given"),
        ({"checkpoint_identity": None}, "stored, none given"),
        ({"checkpoint_identity": {**IDENTITY, "seed": 1}, "resume": False}, "seed: 0 stored"),
    ],
    ids=["seed changed", "identity dropped", "without resume"],
)
def test_checkpoints_of_another_identity_are_never_used(small_run, tmp_path, kwargs, differs):
    directory = copy_of(small_run, tmp_path)
    before = snapshot(directory)
    (train_ds, test_ds) = small_run[0]
    kwargs = {"resume": True, **kwargs}
    with pytest.raises(checkpoints.IdentityMismatchError, match=re.escape(differs)) as caught:
        fit(train_ds, test_ds, directory, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and str(directory) in message and "another checkpoint_dir" in message
    assert snapshot(directory) == before  # untouched


def test_checkpoints_without_identity_do_not_match_a_given_one(small_run, tmp_path):
    directory = copy_of(small_run, tmp_path)
    (directory / checkpoints.IDENTITY_FILE).unlink()  # as checkpoints written before identities
    assert checkpoints.read_identity(directory) is None
    with pytest.raises(checkpoints.IdentityMismatchError, match="none stored"):
        fit(*small_run[0], directory, resume=True, checkpoint_identity=IDENTITY)


def test_every_checkpoint_carries_the_identity(small_run, tmp_path):
    directory = copy_of(small_run, tmp_path)
    (directory / checkpoints.IDENTITY_FILE).unlink()
    # identity.json gone and none given: the checkpoint's own meta still refuses the resume.
    with pytest.raises(checkpoints.IdentityMismatchError, match=r"/3 belong to another run"):
        fit(*small_run[0], directory, resume=True)
    assert checkpoints.read_identity(tmp_path / "nowhere") is None


def test_the_reports_of_a_failed_restore_are_filtered(monkeypatch, caplog):
    """Whether orbax's abandoned reads report after its loop closed is a race, so the filters
    (module docstring of jaxsched.checkpoints) are also checked on made-up reports."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
    checkpoints._quiet_failed_restores()
    closed = asyncio.new_event_loop()
    closed.close()
    with pytest.raises(RuntimeError, match="Event loop is closed") as late_read:
        closed.call_soon_threadsafe(print)
    other = RuntimeError("something else")
    for error in (late_read.value, other):
        sys.unraisablehook(
            SimpleNamespace(
                exc_type=type(error),
                exc_value=error,
                exc_traceback=error.__traceback__,
                err_msg=None,
                object=None,
            )
        )
    assert seen == [other]

    logger = logging.getLogger("asyncio")
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        logger.error("Task exception was never retrieved\nfuture: <Task coro=<orbax read>>")
        logger.error("Task exception was never retrieved\nfuture: <Task coro=<mine>>")
    assert [r.getMessage().split("<")[-1] for r in caplog.records] == ["mine>>"]
