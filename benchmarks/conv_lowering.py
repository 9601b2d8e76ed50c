"""One convolution's forward + backward per image under each lowering of
`jaxsched.models.conv`: XLA's convolution, im2col + matmul, and banded matmuls at several tiles.

    python -m benchmarks.conv_lowering [--smoke]

The measurements behind `conv.BANDED_TILE` and `conv.BANDED_MAX_CHANNELS` (which lowering
`impl="auto"` picks on CPU). Cases: LeNet-5's three convolutions (5x5: 28x28x1 -> 6 'same',
14x14x6 -> 16 and 5x5x16 -> 120 'valid') and ResNet-44's three stage shapes (3x3 'same',
16, 32, 64 channels at 32x32, 16x16, 8x8), each at a small and a large batch on random
float32 input: `jax.grad` of sum(tanh(conv(x, k))) with respect to x and k, jitted, the time
per image; the variants' repetitions are interleaved; im2col is the baseline. jaxsched only.
"""

import dataclasses
import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks import common
from jaxsched.models import conv as conv_lib

NAME = "conv_lowering"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    image: tuple[int, int, int]  # H, W, C
    kernel: tuple[int, int, int, int]  # kh, kw, C, F
    padding: str


LENET = (
    Case("LeNet-5 conv1 5x5 28x28x1->6 same", (28, 28, 1), (5, 5, 1, 6), "SAME"),
    Case("LeNet-5 conv2 5x5 14x14x6->16 valid", (14, 14, 6), (5, 5, 6, 16), "VALID"),
    Case("LeNet-5 conv3 5x5 5x5x16->120 valid", (5, 5, 16), (5, 5, 16, 120), "VALID"),
)
RESNET = (
    Case("ResNet 3x3 32x32x16->16 same", (32, 32, 16), (3, 3, 16, 16), "SAME"),
    Case("ResNet 3x3 16x16x32->32 same", (16, 16, 32), (3, 3, 32, 32), "SAME"),
    Case("ResNet 3x3 8x8x64->64 same", (8, 8, 64), (3, 3, 64, 64), "SAME"),
)


@dataclasses.dataclass(frozen=True)
class Size:
    cases: tuple[Case, ...]
    batches: tuple[int, ...]
    tiles: tuple[int | None, ...]  # banded tiles; None: whole rows
    images_per_repetition: int  # calls per repetition = this / batch (at least 1)


FULL = Size(LENET + RESNET, (64, 512), (2, 4, 8, None), 2048)
SMOKE = Size((Case("3x3 8x8x2->3 same", (8, 8, 2), (3, 3, 2, 3), "SAME"),), (4,), (2, None), 4)


def lowerings(case: Case, tiles: Sequence[int | None]) -> dict[str, Callable]:
    """variant -> conv(x, kernel), im2col first (the baseline)."""
    pad = case.padding
    found = {
        "im2col": lambda x, k: conv_lib.im2col_conv(x, k, (1, 1), pad),
        "xla": lambda x, k: lax.conv_general_dilated(
            x, k, (1, 1), pad, dimension_numbers=("NHWC", "HWIO", "NHWC")
        ),
    }
    for tile in tiles:
        label = "banded, whole rows" if tile is None else f"banded, tile {tile}"
        found[label] = functools.partial(
            lambda x, k, tile: conv_lib.banded_conv(x, k, (1, 1), pad, tile=tile),
            tile=case.image[1] if tile is None else tile,
        )
    return found


def measure(size: Size, case: Case, batch: int, repetitions: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, *case.image), np.float32))
    kernel = jnp.asarray(rng.standard_normal(case.kernel, np.float32) * 0.1)
    number = max(1, size.images_per_repetition // batch)
    steps = {}
    for variant, conv in lowerings(case, size.tiles).items():
        step = jax.jit(jax.grad(lambda x, k, c=conv: jnp.sum(jnp.tanh(c(x, k))), argnums=(0, 1)))
        steps[variant] = lambda step=step: step(x, kernel)
    values = common.interleaved(steps, repetitions, number=number)
    return [
        common.row(
            NAME,
            f"{case.name}, B={batch}",
            "jaxsched",
            variant,
            "time per image",
            [v / batch for v in values[variant]],
            baseline=variant == "im2col",
            note="jit(grad) of sum(tanh(conv)) w.r.t. input and kernel",
        )
        for variant in steps
    ]


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """Every case at every batch size (jaxsched only)."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    rows = []
    for case in size.cases:
        for batch in size.batches:
            rows += common.peer_rows(
                NAME,
                "jaxsched",
                f"{case.name}, B={batch}",
                peers,
                lambda case=case, batch=batch: measure(size, case, batch, repetitions),
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
