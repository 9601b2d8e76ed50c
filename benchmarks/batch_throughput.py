"""Where the time goes as the batch grows, and what computing the batch in blocks buys:
LeNet-5 SGD updates on the real Fashion-MNIST at batch 64, 512 and 4096, run as `loop.fit`
runs them (a chunk of updates in one `lax.scan`), images per second.

    python -m benchmarks.batch_throughput [--smoke]

Variants of one update, per batch size (the baseline is the library's default LeNet-5):
- "LeNet-5": BatchNorm after the input and every hidden layer, the course's net, its
  convolutions lowered as `conv_impl="auto"` does on CPU (banded matmuls);
- "LeNet-5, im2col": the same net with the im2col lowering (the CPU default before 0.2.0);
- "no BatchNorm": `LeNet5(input_norm="none", hidden_batchnorm=False)`, the same layers;
- "no BatchNorm, example_block=64": that update computed in blocks of 64 images inside the
  step, losses and gradients summed (`train.make_train_step(example_block=64)`,
  `fit(example_block=64)`): the same update up to float rounding (tests/test_example_block.py).

Each repetition runs one chunk of updates over the same `images_per_chunk` images (the chunk is
on the device already: the host gather, which `loop.fit` overlaps with the previous chunk, is
not timed); the variants' repetitions are interleaved. Every row's `extra` holds XLA's cost
analysis of one compiled update (flops and bytes accessed per image) and a profile of one chunk
(`jax.profiler` trace): the device time of each kind of XLA operation (numbered fusions grouped
by name), in microseconds per image, summed over threads -- where the time goes. jaxsched only.
"""

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common, fixtures
from jaxsched import optimizers, train
from jaxsched.models import LeNet5

NAME = "batch_throughput"
METRIC = "update"


@dataclasses.dataclass(frozen=True)
class Size:
    batch_sizes: tuple[int, ...]
    images_per_chunk: int  # images trained per repetition, at every batch size
    block: int  # the example_block variant's block


FULL = Size((64, 512, 4096), 16_384, 64)
SMOKE = Size((8, 32), 64, 8)

# variant -> (model, example_block or None)
VARIANTS: dict[str, Callable[[int], tuple[Any, int | None]]] = {
    "LeNet-5": lambda block: (LeNet5(), None),
    "LeNet-5, im2col": lambda block: (LeNet5(conv_impl="im2col"), None),
    "no BatchNorm": lambda block: (LeNet5(input_norm="none", hidden_batchnorm=False), None),
    "no BatchNorm, example_block": lambda block: (
        LeNet5(input_norm="none", hidden_batchnorm=False),
        block,
    ),
}


def _chunk(batch_size: int, updates: int, smoke: bool) -> tuple[jax.Array, jax.Array]:
    """`updates` batches of the first updates * batch_size training images, on the device."""
    ds = fixtures.fashion_mnist(smoke)
    n = updates * batch_size
    reps = -(-n // len(ds.labels))  # the smoke split is smaller than a 4096 chunk
    images = np.concatenate([ds.images] * reps)[:n]
    labels = np.concatenate([ds.labels] * reps)[:n]
    return (
        jax.device_put(images.reshape(updates, batch_size, *images.shape[1:])),
        jax.device_put(labels.reshape(updates, batch_size)),
    )


def _cost_per_image(compiled: Any, batch_size: int) -> dict:
    """XLA's cost analysis of a compiled chunk, per image of one update (flops, bytes
    accessed): XLA counts a loop's body once, i.e. one update."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return {
        key.replace(" ", "_") + "_per_image": float(cost[key]) / batch_size
        for key in ("flops", "bytes accessed")
        if cost and key in cost
    }


def _prepare(name: str, size: Size, batch_size: int, smoke: bool) -> dict[str, Any]:
    """Variant `name` at `batch_size`, compiled: its chunk runner, updates and cost analysis."""
    model, block = VARIANTS[name](size.block)
    tx = optimizers.make("sgd", fixtures.KERAS_SGD_RATE, preset="keras")
    updates = max(1, size.images_per_chunk // batch_size)
    images, labels = _chunk(batch_size, updates, smoke)
    step = train.make_train_step(model, tx, example_block=block)
    state = train.init_train_state(model, tx, jax.random.key(0), images[0, :1])
    valid = jnp.ones(updates, bool)
    chunk_fn = jax.jit(train.make_chunk_step(step), donate_argnums=0)
    chunk = chunk_fn.lower(state, images, labels, valid).compile()
    box = {"state": state}

    def run():
        box["state"], metrics = chunk(box["state"], images, labels, valid)
        return metrics

    cost = _cost_per_image(chunk, batch_size)
    return {
        "run": run,
        "updates": updates,
        "extra": {"updates_per_chunk": updates, "block": block, **cost},
    }


def _measure(variants: dict[str, dict[str, Any]], repetitions: int) -> dict[str, tuple]:
    """Seconds per update of each variant, the repetitions interleaved (variant A, B, C, A,
    B, C, ...) so that a machine's slow moment falls on all of them; one warm-up each."""
    seconds = common.interleaved({name: p["run"] for name, p in variants.items()}, repetitions)
    return {
        name: tuple(v / variants[name]["updates"] for v in values)
        for name, values in seconds.items()
    }


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """Every variant at every batch size; see the module docstring."""
    common.check_repetitions(repetitions)
    if "jaxsched" not in peers:
        return []
    size = SMOKE if smoke else FULL
    rows = []
    for batch_size in size.batch_sizes:
        variants = {name: _prepare(name, size, batch_size, smoke) for name in VARIANTS}
        per_update = _measure(variants, repetitions)
        for name, prepared in variants.items():
            profile = common.op_profile(prepared["run"], prepared["updates"] * batch_size)
            rows.append(
                common.row(
                    NAME,
                    f"LeNet-5 update, batch {batch_size}",
                    "jaxsched",
                    name.replace("example_block", f"example_block={size.block}"),
                    METRIC,
                    per_update[name],
                    items=batch_size,
                    baseline=name == "LeNet-5",
                    note="SGD update in a lax.scan chunk; profile_us: µs/image per XLA op kind",
                    extra={**prepared["extra"], "profile_us": profile},
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
