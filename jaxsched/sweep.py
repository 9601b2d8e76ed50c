"""Training a grid of models at once: `fit_grid` over learning rates, seeds or other scalars.

K members differ only by their injected optimizer hyper-parameters (e.g. "learning_rate",
"momentum") and their initialization seed; every member sees the same shuffled batches. The K
TrainStates (parameters, BatchNorm statistics, optimizer state, dropout key) are stacked along a
leading axis and trained by one of three strategies, which give the same numbers up to float
rounding:

  "vmap"        one compiled program steps all K members at once: `jit(vmap(step))`, the
                stacked state donated. One dispatch per batch and the widest operations, what
                accelerators want; on a CPU it loses: every op streams K members' activations
                (LeNet-5's first convolution's patches at batch 64: 22 MB for 11 members
                against 2 MB for one; 55 MB against 5 MB as im2col), which fall out of cache
                (with XLA's convolution, vmapped convolutions also become grouped
                convolutions, which its CPU backend runs slowly).
  "map"         one compiled program that loops over the members inside it (`lax.map`, one
                member at a time; a frozen member's update is skipped by a `lax.cond`): one
                dispatch per batch like "vmap", one member's working set in cache like
                "sequential". On this project's 2-core CPU the fastest of the three (LeNet-5,
                11 rates, batch 64: 97 ms per grid update against 111 ms sequential and
                168 ms vmapped).
  "sequential"  the plain jitted step, once per member on each batch (the batch is gathered
                and transferred once); diverged members are skipped.
  "auto"        compiles the three, times a few warm steps of each on the first batch
                (compilation excluded) and trains with the fastest; the seconds per grid step
                of each are in `GridResult.timings`. The decision is remembered per machine
                (`jaxsched.decisions`, keyed by the member step's program, which holds the model,
                optimizer and batch shape, the member count, the candidates and the machine): a
                later call with the same key trains with the remembered strategy without probing.

A member whose batch loss becomes NaN/inf (or exceeds `max_loss`) is frozen on the device from
that update on (`jnp.where(ok, new, old)` per member: the update that met the bad loss is not
applied and no later one is), so its NaNs stay its own; its History ends there with status
"diverged", exactly as `loop.fit` records it. The data order is `loop.fit`'s: with
`data_seed=s` and seed s, a member reproduces `loop.fit(..., seed=s)`.

The epoch machinery is `loop.fit`'s: `loop.dispatch_epoch` dispatches the grid steps, each
member's metrics go into its History by `loop.sync` with its own `hooks.DivergenceGuard`, and
`loop.record_epoch` writes its epochs.
"""

import dataclasses
import functools
import math
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsched import batching, data, decisions, hooks, loop, losses, train
from jaxsched.results import DIVERGED, History

STRATEGIES = ("auto", "vmap", "map", "sequential")
PROBED = ("vmap", "map", "sequential")  # what "auto" times
_EVAL_KEYS = ("loss_sum", "correct", "count")

# carry = (TrainState, alive bool[]); grid_step(carry, images, labels) -> (carry, metrics)
Carry = tuple[train.TrainState, jax.Array]


@dataclasses.dataclass
class GridResult:
    """What `fit_grid` produced.

    members: per member, {"seed": int, <hyper-parameter>: float, ...}.
    state: the final TrainStates stacked along a leading axis of size K (a diverged member's
      is its state when its loss first became non-finite / above max_loss).
    histories: per member, a History as `loop.fit` writes it; the grid-wide totals
      (compile_time_s, num_compilations, wall_time_s, the per-epoch train_time_s /
      eval_time_s, and step_memory_mib: the compiled step's footprint, all K members under
      "vmap" and "map", one under "sequential") are the whole grid's, shared by every member.
    strategy: "vmap", "map" or "sequential", the one that trained.
    timings: with strategy="auto", seconds per grid step (all K members, one update) of each
      of PROBED, the minimum over the probe steps (remembered ones when the decision was);
      else {}.
    num_compilations: train-step executables of the strategy used (one per batch shape).
    compile_time_s: seconds compiling every executable (the probe's discarded one included).
    wall_time_s: seconds for the whole call.
    decided: how the strategy was chosen: "given" (strategy="vmap"/"map"/"sequential", or
      one member), "measured" (the "auto" probe ran) or "remembered" (`jaxsched.decisions`).
    """

    members: list[dict[str, float]]
    state: train.TrainState
    histories: list[History]
    strategy: str
    timings: dict[str, float]
    num_compilations: int
    compile_time_s: float
    wall_time_s: float
    decided: str = "given"

    def __len__(self) -> int:
        return len(self.members)

    def member_state(self, i: int) -> train.TrainState:
        """Member i's TrainState (leading axis indexed away)."""
        return jax.tree.map(lambda x: x[i], self.state)

    @property
    def diverged(self) -> list[bool]:
        return [h.status == DIVERGED for h in self.histories]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the state, as plain Python (for `results.write_json_atomic`)."""
        return {
            "members": self.members,
            "strategy": self.strategy,
            "decided": self.decided,
            "timings": self.timings,
            "num_compilations": self.num_compilations,
            "compile_time_s": self.compile_time_s,
            "wall_time_s": self.wall_time_s,
            "histories": [h.to_dict() for h in self.histories],
        }


def members(
    hyperparams: Mapping[str, Sequence[float] | float] | None = None,
    seeds: Sequence[int] | int = 0,
) -> list[dict[str, float]]:
    """The grid's members: `seeds` and every `hyperparams` list broadcast together (zipped).

    Each list has length K or 1 (a scalar counts as length 1): 11 learning rates with one seed
    is 11 members, 5 seeds with one learning rate is 5. (Build a Cartesian grid with
    itertools.product first.) Returns K dicts {"seed": int, name: float, ...}.
    """
    axes: dict[str, list] = {"seeds": _as_list(seeds)}
    for name, values in (hyperparams or {}).items():
        if not isinstance(name, str) or name == "seed":
            raise ValueError(f"hyperparams keys must be hyper-parameter names, got {name!r}")
        axes[f"hyperparams[{name!r}]"] = _as_list(values)
    for where, values in axes.items():
        if not values:
            raise ValueError(f"{where} is empty: the grid needs at least one member")
    lengths = {len(v) for v in axes.values()} - {1}
    if len(lengths) > 1:
        sizes = {where: len(v) for where, v in axes.items()}
        raise ValueError(f"hyperparams and seeds must have length K or 1, got {sizes}")
    k = lengths.pop() if lengths else 1
    for s in axes["seeds"]:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool):
            raise ValueError(f"seeds must be ints, got {s!r}")
    for where, values in axes.items():
        if where != "seeds" and not all(_is_number(v) for v in values):
            raise ValueError(f"{where} must hold numbers, got {values!r}")
    names = ["seed", *(hyperparams or {})]
    columns = [v * k if len(v) == 1 else v for v in axes.values()]
    return [
        {
            n: (int(c[i]) if n == "seed" else float(c[i]))
            for n, c in zip(names, columns, strict=True)
        }
        for i in range(k)
    ]


def set_hyperparams(opt_state: optax.OptState, values: Mapping[str, Any]) -> optax.OptState:
    """Replaces injected hyper-parameters (optax.inject_hyperparams) in `opt_state`.

    Every injected state holding a name gets it (`optimizers.make` with weight decay holds
    "learning_rate" twice: the optimizer's and the decoupled decay's), cast to the stored dtype.
    Values may be batched (e.g. float[K] for a stacked state). Raises ValueError naming the
    hyper-parameter when no injected state holds it, or when it is a schedule there (a schedule
    overwrites the stored value at every update).
    """
    injected = [n for n in jax.tree.leaves(opt_state, is_leaf=_is_injected) if _is_injected(n)]
    held = {name for n in injected for name in n.hyperparams}
    scheduled = {name for n in injected for name in getattr(n, "hyperparams_states", {})}
    if missing := sorted(set(values) - held):
        raise ValueError(
            f"hyperparams {missing} not injected in the optimizer state (injected: "
            f"{sorted(held)}); build the optimizer with jaxsched.optimizers.make or "
            "optax.inject_hyperparams, giving the hyper-parameter a number"
        )
    if bad := sorted(set(values) & scheduled):
        raise ValueError(
            f"hyperparams {bad} are schedules in the optimizer; build it with a constant value "
            "to set them per member"
        )

    def replace(node: Any) -> Any:
        if not _is_injected(node):
            return node
        new = {
            k: jnp.asarray(v, getattr(node.hyperparams[k], "dtype", None))
            for k, v in values.items()
            if k in node.hyperparams
        }
        return node._replace(hyperparams={**node.hyperparams, **new})

    return jax.tree.map(replace, opt_state, is_leaf=_is_injected)


def init_grid(
    model: nn.Module,
    tx: optax.GradientTransformation,
    grid: Sequence[Mapping[str, float]],
    sample_images: jax.Array,
) -> train.TrainState:
    """K TrainStates stacked on a leading axis: member i initialized from key(grid[i]["seed"])
    exactly as `train.init_train_state`, with its hyper-parameters set in its opt_state."""
    names = [n for n in grid[0] if n != "seed"]
    # Eagerly, as loop.fit does: XLA compiles the random initializers slowly, and eager
    # dispatch reuses their per-primitive executables across calls.
    state = _stack(
        [train.init_train_state(model, tx, jax.random.key(m["seed"]), sample_images) for m in grid]
    )
    if not names:
        return state
    values = {n: np.asarray([m[n] for m in grid], np.float32) for n in names}
    return state._replace(opt_state=set_hyperparams(state.opt_state, values))


def make_grid_step(
    step: Callable[[train.TrainState, jax.Array, jax.Array], tuple[train.TrainState, dict]],
    max_loss: float = math.inf,
) -> Callable[[Carry, jax.Array, jax.Array], tuple[Carry, dict]]:
    """Wraps a train step for one member: `grid_step((state, alive), images, labels)`.

    The update is kept only while the member is alive and the batch loss is finite and
    <= max_loss; otherwise the old state is kept and alive becomes False for good. Metrics
    gain "alive" (bool[], after this update). Vmap it over (state, alive) for a grid.
    """

    def grid_step(carry: Carry, images: jax.Array, labels: jax.Array):
        state, alive = carry
        new, metrics = step(state, images, labels)
        loss = metrics["loss"]
        ok = alive & jnp.isfinite(loss) & (loss <= max_loss)
        new = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state)
        return (new, ok), {**metrics, "alive": ok}

    return grid_step


class _Vmap:
    """All members in one program; the stacked carry is donated."""

    name = "vmap"

    def __init__(self, grid_step: Callable, eval_step: Callable, carry: Carry):
        self.train = train.CompiledStep(jax.vmap(grid_step, (0, None, None)), donate_state=True)
        self.eval = train.CompiledStep(jax.vmap(eval_step, (0, None, None, None)))
        self.carry = carry

    def step(self, images, labels) -> dict[str, jax.Array]:
        self.carry, metrics = self.train(self.carry, images, labels)
        return metrics

    def evaluate(self, images, labels, mask) -> dict[str, jax.Array]:
        return self.eval(self.carry[0], images, labels, mask)

    def stop(self, i: int) -> None:
        """Member i is frozen on the device already; nothing to save by skipping it."""

    def time_step(self, images, labels, steps: int) -> float:
        carry = _copy(self.carry)
        times = []
        for _ in range(steps + 1):  # the first call compiles / warms up
            start = time.perf_counter()
            carry, _ = jax.block_until_ready(self.train(carry, images, labels))
            times.append(time.perf_counter() - start)
        return min(times[1:])

    @property
    def state(self) -> train.TrainState:
        return self.carry[0]


class _Map(_Vmap):
    """All members in one program that steps them one after another (`lax.map`); a frozen
    member's update is skipped (`lax.cond`), its metrics NaN (the host ignores them)."""

    name = "map"

    def __init__(self, grid_step: Callable, eval_step: Callable, carry: Carry):
        self.train = train.CompiledStep(_map_members(grid_step), donate_state=True)
        self.eval = train.CompiledStep(
            lambda states, *batch: jax.lax.map(lambda s: eval_step(s, *batch), states)
        )
        self.carry = carry


def _map_members(grid_step: Callable) -> Callable:
    """grid_step over a stacked (state, alive) carry, member by member in one program."""

    def step(carry: Carry, images: jax.Array, labels: jax.Array):
        def one(member: Carry):
            return jax.lax.cond(member[1], live, frozen, member)

        def live(member: Carry):
            return grid_step(member, images, labels)

        def frozen(member: Carry):
            shapes = jax.eval_shape(live, member)[1]
            metrics = jax.tree.map(lambda x: jnp.full(x.shape, jnp.nan, x.dtype), shapes)
            return member, {**metrics, "alive": member[1]}

        return jax.lax.map(one, carry)

    return step


class _Sequential:
    """Each live member through the plain jitted step in turn; diverged ones are skipped."""

    name = "sequential"

    def __init__(self, grid_step: Callable, eval_step: Callable, carry: Carry):
        self.train = train.CompiledStep(grid_step, donate_state=True)
        self.eval = train.CompiledStep(eval_step)
        k = carry[1].shape[0]
        self.carries = _unstack(carry, k)
        self.active = [True] * k

    def step(self, images, labels) -> list[dict | None]:
        images, labels = jax.device_put(images), jax.device_put(labels)
        out = []
        for i, carry in enumerate(self.carries):
            metrics = None
            if self.active[i]:
                self.carries[i], metrics = self.train(carry, images, labels)
            out.append(metrics)
        return out

    def evaluate(self, images, labels, mask) -> list[dict | None]:
        images, labels = jax.device_put(images), jax.device_put(labels)
        return [
            self.eval(c[0], images, labels, mask) if on else None
            for c, on in zip(self.carries, self.active, strict=True)
        ]

    def stop(self, i: int) -> None:
        self.active[i] = False

    def time_step(self, images, labels, steps: int) -> float:
        images, labels = jax.device_put(images), jax.device_put(labels)
        carries = _copy(self.carries)
        times = []
        for _ in range(steps + 1):
            start = time.perf_counter()
            carries = [self.train(c, images, labels)[0] for c in carries]
            jax.block_until_ready(carries)
            times.append(time.perf_counter() - start)
        return min(times[1:])

    @property
    def state(self) -> train.TrainState:
        return _stack([c[0] for c in self.carries])


@functools.partial(jax.jit, static_argnums=1)
def _unstack(tree: Any, k: int) -> list:
    """A tree of [K, ...] leaves -> K trees (one compilation, not one per leaf)."""
    return [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(k)]


@jax.jit
def _copy(tree: Any) -> Any:
    """Fresh buffers for a tree (the probe steps donate them)."""
    return jax.tree.map(jnp.copy, tree)


@jax.jit
def _stack(trees: list) -> Any:
    """K trees -> one tree of [K, ...] leaves."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _per_member(fetched: Any, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Host metrics of one grid call as float64[K] per key (NaN for skipped members)."""
    if isinstance(fetched, Mapping):  # vmap: a dict of [K] arrays
        return {key: np.asarray(fetched[key], np.float64) for key in keys}
    return {
        key: np.array([math.nan if m is None else float(m[key]) for m in fetched]) for key in keys
    }


def _sync_members(
    histories: list[History],
    guards: list[hooks.DivergenceGuard],
    runner: Any,
    pending: list[loop.UpdateMetrics],
) -> bool:
    """A host sync of the grid: each live member's metrics of the `pending` grid updates into
    its history (`loop.sync` with its divergence guard); a member the guard finds diverged is
    marked so and stopped. Returns whether any member is still live."""
    fetched = jax.device_get(pending)
    for i, (history, guard) in enumerate(zip(histories, guards, strict=True)):
        if history.status == DIVERGED:
            continue
        mine = [
            loop.UpdateMetrics([_member(m, i) for m in update.micro_batches], update.batch_size)
            for update in fetched
        ]
        if loop.sync(history, mine, [guard]):
            history.status = DIVERGED
            runner.stop(i)
    return any(h.status != DIVERGED for h in histories)


def _member(metrics: Any, i: int) -> Mapping[str, Any]:
    """Member i's host metrics of one grid call (vmap: a dict of [K] arrays; sequential: a
    list of K dicts)."""
    if isinstance(metrics, Mapping):
        return {key: value[i] for key, value in metrics.items()}
    return metrics[i]


def _evaluate(runner, dataset: data.Dataset, batch_size: int) -> tuple:
    """Mean loss and accuracy float64[K] over all of `dataset` (BatchNorm in inference mode)."""
    n = len(dataset.images)
    sums = [
        runner.evaluate(dataset.images[idx], dataset.labels[idx], mask)
        for idx, mask in loop.eval_batches(n, min(batch_size, n))
    ]
    rows = [_per_member(s, _EVAL_KEYS) for s in jax.device_get(sums)]
    totals = {key: np.sum([r[key] for r in rows], axis=0) for key in _EVAL_KEYS}
    return totals["loss_sum"] / totals["count"], totals["correct"] / totals["count"]


def fit_grid(
    model: nn.Module,
    tx: optax.GradientTransformation,
    train_data: data.Dataset,
    *,
    epochs: int,
    batch_size: batching.BatchSize,
    hyperparams: Mapping[str, Sequence[float] | float] | None = None,
    seeds: Sequence[int] | int = 0,
    data_seed: int = 0,
    batch_size_unit: str = "update",
    eval_data: data.Dataset | None = None,
    eval_batch_size: int = 1000,
    strategy: str = "auto",
    augment: train.AugmentFn | None = None,
    batch_augment: train.BatchAugmentFn | None = None,
    regularizer: train.RegularizerFn | None = None,
    max_steps: int | None = None,
    max_loss: float = math.inf,
    sync_every: int = 100,
    probe_steps: int = 3,
    loss: str | losses.Objective = "classification",
    remember: bool | str | os.PathLike = True,
) -> GridResult:
    """Trains the grid's K members (`members(hyperparams, seeds)`) on the same batches.

    Args:
      model, tx: as for `loop.fit`. Hyper-parameters named in `hyperparams` must be injected
        numbers in tx's state (`optimizers.make` injects "learning_rate" and, where given,
        "momentum", "b1", "weight_decay", ...): the value tx was built with is replaced.
      train_data: inputs float32[N, ...] (preprocessed) and targets, as `loop.fit`'s for `loss`.
      epochs, batch_size, batch_size_unit, max_steps: as `loop.fit` (strategy "shapes": one
        executable per distinct batch size).
      hyperparams: name -> K values (or one); seeds: K init seeds (or one).
      data_seed: the shuffling seed, `loop.fit`'s order for seed=data_seed.
      eval_data: evaluated per member after every epoch when given.
      strategy: "auto", "vmap", "map" or "sequential" (module docstring).
      augment, batch_augment, regularizer: as `loop.fit`, the same for every member.
      max_loss: a batch loss above it (or NaN/inf) freezes the member as diverged.
      sync_every: updates between host fetches of the [K] metrics (no per-step host sync).
      probe_steps: timed warm steps per strategy for "auto".
      loss: "classification" (default), "mse" or a `losses.Objective`, as `loop.fit`'s
        (under "mse" the members' accuracies are NaN; divergence is judged on the loss).
      remember: with "auto", reuse this machine's remembered decision for the same member
        program and K, and remember a measured one: True uses `decisions.default_path()`, a
        path that store file; False always probes (`jaxsched.decisions`).

    Returns:
      A GridResult; member i's history matches `loop.fit`'s for its hyper-parameters.

    Raises:
      ValueError: naming the argument, before anything compiles, for the inputs
        `loop.check_inputs` rejects (as `loop.fit` does) and a bad strategy / probe_steps /
        data_seed / grid.

    Examples:
      >>> import numpy as np
      >>> from jaxsched import optimizers, sweep
      >>> from jaxsched.models import MLP
      >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> grid = sweep.fit_grid(MLP(hidden=(16,), num_classes=2), optimizers.make("sgd", 0.1),
      ...                       (x, y), epochs=2, batch_size=32,
      ...                       hyperparams={"learning_rate": [1e-3, 0.5]})
      >>> [m["learning_rate"] for m in grid.members], [len(h.steps["loss"]) for h in grid.histories]
      ([0.001, 0.5], [16, 16])
      >>> grid.histories[1].final("train_loss") < grid.histories[0].final("train_loss")
      True
    """
    train_data = data.as_dataset(train_data, "train_data")
    eval_data = None if eval_data is None else data.as_dataset(eval_data, "eval_data")
    grid, plan = _check_grid(
        model,
        tx,
        train_data,
        eval_data,
        hyperparams,
        seeds,
        epochs=epochs,
        batch_size=batch_size,
        batch_size_unit=batch_size_unit,
        data_seed=data_seed,
        eval_batch_size=eval_batch_size,
        strategy=strategy,
        max_steps=max_steps,
        max_loss=max_loss,
        sync_every=sync_every,
        probe_steps=probe_steps,
        loss=loss,
    )
    run_start = time.perf_counter()
    runner, timings, probe_compile_time, decided = _build_runner(
        model,
        tx,
        grid,
        train_data,
        plan,
        strategy=strategy,
        data_seed=data_seed,
        augment=augment,
        batch_augment=batch_augment,
        regularizer=regularizer,
        max_loss=max_loss,
        probe_steps=probe_steps,
        loss=loss,
        remember=remember,
    )
    histories = [History() for _ in grid]
    guards = [hooks.DivergenceGuard(max_loss) for _ in grid]
    _run_grid_epochs(
        runner,
        plan,
        train_data,
        eval_data,
        histories,
        guards,
        data_seed=data_seed,
        eval_batch_size=eval_batch_size,
        sync_every=sync_every,
    )
    return _grid_result(grid, runner, histories, timings, probe_compile_time, run_start, decided)


def _check_grid(
    model: nn.Module,
    tx: optax.GradientTransformation,
    train_data: data.Dataset,
    eval_data: data.Dataset | None,
    hyperparams: Mapping[str, Sequence[float] | float] | None,
    seeds: Sequence[int] | int,
    *,
    epochs: int,
    batch_size: batching.BatchSize,
    batch_size_unit: str,
    data_seed: int,
    eval_batch_size: int,
    strategy: str,
    max_steps: int | None,
    max_loss: float,
    sync_every: int,
    probe_steps: int,
    loss: str | losses.Objective = "classification",
) -> tuple[list[dict[str, float]], batching.Plan]:
    """`fit_grid`'s input checks, in its order, before anything compiles: (grid, plan)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    loop.check_inputs(
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
    if probe_steps < 1:
        raise ValueError(f"probe_steps must be >= 1, got {probe_steps}")
    grid = members(hyperparams, seeds)
    n = len(train_data.images)
    plan = batching.plan(
        n, batch_size, epochs=epochs, unit=batch_size_unit, max_steps=max_steps, strategy="shapes"
    )
    if not isinstance(data_seed, numbers.Integral) or data_seed < 0:
        raise ValueError(f"data_seed must be an int >= 0, got {data_seed!r}")
    init = functools.partial(model.init, train=False)
    variables = jax.eval_shape(init, jax.random.key(0), train_data.images[:1])
    opt_state = jax.eval_shape(tx.init, variables["params"])
    first_values = {name: v for name, v in grid[0].items() if name != "seed"}
    set_hyperparams(opt_state, first_values)  # checks the names before anything compiles
    return grid, plan


def _build_runner(
    model: nn.Module,
    tx: optax.GradientTransformation,
    grid: list[dict[str, float]],
    train_data: data.Dataset,
    plan: batching.Plan,
    *,
    strategy: str,
    data_seed: int,
    augment: train.AugmentFn | None,
    batch_augment: train.BatchAugmentFn | None,
    regularizer: train.RegularizerFn | None,
    max_loss: float,
    probe_steps: int,
    loss: str | losses.Objective = "classification",
    remember: bool | str | os.PathLike = True,
) -> tuple[_Vmap | _Sequential, dict[str, float], float, str]:
    """Initializes the grid and picks its strategy: (runner, timings, probe_compile_time,
    decided).

    For "auto" (K > 1) the decision remembered for this member program and K is used when
    there is one (`remember`); otherwise the PROBED strategies compile and are timed on the
    first batch, the slower ones are dropped (with their copies of the states), their compile
    time returned and the decision remembered.
    """
    k, n = len(grid), len(train_data.images)
    sample = train_data.images[:1]
    carry = (init_grid(model, tx, grid, sample), jax.device_put(np.ones(k, bool)))
    grid_step = make_grid_step(
        train.make_train_step(model, tx, augment, regularizer, batch_augment, loss=loss), max_loss
    )
    eval_step = train.make_eval_step(model, loss)
    timings: dict[str, float] = {}
    decided, decision_key = "given", None
    if strategy == "auto" and k == 1:
        strategy = "sequential"
    if strategy == "auto":
        first = data.epoch_permutation(n, seed=data_seed, epoch=0)[: plan.sizes[0][0]]
        batch = (train_data.images[first], train_data.labels[first])
        store = None if isinstance(remember, bool) else remember
        if remember is not False:
            decision_key = _decision_key(grid_step, carry, batch)
            known = decisions.recall(decision_key, store) or {}
            if known.get("strategy") in PROBED:
                strategy, decided = known["strategy"], "remembered"
                timings = {s: float(t) for s, t in known.get("timings", {}).items()}
    if strategy == "auto":
        runners = [_RUNNERS[name](grid_step, eval_step, carry) for name in PROBED]
        timings = {r.name: r.time_step(*batch, probe_steps) for r in runners}
        runner, *others = sorted(runners, key=lambda r: timings[r.name])
        probe_compile_time = sum(o.train.compile_time_s for o in others)
        decided = "measured"
        del runners, others  # frees the discarded strategies' copies of the states
        if decision_key is not None:
            decisions.remember(decision_key, {"strategy": runner.name, "timings": timings}, store)
    else:
        runner = _RUNNERS[strategy](grid_step, eval_step, carry)
        probe_compile_time = 0.0
    del carry
    return runner, timings, probe_compile_time, decided


_RUNNERS = {"vmap": _Vmap, "map": _Map, "sequential": _Sequential}


def _decision_key(grid_step: Callable, carry: Carry, batch: tuple) -> str:
    """The `decisions` key of a grid: one member's step program at the first batch's shape
    (model, optimizer, augmentation, loss and shapes are all in its StableHLO) and K."""
    member = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), carry)
    text = jax.jit(grid_step).lower(member, *batch).as_text()
    return decisions.key(
        "fit_grid.strategy", text, members=int(carry[1].shape[0]), candidates=",".join(PROBED)
    )


def _run_grid_epochs(
    runner: _Vmap | _Sequential,
    plan: batching.Plan,
    train_data: data.Dataset,
    eval_data: data.Dataset | None,
    histories: list[History],
    guards: list[hooks.DivergenceGuard],
    *,
    data_seed: int,
    eval_batch_size: int,
    sync_every: int,
) -> None:
    """Trains the grid through `plan`'s epochs, recording each member's History."""
    n = len(train_data.images)

    def dispatch(_: None, idx: np.ndarray) -> tuple[None, Any]:
        return None, runner.step(train_data.images[idx], train_data.labels[idx])

    for epoch in range(len(plan.sizes)):
        start = time.perf_counter()
        perm = data.epoch_permutation(n, seed=data_seed, epoch=epoch)
        for _, pending in loop.dispatch_epoch(plan, epoch, perm, None, dispatch, sync_every):
            if not _sync_members(histories, guards, runner, pending):
                break
        all_diverged = all(h.status == DIVERGED for h in histories)
        if all_diverged or (plan.truncated and epoch == len(plan.sizes) - 1):
            break
        train_time = time.perf_counter() - start
        eval_start = time.perf_counter()
        val = None if eval_data is None else _evaluate(runner, eval_data, eval_batch_size)
        eval_time = time.perf_counter() - eval_start
        first_update = sum(len(sizes) for sizes in plan.sizes[:epoch])
        for i, history in enumerate(histories):
            if history.status == DIVERGED:
                continue
            loop.record_epoch(history, epoch, first_update, train_time)
            history.epochs["eval_time_s"].append(eval_time)
            if val is not None:
                history.epochs["val_loss"].append(float(val[0][i]))
                history.epochs["val_accuracy"].append(float(val[1][i]))


def _grid_result(
    grid: list[dict[str, float]],
    runner: _Vmap | _Sequential,
    histories: list[History],
    timings: dict[str, float],
    probe_compile_time: float,
    run_start: float,
    decided: str,
) -> GridResult:
    """Fills the histories' run totals (compilations, compile/wall time, memory): the result."""
    compile_time = runner.train.compile_time_s + runner.eval.compile_time_s + probe_compile_time
    state = jax.block_until_ready(runner.state)
    wall_time = time.perf_counter() - run_start
    for h in histories:  # status is DONE unless _sync_members set DIVERGED
        h.num_compilations = runner.train.num_compilations
        h.compile_time_s = compile_time
        h.step_memory_mib = runner.train.memory_bytes / 2**20
        h.wall_time_s = wall_time
    return GridResult(
        members=grid,
        state=state,
        histories=histories,
        strategy=runner.name,
        timings=timings,
        num_compilations=runner.train.num_compilations,
        compile_time_s=compile_time,
        wall_time_s=wall_time,
        decided=decided,
    )


def _is_injected(node: Any) -> bool:
    """An optax.inject_hyperparams state (a NamedTuple with a `hyperparams` dict)."""
    return isinstance(getattr(node, "hyperparams", None), dict) and hasattr(node, "_replace")


def _as_list(values: Any) -> list:
    return [values] if np.ndim(values) == 0 else list(values)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
