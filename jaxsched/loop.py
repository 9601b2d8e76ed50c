"""The training loop: `fit(...)` over epochs of shuffled batches, with evaluation.

Metrics stay on the device between host syncs (every `sync_every` updates), so dispatch runs
ahead of the host; a NaN/inf loss (or one above `max_loss`) found at a sync ends the run with
status "diverged" and keeps every metric recorded up to that update.
"""

import functools
import math
import numbers
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxsched import batching, checkpoints, data, optimizers, parallel, results, train
from jaxsched.results import DIVERGED, DONE, STOPPED, History

# Largest host batch chunk (images of up to `sync_every` updates) gathered for one scan call.
CHUNK_BYTES = 16 * 2**20


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
    sizes: list[int], perm: np.ndarray, max_length: int, row_bytes: int
) -> Iterator[tuple[np.ndarray, np.ndarray, list[int]]]:
    """Splits an epoch's updates (batch `sizes`, drawn in order from `perm`) into chunks for
    `train.make_chunk_step`: yields (indices int[C, size], valid bool[C], the chunk's sizes).

    A chunk holds consecutive updates of one size; its length C depends only on the size
    (`max_length`, capped so the chunk's images stay under CHUNK_BYTES), so each batch size
    compiles once; a shorter run is padded with invalid (skipped) rows.
    """
    offset, i = 0, 0
    while i < len(sizes):
        size = sizes[i]
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
    """Mean loss and accuracy over all `images` float32[N, H, W, C], `labels` int[N].

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
) -> tuple[train.TrainState, History]:
    """Trains `model` with `tx` from a fresh initialization seeded by `seed`.

    Args:
      train_data: images float32[N, H, W, C] (already preprocessed), labels int[N].
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
        steps with XLA convolutions).
      quiet: no progress bar (there is none either when stderr is not a terminal).

    Returns:
      The final TrainState and the run's History. Per update it records the learning rate,
      the loss and accuracy (averaged over the update's micro-batches) and the batch size.

    Raises:
      ValueError: naming the argument, before anything compiles, for inputs `check_inputs`
        rejects (mismatched images/labels, labels outside the model's classes, ...).
    """
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
    )
    identity = checkpoints.canonical_identity(checkpoint_identity)
    if scan_chunks not in (True, False, "auto"):
        raise ValueError(f"scan_chunks must be True, False or 'auto', got {scan_chunks!r}")
    if restore_best is not None and restore_best not in History().epochs:
        raise ValueError(
            f"restore_best must be a per-epoch key {tuple(History().epochs)}, got {restore_best!r}"
        )
    n = len(train_data.images)
    plan = batching.plan(
        n,
        batch_size,
        epochs=epochs,
        unit=batch_size_unit,
        max_steps=max_steps,
        strategy=strategy,
        micro_batch_size=micro_batch_size,
        max_device_batch=max_device_batch,
    )
    if max(plan.steps) > 1:
        k_table = jnp.asarray(plan.steps, jnp.int32)
        tx = optimizers.accumulate(tx, lambda u: k_table[jnp.minimum(u, len(plan.steps) - 1)])
    mesh = None if devices is None else parallel.make_mesh(devices)
    if mesh is not None:
        parallel.check_divisible(plan.micro, mesh.size, "(micro-)batch size")
    groups = 1 if mesh is None or sync_batchnorm else mesh.size
    mngr = None if checkpoint_dir is None else checkpoints.manager(checkpoint_dir)
    if mngr is not None and mngr.latest_step() is not None:
        checkpoints.check_identity(checkpoint_dir, identity)  # before anything compiles
    run_start = time.perf_counter()
    state = train.init_train_state(model, tx, jax.random.key(seed), train_data.images[:1])
    step_fn = train.make_train_step(
        model, tx, augment, regularizer, batch_augment, batchnorm_groups=groups
    )
    train_step = train.CompiledStep(step_fn, donate_state=True)
    chunk_step = None
    if scan_chunks and mesh is None and max(plan.steps) == 1 and sync_every > 1:
        first = plan.micro[0]
        if scan_chunks is True or train.scan_pays(
            step_fn, state, train_data.images[:first], train_data.labels[:first]
        ):
            chunk_step = train.CompiledStep(train.make_chunk_step(step_fn), donate_state=True)
    steps = [train_step] + ([] if chunk_step is None else [chunk_step])
    eval_step = train.CompiledStep(train.make_eval_step(model))
    history = History()
    best: dict[str, Any] = {}
    start_epoch, prior = 0, History()
    if (
        mngr is not None
        and resume
        and (restored := checkpoints.restore_latest(mngr, state, identity=identity))
    ):
        start_epoch, state, best_variables, meta = restored
        history = prior = History.from_dict(meta["history"])
        if meta["best_value"] is not None:
            best.update(
                value=meta["best_value"], epoch=meta["best_epoch"], variables=best_variables
            )
        if meta["finished"]:
            start_epoch = len(plan.sizes)
    if mesh is not None:
        state = parallel.replicate(mesh, state)
    progress = tqdm(
        total=plan.num_updates,
        initial=len(history.steps["loss"]),
        desc=description,
        unit="update",
        leave=False,
        disable=quiet or not sys.stderr.isatty(),
    )

    def drain(pending: list) -> str | None:
        """Moves pending device metrics to the history; returns a final status or None.

        pending: (per-micro-batch metrics, size) per update, or (chunk metrics [C], sizes)
        per chunk of updates."""
        updates = []
        for metrics, sizes in jax.device_get(pending):
            if isinstance(sizes, list):  # a chunk: row i is its i-th update, padding after
                updates += [
                    ([{k: v[i] for k, v in metrics.items()}], n) for i, n in enumerate(sizes)
                ]
            else:
                updates.append((metrics, sizes))
        progress.update(len(updates))
        pending.clear()
        for micro_metrics, size in updates:
            loss = float(np.mean([m["loss"] for m in micro_metrics]))
            history.steps["loss"].append(loss)
            history.steps["accuracy"].append(float(np.mean([m["accuracy"] for m in micro_metrics])))
            history.steps["learning_rate"].append(float(micro_metrics[-1]["learning_rate"]))
            history.steps["batch_size"].append(int(size))
            if not math.isfinite(loss) or loss > max_loss:
                history.diverged_at_step = len(history.steps["loss"]) - 1
                return DIVERGED
        return STOPPED if stop_when is not None and stop_when(history) else None

    def remember_if_best(epoch: int) -> None:
        value = history.epochs[restore_best][-1]
        if math.isfinite(value) and value < best.get("value", math.inf):
            # Copies: the train step donates (reuses) the state's buffers.
            best.update(
                value=value,
                epoch=epoch + 1,
                variables=jax.tree.map(jnp.copy, (state.params, state.batch_stats)),
            )

    prior_totals = (prior.num_compilations, prior.compile_time_s, prior.wall_time_s)

    def update_totals() -> None:
        """Totals over the whole run, including the part before a resume."""
        compilations, compile_time, wall_time = prior_totals
        history.num_compilations = compilations + sum(s.num_compilations for s in steps)
        memory = max(s.memory_bytes for s in steps)
        history.step_memory_mib = max(history.step_memory_mib, memory / 2**20)
        history.compile_time_s = (
            compile_time + sum(s.compile_time_s for s in steps) + eval_step.compile_time_s
        )
        history.wall_time_s = wall_time + time.perf_counter() - run_start

    def checkpoint(epoch: int, status: str | None) -> None:
        update_totals()
        like_state = (state.params, state.batch_stats)
        history.status = status or "running"
        meta = {
            "history": history.to_dict(),
            "finished": status is not None,
            "best_value": best.get("value"),
            "best_epoch": best.get("epoch"),
        }
        checkpoints.save(
            mngr,
            epoch + 1,
            state,
            best.get("variables", like_state),
            results.to_jsonable(meta),
            identity=identity,
        )

    def run_epochs() -> str:
        nonlocal state
        if start_epoch >= len(plan.sizes):
            return prior.status  # the checkpointed run had already finished
        update = sum(len(sizes) for sizes in plan.sizes[:start_epoch])
        for epoch in range(start_epoch, len(plan.sizes)):
            sizes = plan.sizes[epoch]
            epoch_start, first_update = time.perf_counter(), update
            perm = data.epoch_permutation(n, seed=seed, epoch=epoch)
            offset, pending = 0, []
            if chunk_step is not None:
                row_bytes = train_data.images[0].nbytes
                for idx, valid, chunk in update_chunks(sizes, perm, sync_every, row_bytes):
                    state, metrics = chunk_step(
                        state, train_data.images[idx], train_data.labels[idx], valid
                    )
                    pending.append((metrics, chunk))
                    update += len(chunk)
                    if status := drain(pending):
                        return status
            else:
                for size in sizes:
                    micro, micro_metrics = plan.micro[update], []
                    for j in range(plan.steps[update]):
                        idx = perm[offset + j * micro : offset + (j + 1) * micro]
                        state, metrics = train_step(
                            state, *_place(mesh, idx, train_data.images, train_data.labels)
                        )
                        micro_metrics.append(metrics)
                    offset += size
                    update += 1
                    pending.append((micro_metrics, size))
                    if len(pending) >= sync_every and (status := drain(pending)):
                        return status
            if status := drain(pending):
                return status
            if plan.truncated and epoch == len(plan.sizes) - 1:
                return DONE  # max_steps ended this epoch early: no per-epoch record
            progress.set_postfix(loss=f"{history.steps['loss'][-1]:.4f}")
            _record_epoch(history, epoch, first_update, time.perf_counter() - epoch_start)
            eval_start = time.perf_counter()
            if eval_data is not None:
                result = evaluate(
                    eval_step, state, eval_data.images, eval_data.labels, eval_batch_size, mesh
                )
                history.epochs["val_loss"].append(result["loss"])
                history.epochs["val_accuracy"].append(result["accuracy"])
            history.epochs["eval_time_s"].append(time.perf_counter() - eval_start)
            if restore_best is not None:
                remember_if_best(epoch)
            status = None
            if update >= plan.num_updates:
                status = DONE
            elif stop_when is not None and stop_when(history):
                status = STOPPED
            if mngr is not None:
                checkpoint(epoch, status)
            if status:
                return status
        return DONE

    try:
        history.status = run_epochs()
        if best:
            params, batch_stats = best["variables"]
            state = state._replace(params=params, batch_stats=batch_stats)
            history.best_epoch = best["epoch"]
        return state, history
    finally:
        progress.close()
        update_totals()


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
) -> None:
    """The checks `fit` and `sweep.fit_grid` make before anything compiles: a ValueError naming
    the argument for images and labels of different lengths, labels that are not a 1-D integer
    array or lie outside [0, the model's output size), eval images shaped unlike the training
    images, and epochs / max_steps / sync_every / eval_batch_size that are not ints >= 1, a
    bool or non-int batch_size, a NaN max_loss. (batching.plan checks the batch sizes' range.)

    The model's output size comes from `jax.eval_shape` of its initialization on one training
    image (traced, not compiled or run).
    """
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
            data.check_dataset(dataset, what=name)  # lengths; 1-D integer labels >= 0
            if np.shape(dataset.labels)[0] == 0:
                raise ValueError(f"{name} is empty")
    if eval_data is not None and np.shape(eval_data.images)[1:] != np.shape(train_data.images)[1:]:
        raise ValueError(
            f"eval_data images are shaped {np.shape(eval_data.images)[1:]} but train_data's "
            f"{np.shape(train_data.images)[1:]}"
        )
    num_classes = _num_outputs(model, train_data.images[:1])
    for name, dataset in datasets.items():
        if dataset is not None and num_classes is not None:
            data.check_labels(dataset.labels, num_classes, what=f"{name}.labels")


def _num_outputs(model: nn.Module, sample: np.ndarray) -> int | None:
    """The model's output size (last axis of its output for `sample`), traced abstractly; None
    when the output is not one array."""
    init = functools.partial(model.init_with_output, train=False)
    output, _ = jax.eval_shape(init, jax.random.key(0), sample)
    shape = getattr(output, "shape", None)
    return int(shape[-1]) if shape else None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _record_epoch(history: History, epoch: int, first_step: int, train_time: float) -> None:
    """Epoch means over its updates, weighted by batch size (i.e. over its examples)."""
    weights = history.steps["batch_size"][first_step:]
    history.epochs["epoch"].append(epoch + 1)
    history.epochs["updates"].append(len(history.steps["loss"]))
    for key in ("loss", "accuracy"):
        mean = np.average(history.steps[key][first_step:], weights=weights)
        history.epochs[f"train_{key}"].append(float(mean))
    history.epochs["train_time_s"].append(train_time)


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
    return lambda history: any(v >= target for v in history.epochs.get(key, []))
