"""The course's LR range test at the notebooks' own size: LeNet-5, plain SGD, batch 64,
11 rates 10, 1, ..., 1e-9, each trained 5 epochs on all 60,000 Fashion-MNIST training images.

jaxsched trains the 11 members in one `sweep.fit_grid(strategy="auto")` call, measured whole
(compile, the strategy probe and every epoch), once. Keras's side is *extrapolated*, not run in
full (55 Keras epochs take about 10 minutes here): for each rate a fresh model is fitted for
2 epochs, and its 5-epoch time is the first epoch (tracing included) plus 4 times the second.
The per-rate epoch times are in the row's `extra`.

    python -m benchmarks.lr_grid_notebook [--smoke] [--peers jaxsched keras]

Every measurement runs once whatever `--repetitions` says (one is about 8 minutes here); the
statistics of the same grid at a fifth of the data and one epoch are `benchmarks.lr_grid`'s.
Like the notebook, Keras trains every model to the end; `fit_grid` freezes a member whose loss
becomes NaN/inf (the updates each member ran are in `extra`).
"""

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks import common, fixtures, lr_grid
from benchmarks.peers import keras_tf
from jaxsched import data

NAME = "lr_grid_notebook"
TOTAL, COMPILE = lr_grid.TOTAL, lr_grid.COMPILE


@dataclasses.dataclass(frozen=True)
class Size:
    grid: lr_grid.Size
    epochs: int


FULL = Size(lr_grid.Size(lr_grid.LEARNING_RATES, None), epochs=5)
SMOKE = Size(lr_grid.SMOKE, epochs=2)


def extrapolate(epoch_s: Sequence[float], epochs: int) -> float:
    """Seconds for `epochs` epochs from a measured [first, second] pair: first + (epochs-1) x
    second (the first epoch pays tracing, the later ones are alike)."""
    if len(epoch_s) < 2 or epochs < 1:
        raise ValueError(f"need 2 measured epochs and epochs >= 1; got {epoch_s}, {epochs}")
    return float(epoch_s[0] + (epochs - 1) * epoch_s[1])


def jaxsched_rows(size: Size, train: data.Dataset, case: str) -> list[dict[str, Any]]:
    """The whole grid once, after a 2-batch warm-up of the same call (imports, caches)."""
    b = size.grid.batch_size
    tiny = data.Dataset(train.images[: 2 * b], train.labels[: 2 * b])
    lr_grid.grid_method(size.grid, "auto", epochs=1)(tiny)
    out: dict[str, Any] = {}
    stats = common.repeat(
        lambda: out.update(lr_grid.grid_method(size.grid, "auto", epochs=size.epochs)(train)),
        repetitions=1,
        warmup=0,
    )
    extra = {k: v for k, v in out.items() if k not in ("compile_s", "images")}
    note = (
        "sweep.fit_grid(strategy='auto', remember=False), measured whole, once: "
        "compile, probe and every epoch"
    )
    return [
        common.row(
            NAME, case, "jaxsched", "fit_grid auto", TOTAL, stats, items=out["images"],
            baseline=True, note=note, extra=extra,
        ),
        common.row(
            NAME, case, "jaxsched", "fit_grid auto", COMPILE, [out["compile_s"]], baseline=True,
            note="seconds compiling, all members",
        ),
    ]  # fmt: skip


def keras_rows(size: Size, train: data.Dataset, case: str) -> list[dict[str, Any]]:
    """Per rate a fresh model fitted 2 epochs; the 5-epoch total extrapolated (`extrapolate`)."""
    b = size.grid.batch_size
    keras_tf.fit_epochs(
        train.images[: 2 * b], train.labels[: 2 * b], b, epochs=1, jit_compile=False, seed=0
    )  # warm-up: TensorFlow's start-up is not the range test's
    outs = [
        keras_tf.fit_epochs(
            train.images, train.labels, b, epochs=2, jit_compile=False, seed=0, learning_rate=lr
        )
        for lr in size.grid.learning_rates
    ]
    total = sum(extrapolate(o["epoch_s"], size.epochs) for o in outs)
    k = len(outs)
    note = (
        f"EXTRAPOLATED, not run: {k} x (fit 2 epochs; first + {size.epochs - 1} x second); "
        "measured epoch seconds per rate in extra"
    )
    extra = {
        "measured_epoch_s": [o["epoch_s"] for o in outs],
        "final_loss_after_2_epochs": [o["final_loss"] for o in outs],
        "extrapolated": True,
    }
    return [
        common.row(
            NAME, case, "keras", f"{k} x model.fit (extrapolated)", TOTAL, [total],
            items=k * size.epochs * len(train.labels), note=note, extra=extra,
        )
    ]  # fmt: skip


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """jaxsched's grid measured, Keras's loop of fits extrapolated."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    train = fixtures.fashion_mnist(smoke)
    if size.grid.examples is not None:
        n = size.grid.examples
        train = data.Dataset(train.images[:n], train.labels[:n])
    k, n = len(size.grid.learning_rates), len(train.labels)
    case = f"{k} learning rates, batch {size.grid.batch_size}, {size.epochs} epochs of {n:,}"
    rows = common.peer_rows(
        NAME, "jaxsched", "fit_grid auto", peers, lambda: jaxsched_rows(size, train, case),
        case=case,
    )  # fmt: skip
    rows += common.peer_rows(
        NAME, "keras", f"{k} x model.fit (extrapolated)", peers,
        lambda: keras_rows(size, train, case), case=case,
    )  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
