"""What the training loop does besides training: small hooks in the spirit of
clu.periodic_actions, each with one job.

`loop.fit` builds them from its arguments and `loop.run_epochs` calls them, in list order, at
these points of a run (a `Hook` method left alone does nothing):

  on_updates(history)       after each host sync appended new updates to history.steps; a
                            returned status ("diverged", "stopped") ends the run there (the
                            hooks after it are not called).
  on_epoch_end(epoch, state, history, status)
                            after epoch `epoch` (0-based) was recorded in history.epochs and
                            evaluated. `status` is None while the run goes on, or the status it
                            ends with (decided by the loop: "done" after the plan's last epoch,
                            or by an earlier hook); every hook is called, and a returned status
                            ends the run unless one was decided already.
  on_end(state, history)    once, when the run ended normally (history.status is final);
                            returns the state `fit` returns.
  close()                   always last, however the run ended (also on an exception).

The hooks `fit` uses, in its order: `ProgressBar`, `DivergenceGuard` (NaN/inf/max_loss),
`KeepBest` (restore_best), `StopRule` (stop_when), `Totals` (compile time, memory, wall time),
`Checkpointing` (checkpoint_dir) and a `WriteMetrics` per writer (writers). Order matters
where one hook reads another's work: `Totals` before `Checkpointing` puts the current totals
in each checkpoint, `KeepBest` before `Checkpointing` puts the best weights so far in it, and
`WriteMetrics` after `DivergenceGuard` never writes the updates it drops.

Examples:
  A divergence guard on a history (the run ends at the first NaN; updates after it, fetched
  in the same host sync, are dropped):

  >>> from jaxsched import hooks
  >>> from jaxsched.results import History
  >>> history = History()
  >>> for loss in (2.3, 1.9, float("nan"), 1.5):
  ...     history.steps["loss"].append(loss)
  ...     history.steps["accuracy"].append(0.5)
  ...     history.steps["learning_rate"].append(0.1)
  ...     history.steps["batch_size"].append(32)
  >>> hooks.DivergenceGuard(max_loss=10.0).on_updates(history)
  'diverged'
  >>> history.steps["loss"], history.diverged_at_step
  ([2.3, 1.9, nan], 2)

  A stop rule (e.g. `loop.early_stopping`) as a hook:

  >>> history = History()
  >>> history.epochs["val_loss"] += [1.0, 0.8, 0.9]
  >>> rule = hooks.StopRule(lambda h: h.epochs["val_loss"][-1] > min(h.epochs["val_loss"]))
  >>> rule.on_epoch_end(2, None, history, None)
  'stopped'
  >>> rule.on_epoch_end(2, None, history, "done") is None  # the run ends anyway
  True

  Training with hooks of one's own: `loop.set_up` builds the run, `loop.run_epochs` trains
  it calling the hooks (here no progress bar, no checkpoints, and a hook that prints the
  validation loss of every epoch):

      class PrintValLoss(hooks.Hook):
          def on_epoch_end(self, epoch, state, history, status):
              print(epoch + 1, history.epochs["val_loss"][-1])

      run = loop.set_up(model, tx, train_data, epochs=10, batch_size=64)
      keep_best = hooks.KeepBest("val_loss")
      state, history = loop.run_epochs(
          run,
          [hooks.DivergenceGuard(), keep_best, hooks.StopRule(loop.early_stopping(3)),
           hooks.Totals(run.train_fns, run.eval_fn, started=run.started), PrintValLoss()],
          train_data,
          eval_data,
      )
"""

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

from jaxsched import checkpoints, results, train, writers
from jaxsched.results import DIVERGED, STOPPED, History

RUNNING = "running"  # history.status in the checkpoints of a run that goes on


class Hook:
    """A hook of the training loop (module docstring); every method does nothing by default."""

    def on_updates(self, history: History) -> str | None:
        """After a host sync appended updates to `history.steps`; a status ends the run."""
        del history
        return None

    def on_epoch_end(
        self, epoch: int, state: train.TrainState, history: History, status: str | None
    ) -> str | None:
        """After epoch `epoch` (0-based) was recorded and evaluated; `status`: None while the
        run goes on, else the status it ends with. A returned status ends the run."""
        del epoch, state, history, status
        return None

    def on_end(self, state: train.TrainState, history: History) -> train.TrainState:
        """When the run has ended normally; returns the state to return."""
        del history
        return state

    def close(self) -> None:
        """Last, however the run ended."""


class ProgressBar(Hook):
    """A tqdm bar of the run's updates, the last loss shown after every epoch.

    total: the run's updates; initial: those made before (a resumed run's). No bar when
    `quiet` or when stderr is not a terminal.
    """

    def __init__(
        self, total: int, initial: int = 0, description: str = "train", quiet: bool = False
    ):
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=description,
            unit="update",
            leave=False,
            disable=quiet or not sys.stderr.isatty(),
        )
        self._shown = initial

    def on_updates(self, history: History) -> None:
        recorded = len(history.steps["loss"])
        self.bar.update(recorded - self._shown)
        self._shown = recorded

    def on_epoch_end(self, epoch, state, history, status) -> None:
        self.bar.set_postfix(loss=f"{history.steps['loss'][-1]:.4f}")

    def close(self) -> None:
        self.bar.close()


class DivergenceGuard(Hook):
    """Ends the run as "diverged" at the first update whose loss is NaN/inf or above max_loss.

    That update is the history's last (later ones fetched in the same host sync are dropped)
    and its index is `history.diverged_at_step`. Each update is checked once; `checked`: the
    updates already recorded before (a resumed run's), not checked again.
    """

    def __init__(self, max_loss: float = math.inf, checked: int = 0):
        self.max_loss = max_loss
        self.checked = checked

    def on_updates(self, history: History) -> str | None:
        losses = history.steps["loss"]
        for i in range(self.checked, len(losses)):
            if not math.isfinite(losses[i]) or losses[i] > self.max_loss:
                for values in history.steps.values():
                    del values[i + 1 :]
                history.diverged_at_step = i
                return DIVERGED
        self.checked = len(losses)
        return None


class StopRule(Hook):
    """Ends the run as "stopped" when `rule(history)` says so, asked after every host sync and
    after every epoch that does not end the run anyway (early stopping, an explosion rule)."""

    def __init__(self, rule: Callable[[History], bool]):
        self.rule = rule

    def on_updates(self, history: History) -> str | None:
        return STOPPED if self.rule(history) else None

    def on_epoch_end(self, epoch, state, history, status) -> str | None:
        return STOPPED if status is None and self.rule(history) else None


class KeepBest(Hook):
    """Keeps the parameters and BatchNorm statistics of the epoch with the lowest finite value
    of the per-epoch `key` (e.g. "val_loss"; fit's restore_best, Keras's restore_best_weights)
    and returns them at the end, recording that epoch (1-based) as `history.best_epoch`.

    value / epoch / variables: the best so far (None before any); `keep` sets them (a resumed
    run's, from its checkpoint).
    """

    def __init__(self, key: str):
        if key not in History().epochs:
            raise ValueError(
                f"restore_best must be a per-epoch key {tuple(History().epochs)}, got {key!r}"
            )
        self.key = key
        self.value: float | None = None
        self.epoch: int | None = None
        self.variables: Any = None

    def keep(self, value: float, epoch: int, variables: Any) -> None:
        self.value, self.epoch, self.variables = value, epoch, variables

    def on_epoch_end(self, epoch, state, history, status) -> None:
        value = history.epochs[self.key][-1]
        if math.isfinite(value) and value < (math.inf if self.value is None else self.value):
            # Copies: the train step donates (reuses) the state's buffers.
            self.keep(value, epoch + 1, jax.tree.map(jnp.copy, (state.params, state.batch_stats)))

    def on_end(self, state: train.TrainState, history: History) -> train.TrainState:
        if self.variables is None:
            return state
        params, batch_stats = self.variables
        history.best_epoch = self.epoch
        return state._replace(params=params, batch_stats=batch_stats)


class Totals(Hook):
    """Writes the run's totals into the history after every epoch and at the end: executables
    compiled and seconds compiling (`train_fns` and `eval_fn`, train.CompiledStep), the
    largest compiled footprint (MiB) and the wall time since `started` (time.perf_counter()).

    prior: a resumed run's history, whose totals (the part before the resume) are added.
    """

    def __init__(
        self,
        train_fns: Sequence[train.CompiledStep],
        eval_fn: train.CompiledStep,
        started: float | None = None,
        prior: History | None = None,
    ):
        self.train_fns, self.eval_fn = list(train_fns), eval_fn
        self.started = time.perf_counter() if started is None else started
        prior = History() if prior is None else prior
        self.prior = (prior.num_compilations, prior.compile_time_s, prior.wall_time_s)

    def update(self, history: History) -> None:
        compilations, compile_time, wall_time = self.prior
        history.num_compilations = compilations + sum(f.num_compilations for f in self.train_fns)
        memory = max(f.memory_bytes for f in self.train_fns)
        history.step_memory_mib = max(history.step_memory_mib, memory / 2**20)
        history.compile_time_s = (
            compile_time
            + sum(f.compile_time_s for f in self.train_fns)
            + self.eval_fn.compile_time_s
        )
        history.wall_time_s = wall_time + time.perf_counter() - self.started

    def on_epoch_end(self, epoch, state, history, status) -> None:
        self.update(history)

    def on_end(self, state: train.TrainState, history: History) -> train.TrainState:
        self.update(history)
        return state


class Checkpointing(Hook):
    """Checkpoints the whole run after every epoch with orbax (jaxsched.checkpoints): the state,
    the best weights of `keep_best` (the current ones without it), and as JSON the history,
    whether the run has finished and the best value and epoch. `loop.set_up(resume=True)`
    continues from it.

    manager: a checkpoints.manager, or a directory to make one in; identity: the run's
    (checkpoint_identity of `fit`).
    """

    def __init__(
        self,
        manager: ocp.CheckpointManager | str | os.PathLike,
        identity: Any = None,
        keep_best: KeepBest | None = None,
    ):
        if not isinstance(manager, ocp.CheckpointManager):
            manager = checkpoints.manager(manager)
        self.manager, self.identity, self.keep_best = manager, identity, keep_best

    def on_epoch_end(self, epoch, state, history, status) -> None:
        best = self.keep_best
        history.status = status or RUNNING
        meta = {
            "history": history.to_dict(),
            "finished": status is not None,
            "best_value": None if best is None else best.value,
            "best_epoch": None if best is None else best.epoch,
        }
        variables = (state.params, state.batch_stats)
        if best is not None and best.variables is not None:
            variables = best.variables
        meta = results.to_jsonable(meta)
        checkpoints.save(self.manager, epoch + 1, state, variables, meta, identity=self.identity)


class WriteMetrics(Hook):
    """Writes the run's metrics to a `writers.MetricWriter` (TensorBoard, JSON lines, ...);
    the History is read, never changed.

    Steps are numbers of updates made: update i (0-based index in `history.steps`) is written
    at step i + 1, so a run's updates are steps 1..N.

    per update (when `per_update`): "train/loss", "train/accuracy", "learning_rate" and
      "batch_size" of every update recorded since the last write, after each host sync (and,
      for those a hook ending the run at its sync kept from this one, at the end).
    per epoch: at each epoch's end, its "epoch/train_loss", "epoch/train_accuracy",
      "epoch/val_loss", "epoch/val_accuracy" (with validation data), "epoch/train_time_s" and
      "epoch/eval_time_s", at the step of the updates made by its end; then a flush.

    written: the updates already written (a resumed run's restored ones: not written again).
    The writer is closed by `close()`, however the run ended.

    Examples:
      >>> import json, os, tempfile
      >>> from jaxsched import hooks, writers
      >>> from jaxsched.results import History
      >>> path = os.path.join(tempfile.mkdtemp(), "metrics.jsonl")
      >>> hook = hooks.WriteMetrics(writers.JsonLinesWriter(path))
      >>> history = History()
      >>> for loss in (2.3, 1.9):
      ...     history.steps["loss"].append(loss)
      ...     history.steps["accuracy"].append(0.5)
      ...     history.steps["learning_rate"].append(0.1)
      ...     history.steps["batch_size"].append(32)
      >>> hook.on_updates(history)
      >>> hook.close()
      >>> [json.loads(line)["train/loss"] for line in open(path)]
      [2.3, 1.9]
    """

    STEP_KEYS = {
        "loss": "train/loss",
        "accuracy": "train/accuracy",
        "learning_rate": "learning_rate",
        "batch_size": "batch_size",
    }
    EPOCH_KEYS = (
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "train_time_s",
        "eval_time_s",
    )

    def __init__(self, writer: writers.MetricWriter, *, per_update: bool = True, written: int = 0):
        self.writer, self.per_update, self.written = writer, per_update, written

    def write_updates(self, history: History) -> None:
        """Writes the updates recorded in `history.steps` since the last call."""
        steps = history.steps
        recorded = len(steps["loss"])
        if self.per_update:
            for i in range(self.written, recorded):
                scalars = {name: steps[key][i] for key, name in self.STEP_KEYS.items()}
                self.writer.write_scalars(i + 1, scalars)
        self.written = max(self.written, recorded)

    def on_updates(self, history: History) -> None:
        self.write_updates(history)

    def on_epoch_end(self, epoch, state, history, status) -> None:
        self.write_updates(history)
        epochs = history.epochs
        scalars = {f"epoch/{key}": epochs[key][-1] for key in self.EPOCH_KEYS if epochs[key]}
        self.writer.write_scalars(epochs["updates"][-1], scalars)
        self.writer.flush()

    def on_end(self, state: train.TrainState, history: History) -> train.TrainState:
        self.write_updates(history)
        self.writer.flush()
        return state

    def close(self) -> None:
        self.writer.close()
