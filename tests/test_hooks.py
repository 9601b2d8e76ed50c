"""The training loop's hooks (jaxsched.hooks), on synthetic histories and small states."""

import math
import time
from types import SimpleNamespace

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsched import checkpoints, data, hooks, loop, optimizers, train
from jaxsched.models import MLP
from jaxsched.results import DIVERGED, DONE, STOPPED, History


def history_of(losses):
    history = History()
    for loss in losses:
        history.steps["loss"].append(loss)
        history.steps["accuracy"].append(0.5)
        history.steps["learning_rate"].append(0.1)
        history.steps["batch_size"].append(32)
    return history


def small_state(seed=0):
    model = MLP(hidden=(4,))
    return train.init_train_state(
        model, optax.sgd(0.1), jax.random.key(seed), np.zeros((1, 6, 6, 1), np.float32)
    )


def test_divergence_guard_ends_at_the_first_non_finite_loss():
    history = history_of([2.3, 1.9, math.nan, 1.5, math.inf])
    assert hooks.DivergenceGuard().on_updates(history) == DIVERGED
    assert history.diverged_at_step == 2
    assert {len(values) for values in history.steps.values()} == {3}  # later updates dropped
    assert math.isnan(history.steps["loss"][-1])


@pytest.mark.parametrize("bad", [math.inf, -math.inf, 10.5])
def test_divergence_guard_checks_max_loss_and_each_update_once(bad):
    history = history_of([2.0, 50.0])  # a resumed run's updates: not checked again
    guard = hooks.DivergenceGuard(max_loss=10.0, checked=2)
    assert guard.on_updates(history) is None
    history.steps["loss"].append(9.5)
    assert guard.on_updates(history) is None and history.diverged_at_step is None
    history.steps["loss"] += [bad, 1.0]
    assert guard.on_updates(history) == DIVERGED
    assert history.diverged_at_step == 3 and history.steps["loss"] == [2.0, 50.0, 9.5, bad]


def test_stop_rule_is_asked_at_syncs_and_at_epoch_ends_that_go_on():
    asked = []
    rule = hooks.StopRule(lambda h: asked.append(len(h.steps["loss"])) or len(asked) > 2)
    history = history_of([1.0])
    assert rule.on_updates(history) is None
    assert rule.on_epoch_end(0, None, history, None) is None
    assert rule.on_epoch_end(0, None, history, DONE) is None  # the run ends anyway: not asked
    assert rule.on_updates(history) == STOPPED
    assert asked == [1, 1, 1]


def test_keep_best_returns_the_best_epochs_weights():
    keep = hooks.KeepBest("val_loss")
    history, states = History(), []
    for epoch, value in enumerate([0.9, 0.5, math.nan, 0.7]):
        state = small_state(seed=epoch)
        states.append(state)
        history.epochs["val_loss"].append(value)
        assert keep.on_epoch_end(epoch, state, history, None) is None
    assert keep.epoch == 2 and keep.value == 0.5
    last = states[-1]
    returned = keep.on_end(last, history)
    assert history.best_epoch == 2
    chex.assert_trees_all_equal(returned.params, states[1].params)
    chex.assert_trees_all_equal(returned.opt_state, last.opt_state)  # only the weights
    kept = jax.tree.leaves(keep.variables)
    assert all(k is not s for k, s in zip(kept, jax.tree.leaves(states[1].params), strict=False))


def test_keep_best_without_a_finite_value_returns_the_state_as_it_is():
    keep, history, state = hooks.KeepBest("train_loss"), History(), small_state()
    history.epochs["train_loss"].append(math.nan)
    keep.on_epoch_end(0, state, history, None)
    assert keep.on_end(state, history) is state and history.best_epoch is None


def test_keep_best_takes_a_per_epoch_key_only():
    with pytest.raises(ValueError, match="restore_best must be a per-epoch key"):
        hooks.KeepBest("loss")


def test_totals_add_up_the_steps_and_a_resumed_runs_totals():
    def compiled(n, seconds, memory):
        return SimpleNamespace(num_compilations=n, compile_time_s=seconds, memory_bytes=memory)

    prior = History(num_compilations=3, compile_time_s=2.0, wall_time_s=10.0)
    totals = hooks.Totals(
        [compiled(2, 1.5, 2**20), compiled(1, 0.5, 3 * 2**20)],
        compiled(7, 0.25, 0),
        started=time.perf_counter() - 5.0,
        prior=prior,
    )
    history = History()
    assert totals.on_end("state", history) == "state"
    assert history.num_compilations == 6  # the eval step's are not counted
    assert history.compile_time_s == 4.25 and history.step_memory_mib == 3.0
    assert history.wall_time_s >= 15.0


class FakeBar:
    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []

    def update(self, n):
        self.calls.append(("update", n))

    def set_postfix(self, **kwargs):
        self.calls.append(("postfix", kwargs))

    def close(self):
        self.calls.append(("close",))


def test_progress_bar_counts_the_recorded_updates(monkeypatch):
    monkeypatch.setattr(hooks, "tqdm", FakeBar)
    progress = hooks.ProgressBar(10, initial=2, description="run", quiet=True)
    assert progress.bar.kwargs["initial"] == 2 and progress.bar.kwargs["disable"]
    history = history_of([1.0, 2.0, 3.0])
    progress.on_updates(history)
    history.steps["loss"] += [0.5, 0.25]
    progress.on_updates(history)
    progress.on_epoch_end(0, None, history, None)
    progress.close()
    assert progress.bar.calls == [
        ("update", 1),
        ("update", 2),
        ("postfix", {"loss": "0.2500"}),
        ("close",),
    ]


def test_checkpointing_saves_every_epoch(tmp_path):
    keep = hooks.KeepBest("val_loss")
    saver = hooks.Checkpointing(tmp_path, identity={"run": "t"}, keep_best=keep)
    history, state, params = History(), small_state(), []
    for epoch, (value, status) in enumerate([(0.7, None), (0.5, None), (0.6, DONE)]):
        state = state._replace(
            step=state.step + 1, params=jax.tree.map(lambda p: p + 1.0, state.params)
        )
        params.append(state.params)
        history.epochs["epoch"].append(epoch + 1)
        history.epochs["val_loss"].append(value)
        keep.on_epoch_end(epoch, state, history, status)
        assert saver.on_epoch_end(epoch, state, history, status) is None
        assert saver.manager.latest_step() == epoch + 1
        assert history.status == (status or hooks.RUNNING)
    assert sorted(saver.manager.all_steps()) == [2, 3]  # the manager keeps the newest two
    mngr = checkpoints.manager(tmp_path)
    epoch, restored, best, meta = checkpoints.restore_latest(mngr, state, identity={"run": "t"})
    assert epoch == 3 and meta["finished"] and (meta["best_value"], meta["best_epoch"]) == (0.5, 2)
    assert History.from_dict(meta["history"]).epochs["val_loss"] == [0.7, 0.5, 0.6]
    chex.assert_trees_all_equal(restored.params, state.params)
    chex.assert_trees_all_equal(best[0], params[1])


class Recorder(hooks.Hook):
    """Records the calls it gets; stops the run after epoch `stop_after` (0-based)."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def on_updates(self, history):
        self.calls.append(("updates", len(history.steps["loss"])))

    def on_epoch_end(self, epoch, state, history, status):
        self.calls.append(("epoch", epoch, status))
        return "custom" if epoch == self.stop_after else None

    def on_end(self, state, history):
        self.calls.append(("end", history.status))
        return state._replace(step=jnp.asarray(-1))

    def close(self):
        self.calls.append(("close",))


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(0)
    return data.Dataset(rng.random((64, 6, 6, 1), np.float32), rng.integers(0, 10, 64))


def test_run_epochs_calls_the_hooks_in_order(tiny_data):
    kwargs = dict(epochs=2, batch_size=16, sync_every=3, scan_chunks=False)
    run = loop.set_up(MLP(hidden=(8,)), optimizers.make("sgd", 0.1), tiny_data, **kwargs)
    recorder = Recorder()
    state, history = loop.run_epochs(run, [recorder], tiny_data, sync_every=3)
    assert recorder.calls == [
        *[("updates", 3), ("updates", 4), ("epoch", 0, None)],
        *[("updates", 7), ("updates", 8), ("epoch", 1, DONE)],
        ("end", DONE),
        ("close",),
    ]
    assert int(state.step) == -1  # on_end's state is returned
    tx = optimizers.make("sgd", 0.1)
    _, fitted = loop.fit(MLP(hidden=(8,)), tx, tiny_data, quiet=True, **kwargs)
    assert history.steps == fitted.steps  # fit is set_up + run_epochs with its hooks


def test_a_hook_can_end_the_run_at_an_epoch_end(tiny_data):
    run = loop.set_up(MLP(hidden=(8,)), optax.sgd(0.1), tiny_data, epochs=3, batch_size=32)
    first, second = Recorder(stop_after=0), Recorder()
    _, history = loop.run_epochs(run, [first, second], tiny_data, sync_every=100)
    assert history.status == "custom" and history.epochs["epoch"] == [1]
    assert ("epoch", 0, "custom") in second.calls  # later hooks see the decided status
