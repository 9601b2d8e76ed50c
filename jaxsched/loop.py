"""The training loop: `fit(...)` over epochs of shuffled batches, with evaluation.

Metrics stay on the device between host syncs (every `sync_every` updates), so dispatch runs
ahead of the host; a NaN/inf loss (or one above `max_loss`) found at a sync ends the run with
status "diverged" and keeps every metric recorded up to that update.

`fit` composes parts that can be used on their own:

  set_up          builds a run (a `Setup`): batch plan, optimizer (accumulating micro-batches
                  where the plan has them), mesh, initial or resumed state, compiled steps.
  run_epochs      trains a Setup epoch by epoch (`train_epoch`), calling hooks
                  (jaxsched.hooks: divergence guard, stop rule, best weights, checkpoints, ...).
  epoch_updates   dispatches one epoch's updates, yielding their metrics at every host sync
                  (`dispatch_epoch` with any `dispatch(state, idx)`; `sweep.fit_grid` uses it).
  sync            a host sync: per-update metrics into `History.steps` (`record_updates`), then
                  the hooks.
  record_epoch    an epoch's means over its updates, into `History.epochs`.
  evaluate_epoch  evaluation after an epoch, into `History.epochs`.

Words: a step is one optimizer update; an update runs one or more micro-batches (each a call
of `Setup.micro_batch_fn`; optax.MultiSteps accumulates them), or a chunk of consecutive
updates runs as one `lax.scan` call (`Setup.chunk_fn`), gathering its batches on the device
from the training data placed there once (`Setup.device_data`) when it fits. `UpdateMetrics` /
`ChunkMetrics` hold an update's / a chunk's metrics until a host sync fetches them.
"""

import dataclasses
import functools
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from jaxsched import batching, checkpoints, data, hooks, losses, optimizers, parallel, train
from jaxsched.results import DONE, History
from jaxsched.writers import MetricWriter

# Largest host batch chunk (images of up to `sync_every` updates) gathered for one scan call.
CHUNK_BYTES = 16 * 2**20
# Training data up to this size (and a quarter of the device's memory, where it reports it)
# is placed on the device once per run; scan chunks then gather their batches there.
DEVICE_DATA_BYTES = 2**30


def eval_batches(num_examples: int, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (indices int[batch_size], mask bool[batch_size]) covering every example once.

    The last batch is padded with index 0 and masked out, so a single compiled shape serves.
    """
    for start in range(0, num_examples, batch_size):
        idx = np.arange(start, min(start + batch_size, num_examples))
        mask = np.ones(batch_size, bool)
        mask[len(idx) :] = False
        yield np.pad(idx, (0, batch_size - len(idx))), mask


def update_chunks(
    sizes: list[int], perm: np.ndarray, max_length: int, row_bytes: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray, list[int]]]:
    """Splits an epoch's updates (batch `sizes`, drawn in order from `perm`) into chunks for
    `train.make_chunk_step`: yields (indices int[C, size], valid bool[C], the chunk's sizes).

    A chunk holds consecutive updates of one size; its length C depends only on the size
    (`max_length`, capped so the chunk's images of `row_bytes` each stay under CHUNK_BYTES;
    row_bytes None: no cap, the images are gathered on the device), so each batch size
    compiles once; a shorter run is padded with invalid (skipped) rows.
    """
    offset, i = 0, 0
    while i < len(sizes):
        size = sizes[i]
        length = max_length
        if row_bytes is not None:
            length = max(1, min(max_length, CHUNK_BYTES // (size * row_bytes)))
        run = 1
        while run < length and i + run < len(sizes) and sizes[i + run] == size:
            run += 1
        idx = np.zeros((length, size), perm.dtype)
        idx[:run] = perm[offset : offset + run * size].reshape(run, size)
        yield idx, np.arange(length) < run, [size] * run
        offset += run * size
        i += run


def _place(
    mesh: jax.sharding.Mesh | None,
    idx: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple:
    """The batch (images[idx], labels[idx][, mask]) as the step takes it: host arrays on one
    device, or split over `mesh`, each process gathering only its own rows."""
    extra = () if mask is None else (mask,)
    if mesh is None:
        return images[idx], labels[idx], *extra
    rows = parallel.local_rows(len(idx))
    local = idx[rows]
    return parallel.shard_batch(
        mesh, images[local], labels[local], *(m[rows] for m in extra), global_batch=len(idx)
    )


def evaluate(
    eval_step: train.CompiledStep,
    state: train.TrainState,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 1000,
    mesh: jax.sharding.Mesh | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy over all `images` float32[N, ...] and `labels` (the targets:
    int[N] class labels, or float[N] / float[N, K] for a regression loss, whose accuracy is
    NaN: `eval_step` is `train.make_eval_step(model, loss)`).

    mesh: evaluate data-parallel, each batch (rounded up to a multiple of the devices, the
    padding masked out) split over the mesh; `state` should be replicated on it.
    """
    batch_size = min(batch_size, len(images))
    if mesh is not None:
        batch_size = parallel.round_up(batch_size, mesh.size)
    sums = [
        eval_step(state, *_place(mesh, idx, images, labels, mask=mask))
        for idx, mask in eval_batches(len(images), batch_size)
    ]
    totals = {k: float(np.sum([jax.device_get(s[k]) for s in sums])) for k in sums[0]}
    return {
        "loss": totals["loss_sum"] / totals["count"],
        "accuracy": totals["correct"] / totals["count"],
    }


class UpdateMetrics(NamedTuple):
    """One optimizer update's metrics: one dict per micro-batch ("loss", "accuracy",
    "learning_rate"; on the device until a host sync fetches them) and the update's batch size."""

    micro_batches: list[train.Metrics]
    batch_size: int


class ChunkMetrics(NamedTuple):
    """The metrics of a chunk of updates made by one `lax.scan` call: each metric stacked to
    [C], row i the i-th update's (rows from len(batch_sizes) on are padding), and the updates'
    batch sizes."""

    stacked: train.Metrics
    batch_sizes: list[int]

    def updates(self) -> list[UpdateMetrics]:
        return [
            UpdateMetrics([{k: v[i] for k, v in self.stacked.items()}], size)
            for i, size in enumerate(self.batch_sizes)
        ]


@dataclasses.dataclass(frozen=True)
class Setup:
    """A run ready to train, as `set_up` builds it.

    plan: the batches of every epoch (batching.Plan).
    mesh: the data-parallel device mesh, or None (one device).
    state: the initial TrainState (fresh or resumed; the first update donates its buffers).
    micro_batch_fn: the compiled train step on one micro-batch; an optimizer update when the
      update is one micro-batch, else optax.MultiSteps accumulates the plan's micro-batches.
    chunk_fn: C consecutive one-micro-batch updates by one `lax.scan` call, or None; it takes
      the C batches gathered on the host, or with `device_data` the indices into it.
    device_data: the training data placed on the device for chunk_fn to gather from, or None.
    eval_fn: the compiled evaluation step (sums over a masked batch).
    seed: the run's seed (it orders every epoch's examples).
    start_epoch: the first epoch to train (0-based; after a resume the next one, and the
      number of epochs when the checkpointed run had finished).
    history: the History the run records into (a resumed run's so far, else empty).
    best: a resumed run's kept (best value, 1-based epoch, (params, batch_stats)), or None.
    manager: the orbax CheckpointManager of checkpoint_dir, or None.
    started: time.perf_counter() when the run started (before initialization).
    """

    plan: batching.Plan
    mesh: jax.sharding.Mesh | None
    state: train.TrainState
    micro_batch_fn: train.CompiledStep
    chunk_fn: train.CompiledStep | None
    device_data: data.Dataset | None
    eval_fn: train.CompiledStep
    seed: int
    start_epoch: int
    history: History
    best: tuple[float, int, Any] | None
    manager: ocp.CheckpointManager | None
    started: float

    @property
    def train_fns(self) -> list[train.CompiledStep]:
        return [self.micro_batch_fn] + ([] if self.chunk_fn is None else [self.chunk_fn])


def fit(
    model: nn.Module,
    tx: optax.GradientTransformation,
    train_data: data.Dataset,
    *,
    epochs: int,
    batch_size: batching.BatchSize,
    batch_size_unit: str = "update",
    strategy: str = "shapes",
    micro_batch_size: int | None = None,
    max_device_batch: int | None = None,
    seed: int = 0,
    eval_data: data.Dataset | None = None,
    eval_batch_size: int = 1000,
    augment: train.AugmentFn | None = None,
    batch_augment: train.BatchAugmentFn | None = None,
    regularizer: train.RegularizerFn | None = None,
    max_steps: int | None = None,
    stop_when: Callable[[History], bool] | None = None,
    restore_best: str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_identity: Any = None,
    resume: bool = False,
    sync_every: int = 100,
    max_loss: float = math.inf,
    devices: int | None = None,
    sync_batchnorm: bool = True,
    scan_chunks: bool | str = "auto",
    quiet: bool = False,
    description: str = "train",
    writers: Sequence[MetricWriter] = (),
    loss: str | losses.Objective = "classification",
    example_block: int | None = None,
) -> tuple[train.TrainState, History]:
    """Trains `model` with `tx` from a fresh initialization seeded by `seed`.

    `set_up` builds the run, `run_epochs` trains it calling the hooks (jaxsched.hooks) that
    `fit` makes of its arguments: a progress bar, a divergence guard (NaN/inf, max_loss),
    restore_best, stop_when, the run's totals, checkpointing and metric writers.

    Args:
      train_data: inputs float32[N, ...] (already preprocessed; images [N, H, W, C], or
        [N, d] for an MLP) and labels: the targets, int[N] class labels for
        loss="classification", float[N] or float[N, K] (K the model's outputs) for "mse".
      epochs: number of passes over a fresh permutation each; an epoch ends when fewer
        examples remain than the next update needs (they are dropped; every example is still
        used across epochs).
      batch_size: examples per update, in [1, N]: an int, or a batch-size schedule (a host
        function of the update count, or of the epoch with batch_size_unit="epoch").
      batch_size_unit: "update" or "epoch", what a batch-size schedule is a function of.
      strategy: how a varying batch size is run, "shapes" (one compiled step per distinct
        size) or "accumulate" (fixed micro-batches, optax.MultiSteps): see jaxsched.batching.
      micro_batch_size: the "accumulate" micro-batch (default: the smallest size planned).
      max_device_batch: updates larger than this are accumulated over equal micro-batches.
      seed: initializes the parameters, the shuffling and the dropout/augmentation keys.
      eval_data: evaluated after every epoch (BatchNorm in inference mode) when given.
      augment: on-device augmentation applied inside the jitted step.
      batch_augment: on-device batch augmentation (M copies per sample) inside the step.
      regularizer: a penalty of the params added to the loss (e.g. `losses.l2_penalty`).
      max_steps: end after this many updates even mid-epoch (status "done"; a partial epoch
        gets no per-epoch record).
      stop_when: called with the history after every host sync and every epoch; True ends the
        run with status "stopped" (early stopping, the LR sweep's explosion rule).
      restore_best: a per-epoch key to minimize (e.g. "val_loss"): the returned state holds the
        parameters and BatchNorm statistics of the best epoch (Keras's restore_best_weights),
        recorded as `history.best_epoch`; the history itself still runs to the end.
      checkpoint_dir: when given, the whole run (state, best weights, history) is checkpointed
        with orbax after every epoch (jaxsched.checkpoints).
      checkpoint_identity: a JSON value naming the run (e.g. {"run": <config digest>, "key":
        "M=2"}), stored in every checkpoint and in checkpoint_dir/identity.json. When
        checkpoint_dir already holds checkpoints of another identity (None included), fit
        raises checkpoints.IdentityMismatchError before training, with or without `resume`.
      resume: continue from the newest readable checkpoint in checkpoint_dir (if any) instead
        of starting afresh; the run then ends with the numbers an uninterrupted run would have.
        An unreadable checkpoint is moved aside (checkpoints.restore_latest) with a warning.
      sync_every: updates between host syncs that fetch metrics and check for NaN/inf.
      max_loss: a batch loss above this also ends the run as diverged (default: only NaN/inf).
      devices: train data-parallel on the first N devices (jaxsched.parallel): every
        (micro-)batch is split over them, the state replicated, gradients all-reduced by XLA;
        every (micro-)batch size must be a multiple of N. None: the default device. After
        `parallel.initialize()` the devices are all processes' and each process gathers only
        its own rows of every batch.
      sync_batchnorm: with `devices`, BatchNorm statistics over the global batch (True) or
        per device (False, tf.distribute's default).
      scan_chunks: True runs up to `sync_every` consecutive updates of one batch size per
        call, as one `lax.scan` (`train.make_chunk_step`; the same updates, fewer dispatches),
        on one device without gradient accumulation; False dispatches one jitted step per
        (micro-)batch; "auto" (default) scans unless `train.scan_pays` says it loses (on CPU,
        steps with XLA convolutions). A scanned run places the training data on the device
        once when it fits (`DEVICE_DATA_BYTES`, and a quarter of the device's memory where
        reported; `place_on_device`) and each chunk gathers its batches there; larger data
        is gathered on the host chunk by chunk. The numbers are the same either way.
      quiet: no progress bar (there is none either when stderr is not a terminal).
      writers: metric writers (jaxsched.writers, e.g. `writers.TensorBoardWriter(logdir)`),
        each fed by a `hooks.WriteMetrics`: every update's loss, accuracy, learning rate and
        batch size at step = updates made (1..N; after a resume only the new ones), and each
        epoch's record prefixed "epoch/". They are closed when the run ends. The History
        (and a results file made of it) is the same with or without them.
      loss: what is minimized (`losses.objective`): "classification" (default; softmax
        cross-entropy of the model's logits float[B, K] against integer labels, accuracy by
        arg-max), "mse" (mean squared error for regression, e.g. the dead-ReLU nets on
        y = |x|; accuracy is undefined and recorded as NaN, null in results files), or a
        `losses.Objective`. Divergence is judged on the loss alone; restore_best and an
        `early_stopping` / `target_reached` rule cannot monitor an accuracy under "mse".
      example_block: compute each (micro-)batch larger than this in blocks of this many
        examples inside the step, losses and gradients summed (`train.make_train_step`): the
        same updates up to float rounding, faster per image on a CPU at large batches. Only
        for models without BatchNorm and on one device (ValueError before compiling).

    Returns:
      The final TrainState and the run's History. Per update it records the learning rate,
      the loss and accuracy (averaged over the update's micro-batches) and the batch size.

    Raises:
      ValueError: naming the argument, before anything compiles, for inputs `check_inputs`
        rejects (mismatched images/labels, labels outside the model's classes, targets shaped
        unlike the model's outputs, an unknown loss, an accuracy to monitor under "mse", ...).

    Examples:
      >>> import numpy as np, optax
      >>> from jaxsched import loop
      >>> from jaxsched.models import MLP
      >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> state, history = loop.fit(MLP(hidden=(16,), num_classes=2), optax.sgd(0.5), (x, y),
      ...                           epochs=3, batch_size=32, quiet=True)
      >>> history.status, int(state.step), history.epochs["train_accuracy"][-1] > 0.9
      ('done', 24, True)
    """
    train_data = data.as_dataset(train_data, "train_data")
    eval_data = None if eval_data is None else data.as_dataset(eval_data, "eval_data")
    check_inputs(
        model,
        train_data,
        eval_data,
        epochs=epochs,
        batch_size=batch_size,
        max_steps=max_steps,
        sync_every=sync_every,
        max_loss=max_loss,
        eval_batch_size=eval_batch_size,
        loss=loss,
    )
    _check_monitors(losses.objective(loss), restore_best, stop_when)
    identity = checkpoints.canonical_identity(checkpoint_identity)
    _check_scan_chunks(scan_chunks)
    keep_best = None if restore_best is None else hooks.KeepBest(restore_best)
    run = set_up(
        model,
        tx,
        train_data,
        epochs=epochs,
        batch_size=batch_size,
        batch_size_unit=batch_size_unit,
        strategy=strategy,
        micro_batch_size=micro_batch_size,
        max_device_batch=max_device_batch,
        max_steps=max_steps,
        seed=seed,
        augment=augment,
        batch_augment=batch_augment,
        regularizer=regularizer,
        devices=devices,
        sync_batchnorm=sync_batchnorm,
        scan_chunks=scan_chunks,
        sync_every=sync_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_identity=identity,
        resume=resume,
        loss=loss,
        example_block=example_block,
    )
    if keep_best is not None and run.best is not None:
        keep_best.keep(*run.best)
    recorded = len(run.history.steps["loss"])
    fit_hooks = [
        hooks.ProgressBar(run.plan.num_updates, recorded, description, quiet),
        hooks.DivergenceGuard(max_loss, checked=recorded),
        keep_best,
        None if stop_when is None else hooks.StopRule(stop_when),
        hooks.Totals(run.train_fns, run.eval_fn, started=run.started, prior=run.history),
        None if run.manager is None else hooks.Checkpointing(run.manager, identity, keep_best),
        *(hooks.WriteMetrics(writer, written=recorded) for writer in writers),
    ]
    return run_epochs(
        run,
        [hook for hook in fit_hooks if hook is not None],
        train_data,
        eval_data,
        sync_every=sync_every,
        eval_batch_size=eval_batch_size,
    )


def set_up(
    model: nn.Module,
    tx: optax.GradientTransformation,
    train_data: data.Dataset,
    *,
    epochs: int,
    batch_size: batching.BatchSize,
    batch_size_unit: str = "update",
    strategy: str = "shapes",
    micro_batch_size: int | None = None,
    max_device_batch: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    augment: train.AugmentFn | None = None,
    batch_augment: train.BatchAugmentFn | None = None,
    regularizer: train.RegularizerFn | None = None,
    devices: int | None = None,
    sync_batchnorm: bool = True,
    scan_chunks: bool | str = "auto",
    sync_every: int = 100,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_identity: Any = None,
    resume: bool = False,
    loss: str | losses.Objective = "classification",
    example_block: int | None = None,
) -> Setup:
    """Builds a run as `fit` does (the arguments are fit's): the batch plan (and an optimizer
    accumulating micro-batches where the plan has them), the mesh, the initial state, the
    compiled steps, and with `resume` the newest readable checkpoint's state and history.

    Raises before anything compiles for a bad plan or mesh and for checkpoints of another
    identity in checkpoint_dir (checkpoints.IdentityMismatchError).
    """
    _check_scan_chunks(scan_chunks)
    objective = losses.objective(loss)
    plan = batching.plan(
        len(train_data.images),
        batch_size,
        epochs=epochs,
        unit=batch_size_unit,
        max_steps=max_steps,
        strategy=strategy,
        micro_batch_size=micro_batch_size,
        max_device_batch=max_device_batch,
    )
    tx = accumulating(tx, plan)
    mesh = None if devices is None else parallel.make_mesh(devices)
    if mesh is not None:
        parallel.check_divisible(plan.micro, mesh.size, "(micro-)batch size")
    groups = 1 if mesh is None or sync_batchnorm else mesh.size
    manager = None if checkpoint_dir is None else checkpoints.manager(checkpoint_dir)
    if manager is not None and manager.latest_step() is not None:
        checkpoints.check_identity(checkpoint_dir, checkpoint_identity)  # before compiling
    started = time.perf_counter()
    state = train.init_train_state(model, tx, jax.random.key(seed), train_data.images[:1])
    if example_block is not None and (mesh is not None or jax.tree.leaves(state.batch_stats)):
        raise ValueError(
            "example_block needs a model without BatchNorm (its statistics span the whole "
            "batch) on one device (devices=None)"
        )
    step_fn = train.make_train_step(
        model,
        tx,
        augment,
        regularizer,
        batch_augment,
        batchnorm_groups=groups,
        loss=objective,
        example_block=example_block,
    )
    chunk_fn, device_data = None, None
    if scan_chunks and mesh is None and max(plan.num_micro_batches) == 1 and sync_every > 1:
        indexed = fits_on_device(train_data)
        chunk_fn = _chunk_fn(step_fn, state, train_data, plan.micro[0], scan_chunks, indexed)
        if chunk_fn is not None and indexed:
            device_data = place_on_device(train_data)
    start_epoch, history, best = 0, History(), None
    if manager is not None and resume:
        start_epoch, state, history, best = _resume(manager, state, checkpoint_identity, plan)
    if mesh is not None:
        state = parallel.replicate(mesh, state)
    return Setup(
        plan=plan,
        mesh=mesh,
        state=state,
        micro_batch_fn=train.CompiledStep(step_fn, donate_state=True),
        chunk_fn=chunk_fn,
        device_data=device_data,
        eval_fn=train.CompiledStep(train.make_eval_step(model, objective)),
        seed=seed,
        start_epoch=start_epoch,
        history=history,
        best=best,
        manager=manager,
        started=started,
    )


def accumulating(
    tx: optax.GradientTransformation, plan: batching.Plan
) -> optax.GradientTransformation:
    """`tx`, accumulating each update's `plan.num_micro_batches[u]` micro-batches where several."""
    if max(plan.num_micro_batches) == 1:
        return tx
    counts = jnp.asarray(plan.num_micro_batches, jnp.int32)
    return optimizers.accumulate(tx, lambda u: counts[jnp.minimum(u, len(counts) - 1)])


def fits_on_device(train_data: data.Dataset) -> bool:
    """Whether `train_data`'s arrays fit DEVICE_DATA_BYTES and a quarter of the default
    device's memory (where the device reports its limit)."""
    size = train_data.images.nbytes + train_data.labels.nbytes
    limit = (jax.devices()[0].memory_stats() or {}).get("bytes_limit")
    return size <= DEVICE_DATA_BYTES and (limit is None or size <= limit // 4)


def place_on_device(train_data: data.Dataset) -> data.Dataset | None:
    """`train_data` on the default device when it `fits_on_device`, else None."""
    if not fits_on_device(train_data):
        return None
    return data.Dataset(*jax.device_put((train_data.images, train_data.labels)))


def _chunk_fn(
    step_fn: Callable,
    state: train.TrainState,
    train_data: data.Dataset,
    size: int,
    scan_chunks: bool | str,
    indexed: bool,
) -> train.CompiledStep | None:
    """The compiled `train.make_chunk_step(step_fn)` (`make_indexed_chunk_step` when
    `indexed`) when scan_chunks is True, or "auto" and `train.scan_pays` for a batch of
    `size`; else None."""
    images, labels = train_data.images[:size], train_data.labels[:size]
    if scan_chunks is True or train.scan_pays(step_fn, state, images, labels):
        make = train.make_indexed_chunk_step if indexed else train.make_chunk_step
        return train.CompiledStep(make(step_fn), donate_state=True)
    return None


def _resume(
    manager: ocp.CheckpointManager, state: train.TrainState, identity: Any, plan: batching.Plan
) -> tuple[int, train.TrainState, History, tuple[float, int, Any] | None]:
    """(start epoch, state, history, kept best) from the newest readable checkpoint; a fresh
    start (0, `state`, an empty History, None) when there is none."""
    restored = checkpoints.restore_latest(manager, state, identity=identity)
    if not restored:
        return 0, state, History(), None
    start_epoch, state, best_variables, meta = restored
    best = None
    if meta["best_value"] is not None:
        best = (meta["best_value"], meta["best_epoch"], best_variables)
    if meta["finished"]:
        start_epoch = len(plan.sizes)
    return start_epoch, state, History.from_dict(meta["history"]), best


def run_epochs(
    run: Setup,
    run_hooks: Sequence[hooks.Hook],
    train_data: data.Dataset,
    eval_data: data.Dataset | None = None,
    *,
    sync_every: int = 100,
    eval_batch_size: int = 1000,
) -> tuple[train.TrainState, History]:
    """Trains `run` from its start epoch to the end of its plan or until a hook ends it,
    calling `run_hooks` in order (jaxsched.hooks). Returns the state the hooks' `on_end` made
    of the final one, and `run.history` with its final status."""
    history, state = run.history, run.state
    try:
        # No epoch (and history.status as checkpointed) when the checkpointed run had finished.
        for epoch in range(run.start_epoch, len(run.plan.sizes)):
            state, status = train_epoch(
                run, state, epoch, run_hooks, train_data, eval_data, sync_every, eval_batch_size
            )
            if status:
                history.status = status
                break
        for hook in run_hooks:
            state = hook.on_end(state, history)
        return state, history
    finally:
        for hook in run_hooks:
            hook.close()


def train_epoch(
    run: Setup,
    state: train.TrainState,
    epoch: int,
    run_hooks: Sequence[hooks.Hook],
    train_data: data.Dataset,
    eval_data: data.Dataset | None,
    sync_every: int,
    eval_batch_size: int,
) -> tuple[train.TrainState, str | None]:
    """Epoch `epoch` of `run`: its updates, a host sync every `sync_every` of them (the hooks'
    on_updates), its record in the history, evaluation and the hooks' on_epoch_end.

    Returns the state after it and the status the run ends with, or None to go on.
    """
    history, start = run.history, time.perf_counter()
    dispatched = epoch_updates(run, state, epoch, train_data, sync_every)
    for state, pending in dispatched:  # state: after the updates of each sync
        if status := sync(history, pending, run_hooks):
            return state, status
    last = epoch == len(run.plan.sizes) - 1
    if run.plan.truncated and last:
        return state, DONE  # max_steps ended this epoch early: no per-epoch record
    record_epoch(history, epoch, _first_update(run.plan, epoch), time.perf_counter() - start)
    evaluate_epoch(run, state, eval_data, eval_batch_size)
    status = DONE if last else None
    for hook in run_hooks:
        wanted = hook.on_epoch_end(epoch, state, history, status)
        status = status or wanted
    return state, status


def epoch_updates(
    run: Setup, state: train.TrainState, epoch: int, train_data: data.Dataset, sync_every: int
) -> Iterator[tuple[train.TrainState, list[UpdateMetrics | ChunkMetrics]]]:
    """Dispatches the updates of epoch `epoch`, yielding (the state so far, the metrics of the
    updates since the last yield, still on the device) after every `sync_every` updates (each
    chunk of `run.chunk_fn`) and once more at the epoch's end."""
    perm = data.epoch_permutation(len(train_data.images), seed=run.seed, epoch=epoch)
    sizes = run.plan.sizes[epoch]
    if run.chunk_fn is not None:
        on_device = run.device_data
        row_bytes = None if on_device is not None else train_data.images[0].nbytes
        for idx, valid, chunk_sizes in update_chunks(sizes, perm, sync_every, row_bytes):
            if on_device is not None:
                batches = (*on_device, idx.astype(np.int32))
            else:
                batches = (train_data.images[idx], train_data.labels[idx])
            state, stacked = run.chunk_fn(state, *batches, valid)
            yield state, [ChunkMetrics(stacked, chunk_sizes)]
        yield state, []
        return

    def dispatch(state: train.TrainState, idx: np.ndarray) -> tuple[train.TrainState, Any]:
        batch = _place(run.mesh, idx, train_data.images, train_data.labels)
        return run.micro_batch_fn(state, *batch)

    yield from dispatch_epoch(run.plan, epoch, perm, state, dispatch, sync_every)


def dispatch_epoch(
    plan: batching.Plan,
    epoch: int,
    perm: np.ndarray,
    state: Any,
    dispatch: Callable[[Any, np.ndarray], tuple[Any, Any]],
    sync_every: int,
) -> Iterator[tuple[Any, list[UpdateMetrics]]]:
    """Dispatches the updates of `plan`'s epoch `epoch`, drawing their examples in order from
    `perm`: `state, metrics = dispatch(state, idx)` for each micro-batch's indices `idx`.
    Yields (the state so far, the `UpdateMetrics` of the updates since the last yield) after
    every `sync_every` updates and once more at the epoch's end; nothing is dispatched past a
    yield until the caller asks for the next one."""
    update, offset, pending = _first_update(plan, epoch), 0, []
    for size in plan.sizes[epoch]:
        micro, micro_batches = plan.micro[update], []
        for j in range(plan.num_micro_batches[update]):
            state, metrics = dispatch(state, perm[offset + j * micro : offset + (j + 1) * micro])
            micro_batches.append(metrics)
        offset, update = offset + size, update + 1
        pending.append(UpdateMetrics(micro_batches, size))
        if len(pending) >= sync_every:
            yield state, pending
            pending = []
    yield state, pending


def sync(
    history: History, pending: list[UpdateMetrics | ChunkMetrics], run_hooks: Sequence[hooks.Hook]
) -> str | None:
    """A host sync: `record_updates(history, pending)`, then the hooks' on_updates; returns the
    first status one returns, or None."""
    record_updates(history, pending)
    for hook in run_hooks:
        if status := hook.on_updates(history):
            return status
    return None


def record_updates(history: History, pending: list[UpdateMetrics | ChunkMetrics]) -> None:
    """Fetches `pending` and appends each update's loss and accuracy (means over its
    micro-batches), learning rate and batch size to `history.steps`."""
    for update in _per_update(jax.device_get(pending)):
        micro_batches = update.micro_batches
        history.steps["loss"].append(float(np.mean([m["loss"] for m in micro_batches])))
        history.steps["accuracy"].append(float(np.mean([m["accuracy"] for m in micro_batches])))
        history.steps["learning_rate"].append(float(micro_batches[-1]["learning_rate"]))
        history.steps["batch_size"].append(int(update.batch_size))


def record_epoch(history: History, epoch: int, first_update: int, train_time: float) -> None:
    """Appends epoch `epoch`'s record to `history.epochs`: its number (1-based), the updates
    made by its end, its train time, and the means of its updates from `first_update` (global
    index) on, weighted by batch size (i.e. over its examples)."""
    weights = history.steps["batch_size"][first_update:]
    history.epochs["epoch"].append(epoch + 1)
    history.epochs["updates"].append(len(history.steps["loss"]))
    for key in ("loss", "accuracy"):
        mean = np.average(history.steps[key][first_update:], weights=weights)
        history.epochs[f"train_{key}"].append(float(mean))
    history.epochs["train_time_s"].append(train_time)


def evaluate_epoch(
    run: Setup, state: train.TrainState, eval_data: data.Dataset | None, batch_size: int
) -> None:
    """Appends the evaluation of `state` on `eval_data` (when given) and its time to
    `run.history.epochs` ("val_loss", "val_accuracy", "eval_time_s")."""
    epochs, start = run.history.epochs, time.perf_counter()
    if eval_data is not None:
        result = evaluate(
            run.eval_fn, state, eval_data.images, eval_data.labels, batch_size, run.mesh
        )
        epochs["val_loss"].append(result["loss"])
        epochs["val_accuracy"].append(result["accuracy"])
    epochs["eval_time_s"].append(time.perf_counter() - start)


def _per_update(fetched: list[UpdateMetrics | ChunkMetrics]) -> Iterator[UpdateMetrics]:
    for metrics in fetched:
        yield from metrics.updates() if isinstance(metrics, ChunkMetrics) else [metrics]


def _first_update(plan: batching.Plan, epoch: int) -> int:
    """The global index of epoch `epoch`'s first update."""
    return sum(len(sizes) for sizes in plan.sizes[:epoch])


def _check_scan_chunks(scan_chunks: Any) -> None:
    if scan_chunks not in (True, False, "auto"):
        raise ValueError(f"scan_chunks must be True, False or 'auto', got {scan_chunks!r}")


def check_inputs(
    model: nn.Module,
    train_data: data.Dataset,
    eval_data: data.Dataset | None = None,
    *,
    epochs: int,
    batch_size: batching.BatchSize,
    max_steps: int | None = None,
    sync_every: int = 100,
    max_loss: float = math.inf,
    eval_batch_size: int = 1000,
    loss: str | losses.Objective = "classification",
) -> None:
    """The checks `fit` and `sweep.fit_grid` make before anything compiles: a ValueError naming
    the argument for an unknown `loss`, images and labels of different lengths, eval images
    shaped unlike the training images, and epochs / max_steps / sync_every / eval_batch_size
    that are not ints >= 1, a bool or non-int batch_size, a NaN max_loss. For classification
    (integer targets), labels that are not a 1-D integer array or lie outside [0, the model's
    output size); for a regression loss such as "mse", targets that are not finite real numbers
    shaped float[N, K] like the model's outputs [N, K] (or float[N] for K = 1). (batching.plan
    checks the batch sizes' range.) Inputs may have any shape [N, ...] the model takes.

    The model's output shape comes from `jax.eval_shape` of its initialization on one training
    example (traced, not compiled or run).
    """
    objective = losses.objective(loss)
    for name, value in (
        ("epochs", epochs),
        ("sync_every", sync_every),
        ("eval_batch_size", eval_batch_size),
        ("max_steps", max_steps),
    ):
        if name == "max_steps" and value is None:
            continue
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not callable(batch_size) and not _is_int(batch_size):
        raise ValueError(f"batch_size must be an int or a batch-size schedule, got {batch_size!r}")
    if not isinstance(max_loss, numbers.Real) or isinstance(max_loss, bool) or math.isnan(max_loss):
        raise ValueError(f"max_loss must be a number (not NaN), got {max_loss!r}")
    datasets = {"train_data": train_data, "eval_data": eval_data}
    for name, dataset in datasets.items():
        if dataset is not None:
            if objective.integer_targets:
                _check_not_float_labels(dataset.labels, name, objective)
            # lengths; for integer targets 1-D integer labels >= 0
            data.check_dataset(dataset, what=name, integer_labels=objective.integer_targets)
            if np.shape(dataset.labels)[0] == 0:
                raise ValueError(f"{name} is empty")
    if eval_data is not None and np.shape(eval_data.images)[1:] != np.shape(train_data.images)[1:]:
        raise ValueError(
            f"eval_data images are shaped {np.shape(eval_data.images)[1:]} but train_data's "
            f"{np.shape(train_data.images)[1:]}"
        )
    output_shape = _output_shape(model, train_data.images[:1])
    for name, dataset in datasets.items():
        if dataset is None or output_shape is None:
            continue
        if objective.integer_targets:
            if len(output_shape) >= 1:
                num_classes = int(output_shape[-1])
                data.check_labels(dataset.labels, num_classes, what=f"{name}.labels")
        else:
            _check_targets(dataset.labels, output_shape[1:], f"{name}.labels", objective)


def _check_not_float_labels(labels: Any, what: str, objective: losses.Objective) -> None:
    """1-D float labels under an integer-target loss: `data.check_dataset`'s dtype message,
    with a hint (other shapes get its other messages, as before)."""
    labels = np.asarray(labels)
    dtype = labels.dtype
    if labels.ndim == 1 and np.issubdtype(dtype, np.floating):
        raise ValueError(
            f"{what}.labels: labels must have an integer dtype, got {dtype} "
            f"(loss={objective.name!r} takes integer class labels; pass loss='mse' for "
            "regression targets)"
        )


def _check_targets(
    targets: Any, output_shape: tuple[int, ...], what: str, objective: losses.Objective
) -> None:
    """Regression targets: finite real numbers, each example's shaped like the model's output
    for one example (`output_shape`), or a scalar where that output has one value."""
    targets = np.asarray(targets)
    if targets.dtype == bool or not (
        np.issubdtype(targets.dtype, np.integer) or np.issubdtype(targets.dtype, np.floating)
    ):
        raise ValueError(
            f"{what}: loss={objective.name!r} needs real-valued targets, got dtype {targets.dtype}"
        )
    example_shape = targets.shape[1:]
    if example_shape != tuple(output_shape) and not (
        example_shape == () and tuple(output_shape) == (1,)
    ):
        shaped = "[N" + "".join(f", {d}" for d in output_shape) + "]"
        if tuple(output_shape) == (1,):
            shaped += " or [N]"
        raise ValueError(
            f"{what}: loss={objective.name!r} needs targets shaped like the model's outputs, "
            f"{shaped}, got shape {targets.shape}"
        )
    if np.issubdtype(targets.dtype, np.floating) and not np.isfinite(targets).all():
        first = int(np.argmax(~np.isfinite(targets).reshape(len(targets), -1).all(axis=1)))
        raise ValueError(f"{what}: targets must be finite, example {first} is not")


def _check_monitors(
    objective: losses.Objective, restore_best: str | None, stop_when: Callable | None
) -> None:
    """Under a loss without accuracy (e.g. "mse"), accuracies are NaN: a ValueError for
    restore_best or a stop rule (`early_stopping`, `target_reached`) that would watch one."""
    if objective.correct is not None:
        return
    for name, key in (
        ("restore_best", restore_best),
        ("stop_when", getattr(stop_when, "monitor", None)),
    ):
        if isinstance(key, str) and "accuracy" in key:
            raise ValueError(
                f"{name} monitors {key!r}, but loss={objective.name!r} defines no accuracy "
                "(recorded as NaN); monitor a loss such as 'val_loss'"
            )


def _output_shape(model: nn.Module, sample: np.ndarray) -> tuple[int, ...] | None:
    """The model's output shape for `sample` (one example: [1, ...]), traced abstractly; None
    when the output is not one array."""
    init = functools.partial(model.init_with_output, train=False)
    output, _ = jax.eval_shape(init, jax.random.key(0), sample)
    shape = getattr(output, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


def _num_outputs(model: nn.Module, sample: np.ndarray) -> int | None:
    """The model's output size (last axis of its output for `sample`), traced abstractly; None
    when the output is not one array."""
    shape = _output_shape(model, sample)
    return int(shape[-1]) if shape else None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def early_stopping(
    patience: int,
    monitor: str = "val_loss",
    min_delta: float = 0.0,
) -> Callable[[History], bool]:
    """A `stop_when` rule: True once `monitor` (a per-epoch key, lower is better) has not
    improved by more than `min_delta` for `patience` epochs (Keras's EarlyStopping)."""
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")

    def stop(history: History) -> bool:
        values = history.epochs.get(monitor, [])
        if len(values) <= patience:
            return False
        best_before = min(values[:-patience])
        return min(values[-patience:]) > best_before - min_delta

    stop.monitor = monitor  # what `fit` checks against the loss
    return stop


def time_to_accuracy(history: History, target: float, key: str = "val_accuracy") -> dict[str, Any]:
    """When the per-epoch `key` first reached `target`.

    Returns {"target", "reached", "epoch" (1-based), "updates" (made by then), "seconds"
    (training + evaluation time up to that epoch, compilation included), "best_accuracy",
    "best_epoch"}; the epoch / updates / seconds are None when the target was never reached.
    """
    values = history.epochs.get(key, [])
    times = np.cumsum(np.add(history.epochs["train_time_s"], history.epochs["eval_time_s"]))
    first = next((i for i, v in enumerate(values) if v >= target), None)
    best = int(np.argmax(values)) if values else None
    return {
        "target": target,
        "reached": first is not None,
        "epoch": None if first is None else first + 1,
        "updates": None if first is None else history.epochs["updates"][first],
        "seconds": None if first is None else float(times[first]),
        "best_accuracy": None if best is None else float(values[best]),
        "best_epoch": None if best is None else best + 1,
    }


def target_reached(target: float, key: str = "val_accuracy") -> Callable[[History], bool]:
    """A `stop_when` rule: True once the per-epoch `key` has reached `target`."""

    def reached(history: History) -> bool:
        return any(v >= target for v in history.epochs.get(key, []))

    reached.monitor = key  # what `fit` checks against the loss
    return reached
