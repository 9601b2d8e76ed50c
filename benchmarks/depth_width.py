"""The depth-vs-width study's nets, each trained for a fixed number of epochs: jaxsched's
grouped programs (`jaxsched.shape_grid.fit_shapes`) against the course's Keras loop, with
the Keras total extrapolated from a sample of the nets.

    python -m benchmarks.depth_width [--smoke] [--peers jaxsched keras]

The study (experiments/configs/depth_vs_width.py): all 143 MLPs of 1-3 hidden layers with
widths in {16, ..., 512} summing to at most 512 (models.DepthWidthNet: Dense + ReLU, BatchNorm
before every later hidden Dense, a linear output), fitted by MSE with Nadam 1e-3 at batch 1000
to 80,000 noisy eggholder points and validated on 20,000 after every epoch. Here every net
trains exactly 2 epochs (patience above the epochs: early stopping never fires), so both
peers do the same work. jaxsched: `fit_shapes` on all the nets with strategy "auto" (what the
experiment runs, its probe of the candidates included; the baseline), "depth" (one vmapped,
padded program per depth) and "sequential" (one program per net, as
Keras trains them); each repetition is a whole call, its compilations included (the
compile and the warm training are also reported apart). Keras: per net, the course's loop:
build the Sequential model, compile it (Nadam, "mse", RootMeanSquaredError) and
`fit(x, y, batch_size, epochs, validation_data, callbacks=[EarlyStopping], verbose=0)`,
timed from build to the end of fit, after one untimed fit. Training all 143 nets in Keras
takes long, so `keras_nets` of them (stratified: evenly spaced by parameter count within each
depth) are timed per repetition and the total is extrapolated: per depth, the mean time of
its sampled nets times its number of nets, summed over the depths. At full size every
repetition trains the whole study once per strategy ("sequential" compiles 143 programs):
keep --repetitions low there.
"""

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.peers import keras_tf
from experiments.configs.depth_vs_width import DEFAULT, Config
from experiments.configs.depth_vs_width import SMOKE as SMOKE_CONFIG
from jaxsched import eggholder, optimizers, shape_grid
from jaxsched.models import DepthWidthNet

NAME = "depth_width"
TOTAL, PER_NET = "all nets", "per net"
KERAS_VARIANT = "build + compile + fit per net"


@dataclasses.dataclass(frozen=True)
class Size:
    config: Config
    epochs: int  # every net trains exactly this many (patience is set above it)
    strategies: tuple[str, ...]  # jaxsched's; the first is the baseline
    keras_nets: int  # sampled, timed per repetition, then extrapolated

    @property
    def fit_config(self) -> Config:
        return dataclasses.replace(self.config, epochs=self.epochs, patience=self.epochs + 1)


# "all" and "depth" pad the nets (~29x and ~8x the time per epoch of "sequential" on a 2-core
# CPU): at full size they are measured by "auto"'s probe only (its timings are in the rows).
FULL = Size(DEFAULT, epochs=2, strategies=("auto", "sequential"), keras_nets=12)
SMOKE = Size(SMOKE_CONFIG, epochs=1, strategies=("auto", "sequential"), keras_nets=2)


def sample_nets(nets: Sequence[tuple[int, ...]], k: int) -> list[tuple[int, ...]]:
    """k of `nets` stratified by depth: the depths take turns (deepest first) until k are
    drawn, and a depth's m picks are evenly spaced over its nets sorted by parameter count
    (the smallest and the largest for m >= 2, the middle one for m = 1). In `nets` order.

    Examples:
      >>> from benchmarks.depth_width import sample_nets
      >>> sample_nets([(16,), (32,), (64,), (16, 16), (32, 16)], 3)
      [(32,), (16, 16), (32, 16)]
    """
    by_depth: dict[int, list[tuple[int, ...]]] = {}
    for net in nets:
        by_depth.setdefault(len(net), []).append(tuple(net))
    if not len(by_depth) <= k <= len(nets):
        raise ValueError(
            f"need one sampled net per depth at least: k must be in "
            f"[{len(by_depth)}, {len(nets)}], got {k}"
        )
    quota = dict.fromkeys(by_depth, 0)
    order = sorted(by_depth, reverse=True)
    while sum(quota.values()) < k:
        for depth in order:
            if sum(quota.values()) < k and quota[depth] < len(by_depth[depth]):
                quota[depth] += 1
    picked = set()
    for depth, members in by_depth.items():
        members = sorted(members, key=lambda w: (shape_grid.num_params(w)["trainable"], w))
        if quota[depth] == 1:
            picks = [(len(members) - 1) // 2]  # the middle one
        else:
            picks = np.linspace(0, len(members) - 1, quota[depth]).round().astype(int)
        picked.update(members[i] for i in picks)
    return [tuple(n) for n in nets if tuple(n) in picked]


def case_name(size: Size) -> str:
    config = size.fit_config
    train = config.num_examples - round(config.num_examples * config.test_fraction)
    return (
        f"{len(config.nets)} nets, {config.epochs} epoch{'s' if config.epochs > 1 else ''}, "
        f"{train} examples, batch {config.batch_size}"
    )


def _splits(config: Config):
    return eggholder.make_splits(
        config.num_examples,
        noise_std=config.noise_std,
        limit=config.limit,
        test_fraction=config.test_fraction,
        seed=config.data_seed,
    )


def _fit(config: Config, nets, train, test, strategy: str, epochs: int):
    """One whole `fit_shapes` call (a fresh optimizer: its programs are traced and compiled
    again); returns (wall seconds, the GridRun)."""
    tx = optimizers.make(config.optimizer, config.learning_rate, preset=config.preset)
    start = time.perf_counter()
    grid = shape_grid.fit_shapes(
        DepthWidthNet,
        nets,
        tx,
        train,
        test,
        epochs=epochs,
        batch_size=config.batch_size,
        patience=config.patience,
        seeds=list(config.seeds),
        data_seed=config.data_seed,
        strategy=strategy,
        eval_batch_size=config.eval_batch_size,
    )
    return time.perf_counter() - start, grid


def _probe_note(grid: shape_grid.GridRun) -> str:
    """ "auto"'s probe: its estimated seconds per epoch of each candidate, and its pick."""
    if not grid.timings:
        return ""
    estimates = ", ".join(f"{k} {v:.3g} s" for k, v in sorted(grid.timings.items()))
    return f"; probe, s/epoch: {estimates} -> {grid.strategy}"


def jaxsched_rows(size: Size, case: str, repetitions: int) -> list[dict[str, Any]]:
    config = size.fit_config
    nets = config.nets
    train, test = _splits(config)
    _fit(config, nets[:1], train, test, "sequential", 1)  # warm-up (JAX itself), untimed
    out = []
    for s, strategy in enumerate(size.strategies):
        totals, train_s, compile_s, runs = [], [], [], []
        for _ in range(repetitions):
            seconds, grid = _fit(config, nets, train, test, strategy, config.epochs)
            epochs = {r["epochs_trained"] for r in grid.rows}
            if epochs != {config.epochs}:
                raise RuntimeError(
                    f"{strategy}: nets trained {sorted(epochs)} epochs, not all {config.epochs}"
                )
            totals.append(seconds)
            train_s.append(sum(g["train_time_s"] for g in grid.groups))
            compile_s.append(sum(g["compile_time_s"] for g in grid.groups))
            runs.append(grid)
        n, programs = len(nets), len(runs[-1].groups)
        variant = f'fit_shapes strategy="{strategy}"'
        baseline = s == 0
        extra = {
            "strategy": strategy,
            "programs": programs,
            "nets": n,
            "epochs": config.epochs,
            "mean_best_val_rmse": float(np.mean([r["best_val_rmse"] for r in runs[-1].rows])),
            "chosen": runs[-1].strategy,  # what "auto" picked
            "probe_s_per_epoch": runs[-1].timings,  # "auto"'s estimates per candidate
        }
        what = "the program" if programs == 1 else f"the {programs} programs"
        plural = "" if programs == 1 else "s"
        out += [
            common.row(
                NAME,
                case,
                "jaxsched",
                variant,
                TOTAL,
                totals,
                baseline=baseline,
                note=f"one fit_shapes call, compile incl. ({programs} program{plural} compiled)"
                + _probe_note(runs[-1]),
                extra=extra,
            ),
            common.row(
                NAME,
                case,
                "jaxsched",
                variant,
                PER_NET,
                [t / n for t in totals],
                baseline=baseline,
                note=f"(compile + train) / {n}",
            ),
            common.row(
                NAME,
                case,
                "jaxsched",
                variant,
                "train (warm)",
                train_s,
                note=f"the compiled epochs, summed over {what}",
            ),
            common.row(
                NAME,
                case,
                "jaxsched",
                variant,
                "compile",
                compile_s,
                note=f"lower + compile, summed over {what}",
            ),
        ]
    return out


def keras_rows(size: Size, case: str, repetitions: int) -> list[dict[str, Any]]:
    config = size.fit_config
    nets = config.nets
    sampled = sample_nets(nets, size.keras_nets)
    train, test = _splits(config)
    data = {"train": (train.images, train.labels), "test": (test.images, test.labels)}

    def fit(widths, epochs):
        return keras_tf.depth_width_fit(
            widths,
            **data,
            epochs=epochs,
            batch_size=config.batch_size,
            patience=config.patience,
            learning_rate=config.learning_rate,
            seed=nets.index(widths),
        )

    fit(sampled[0], 1)  # warm-up, untimed
    fits = [{w: fit(w, config.epochs) for w in sampled} for _ in range(repetitions)]
    for w in sampled:
        expected, got = shape_grid.num_params(w)["keras"], fits[0][w]["params"]
        if got != expected:
            raise RuntimeError(f"Keras net {w}: {got} parameters, DepthWidthNet's {expected}")
    depths = sorted({len(w) for w in nets})
    counts = {d: sum(len(w) == d for w in nets) for d in depths}
    totals = [
        sum(counts[d] * np.mean([f[w]["seconds"] for w in sampled if len(w) == d]) for d in depths)
        for f in fits
    ]
    n = len(nets)
    per_depth = ", ".join(
        f"{counts[d]} x the mean of its {sum(len(w) == d for w in sampled)}" for d in depths
    )
    extra = {
        "sampled": [list(w) for w in sampled],
        "seconds": {"-".join(map(str, w)): [f[w]["seconds"] for f in fits] for w in sampled},
        "nets_per_depth": {str(d): counts[d] for d in depths},
        "mean_val_rmse": float(np.mean([f[w]["val_rmse"] for f in fits for w in sampled])),
    }
    note = (
        f"extrapolated from {len(sampled)} of the {n} nets timed per repetition: per depth "
        f"(1..{depths[-1]}), the depth's net count x the mean time of its sampled nets "
        f"({per_depth})"
    )
    return [
        common.row(NAME, case, "keras", KERAS_VARIANT, TOTAL, totals, note=note, extra=extra),
        common.row(
            NAME,
            case,
            "keras",
            KERAS_VARIANT,
            PER_NET,
            [t / n for t in totals],
            note=f"the extrapolated total / {n}",
        ),
    ]


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """jaxsched's grouped fits and the Keras loop on every net of the study."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    case = case_name(size)
    return common.peer_rows(
        NAME,
        "jaxsched",
        "fit_shapes",
        peers,
        lambda: jaxsched_rows(size, case, repetitions),
        case=case,
    ) + common.peer_rows(
        NAME,
        "keras",
        KERAS_VARIANT,
        peers,
        lambda: keras_rows(size, case, repetitions),
        case=case,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
