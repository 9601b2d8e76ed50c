"""The machine's dense float32 matmul rate (NumPy and XLA), and the FLOP/s the LeNet-5 and
ResNet-44 train steps achieve as a fraction of it.

    python -m benchmarks.roofline [--smoke]

Matmul: C = A @ B with A, B float32 [n, n] (2 n^3 FLOP per product), NumPy's BLAS and
`jax.jit(jnp.matmul)`. Steps: the train steps of `benchmarks.lenet_epoch` (batch 64 and 512,
SGD) and `benchmarks.resnet_step` (M = 1, B = 64, Adam, cutout), warm, on fixed data; their
FLOP count is XLA's cost analysis of the lowered step (`jaxsched.arithmetic.xla_flops`), the
achieved rate that count over the median step time, and the fraction is of the faster matmul
rate's median. jaxsched only (NumPy is the matmul reference).
"""

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common, fixtures, resnet_step
from jaxsched import arithmetic, augment, optimizers, train
from jaxsched.models import LeNet5, ResNetV1

NAME = "roofline"
MATMUL, STEP, FRACTION = "matmul", "train step", "fraction of matmul rate"


@dataclasses.dataclass(frozen=True)
class Size:
    matmul_n: int
    matmul_number: int  # products per repetition
    lenet_batches: tuple[int, ...]
    lenet_number: int  # steps per repetition
    resnet: resnet_step.Size


FULL = Size(2048, 5, (64, 512), 20, resnet_step.FULL)
SMOKE = Size(256, 5, (64,), 2, resnet_step.SMOKE)


def matmul_rows(n: int, repetitions: int, number: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    xla = jax.jit(jnp.matmul)
    a_dev, b_dev = jax.device_put(a), jax.device_put(b)
    case, flop = f"float32 {n}x{n} @ {n}x{n}", 2.0 * n**3
    rows = []
    for peer, variant, fn in (
        ("numpy", "a @ b (BLAS)", lambda: a @ b),
        ("jaxsched", "jit(jnp.matmul) (XLA)", lambda: xla(a_dev, b_dev)),
    ):
        stats = common.repeat(fn, repetitions, warmup=1, number=number)
        rows.append(
            common.row(
                NAME,
                case,
                peer,
                variant,
                MATMUL,
                stats,
                items=flop,
                items_unit="FLOP",
                baseline=peer == "jaxsched",
                note=f"{number} products per repetition",
            )
        )
    return rows


def step_rows(
    case: str,
    step: Callable,
    state: Any,
    batch: tuple,
    peak: float,
    repetitions: int,
    number: int,
    variant: str,
) -> list[dict[str, Any]]:
    """Achieved FLOP/s of a warm train step and its fraction of `peak` (FLOP/s)."""
    flops = arithmetic.xla_flops(step, state, *batch)
    compiled = train.CompiledStep(step, donate_state=True)
    box = {"state": state}

    def call():
        box["state"], metrics = compiled(box["state"], *batch)
        return metrics

    stats = common.repeat(call, repetitions, warmup=1, number=number)
    note = f"{flops:.4g} FLOP per step (XLA cost analysis)"
    return [
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            STEP,
            stats,
            items=flops,
            items_unit="FLOP",
            note=note,
            extra={"xla_flops": flops},
        ),
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            FRACTION,
            [100 * flops / t / peak for t in stats.values],
            "%",
            note=f"of {peak / 1e9:.3g} GFLOP/s (the faster matmul)",
        ),
    ]


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """Matmul rates first, then each step against the faster of them."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    if "jaxsched" not in peers:
        return []
    rows = matmul_rows(size.matmul_n, repetitions, size.matmul_number)
    peak = max(r["throughput"] for r in rows)
    train_ds = fixtures.fashion_mnist(smoke)
    tx = optimizers.make("sgd", fixtures.KERAS_SGD_RATE, preset="keras")
    for b in size.lenet_batches:
        batch = (jnp.asarray(train_ds.images[:b]), jnp.asarray(train_ds.labels[:b]))
        state = train.init_train_state(LeNet5(), tx, jax.random.key(0), batch[0][:1])
        rows += step_rows(
            f"LeNet-5, batch {b}",
            train.make_train_step(LeNet5(), tx),
            state,
            batch,
            peak,
            repetitions,
            size.lenet_number,
            "SGD",
        )
    r = size.resnet
    images, labels = resnet_step.cifar_like(r.batch_size)
    model = ResNetV1(depth=r.depth)
    adam = optimizers.make("adam", 1e-3, preset="keras")
    step = train.make_train_step(
        model,
        adam,
        batch_augment=augment.make_batch_augment(1, "he+cutout", cutout_size=r.cutout_size),
    )
    state = train.init_train_state(model, adam, jax.random.key(0), images[:1])
    rows += step_rows(
        f"ResNet-{r.depth}, B={r.batch_size}",
        step,
        state,
        (jnp.asarray(images), jnp.asarray(labels)),
        peak,
        repetitions,
        r.steps_per_repetition,
        "M=1, Adam",
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
