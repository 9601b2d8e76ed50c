"""The course's LR range test in its grid form: LeNet-5, plain SGD, batch 64, one epoch of
Fashion-MNIST (the first 12,800 training images) at each of the 11 rates 10, 1, ..., 1e-9.
jaxsched trains all 11 models in one grid (`jaxsched.sweep.fit_grid`, strategies "auto" -- the
baseline, probing the three strategies on every call --, "auto" with its decision remembered
from the warm-up call (`jaxsched.decisions`, a store private to this benchmark), "vmap", "map"
and "sequential"), against the 11 runs one after another with `loop.fit` and with Keras's
`model.fit`.

    python -m benchmarks.lr_grid [--smoke] [--peers jaxsched keras]

Every repetition is a whole range test from fresh models, compilation included (each
`loop.fit` compiles its own step; Keras traces each new model), reported apart for jaxsched.
Before the timed repetitions each method runs once on 2 batches (untimed warm-up). All members
share the initialization seed 0 and the data order of seed 0; a member whose loss becomes
NaN/inf is frozen by `fit_grid` and stopped by `loop.fit` (max_loss = inf), while Keras trains
every model to the end (as the course did); the updates each method ran are in `extra`. Keras
runs `fit` as the course wrote it (jit_compile "auto", i.e. off on a CPU).
"""

import dataclasses
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import common, fixtures
from benchmarks.peers import keras_tf
from jaxsched import data, optimizers, sweep
from jaxsched.models import LeNet5

NAME = "lr_grid"
TOTAL, COMPILE = "range test (compile incl.)", "compile"
LEARNING_RATES = tuple(10.0**k for k in range(1, -10, -1))  # 10, 1, ..., 1e-9


@dataclasses.dataclass(frozen=True)
class Size:
    learning_rates: tuple[float, ...]
    examples: int | None  # None: the whole training split
    batch_size: int = 64


# One epoch over the first 12,800 training images (200 updates per member): the course's
# 11-rate grid at a size whose 5 methods x 4 runs fit in about 10 minutes on 2 cores.
FULL = Size(LEARNING_RATES, 12_800)
SMOKE = Size((10.0, 1e-4, 1e-9), 256)

# method(train) -> {"compile_s": float | None, "updates": [...], "images": int, ...}
Method = Callable[[data.Dataset], dict[str, Any]]


def grid_method(
    size: Size, strategy: str, remember: bool | Path = False, *, epochs: int = 1
) -> Method:
    """fit_grid with `strategy` for `epochs`; `remember` as fit_grid's (False: "auto" probes
    every call)."""

    def method(train: data.Dataset) -> dict[str, Any]:
        result = sweep.fit_grid(
            LeNet5(),
            optimizers.make("sgd", fixtures.KERAS_SGD_RATE, preset="keras"),
            train,
            epochs=epochs,
            batch_size=size.batch_size,
            hyperparams={"learning_rate": list(size.learning_rates)},
            seeds=0,
            data_seed=0,
            strategy=strategy,
            remember=remember,
        )
        updates = [len(h.steps["loss"]) for h in result.histories]
        return {
            "compile_s": result.compile_time_s,
            "compilations": result.num_compilations,
            "updates": updates,
            "diverged": result.diverged,
            "strategy": result.strategy,
            "decided": result.decided,
            "probe_s_per_grid_step": result.timings,
            "images": size.batch_size
            * (len(train.labels) // size.batch_size)
            * epochs
            * len(updates),
        }

    return method


def fit_method(size: Size) -> Method:
    def method(train: data.Dataset) -> dict[str, Any]:
        outs = [
            fixtures.lenet_fit(train, size.batch_size, epochs=1, seed=0, learning_rate=lr)
            for lr in size.learning_rates
        ]
        return {
            "compile_s": sum(o["compile_s"] for o in outs),
            "updates": [len(o["history"].steps["loss"]) for o in outs],
            "diverged": [o["history"].status == "diverged" for o in outs],
            "images": len(outs) * (len(train.labels) // size.batch_size) * size.batch_size,
        }

    return method


def keras_method(size: Size) -> Method:
    def method(train: data.Dataset) -> dict[str, Any]:
        outs = [
            keras_tf.fit_epochs(
                train.images,
                train.labels,
                size.batch_size,
                epochs=1,
                jit_compile=False,
                seed=0,
                learning_rate=lr,
            )
            for lr in size.learning_rates
        ]
        return {
            "compile_s": None,
            "final_loss": [o["final_loss"] for o in outs],
            "images": len(outs) * len(train.labels),
        }

    return method


def measure(
    method: Method,
    peer: str,
    variant: str,
    case: str,
    note: str,
    size: Size,
    smoke: bool,
    repetitions: int,
    baseline: bool,
) -> list[dict[str, Any]]:
    """The range test by `method`, `repetitions` times after a 2-batch warm-up."""
    train = fixtures.fashion_mnist(smoke)
    if size.examples is not None:
        train = data.Dataset(train.images[: size.examples], train.labels[: size.examples])
    tiny = data.Dataset(train.images[: 2 * size.batch_size], train.labels[: 2 * size.batch_size])
    outs: list[dict[str, Any]] = []
    stats = common.repeat(
        lambda: outs.append(method(train)), repetitions, warmup=1, warmup_fn=lambda: method(tiny)
    )
    extra = {k: v for k, v in outs[-1].items() if k not in ("compile_s", "images")}
    rows = [
        common.row(
            NAME,
            case,
            peer,
            variant,
            TOTAL,
            stats,
            items=outs[0]["images"],
            baseline=baseline,
            note=note,
            extra=extra,
        ),
    ]
    if outs[0]["compile_s"] is not None:
        rows.append(
            common.row(
                NAME,
                case,
                peer,
                variant,
                COMPILE,
                [o["compile_s"] for o in outs],
                baseline=baseline,
                note="seconds compiling, all members",
            )
        )
    return rows


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """The grid (both strategies), the loop of fits, and Keras's loop of fits."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    k = len(size.learning_rates)
    case = f"{k} learning rates, batch {size.batch_size}, 1 epoch"
    methods = [
        (
            "jaxsched",
            "fit_grid auto",
            grid_method(size, "auto"),
            "sweep.fit_grid(strategy='auto', remember=False): times both on the first batch, "
            "trains with the faster (the choice is in extra)",
            True,
        ),
        (
            "jaxsched",
            "fit_grid auto, remembered",
            grid_method(size, "auto", Path(tempfile.mkdtemp(prefix="lr_grid-")) / "d.json"),
            "sweep.fit_grid(strategy='auto'): the decision the warm-up call measured, "
            "remembered (jaxsched.decisions), so no probe",
            False,
        ),
        (
            "jaxsched",
            "fit_grid vmap",
            grid_method(size, "vmap"),
            f"sweep.fit_grid(strategy='vmap'): all {k} in one program",
            False,
        ),
        (
            "jaxsched",
            "fit_grid map",
            grid_method(size, "map"),
            f"sweep.fit_grid(strategy='map'): all {k} in one program, one member at a time",
            False,
        ),
        (
            "jaxsched",
            "fit_grid sequential",
            grid_method(size, "sequential"),
            f"sweep.fit_grid(strategy='sequential'): {k} steps per batch",
            False,
        ),
        (
            "jaxsched",
            f"{k} x loop.fit",
            fit_method(size),
            "loop.fit once per rate, one after another",
            False,
        ),
        (
            "keras",
            f"{k} x model.fit",
            keras_method(size),
            "compile(SGD(lr)); fit(x, y, 64, epochs=1, verbose=0) per rate",
            False,
        ),
    ]
    rows = []
    for peer, variant, method, note, base in methods:
        rows += common.peer_rows(
            NAME,
            peer,
            variant,
            peers,
            lambda method=method, peer=peer, variant=variant, note=note, base=base: measure(
                method, peer, variant, case, note, size, smoke, repetitions, base
            ),
            case=case,
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
