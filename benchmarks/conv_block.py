"""One 3x3 convolution's forward + backward per image, whole batch against batch slices.

    python -m benchmarks.conv_block [--smoke]

The hypothesis behind `jaxsched.models.conv.Conv.batch_block`: XLA's CPU convolutions (and the
transposes around their filter gradients) cost more per image as the batch outgrows the cache,
and computing a large batch in interleaved slices (`conv.in_batch_slices`, unrolled in the
program) restores the small batch's cost. Each case is one convolution of ResNet-44's stage
shapes (16, 32, 64 channels at 32x32, 16x16, 8x8; SAME padding, stride 1) on random float32
input, `jax.grad` of sum(tanh(conv(x, k))) with respect to x and k, jitted: the time per image
(ratio: to the small batch's) at a small batch, at a large one whole, and at the large one in
slices of the small size. The large batch is also timed once as a `lax.map` over blocks (a
loop in the program instead of unrolled slices), which XLA's CPU backend runs far slower.
jaxsched only.
"""

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks import common
from jaxsched.models import conv as conv_lib

NAME = "conv_block"


@dataclasses.dataclass(frozen=True)
class Size:
    shapes: tuple[tuple[int, int], ...]  # (height = width, channels)
    small: int  # the small batch, and the slice size at the large one
    large: int
    number: int  # calls per repetition


FULL = Size(shapes=((32, 16), (16, 32), (8, 64)), small=64, large=1024, number=3)
SMOKE = Size(shapes=((8, 4),), small=4, large=16, number=1)


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _mapped(block: int) -> Callable[[jax.Array, jax.Array], jax.Array]:
    def conv(x, kernel):
        blocks = x.reshape(-1, block, *x.shape[1:])
        out = lax.map(lambda part: _conv(part, kernel), blocks)
        return out.reshape(x.shape[0], *out.shape[2:])

    return conv


def _sliced(count: int) -> Callable[[jax.Array, jax.Array], jax.Array]:
    return lambda x, kernel: conv_lib.in_batch_slices(lambda p: _conv(p, kernel), x, count)


def _grad_step(conv: Callable) -> Callable:
    return jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.tanh(conv(x, k))), argnums=(0, 1)))


def measure(size: Size, hw: int, channels: int, repetitions: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    kernel = jnp.asarray(rng.standard_normal((3, 3, channels, channels), np.float32) * 0.1)
    images = rng.standard_normal((size.large, hw, hw, channels), np.float32)
    case = f"3x3 conv {hw}x{hw}x{channels}, fwd+bwd"
    count = size.large // size.small
    variants = [
        (size.small, f"B={size.small}", _conv, True),
        (size.large, f"B={size.large}, whole", _conv, False),
        (size.large, f"B={size.large}, {count} slices of {size.small}", _sliced(count), False),
    ]
    if hw == size.shapes[0][0]:  # one case: a loop in the program (slow: timed once)
        variants.append(
            (size.large, f"B={size.large}, lax.map over {size.small}", _mapped(size.small), False)
        )
    rows = []
    for batch, variant, conv, baseline in variants:
        x = jnp.asarray(images[:batch])
        step = _grad_step(conv)
        looped = "lax.map" in variant
        stats = common.repeat(
            lambda step=step, x=x: step(x, kernel),
            1 if looped else repetitions,
            warmup=1,
            number=1 if looped else size.number,
        )
        per_image = common.Stats(tuple(v / batch for v in stats.values))
        rows.append(
            common.row(
                NAME,
                case,
                "jaxsched",
                variant,
                "time per image",
                per_image,
                baseline=baseline,
                note="jit(grad) of sum(tanh(conv)) w.r.t. input and kernel"
                + ("; timed once" if looped else ""),
            )
        )
    return rows


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """Every stage shape in turn (jaxsched only)."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    rows = []
    for hw, channels in size.shapes:
        rows += common.peer_rows(
            NAME,
            "jaxsched",
            f"{hw}x{hw}x{channels}",
            peers,
            lambda hw=hw, channels=channels: measure(size, hw, channels, repetitions),
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
