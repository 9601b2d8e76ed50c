"""Metric writers (jaxsched.writers) and fit's writers= (hooks.WriteMetrics)."""

import importlib.util
import json
import math

import numpy as np
import pytest

from jaxsched import data, hooks, loop, optimizers, writers
from jaxsched.models import MLP
from jaxsched.results import History

FIT = dict(epochs=2, batch_size=16, sync_every=3, scan_chunks=False, quiet=True)
TIMES = ("train_time_s", "eval_time_s")


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    make = lambda n: data.Dataset(rng.random((n, 6, 6, 1), np.float32), rng.integers(0, 10, n))  # noqa: E731
    return make(64), make(32)


def fit(tiny, **kwargs):
    train_data, eval_data = tiny
    tx = optimizers.make("sgd", 0.1)
    return loop.fit(MLP(hidden=(8,)), tx, train_data, eval_data=eval_data, **FIT, **kwargs)


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def split_rows(rows):
    updates = [r for r in rows if "train/loss" in r]
    epochs = [r for r in rows if "epoch/train_loss" in r]
    assert len(updates) + len(epochs) == len(rows)
    return updates, epochs


def check_rows_match(rows, history):
    updates, epochs = split_rows(rows)
    steps = history.steps
    assert [r["step"] for r in updates] == list(range(1, len(steps["loss"]) + 1))
    assert [r["train/loss"] for r in updates] == steps["loss"]
    assert [r["train/accuracy"] for r in updates] == steps["accuracy"]
    assert [r["learning_rate"] for r in updates] == steps["learning_rate"]
    assert [r["batch_size"] for r in updates] == steps["batch_size"]
    assert [r["step"] for r in epochs] == history.epochs["updates"]
    for key in hooks.WriteMetrics.EPOCH_KEYS:
        assert [r[f"epoch/{key}"] for r in epochs] == history.epochs[key]


def test_json_lines_rows_match_the_history_and_the_history_is_unchanged(tiny, tmp_path):
    path = tmp_path / "metrics.jsonl"
    _, history = fit(tiny, writers=[writers.JsonLinesWriter(path)])
    rows = read_rows(path)
    assert len(rows) == 8 + 2  # 2 epochs of 4 updates, and 2 epoch rows
    check_rows_match(rows, history)
    # Each epoch row comes after its epoch's updates.
    assert [i for i, r in enumerate(rows) if "epoch/train_loss" in r] == [4, 9]

    _, plain = fit(tiny)
    assert history.steps == plain.steps
    for key in history.epochs:
        if key not in TIMES:
            assert history.epochs[key] == plain.epochs[key], key
    assert (history.status, history.best_epoch, history.diverged_at_step) == (
        plain.status,
        plain.best_epoch,
        plain.diverged_at_step,
    )


def test_write_metrics_writes_each_update_once_across_a_resume(tiny, tmp_path):
    path, checkpoint_dir = tmp_path / "metrics.jsonl", tmp_path / "ckpt"

    def interrupt(history):  # at the first host sync of the second epoch (4 updates an epoch)
        if len(history.steps["loss"]) > 4:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        fit(
            tiny,
            writers=[writers.JsonLinesWriter(path)],
            checkpoint_dir=checkpoint_dir,
            stop_when=interrupt,
        )
    assert [r["step"] for r in read_rows(path)] == [1, 2, 3, 4, 4]  # closed after the raise
    _, history = fit(
        tiny, writers=[writers.JsonLinesWriter(path)], checkpoint_dir=checkpoint_dir, resume=True
    )
    check_rows_match(read_rows(path), history)


def test_write_metrics_per_epoch_only_and_after_a_stop_at_a_sync(tmp_path):
    history = History()
    writer = writers.JsonLinesWriter(tmp_path / "m.jsonl")
    hook = hooks.WriteMetrics(writer, per_update=False)
    for key, value in (("loss", math.nan), ("accuracy", 0.5), ("learning_rate", 0.1)):
        history.steps[key].append(value)
    history.steps["batch_size"].append(8)
    hook.on_updates(history)
    history.epochs["updates"].append(1)
    history.epochs["train_loss"].append(math.nan)
    hook.on_epoch_end(0, None, history, None)
    hook.close()
    assert read_rows(tmp_path / "m.jsonl") == [{"step": 1, "epoch/train_loss": None}]

    # Updates a hook's status left unwritten at their sync are written at the end.
    writer = writers.JsonLinesWriter(tmp_path / "u.jsonl")
    hook = hooks.WriteMetrics(writer)
    assert hook.on_end("state", history) == "state"
    hook.close()
    assert [r["step"] for r in read_rows(tmp_path / "u.jsonl")] == [1]


def test_writers_satisfy_the_protocol(tmp_path):
    assert isinstance(writers.JsonLinesWriter(tmp_path / "m.jsonl"), writers.MetricWriter)


HAS_TENSORBOARD = any(importlib.util.find_spec(m) for m in ("tensorboardX", "tensorflow"))


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="neither tensorboardX nor tensorflow installed")
def test_tensorboard_writer_event_files_hold_every_update(tiny, tmp_path):
    tf = pytest.importorskip("tensorflow")  # to read the event file back
    logdir = tmp_path / "tb"
    _, history = fit(tiny, writers=[writers.TensorBoardWriter(logdir)])
    losses = {}
    for event_file in sorted(logdir.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                if value.tag == "train/loss":
                    loss = value.simple_value
                    if value.HasField("tensor"):
                        loss = float(tf.make_ndarray(value.tensor))
                    losses[event.step] = loss
    assert sorted(losses) == list(range(1, len(history.steps["loss"]) + 1))
    np.testing.assert_allclose([losses[s] for s in sorted(losses)], history.steps["loss"], 1e-6)
