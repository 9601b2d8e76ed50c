"""One call on any model: `lr_find` (the LR range test) and `batch_size_find` (b_min / b_max).

Both train the user's Flax module (called as `model(x, train=...)`) with the user's optimizer
through `loop.fit` / `sweep.fit_grid`, read the result with the documented rules of
`jaxsched.range_test`, and return a small frozen result with the suggestion, the rule and why,
the per-update or per-run numbers, and `.plot()` (a matplotlib figure drawn from those numbers).
A run that diverges is part of the result: when nothing usable is left, the result carries no
suggestion and a message saying what to change, instead of a number.

`optimizer` is a name known to `jaxsched.optimizers.make` ("sgd", "adam", ...) or any function
`learning_rate -> optax.GradientTransformation`; the learning rate it is given is a float or an
optax schedule (the sweep's exponential ramp).
"""

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxsched import data, loop, optimizers, range_test, results, sweep, validation

OptimizerSpec = str | Callable[[Any], optax.GradientTransformation]
DataSpec = data.Dataset | tuple[Any, Any]
METHODS = ("sweep", "grid")
# The LR range test grid of the course (and `experiments.lr_range_test`): 10 down to 1e-9.
DEFAULT_GRID = tuple(10.0**k for k in range(1, -10, -1))
DEFAULT_BATCH_SIZES = (16, 32, 64, 128, 256, 512)


def make_optimizer(optimizer: OptimizerSpec, learning_rate: Any) -> optax.GradientTransformation:
    """`optimizers.make(optimizer, learning_rate)` for a name, else `optimizer(learning_rate)`.

    Examples:
      >>> import optax
      >>> round(float(make_optimizer("sgd", 0.1).init({"w": 1.0}).hyperparams["learning_rate"]), 6)
      0.1
      >>> tx = make_optimizer(lambda lr: optax.adam(lr), 1e-3)
      >>> isinstance(tx, optax.GradientTransformation)
      True
    """
    if isinstance(optimizer, str):
        return optimizers.make(optimizer, learning_rate)
    if not callable(optimizer):
        raise TypeError(
            f"optimizer must be a name in {optimizers.available()} or a function "
            f"learning_rate -> optax.GradientTransformation, got {optimizer!r}"
        )
    tx = optimizer(learning_rate)
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(
            f"optimizer(learning_rate) must return an optax.GradientTransformation, got "
            f"{type(tx).__name__}"
        )
    return tx


# ------------------------------------------------------------------------------------------------
# The LR range test.


@dataclasses.dataclass(frozen=True)
class LRFind:
    """What `lr_find` found.

    method: "sweep" or "grid". lr_min / lr_max: the suggestion, None when nothing usable was
    left (then `message` says why). rule: how the suggestion was read. message: one line, the
    suggestion or what to change. learning_rates / losses: per update (sweep) or per rate (grid,
    final training loss; None where a run diverged). summary: the rule's full output
    (`range_test.suggest_from_sweep` / `suggest_from_grid`). runs: [{"learning_rate",
    "final", "history"}] as in `experiments.lr_range_test`'s results.json.
    """

    method: str
    lr_min: float | None
    lr_max: float | None
    rule: str
    message: str
    learning_rates: list[float]
    losses: list[float | None]
    summary: dict[str, Any]
    runs: list[dict[str, Any]]

    @property
    def suggested(self) -> bool:
        return self.lr_min is not None

    def plot(self) -> Any:
        """The loss against the learning rate with lr_min / lr_max marked (a matplotlib
        Figure; `jaxsched.plots.save(fig, path)` writes it)."""
        from jaxsched import plots

        if self.method == "sweep":
            return plots.lr_sweep(self.runs[0], self.summary)
        return plots.lr_range_grid(self.runs, self.summary)

    def to_dict(self) -> dict[str, Any]:
        return results.to_jsonable(dataclasses.asdict(self))


def lr_find(
    model: nn.Module,
    optimizer: OptimizerSpec,
    train_data: DataSpec,
    *,
    method: str = "sweep",
    batch_size: int = 64,
    seed: int = 0,
    loss: Any = "classification",
    lr_start: float = 1e-7,
    lr_end: float = 10.0,
    num_steps: int = 500,
    factor: float = 4.0,
    learning_rates: Sequence[float] = DEFAULT_GRID,
    epochs: int = 1,
    max_loss: float = math.inf,
    grid_strategy: str = "auto",
    quiet: bool = True,
) -> LRFind:
    """The LR range test on `model`: lr_min / lr_max for a cyclical schedule, in one call.

    method "sweep" (Smith 2017; fastai's lr_find): one run of `num_steps` updates whose rate
    grows exponentially from lr_start to lr_end, stopped once the smoothed loss exceeds `factor`
    times its best; `range_test.suggest_from_sweep` reads lr_max at the minimum of the smoothed
    loss and lr_min at its steepest fall before it. method "grid" (the course's form): a fresh
    model per rate in `learning_rates`, trained `epochs` epochs together with
    `sweep.fit_grid` (`grid_strategy` "auto" | "vmap" | "map" | "sequential"; an optimizer whose
    state does not expose an injected "learning_rate" is trained rate by rate with `loop.fit`);
    `range_test.suggest_from_grid` reads the final training loss against log10(lr).

    Args:
      model: a Flax module called as `model(x, train=...)`.
      optimizer: a name for `optimizers.make` or a function learning_rate -> optax optimizer.
      train_data: a `data.Dataset` or an (inputs float[N, ...], targets) pair.
      batch_size, seed: examples per update; initialization and shuffling seed.
      loss: "classification" (integer labels), "mse" or a `losses.Objective` (as `loop.fit`).
      lr_start, lr_end, num_steps, factor: the sweep (0 < lr_start < lr_end, num_steps >= 12,
        factor > 1). The data are cycled when num_steps exceeds an epoch.
      learning_rates, epochs: the grid (positive rates, any order) and its epochs per rate.
      max_loss: a batch loss above it (or NaN/inf) ends a run as diverged.
      quiet: no progress bars.

    Returns:
      An `LRFind`; `.plot()` draws it.

    Raises:
      ValueError: naming the argument, before any training, for a bad method, range or size.

    Examples:
      >>> import numpy as np
      >>> from jaxsched.models import MLP
      >>> rng = np.random.default_rng(0)
      >>> x = rng.normal(size=(512, 8)).astype(np.float32)
      >>> y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
      >>> found = lr_find(MLP(hidden=(32,), num_classes=2), "sgd", (x, y), num_steps=100)
      >>> found.suggested and 0 < found.lr_min < found.lr_max
      True
    """
    train = data.as_dataset(train_data)
    _check_lr_find(method, lr_start, lr_end, num_steps, factor, learning_rates)
    if method == "sweep":
        history = sweep_history(
            model,
            optimizer,
            train,
            lr_start=lr_start,
            lr_end=lr_end,
            num_steps=num_steps,
            factor=factor,
            batch_size=batch_size,
            seed=seed,
            loss=loss,
            max_loss=max_loss,
            quiet=quiet,
        )
        _fill_sweep_rates(history, range_test.sweep_schedule(lr_start, lr_end, num_steps))
        return _read_sweep(history, num_steps, factor)
    runs = _grid_runs(
        model,
        optimizer,
        train,
        learning_rates,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        loss=loss,
        max_loss=max_loss,
        strategy=grid_strategy,
        quiet=quiet,
    )
    return _read_grid(runs)


def _check_lr_find(method, lr_start, lr_end, num_steps, factor, learning_rates) -> None:
    validation.choice("method", method, METHODS)
    if method == "sweep":
        validation.number("lr_start", lr_start, minimum=0, exclusive_minimum=True)
        validation.number("lr_end", lr_end, minimum=0, exclusive_minimum=True)
        validation.ordered("lr_start", lr_start, "lr_end", lr_end)
        validation.integer("num_steps", num_steps, minimum=12)
        validation.number("factor", factor, minimum=1, exclusive_minimum=True)
    else:
        validation.sequence("learning_rates", list(learning_rates), _positive, unique=True)


def _positive(name: str, value: Any) -> Any:
    return validation.number(name, value, minimum=0, exclusive_minimum=True)


def sweep_history(
    model: nn.Module,
    optimizer: OptimizerSpec,
    train: data.Dataset,
    *,
    lr_start: float,
    lr_end: float,
    num_steps: int,
    factor: float,
    batch_size: int,
    seed: int,
    loss: Any = "classification",
    max_loss: float = math.inf,
    devices: int | None = None,
    quiet: bool = True,
) -> results.History:
    """The one-run sweep's training: `num_steps` updates at the rates of
    `range_test.sweep_schedule(lr_start, lr_end, num_steps)`, stopped by
    `range_test.explosion_rule(factor)`; `experiments.lr_range_test` runs exactly this.

    Examples:
      >>> import numpy as np
      >>> from jaxsched import data, find
      >>> from jaxsched.models import MLP
      >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
      >>> train = data.Dataset(x, (x[:, 0] > 0).astype(np.int32))
      >>> history = find.sweep_history(MLP(hidden=(8,), num_classes=2), "sgd", train,
      ...     lr_start=1e-4, lr_end=1.0, num_steps=20, factor=4.0, batch_size=32, seed=0)
      >>> len(history.steps["loss"]), [round(r, 4) for r in history.steps["learning_rate"][::19]]
      (20, [0.0001, 1.0])
    """
    schedule = range_test.sweep_schedule(lr_start, lr_end, num_steps)
    steps_per_epoch = data.num_batches(len(train.labels), batch_size)
    _, history = loop.fit(
        model,
        make_optimizer(optimizer, schedule),
        train,
        epochs=math.ceil(num_steps / steps_per_epoch),
        batch_size=batch_size,
        seed=seed,
        max_steps=num_steps,
        stop_when=range_test.explosion_rule(factor),
        sync_every=10,
        max_loss=max_loss,
        devices=devices,
        quiet=quiet,
        description="sweep",
        loss=loss,
    )
    return history


def _fill_sweep_rates(history: results.History, schedule: optax.Schedule) -> None:
    """An optimizer without an injected learning rate records NaN rates: put in the rates the
    sweep schedule gave each update (float32, as the optimizer computed them)."""
    rates = history.steps["learning_rate"]
    if all(math.isfinite(r) for r in rates):
        return
    values = np.asarray(jax.jit(jax.vmap(schedule))(np.arange(len(rates))), np.float32)
    history.steps["learning_rate"] = [float(v) for v in values]


def _read_sweep(history: results.History, num_steps: int, factor: float) -> LRFind:
    rates, losses = history.steps["learning_rate"], history.steps["loss"]
    try:
        summary = range_test.suggest_from_sweep(
            rates, losses, beta=range_test.sweep_beta(num_steps), factor=factor
        )
    except ValueError as e:
        bad = history.diverged_at_step
        where = (
            f"the loss diverged at update {bad} (lr {rates[bad]:.3g}); "
            if bad is not None and bad < len(rates)
            else ""
        )
        summary = {"lr_min": None, "lr_max": None, "error": str(e)}
        message = f"no suggestion: {where}{e}. Lower lr_start, or check the model and data"
        rule = ""
    else:
        message = (
            f"lr_min={summary['lr_min']:.3g}, lr_max={summary['lr_max']:.3g} from "
            f"{summary['used_steps']} usable updates of {len(losses)}"
        )
        rule = summary["rule"]
    run = {"learning_rate": "sweep", "history": history.to_dict()}
    return LRFind(
        method="sweep",
        lr_min=summary["lr_min"],
        lr_max=summary["lr_max"],
        rule=rule,
        message=message,
        learning_rates=list(rates),
        losses=[v if math.isfinite(v) else None for v in losses],
        summary=summary,
        runs=[run],
    )


def _grid_runs(
    model: nn.Module,
    optimizer: OptimizerSpec,
    train: data.Dataset,
    learning_rates: Sequence[float],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    loss: Any = "classification",
    max_loss: float = math.inf,
    strategy: str = "auto",
    quiet: bool = True,
) -> list[dict[str, Any]]:
    """One fresh model per rate, trained together by `sweep.fit_grid` (every member sees the
    same batches), or rate by rate with `loop.fit` when the optimizer's state has no injected
    "learning_rate". [{"learning_rate", "final", "history"}] in the order of `learning_rates`."""
    rates = [float(lr) for lr in learning_rates]
    tx = make_optimizer(optimizer, rates[0])
    common = {"epochs": epochs, "batch_size": batch_size, "max_loss": max_loss, "loss": loss}
    if _injects_learning_rate(tx, model, train.images[:1]):
        grid = sweep.fit_grid(
            model,
            tx,
            train,
            hyperparams={"learning_rate": rates},
            seeds=seed,
            data_seed=seed,
            strategy=strategy,
            **common,
        )
        histories = grid.histories
    else:
        histories = [
            loop.fit(model, make_optimizer(optimizer, lr), train, seed=seed, quiet=quiet, **common)[
                1
            ]
            for lr in rates
        ]
    return [
        {"learning_rate": lr, "final": _final(h), "history": h.to_dict()}
        for lr, h in zip(rates, histories, strict=True)
    ]


def _injects_learning_rate(tx: optax.GradientTransformation, model: nn.Module, sample) -> bool:
    """Whether tx's state holds an injected numeric "learning_rate" (what fit_grid sets)."""
    init = functools.partial(model.init, train=False)
    params = jax.eval_shape(init, jax.random.key(0), sample)["params"]
    return "learning_rate" in optimizers.hyperparams(jax.eval_shape(tx.init, params))


def _final(history: results.History) -> dict[str, Any]:
    return {
        "status": history.status,
        "train_loss": history.final("train_loss"),
        "train_accuracy": history.final("train_accuracy"),
        "updates": len(history.steps["loss"]),
    }


def _trained(history: dict[str, Any]) -> bool:
    """Whether a run's last epoch's mean training loss is below its first batch loss."""
    final, first = history["epochs"]["train_loss"][-1:], history["steps"]["loss"][:1]
    return (
        bool(final and first)
        and all(v is not None and math.isfinite(v) for v in final + first)
        and final[0] < first[0]
    )


def _read_grid(runs: list[dict[str, Any]]) -> LRFind:
    rates = [r["learning_rate"] for r in runs]
    losses = [r["final"]["train_loss"] for r in runs]
    finite = [math.nan if v is None else v for v in losses]
    try:
        summary = range_test.suggest_from_grid(rates, finite)
        if not any(_trained(r["history"]) for r in runs):
            raise ValueError(
                "no learning rate lowered the training loss below its value before the first "
                "update: every rate is too large (or all too small)"
            )
    except ValueError as e:
        summary = {"lr_min": None, "lr_max": None, "error": str(e)}
        message = f"no suggestion: {e}"
        rule = ""
    else:
        message = (
            f"lr_min={summary['lr_min']:.3g}, lr_max={summary['lr_max']:.3g} from "
            f"{len(summary['usable'])} usable rates of {len(rates)}"
        )
        rule = summary["rule"]
    return LRFind(
        method="grid",
        lr_min=summary["lr_min"],
        lr_max=summary["lr_max"],
        rule=rule,
        message=message,
        learning_rates=rates,
        losses=[v if v is not None and math.isfinite(v) else None for v in losses],
        summary=summary,
        runs=runs,
    )


# ------------------------------------------------------------------------------------------------
# The batch-size range.


@dataclasses.dataclass(frozen=True)
class BatchSizeFind:
    """What `batch_size_find` found.

    b_min / b_max: the plateau of final accuracy (`range_test.suggest_batch_bounds`);
    bracketed: whether a larger swept size fell below it; message: the suggestion or what to
    extend; rule: how it was read; table: one row per batch size (status, final loss and
    accuracy, updates); summary: the rule's full output plus "learning_rate" and "metric".
    """

    b_min: int
    b_max: int
    bracketed: bool
    message: str
    rule: str
    table: list[dict[str, Any]]
    summary: dict[str, Any]

    def plot(self) -> Any:
        """Final loss and accuracy against log2(batch size), b_min / b_max marked."""
        from jaxsched import plots

        runs = [{"batch_size": row["batch_size"], "final": row} for row in self.table]
        return plots.batch_size_sweep(runs, self.summary)

    def to_dict(self) -> dict[str, Any]:
        return results.to_jsonable(dataclasses.asdict(self))


def batch_size_find(
    model: nn.Module,
    optimizer: OptimizerSpec,
    train_data: DataSpec,
    learning_rate: float,
    *,
    sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    epochs: int = 1,
    seed: int = 0,
    eval_data: DataSpec | None = None,
    metric: str = "train_accuracy",
    tolerance: float = 0.02,
    loss: Any = "classification",
    max_loss: float = math.inf,
    quiet: bool = True,
) -> BatchSizeFind:
    """b_min / b_max for `batch_schedules.cyclic_batch_size`: one fresh model per batch size
    at the fixed `learning_rate` (e.g. lr_min from `lr_find`), `epochs` epochs each, and the
    plateau of final accuracy read by `range_test.suggest_batch_bounds` (running median of 3 in
    log2(batch), the contiguous sizes within `tolerance` of the best; diverged sizes excluded).

    Args:
      sizes: batch sizes to train, powers of two (the cyclic schedules step through them), at
        least 3, each at most the number of training examples.
      metric: "train_accuracy" (the course's and `experiments.batch_size_sweep`'s choice) or
        "val_accuracy" (needs eval_data).
      loss: an objective with an accuracy ("classification" or a classification
        `losses.Objective`); the plateau is one of accuracy.
      Others: as `lr_find`.

    Examples:
      >>> import numpy as np
      >>> from jaxsched.models import MLP
      >>> rng = np.random.default_rng(0)
      >>> x = rng.normal(size=(512, 8)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> found = batch_size_find(MLP(hidden=(16,), num_classes=2), "sgd", (x, y), 0.5,
      ...                         sizes=(8, 16, 32, 64))
      >>> found.b_min <= found.b_max and [r["batch_size"] for r in found.table]
      [8, 16, 32, 64]
    """
    train = data.as_dataset(train_data)
    test = None if eval_data is None else data.as_dataset(eval_data, "eval_data")
    sizes = _check_batch_size_find(sizes, len(train.labels), learning_rate, metric, test)
    table = []
    for size in sizes:
        _, history = loop.fit(
            model,
            make_optimizer(optimizer, learning_rate),
            train,
            epochs=epochs,
            batch_size=size,
            seed=seed,
            eval_data=test,
            max_loss=max_loss,
            loss=loss,
            quiet=quiet,
            description=f"batch {size}",
        )
        table.append(
            {
                "batch_size": size,
                **_final(history),
                "val_loss": history.final("val_loss"),
                "val_accuracy": history.final("val_accuracy"),
            }
        )
    accuracies = [row[metric] if row["status"] != results.DIVERGED else None for row in table]
    if all(a is None or not math.isfinite(a) for a in accuracies):
        raise ValueError(
            f"{metric} is undefined or every run diverged at learning_rate={learning_rate}: "
            f"batch_size_find needs an objective with an accuracy and a rate that trains"
        )
    bounds = range_test.suggest_batch_bounds(sizes, accuracies, tolerance=tolerance)
    summary = {**bounds, "learning_rate": learning_rate, "metric": metric}
    return BatchSizeFind(
        b_min=bounds["b_min"],
        b_max=bounds["b_max"],
        bracketed=bounds["bracketed"],
        message=bounds["message"],
        rule=bounds["rule"],
        table=table,
        summary=summary,
    )


def _check_batch_size_find(sizes, num_examples, learning_rate, metric, test) -> list[int]:
    validation.sequence("sizes", list(sizes), _power_of_two, unique=True, min_length=3)
    if max(sizes) > num_examples:
        raise validation.ConfigError(
            "sizes", f"must each be at most the {num_examples} training examples", str(max(sizes))
        )
    validation.number("learning_rate", learning_rate, minimum=0, exclusive_minimum=True)
    validation.choice("metric", metric, ("train_accuracy", "val_accuracy"))
    if metric == "val_accuracy" and test is None:
        raise validation.ConfigError("metric", "'val_accuracy' needs eval_data")
    return sorted(int(s) for s in sizes)


def _power_of_two(name: str, value: Any) -> Any:
    validation.integer(name, value, minimum=1)
    if value & (value - 1):
        raise validation.ConfigError(name, "must be a power of two", str(value))
    return value
