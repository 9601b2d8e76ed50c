"""Pure train and eval steps, and a cache of steps compiled once per batch shape.

Data flows one way: (images, labels) -> optional on-device augmentation -> model -> loss ->
optax update. The step functions know nothing about files, epochs or logging.
"""

import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxsched import losses, optimizers

Metrics = dict[str, jax.Array]
# augment(rng, images float[B, H, W, C]) -> images float[B', H', W', C]
AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]
# batch_augment(rng, images, labels) -> (images[M*B, ...], labels[M*B]): M augmented copies
BatchAugmentFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
# regularizer(params) -> float32[], added to the loss (e.g. an L2 penalty on the kernels)
RegularizerFn = Callable[[Any], jax.Array]


class TrainState(NamedTuple):
    """Everything a train step reads and writes.

    step: int32[], optimizer updates made so far.
    params: the model's trainable parameters.
    batch_stats: BatchNorm moving statistics ({} for models without BatchNorm).
    opt_state: the optax state.
    rng: PRNG key; each step uses `fold_in(rng, step)` for dropout and augmentation.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: optax.OptState
    rng: jax.Array


def init_train_state(
    model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array, sample_images: jax.Array
) -> TrainState:
    """Initializes parameters from `rng` for inputs shaped like `sample_images` [B, H, W, C].

    `model.init` runs as one compiled program, cached per model (the same values as running it
    op by op, without compiling each initializer's shape on its own first).
    """
    init_rng, step_rng = jax.random.split(rng)
    variables = _compiled_init(model)(init_rng, sample_images)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=step_rng,
    )


def _compiled_init(model: nn.Module) -> Callable[[jax.Array, jax.Array], Any]:
    """jit(model.init) in evaluation mode, one per distinct model (a module with unhashable
    fields is initialized op by op)."""
    try:
        return _jit_init(model)
    except TypeError:  # unhashable model
        return functools.partial(model.init, train=False)


@functools.lru_cache(maxsize=64)
def _jit_init(model: nn.Module) -> Callable[[jax.Array, jax.Array], Any]:
    return jax.jit(functools.partial(model.init, train=False))


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    augment: AugmentFn | None = None,
    regularizer: RegularizerFn | None = None,
    batch_augment: BatchAugmentFn | None = None,
    batchnorm_groups: int = 1,
    loss: str | losses.Objective = "classification",
    example_block: int | None = None,
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """Returns `step(state, images, labels) -> (state, metrics)`, pure and jit-able.

    images: the inputs float32[B, ...] (e.g. [B, H, W, C]); labels: the targets, int32[B] for
    loss="classification", float[B] or float[B, K] for "mse" (`losses.objective`). `augment`
    (images only) and `batch_augment` (M augmented copies of every sample, labels repeated:
    the step trains on M*B images) run inside the step, on the device, keyed by
    `fold_in(state.rng, state.step)`.
    metrics: scalar "loss" (the objective of the batch before the update: the mean of the
    loss's per-example values, e.g. cross-entropy, plus `regularizer(params)` when given, as
    Keras reports it), "accuracy" (NaN float32 when the loss defines none, e.g. "mse"), and
    "learning_rate" (the rate the update used; NaN when the optimizer does not expose it).
    batchnorm_groups: G > 1 splits the (augmented) batch into G equal consecutive groups that
    BatchNorm normalizes separately (per-device statistics under data parallelism, as
    tf.distribute without SyncBatchNormalization; the moving statistics are the groups' mean).
    1 (default) normalizes over the whole batch, i.e. synchronised across devices.
    example_block: K computes a (augmented) batch larger than K in consecutive blocks of at most
    K examples, forward and backward (`block_sums`), and sums their losses and gradients: the
    same update up to float rounding, with each block's activations in cache (faster per image
    on a CPU at large batches: benchmarks/batch_throughput.py). Only for models without
    BatchNorm, whose statistics span the whole batch (ValueError at the first call otherwise);
    with dropout each block draws its own masks (the same distribution, other masks than the
    unblocked step's). None (default): the whole batch at once.
    """
    if batchnorm_groups < 1:
        raise ValueError(f"batchnorm_groups must be >= 1, got {batchnorm_groups}")
    if example_block is not None and (
        not isinstance(example_block, int) or isinstance(example_block, bool) or example_block < 1
    ):
        raise ValueError(f"example_block must be an int >= 1 or None, got {example_block!r}")
    if example_block is not None and batchnorm_groups != 1:
        raise ValueError("example_block needs batchnorm_groups=1 (a model without BatchNorm)")
    obj = losses.objective(loss)

    def apply_train(params, batch_stats, images, dropout_rng):
        """(logits, new batch_stats) in training mode, BatchNorm per group of the batch."""
        variables = {"params": params, "batch_stats": batch_stats}

        def apply(x, rng):
            return model.apply(
                variables, x, train=True, rngs={"dropout": rng}, mutable=["batch_stats"]
            )

        if batchnorm_groups == 1:
            logits, updates = apply(images, dropout_rng)
            return logits, updates.get("batch_stats", {})
        if images.shape[0] % batchnorm_groups:
            raise ValueError(
                f"the batch of {images.shape[0]} does not split into "
                f"batchnorm_groups={batchnorm_groups} equal groups"
            )
        grouped = images.reshape((batchnorm_groups, -1, *images.shape[1:]))
        logits, updates = jax.vmap(apply)(grouped, jax.random.split(dropout_rng, batchnorm_groups))
        stats = jax.tree.map(lambda u: u.mean(0), updates.get("batch_stats", {}))
        return logits.reshape((-1, *logits.shape[2:])), stats

    def step(state: TrainState, images: jax.Array, labels: jax.Array):
        rng = jax.random.fold_in(state.rng, state.step)
        aug_rng, dropout_rng = jax.random.split(rng)
        if augment is not None:
            images = augment(aug_rng, images)
        if batch_augment is not None:  # e.g. jaxsched.augment.make_batch_augment(copies=M)
            images, labels = batch_augment(aug_rng, images, labels)

        def loss_fn(params):
            logits, batch_stats = apply_train(params, state.batch_stats, images, dropout_rng)
            value = obj.per_example(logits, labels).mean()
            if regularizer is not None:
                value = value + regularizer(params)
            return value, (logits, batch_stats)

        if example_block is None or images.shape[0] <= example_block:
            (value, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                state.params
            )
            accuracy = losses.batch_accuracy(obj, logits, labels)
        else:
            value, accuracy, grads = _blocked_value_and_grad(
                model, obj, state, images, labels, dropout_rng, example_block, regularizer
            )
            batch_stats = state.batch_stats
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        lr = optimizers.hyperparams(opt_state).get("learning_rate", jnp.nan)
        metrics = {
            "loss": value,
            "accuracy": accuracy,
            "learning_rate": jnp.asarray(lr, jnp.float32),
        }
        new_state = TrainState(
            step=state.step + 1,
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            rng=state.rng,
        )
        return new_state, metrics

    return step


def block_sums(
    model: nn.Module,
    obj: losses.Objective,
    params: Any,
    images: jax.Array,
    labels: jax.Array,
    dropout_rng: jax.Array,
    block: int,
) -> tuple[jax.Array, jax.Array, Any]:
    """(loss sum, correct sum, gradient of the loss sum w.r.t. params) over images [B, ...] in
    training mode, computed in consecutive blocks of `block` examples (one `lax.scan` over the
    full blocks, then the remainder), block i's dropout keyed by fold_in(dropout_rng, i). For
    models without batch statistics; the correct sum is NaN when `obj` defines no accuracy."""

    def sums(params, x, y, rng):
        outputs = model.apply({"params": params}, x, train=True, rngs={"dropout": rng})
        loss = obj.per_example(outputs, y).sum()
        correct = jnp.nan if obj.correct is None else obj.correct(outputs, y).sum()
        return loss, jnp.asarray(correct, jnp.float32)

    grad_sums = jax.value_and_grad(sums, has_aux=True)

    def add(total, i, x, y):
        (loss, correct), grads = grad_sums(params, x, y, jax.random.fold_in(dropout_rng, i))
        return jax.tree.map(jnp.add, total, (loss, correct, grads))

    full = images.shape[0] // block
    split = lambda a: a[: full * block].reshape(full, block, *a.shape[1:])  # noqa: E731
    zeros = (jnp.zeros(()), jnp.zeros(()), jax.tree.map(jnp.zeros_like, params))
    total, _ = jax.lax.scan(
        lambda total, xs: (add(total, *xs), None),
        zeros,
        (jnp.arange(full), split(images), split(labels)),
    )
    if images.shape[0] > full * block:
        total = add(total, full, images[full * block :], labels[full * block :])
    return total


def _blocked_value_and_grad(model, obj, state, images, labels, dropout_rng, block, regularizer):
    """`make_train_step`'s (loss, accuracy, grads) with example_block: block sums / B."""
    if jax.tree_util.tree_leaves(state.batch_stats):
        raise ValueError(
            "example_block needs a model without BatchNorm: its batch statistics span the "
            "whole batch (use max_device_batch for per-micro-batch statistics instead)"
        )
    loss_sum, correct, grads = block_sums(
        model, obj, state.params, images, labels, dropout_rng, block
    )
    n = images.shape[0]
    value, grads = loss_sum / n, jax.tree.map(lambda g: g / n, grads)
    if regularizer is not None:
        penalty, penalty_grads = jax.value_and_grad(regularizer)(state.params)
        value, grads = value + penalty, jax.tree.map(jnp.add, grads, penalty_grads)
    return value, correct / n, grads


def make_chunk_step(
    step: Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]],
) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """Returns `chunk(state, images[C, B, ...], labels[C, B], valid bool[C])`: `step` applied
    to the C batches in order by one `lax.scan`, one call instead of C dispatches.

    Batches with valid False are skipped (a `lax.cond`: no update, no cost beyond the branch)
    so a run of fewer than C updates pads up to the same compiled shape. Returns the final
    state and each metric stacked to [C] (zeros where not valid).
    """

    def chunk(state: TrainState, images, labels, valid):
        metrics_shape = jax.eval_shape(step, state, images[0], labels[0])[1]

        def skip(state, images, labels):
            del images, labels
            return state, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape)

        def body(state, batch):
            images, labels, ok = batch
            return jax.lax.cond(ok, step, skip, state, images, labels)

        return jax.lax.scan(body, state, (images, labels, valid))

    return chunk


def make_indexed_chunk_step(
    step: Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, Metrics]],
) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array, jax.Array], tuple[TrainState, Metrics]]:
    """Returns `chunk(state, images[N, ...], labels[N], idx int[C, B], valid bool[C])`: as
    `make_chunk_step`, but each batch is gathered on the device from the whole dataset,
    batch i being (images[idx[i]], labels[idx[i]]).

    With the dataset placed on the device once, a call moves only the C*B indices: no host
    gather and no host-to-device copy of the images per chunk. The updates are those of
    `make_chunk_step(step)` on the host-gathered batches, value for value.
    """

    def chunk(state: TrainState, images, labels, idx, valid):
        metrics_shape = jax.eval_shape(step, state, images[idx[0]], labels[idx[0]])[1]

        def take(state, rows):
            return step(state, images[rows], labels[rows])

        def skip(state, rows):
            del rows
            return state, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics_shape)

        def body(state, batch):
            rows, ok = batch
            return jax.lax.cond(ok, take, skip, state, rows)

        return jax.lax.scan(body, state, (idx, valid))

    return chunk


def primitive_names(jaxpr: Any) -> set[str]:
    """Names of all primitives in a (closed) jaxpr, including nested jit / scan / cond bodies."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, list | tuple) else (value,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    names |= primitive_names(sub)
    return names


def scan_pays(step: Callable, state: TrainState, images: jax.Array, labels: jax.Array) -> bool:
    """Whether `make_chunk_step(step)` should beat dispatching `step` per batch here.

    True except on the CPU backend for steps with XLA convolutions: inside a loop, XLA's CPU
    backend runs them several times slower (LeNet-5 with lax.conv: 24.2 s per epoch scanned
    against 8.2 s dispatched; with the im2col lowering the scan is the faster, 4.5 s against
    5.3 s: benchmarks/lenet_epoch.py, benchmarks/loop_design.py).
    """
    if jax.default_backend() != "cpu":
        return True
    return "conv_general_dilated" not in primitive_names(
        jax.make_jaxpr(step)(state, images, labels)
    )


def make_eval_step(
    model: nn.Module, loss: str | losses.Objective = "classification"
) -> Callable[[TrainState, jax.Array, jax.Array, jax.Array], Metrics]:
    """Returns `eval_step(state, images, labels, mask) -> {"loss_sum", "correct", "count"}`.

    BatchNorm uses its moving statistics; rows with mask False (padding) are not counted.
    loss: as `make_train_step`'s; "correct" is NaN when it defines no accuracy (e.g. "mse").
    """
    obj = losses.objective(loss)

    def eval_step(state: TrainState, images, labels, mask):
        logits = model.apply(
            {"params": state.params, "batch_stats": state.batch_stats}, images, train=False
        )
        return losses.masked_sums(logits, labels, mask, obj)

    return eval_step


def _signature(args: tuple) -> tuple:
    return tuple((tuple(a.shape), str(a.dtype)) for a in jax.tree_util.tree_leaves(args))


class CompiledStep:
    """Calls `fn(state, *batch)` through one XLA executable per batch shape.

    Executables are compiled ahead of time on the first batch of each shape and cached; the
    number of compilations and the seconds they took are counted so that tests and benchmarks
    can assert that, e.g., a batch-size schedule with three sizes compiled exactly three times.
    `donate_state` lets XLA reuse the state's buffers for the new state (the caller must not
    use the old state afterwards). `memory_bytes` is the largest footprint of the compiled
    executables by XLA's memory analysis (state, batch, outputs and temporaries).
    """

    def __init__(self, fn: Callable, *, donate_state: bool = False):
        self._jitted = jax.jit(fn, donate_argnums=(0,) if donate_state else ())
        self._executables: dict[tuple, Any] = {}
        self.compile_time_s = 0.0
        self.memory_bytes = 0

    @staticmethod
    def _footprint(executable: Any) -> int:
        """Bytes an executable needs: arguments + outputs + temporaries, less donated
        (aliased) buffers, from XLA's memory analysis; 0 where the backend has none."""
        try:
            m = executable.memory_analysis()
            return int(
                m.argument_size_in_bytes
                + m.output_size_in_bytes
                + m.temp_size_in_bytes
                - m.alias_size_in_bytes
            )
        except (AttributeError, NotImplementedError, jax.errors.JaxRuntimeError):
            return 0

    @property
    def num_compilations(self) -> int:
        return len(self._executables)

    def __call__(self, state, *batch):
        key = _signature(batch)
        executable = self._executables.get(key)
        if executable is None:
            start = time.perf_counter()
            executable = self._jitted.lower(state, *batch).compile()
            self.compile_time_s += time.perf_counter() - start
            self._executables[key] = executable
            self.memory_bytes = max(self.memory_bytes, self._footprint(executable))
        return executable(state, *batch)
