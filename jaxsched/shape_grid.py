"""Training many regression nets of different shapes together, each with its own early stopping.

The depth-vs-width study trains 143 small MLPs that differ only in their hidden widths. Each is
too small to keep a machine busy, so nets are trained in *groups*: one jitted program per group
steps every member on the same batch (`jax.vmap` over the members' stacked variables). A group
holds nets of different widths by padding: every member is embedded in the group's widest
shape, with unit masks zeroing its missing units and layer gates passing its missing layers
through (models.DepthWidthNet), so a padded member computes exactly its own net: its padded
parameters get zero gradient and stay zero. Strategies (how nets are grouped):

  "all"         one program for every net: all padded to the widest width at the greatest
                depth (shallower nets gated).
  "depth"       one program per depth, padded to the widest width at each layer.
  "shape"       one program per distinct width tuple (identical shapes vmapped, no padding):
                members of a group are the seeds of one net.
  "sequential"  every member alone, its own shapes, not vmapped (as Keras trains them).
  "auto"        times warm updates of each candidate's groups (compilation excluded; of a
                candidate with more than 8 groups, 8 spread over their FLOPs, the others
                interpolated) and trains with the one whose updates sum to the least time.

Every member sees the same batches (one shuffle per epoch shared by all), so a net's numbers
do not depend on the strategy (up to float rounding: padded matmuls sum in another order).
Each epoch ends on the device with evaluation and Keras's EarlyStopping(patience,
restore_best_weights=True) per member: a member whose validation RMSE has not improved for
`patience` epochs stops (its variables freeze at their best epoch's); a group ends when all its
members have. A member whose batch loss or validation RMSE becomes NaN/inf is frozen as
"diverged" (keeping its best variables). The validation RMSE is on the eval split in inference
mode (BatchNorm's running statistics), as Keras's val_root_mean_squared_error.
"""

import dataclasses
import functools
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsched import data, losses, validation
from jaxsched.results import DIVERGED, DONE, STOPPED

STRATEGIES = ("auto", "all", "depth", "shape", "sequential")
CANDIDATES = ("all", "depth", "shape", "sequential")
ModelFn = Callable[[tuple[int, ...]], nn.Module]  # hidden widths -> a DepthWidthNet-like net


def depth_width_nets(
    widths: Sequence[int] = (16, 32, 64, 128, 256, 512),
    max_depth: int = 3,
    max_units: int = 512,
) -> list[tuple[int, ...]]:
    """Every hidden-width tuple of 1..max_depth layers drawn from `widths` whose widths sum to at
    most `max_units`, by depth then lexicographically: the course's 143 nets by default.

    Examples:
      >>> from jaxsched.shape_grid import depth_width_nets
      >>> nets = depth_width_nets()
      >>> len(nets), nets[0], nets[-1]
      (143, (16,), (256, 128, 128))
    """
    validation.sequence("widths", widths, functools.partial(validation.integer, minimum=1))
    validation.integer("max_depth", max_depth, minimum=1)
    validation.integer("max_units", max_units, minimum=1)
    widths = sorted(set(int(w) for w in widths))
    return [
        shape
        for depth in range(1, max_depth + 1)
        for shape in itertools.product(widths, repeat=depth)
        if sum(shape) <= max_units
    ]


def num_params(widths: Sequence[int], inputs: int = 2, batch_norm: bool = True) -> dict[str, int]:
    """Parameter counts of models.DepthWidthNet(widths) on `inputs` features: "trainable"
    (kernels, biases, BatchNorm scales and offsets) and "keras" (Keras's count_params, which adds
    BatchNorm's moving means and variances).

    Examples:
      >>> from jaxsched.shape_grid import num_params
      >>> num_params((16,)), num_params((16, 32))
      ({'trainable': 65, 'keras': 65}, {'trainable': 657, 'keras': 689})
    """
    fan_in, trainable, bn_units = inputs, 0, 0
    for i, width in enumerate(widths):
        if i > 0 and batch_norm:
            trainable += 2 * fan_in
            bn_units += fan_in
        trainable += fan_in * width + width
        fan_in = width
    trainable += fan_in + 1
    return {"trainable": trainable, "keras": trainable + 2 * bn_units}


@dataclasses.dataclass(frozen=True)
class Group:
    """Members (indices into the member list) trained by one program on `widths` (padded hidden
    widths); `vmapped` False for a lone member run as itself; `padded` when masks and gates are
    needed (some member narrower or shallower than `widths`)."""

    members: tuple[int, ...]
    widths: tuple[int, ...]
    vmapped: bool
    padded: bool


def plan_groups(shapes: Sequence[tuple[int, ...]], strategy: str) -> list[Group]:
    """Groups the members (their hidden-width tuples `shapes`) as `strategy` (not "auto") says.

    Examples:
      >>> from jaxsched.shape_grid import plan_groups
      >>> [(g.members, g.widths) for g in plan_groups([(16,), (32, 16), (16, 64)], "depth")]
      [((0,), (16,)), ((1, 2), (32, 64))]
      >>> plan_groups([(16,), (32, 16)], "all")[0].widths
      (32, 32)
    """
    validation.choice("strategy", strategy, CANDIDATES)
    if strategy == "sequential":
        return [Group((i,), tuple(s), False, False) for i, s in enumerate(shapes)]
    if strategy == "all":
        keys = [0] * len(shapes)
    elif strategy == "depth":
        keys = [len(s) for s in shapes]
    else:
        keys = [tuple(s) for s in shapes]
    groups = []
    for key in dict.fromkeys(keys):
        members = tuple(i for i, k in enumerate(keys) if k == key)
        depths = {len(shapes[i]) for i in members}
        depth = max(depths)
        if len(depths) > 1:  # gated layers pass their input through: one width everywhere
            widest = max(max(shapes[i]) for i in members)
            widths = (widest,) * depth
        else:
            widths = tuple(max(shapes[i][layer] for i in members) for layer in range(depth))
        padded = any(tuple(shapes[i]) != widths for i in members)
        groups.append(Group(members, widths, True, padded))
    return groups


@dataclasses.dataclass
class GridRun:
    """What `fit_shapes` produced.

    rows: per member, {"widths", "seed", "status" ("done": ran every epoch, "stopped": early
      stopping, "diverged"), "best_val_rmse", "best_epoch" (1-based), "epochs_trained",
      "stop_epoch" (1-based, None when not stopped early), "val_rmse" and "train_loss" per
      epoch (train_loss: mean of the epoch's batch MSEs), "group", "seconds" (its group's
      training wall time shared equally by the group's members)}.
    variables: per member, its best epoch's variables ({"params", "batch_stats"}) in its own
      (unpadded) shapes: `model_fn(widths).apply(variables[i], x, train=False)` predicts.
    groups: per group, {"members", "widths", "padded", "compile_time_s", "train_time_s",
      "epochs"}.
    strategy: the strategy that trained; timings: with "auto", the probe's estimated seconds
      per epoch of each candidate.
    """

    rows: list[dict[str, Any]]
    variables: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    strategy: str
    timings: dict[str, float]
    wall_time_s: float


def fit_shapes(
    model_fn: ModelFn,
    shapes: Sequence[tuple[int, ...]],
    tx: optax.GradientTransformation,
    train_data: data.Dataset | tuple,
    eval_data: data.Dataset | tuple,
    *,
    epochs: int,
    batch_size: int,
    patience: int,
    seeds: Sequence[int] | int = 0,
    data_seed: int = 0,
    strategy: str = "auto",
    eval_batch_size: int = 1000,
    probe_steps: int = 2,
    on_group: Callable[[list[dict[str, Any]]], None] | None = None,
    skip: Callable[[tuple[int, ...], int], bool] | None = None,
) -> GridRun:
    """Trains model_fn(w) for every hidden-width tuple w in `shapes` and every seed, by MSE.

    Args:
      model_fn: hidden widths -> a net built like models.DepthWidthNet (layer names and the
        unit_masks / layer_gates arguments), predicting float32[B, 1].
      shapes: the nets' hidden widths; members are every (shape, seed), shape-major.
      tx: the optimizer, the same for every member.
      train_data, eval_data: inputs float32[N, D] and targets float32[N].
      epochs: at most this many epochs; batch_size: examples per update (the last batch of an
        epoch is partial when batch_size does not divide N, as Keras's).
      patience: Keras's EarlyStopping patience on the validation RMSE (best weights kept).
      seeds: init seeds; member (w, s) draws its init from (s, w) (`init_variables`),
        whatever else is trained with it.
      data_seed: the shuffling seed (epoch e shuffles with default_rng([data_seed, e])).
      strategy: as the module docstring; eval_batch_size: examples per evaluation chunk.
      probe_steps: timed warm updates per group for "auto".
      on_group: called with a finished group's rows (for incremental results files).
      skip: (widths, seed) -> True leaves that member out (finished in an earlier run).

    Returns:
      A GridRun (rows and variables in member order, skipped members left out).

    Examples:
      >>> from jaxsched import eggholder, optimizers, shape_grid
      >>> from jaxsched.models import DepthWidthNet
      >>> train, test = eggholder.make_splits(2000)
      >>> grid = shape_grid.fit_shapes(DepthWidthNet, [(8,), (16, 8)],
      ...                              optimizers.make("nadam", 0.01), train, test,
      ...                              epochs=3, batch_size=400, patience=2, strategy="all")
      >>> [(r["widths"], r["epochs_trained"]) for r in grid.rows], grid.strategy
      ([([8], 3), ([16, 8], 3)], 'all')
      >>> all(r["best_val_rmse"] == min(r["val_rmse"]) for r in grid.rows)
      True
    """
    train_data = data.as_dataset(train_data, "train_data")
    eval_data = data.as_dataset(eval_data, "eval_data")
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    _check(
        shapes,
        seeds,
        train_data,
        eval_data,
        epochs,
        batch_size,
        patience,
        strategy,
        eval_batch_size,
        probe_steps,
        data_seed,
    )
    start = time.perf_counter()
    members = [(tuple(int(w) for w in s), seed) for s in shapes for seed in seeds]
    if skip is not None:
        members = [m for m in members if not skip(*m)]
    arrays = _device_arrays(train_data, eval_data, eval_batch_size)
    timings = {}
    if strategy == "auto":
        strategy, timings = _choose(
            model_fn, tx, members, arrays, batch_size, probe_steps, train_data.num_examples
        )
    rows, variables, groups = [None] * len(members), [None] * len(members), []
    for g, group in enumerate(plan_groups([m[0] for m in members], strategy)):
        runner = _GroupRunner(model_fn, tx, [members[i] for i in group.members], group)
        summary = runner.train(
            arrays,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            data_seed=data_seed,
            num_train=train_data.num_examples,
        )
        groups.append(
            {
                "members": list(group.members),
                "widths": list(group.widths),
                "padded": group.padded,
                **summary,
            }
        )
        share = summary["train_time_s"] / len(group.members)
        for k, i in enumerate(group.members):
            rows[i] = {**runner.row(k), "group": g, "seconds": share}
            variables[i] = runner.best_variables(k)
        if on_group is not None:
            on_group([rows[i] for i in group.members])
    return GridRun(rows, variables, groups, strategy, timings, time.perf_counter() - start)


def _check(
    shapes,
    seeds,
    train_data,
    eval_data,
    epochs,
    batch_size,
    patience,
    strategy,
    eval_batch_size,
    probe_steps,
    data_seed,
) -> None:
    positive = functools.partial(validation.integer, minimum=1)
    validation.sequence("shapes", shapes, lambda n, s: validation.sequence(n, s, positive))
    validation.sequence("seeds", seeds, functools.partial(validation.integer, minimum=0))
    validation.integer("epochs", epochs, minimum=1)
    validation.integer("batch_size", batch_size, minimum=1, maximum=train_data.num_examples)
    validation.integer("patience", patience, minimum=1)
    validation.choice("strategy", strategy, STRATEGIES)
    validation.integer("eval_batch_size", eval_batch_size, minimum=1)
    validation.integer("probe_steps", probe_steps, minimum=1)
    validation.integer("data_seed", data_seed, minimum=0)
    for name, split in (("train_data", train_data), ("eval_data", eval_data)):
        if split.images.ndim != 2 or split.labels.shape != (split.num_examples,):
            raise ValueError(
                f"{name}: need inputs [N, D] and targets [N], got {split.images.shape} and "
                f"{split.labels.shape}"
            )
    if train_data.images.shape[1] != eval_data.images.shape[1]:
        raise ValueError(
            f"eval_data: inputs must have train_data's {train_data.images.shape[1]} features, "
            f"got {eval_data.images.shape[1]}"
        )


def _device_arrays(train_data: data.Dataset, eval_data: data.Dataset, chunk: int) -> dict:
    """The splits on the device; eval inputs padded to [C, chunk, D] with weights [C, chunk]."""
    n = eval_data.num_examples
    chunks = -(-n // chunk)
    pad = chunks * chunk - n
    x_eval = np.concatenate([eval_data.images, np.zeros((pad,) + eval_data.images.shape[1:])])
    y_eval = np.concatenate([eval_data.labels, np.zeros(pad)])
    weights = np.concatenate([np.ones(n), np.zeros(pad)])
    return {
        "x": jnp.asarray(train_data.images, jnp.float32),
        "y": jnp.asarray(train_data.labels, jnp.float32),
        "x_eval": jnp.asarray(x_eval.reshape(chunks, chunk, -1), jnp.float32),
        "y_eval": jnp.asarray(y_eval.reshape(chunks, chunk), jnp.float32),
        "w_eval": jnp.asarray(weights.reshape(chunks, chunk), jnp.float32),
    }


def epoch_batches(num_examples: int, batch_size: int, data_seed: int, epoch: int):
    """(full [S, batch_size], tail [T] or None): the example indices of epoch `epoch`'s updates,
    a permutation from default_rng([data_seed, epoch]) cut into batches (Keras's shuffle).

    Examples:
      >>> from jaxsched.shape_grid import epoch_batches
      >>> full, tail = epoch_batches(10, 4, data_seed=0, epoch=0)
      >>> every = sorted(np.concatenate([full.ravel(), tail]).tolist())
      >>> full.shape, tail.shape, every == list(range(10))
      ((2, 4), (2,), True)
    """
    order = np.random.default_rng([data_seed, epoch]).permutation(num_examples)
    full = num_examples // batch_size
    tail = order[full * batch_size :]
    return order[: full * batch_size].reshape(full, batch_size), (tail if len(tail) else None)


def init_variables(template: Any, widths: Sequence[int], seed: int) -> dict[str, Any]:
    """A member's initial {"params", "batch_stats"} as NumPy arrays shaped like `template`
    (jax.eval_shape of its own model's init): Keras's Glorot-uniform kernels, U(-l, l) with
    l = sqrt(6 / (fan_in + fan_out)), drawn by NumPy from (seed, widths), zero biases and
    BatchNorm offsets, unit scales, running means 0 and variances 1. Drawn on the host in the
    member's own shapes, so its init is the same whatever it trains with, and costs no
    compilation (143 distinct shapes would cost 143).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched.models import DepthWidthNet
      >>> template = jax.eval_shape(lambda: DepthWidthNet((4, 3)).init(
      ...     jax.random.key(0), jnp.zeros((1, 2)), train=False))
      >>> v = init_variables(template, (4, 3), seed=0)
      >>> v["params"]["hidden_1"]["kernel"].shape, float(v["params"]["bn_1"]["scale"][0])
      ((4, 3), 1.0)
      >>> bool(np.abs(v["params"]["hidden_0"]["kernel"]).max() <= np.sqrt(6 / (2 + 4)))
      True
    """
    streams = iter(np.random.default_rng([seed, *widths]).spawn(len(widths) + 1))

    def draw(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in, fan_out = leaf.shape
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            return next(streams).uniform(-limit, limit, leaf.shape).astype(np.float32)
        fill = 1.0 if name in ("scale", "var") else 0.0
        return np.full(leaf.shape, fill, np.float32)

    variables = jax.tree_util.tree_map_with_path(draw, template)
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def _shapes(model: nn.Module, x: jax.ShapeDtypeStruct) -> Any:
    """The variables' shapes of model.init (traced, not compiled)."""
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def _embed(small: dict, template: Any) -> dict:
    """`small`'s leaves written into the top-left corner of zeros shaped like `template`'s (a
    leaf missing from small, i.e. a layer the member lacks, stays zero)."""
    flat_small = dict(jax.tree_util.tree_flatten_with_path(small)[0])

    def fill(path, leaf):
        out = np.zeros(leaf.shape, np.float32)
        if path in flat_small:
            value = flat_small[path]
            out[tuple(slice(0, d) for d in value.shape)] = value
        return out

    out = jax.tree_util.tree_map_with_path(fill, template)
    return {"params": out["params"], "batch_stats": out.get("batch_stats", {})}


def _cut(padded: Any, template: Any) -> Any:
    """The inverse of _embed: `padded`'s leaves cut to `template`'s structure and shapes."""
    flat = dict(jax.tree_util.tree_flatten_with_path(padded)[0])
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: np.asarray(flat[path][tuple(slice(0, d) for d in leaf.shape)]),
        template,
    )


class _GroupRunner:
    """One group: its members' stacked variables, compiled epoch and early-stopping records."""

    def __init__(self, model_fn: ModelFn, tx: optax.GradientTransformation, members, group):
        self.model_fn, self.tx, self.members, self.group = model_fn, tx, members, group
        self.model = model_fn(group.widths)
        self.val_rmse: list[np.ndarray] = []  # per epoch, [K] (NaN: the member had stopped)
        self.train_loss: list[np.ndarray] = []
        self.ran: list[np.ndarray] = []  # per epoch, [K]: the member trained in it
        self.carry: dict[str, Any] | None = None

    def init_state(self, num_features: int) -> dict:
        """The members' initial {"params", "batch_stats", "opt_state"}: each drawn in its own
        shapes (`init_variables`), embedded in the group's (when padded), stacked (when
        vmapped)."""
        x = jax.ShapeDtypeStruct((1, num_features), jnp.float32)
        big = _shapes(self.model, x)
        states = []
        for widths, seed in self.members:
            own = init_variables(_shapes(self.model_fn(widths), x), widths, seed)
            states.append(_embed(own, big) if self.group.padded else own)
        if self.group.vmapped:
            variables = jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack(xs)), *states)
            opt_state = jax.jit(jax.vmap(self.tx.init))(variables["params"])
        else:
            variables = jax.tree_util.tree_map(jnp.asarray, states[0])
            opt_state = jax.jit(self.tx.init)(variables["params"])
        return {**variables, "opt_state": opt_state}

    def masks(self) -> tuple[Any, Any]:
        """(unit masks: per layer float32[K, w_l], layer gates: bool[K, L]); None for the masks
        of an unpadded group, and for the gates of a group of one depth."""
        if not self.group.padded:
            return None, None
        units = [
            jnp.asarray(
                np.stack(
                    [
                        np.arange(width) < (w[layer] if layer < len(w) else 0)
                        for w, _ in self.members
                    ]
                ).astype(np.float32)
            )
            for layer, width in enumerate(self.group.widths)
        ]
        depth = len(self.group.widths)
        if all(len(w) == depth for w, _ in self.members):
            return units, None
        gates = jnp.asarray(np.stack([np.arange(depth) < len(w) for w, _ in self.members]))
        return units, gates

    def train(self, arrays: dict, *, epochs, batch_size, patience, data_seed, num_train) -> dict:
        """Runs epochs until every member has stopped; returns the group's timings."""
        state = self.init_state(arrays["x"].shape[1])
        shape = (len(self.members),) if self.group.vmapped else ()
        carry = {
            "state": state,
            "best": {"params": state["params"], "batch_stats": state["batch_stats"]},
            "best_rmse": jnp.full(shape, jnp.inf, jnp.float32),
            "best_epoch": jnp.zeros(shape, jnp.int32),
            "wait": jnp.zeros(shape, jnp.int32),
            "alive": jnp.ones(shape, bool),
            "diverged": jnp.zeros(shape, bool),
        }
        masks, gates = self.masks()
        program = _epoch_program(self.model, self.tx, self.group.vmapped, patience)
        compiled, compile_s, train_s = None, 0.0, 0.0
        for epoch in range(epochs):
            full, tail = epoch_batches(num_train, batch_size, data_seed, epoch)
            args = (carry, masks, gates, arrays, full, tail, np.int32(epoch))
            if compiled is None:
                t0 = time.perf_counter()
                compiled = program.lower(*args).compile()
                compile_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            carry, (loss, rmse, ran) = compiled(*args)
            loss, rmse, ran, alive = jax.device_get((loss, rmse, ran, carry["alive"]))
            train_s += time.perf_counter() - t0
            self.train_loss.append(np.atleast_1d(loss))
            self.val_rmse.append(np.atleast_1d(rmse))
            self.ran.append(np.atleast_1d(ran))
            if not np.any(alive):
                break
        self.carry = jax.device_get(carry)
        return {"compile_time_s": compile_s, "train_time_s": train_s, "epochs": len(self.val_rmse)}

    def row(self, k: int) -> dict[str, Any]:
        """Member k's record (GridRun.rows without "group" and "seconds")."""
        rmse = [float(r[k]) for r in self.val_rmse]
        loss = [float(x[k]) for x in self.train_loss]
        trained = int(sum(r[k] for r in self.ran))  # members train from epoch 1, until stopped
        rmse, loss = rmse[:trained], loss[:trained]
        c = {
            name: np.atleast_1d(self.carry[name])[k]
            for name in ("alive", "diverged", "best_rmse", "best_epoch")
        }
        status = DIVERGED if c["diverged"] else DONE if c["alive"] else STOPPED
        widths, seed = self.members[k]
        best = float(c["best_rmse"])
        return {
            "widths": list(widths),
            "seed": seed,
            "status": status,
            "best_val_rmse": best if np.isfinite(best) else None,
            "best_epoch": int(c["best_epoch"]) or None,
            "epochs_trained": trained,
            "stop_epoch": trained if status == STOPPED else None,
            "val_rmse": rmse,
            "train_loss": loss,
        }

    def best_variables(self, k: int) -> dict[str, Any]:
        """Member k's best-epoch variables in its own shapes (NumPy arrays)."""
        best = self.carry["best"]
        if self.group.vmapped:
            best = jax.tree_util.tree_map(lambda x: x[k], best)
        widths, _ = self.members[k]
        num_features = self.carry["state"]["params"]["hidden_0"]["kernel"].shape[-2]
        own = _shapes(self.model_fn(widths), jax.ShapeDtypeStruct((1, num_features), jnp.float32))
        template = {"params": own["params"], "batch_stats": own.get("batch_stats", {})}
        return _cut(best, template)


def _train_steps(model, tx, state, alive, masks, gates, arrays, idx):
    """Updates one member on the batches idx[S, B] (a scan); a member not alive, or meeting a
    non-finite loss, keeps its state. Returns (state, alive, diverged, mean batch loss)."""

    def step(carry, batch):
        state, alive, diverged, total = carry
        x, y = arrays["x"][batch], arrays["y"][batch]

        def loss_fn(params):
            out, mutated = model.apply(
                {"params": params, "batch_stats": state["batch_stats"]},
                x,
                train=True,
                unit_masks=masks,
                layer_gates=gates,
                mutable=["batch_stats"],
            )
            return jnp.mean(losses.MSE.per_example(out, y)), mutated.get("batch_stats", {})

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new = {
            "params": optax.apply_updates(state["params"], updates),
            "batch_stats": stats,
            "opt_state": opt_state,
        }
        ok = jnp.isfinite(loss)
        take = alive & ok
        state = jax.tree_util.tree_map(lambda n, o: jnp.where(take, n, o), new, state)
        return (state, alive & ok, diverged | (alive & ~ok), total + loss), None

    init = (state, alive, jnp.zeros((), bool), jnp.zeros((), jnp.float32))
    (state, alive, diverged, total), _ = jax.lax.scan(step, init, idx)
    return state, alive, diverged, total / idx.shape[0]


def _val_rmse(model, variables, masks, gates, arrays) -> jax.Array:
    """The root mean squared error on the padded eval chunks, inference mode."""

    def chunk_sse(chunk):
        x, y, w = chunk
        out = model.apply(variables, x, train=False, unit_masks=masks, layer_gates=gates)
        return jnp.sum(w * losses.MSE.per_example(out, y))

    sse = jax.lax.map(chunk_sse, (arrays["x_eval"], arrays["y_eval"], arrays["w_eval"]))
    return jnp.sqrt(jnp.sum(sse) / jnp.sum(arrays["w_eval"]))


def _epoch_program(model: nn.Module, tx, vmapped: bool, patience: int) -> Callable:
    """jit(epoch(carry, masks, gates, arrays, full, tail, epoch) -> (carry, (loss, rmse, ran))): one
    epoch of updates, evaluation and Keras's early-stopping bookkeeping, per member (vmapped
    over the members when `vmapped`); loss and rmse are NaN, ran False, for members stopped
    before it."""

    def member_epoch(m, masks, gates, arrays, full, tail, epoch):
        was_alive = m["alive"]
        state, alive, diverged, loss = _train_steps(
            model, tx, m["state"], was_alive, masks, gates, arrays, full
        )
        if tail is not None:
            state, alive, tail_diverged, tail_loss = _train_steps(
                model, tx, state, alive, masks, gates, arrays, tail[None]
            )
            seen = full.shape[0] * full.shape[1]  # Keras: batch losses weighted by size
            loss = (loss * seen + tail_loss * tail.shape[0]) / (seen + tail.shape[0])
            diverged = diverged | tail_diverged
        current = {"params": state["params"], "batch_stats": state["batch_stats"]}
        rmse = _val_rmse(model, current, masks, gates, arrays)
        finite = jnp.isfinite(rmse)
        improved = alive & finite & (rmse < m["best_rmse"])
        wait = jnp.where(improved, 0, m["wait"] + 1)
        stop = ~improved & (wait >= patience) & (epoch > 0)
        diverged = diverged | (alive & ~finite)
        pick = lambda new, old: jnp.where(improved, new, old)  # noqa: E731
        new_m = {
            "state": state,
            "best": jax.tree_util.tree_map(pick, current, m["best"]),
            "best_rmse": pick(rmse, m["best_rmse"]),
            "best_epoch": pick(epoch + 1, m["best_epoch"]),
            "wait": wait,
            "alive": alive & finite & ~stop,
            "diverged": m["diverged"] | diverged,
        }
        new_m = jax.tree_util.tree_map(lambda n, o: jnp.where(was_alive, n, o), new_m, m)
        nan = jnp.float32(jnp.nan)
        return new_m, (jnp.where(was_alive, loss, nan), jnp.where(was_alive, rmse, nan), was_alive)

    fn = member_epoch
    if vmapped:
        fn = jax.vmap(member_epoch, in_axes=(0, 0, 0, None, None, None, None))
    return jax.jit(fn)


def _probe_program(model: nn.Module, tx, vmapped: bool) -> Callable:
    def member_steps(state, masks, gates, arrays, idx):
        return _train_steps(model, tx, state, jnp.ones((), bool), masks, gates, arrays, idx)[0]

    fn = member_steps
    if vmapped:
        fn = jax.vmap(member_steps, in_axes=(0, 0, 0, None, None))
    return jax.jit(fn)


def group_flops(group: Group, num_features: int, batch_size: int) -> int:
    """Multiply-adds x 6 (forward and backward) of one update of `group`'s program: its members
    (padded) times the batch times its layers' fan_in x fan_out.

    Examples:
      >>> from jaxsched.shape_grid import Group, group_flops
      >>> group_flops(Group((0, 1), (16, 8), True, True), num_features=2, batch_size=10)
      20160
    """
    dims = (num_features, *group.widths, 1)
    macs = sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
    return 6 * len(group.members) * batch_size * macs


def _choose(
    model_fn, tx, members, arrays, batch_size, probe_steps, num_train, max_probes=8, candidates=None
):
    """The candidate whose groups' updates take the least time in all; returns (it, {candidate:
    estimated seconds per epoch of updates, compilation excluded}).

    A candidate of at most `max_probes` groups has each group timed; one of more groups (e.g.
    143 "sequential" nets, each its own program to compile) has `max_probes` groups timed,
    spread over its range of `group_flops`, and the rest estimated by the least-squares line
    seconds = a + b flops through them."""
    shapes = [m[0] for m in members]
    if candidates is None:
        repeats = len(set(shapes)) < len(shapes)  # else "shape" is "sequential", vmapped
        candidates = [c for c in CANDIDATES if c != "shape" or repeats]
    idx = jnp.asarray(
        np.arange(probe_steps * batch_size).reshape(probe_steps, batch_size) % num_train
    )
    num_features = arrays["x"].shape[1]
    updates_per_epoch = -(-num_train // batch_size)
    timings = {}
    for candidate in candidates:
        groups = plan_groups(shapes, candidate)
        flops = np.array([group_flops(g, num_features, batch_size) for g in groups], float)
        order = np.argsort(flops, kind="stable")
        picked = order[np.unique(np.linspace(0, len(groups) - 1, max_probes).round().astype(int))]
        seconds = np.array(
            [
                _time_group(
                    model_fn, tx, [members[i] for i in groups[g].members], groups[g], arrays, idx
                )
                for g in picked
            ]
        )
        if len(picked) < len(groups):
            slope, intercept = np.polyfit(flops[picked], seconds, 1)
            total = float(np.sum(np.maximum(intercept + slope * flops, seconds.min())))
        else:
            total = float(seconds.sum())
        timings[candidate] = total / probe_steps * updates_per_epoch
    return min(timings, key=timings.get), timings


def _time_group(model_fn, tx, members, group, arrays, idx) -> float:
    """Seconds of `idx.shape[0]` warm updates of `group` (compiled and run once before)."""
    runner = _GroupRunner(model_fn, tx, members, group)
    state = runner.init_state(arrays["x"].shape[1])
    masks, gates = runner.masks()
    compiled = (
        _probe_program(runner.model, tx, group.vmapped)
        .lower(state, masks, gates, arrays, idx)
        .compile()
    )
    jax.block_until_ready(compiled(state, masks, gates, arrays, idx))
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state, masks, gates, arrays, idx))
    return time.perf_counter() - t0
