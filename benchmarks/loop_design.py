"""The measurements behind the training loop's design: LeNet-5 SGD steps on the real
Fashion-MNIST at batch 64 (and 512 where said), seconds per update, each choice against its
alternative.

    python -m benchmarks.loop_design [--smoke]

- convolution lowering: `LeNet5(conv_impl="banded")` (what "auto" picks on CPU) vs im2col
  (`"im2col"`, the default before 0.2.0) and XLA's convolution (`"xla"`), one jitted step per
  batch;
- epoch structure: `lax.scan` over chunks of up to 100 updates (what `loop.fit` does,
  `scan_chunks=True`) vs one jitted step dispatched per batch (`scan_chunks=False`);
- batch source of the scan chunks, at batch 64, 512 and 4096: the whole training set placed on the
  device once and each chunk's batches gathered there inside the scan, chunks of 100 updates
  (what `loop.fit` does since 2026-12-08 when the data fits `loop.DEVICE_DATA_BYTES`) vs each
  chunk's batches gathered on the host (`images[idx]` in NumPy) and transferred, the chunk
  capped at `loop.CHUNK_BYTES` of images (10 updates at 512, 1 at 4096; `loop.fit` before);
  each chunk's metrics are fetched before the next chunk is dispatched, as in `loop.fit`;
- grid of 11 learning rates: one update of all members, `jit(vmap(step))` vs the step per
  member (what `sweep.fit_grid(strategy="auto")` chooses between), with the default lowering.

Each case's baseline is the choice the library makes; a ratio above 1 means the alternative is
slower. Every variant runs the same `number` updates per repetition from its own warm state,
with the state donated; a case's repetitions are interleaved across its variants (A, B, A, B,
...), so that a slow moment of the machine falls on all of them. jaxsched only.
"""

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common, fixtures
from jaxsched import loop, optimizers, train
from jaxsched.models import LeNet5

NAME = "loop_design"
METRIC = "update"
GRID_RATES = tuple(10.0**k for k in range(1, -10, -1))
CHUNK = 100  # loop.fit's default sync_every: updates per scan call


@dataclasses.dataclass(frozen=True)
class Size:
    batch_size: int
    number: int  # updates per repetition
    grid_number: int  # grid updates (all members) per repetition


FULL = Size(64, 200, 20)
SMOKE = Size(16, 4, 2)
# the batch-source case's larger batches
LARGE = {False: (Size(512, 100, 0), Size(4096, 14, 0)), True: (Size(32, 4, 0), Size(64, 2, 0))}


def _batches(size: Size, smoke: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training images and labels, and `number` batches of indices [number, batch]."""
    ds = fixtures.fashion_mnist(smoke)
    order = np.random.default_rng(0).permutation(len(ds.labels))
    count = min(size.number, len(order) // size.batch_size)
    idx = order[: count * size.batch_size].reshape(count, size.batch_size)
    return ds.images, ds.labels, idx


def _runner(
    step: Callable, state: Any, calls: Sequence, args: Callable, fetch: bool = False
) -> Callable[[], Any]:
    """A function calling `state, metrics = step(state, *args(c))` for every c in `calls` from
    a state that persists across calls; returns the last metrics. fetch: bring each call's
    metrics to the host before the next call, as `loop.fit` does after every chunk."""
    box = {"state": state}

    def run():
        state = box["state"]
        for call in calls:
            state, metrics = step(state, *args(call))
            if fetch:
                metrics = jax.device_get(metrics)
        box["state"] = state
        return metrics

    return run


def _stepper(conv_impl: str, how: str, images, labels, idx) -> Callable[[], Any]:
    """A function running idx.shape[0] updates from a persistent state, `how` one of
    "dispatch" (one jitted step per batch gathered on the host), "scan" (chunks of CHUNK
    updates gathered on the device from the resident training set, as `loop.fit`) and
    "host scan" (chunks gathered on the host, capped at `loop.CHUNK_BYTES`)."""
    model, tx = LeNet5(conv_impl=conv_impl), optimizers.make("sgd", 0.01, preset="keras")
    step_fn = train.make_train_step(model, tx)
    state = train.init_train_state(model, tx, jax.random.key(0), images[:1])
    if how == "dispatch":
        step = jax.jit(step_fn, donate_argnums=0)
        return _runner(step, state, idx, lambda i: (images[i], labels[i]))
    sizes = [idx.shape[1]] * len(idx)
    if how == "scan":  # loop.fit's path: the data on the device, gathered in the scan
        all_images, all_labels = jax.device_put((images, labels))
        chunk_step = jax.jit(train.make_indexed_chunk_step(step_fn), donate_argnums=0)
        chunks = list(loop.update_chunks(sizes, idx.ravel(), CHUNK, None))
        args = lambda c: (all_images, all_labels, c[0], c[1])  # noqa: E731
    elif how == "host scan":  # chunks gathered on the host, capped at CHUNK_BYTES
        chunk_step = jax.jit(train.make_chunk_step(step_fn), donate_argnums=0)
        chunks = list(loop.update_chunks(sizes, idx.ravel(), CHUNK, images[0].nbytes))
        args = lambda c: (images[c[0]], labels[c[0]], c[1])  # noqa: E731
    else:
        raise ValueError(f"how must be 'dispatch', 'scan' or 'host scan', got {how!r}")
    scan = _runner(chunk_step, state, chunks, args, fetch=True)
    last_updates = len(chunks[-1][2])
    return lambda: {k: v[:last_updates] for k, v in scan().items()}  # the valid rows


def _grid_stepper(vmapped: bool, images, labels, idx) -> Callable[[], Any]:
    """`len(idx)` updates of all GRID_RATES members, one program or one step per member."""
    model = LeNet5(conv_impl="auto")
    tx = optimizers.make("sgd", 0.01, preset="keras")
    step_fn = train.make_train_step(model, tx)
    members = [
        train.init_train_state(model, optimizers.make("sgd", lr, preset="keras"), key, images[:1])
        for lr, key in zip(GRID_RATES, [jax.random.key(0)] * len(GRID_RATES), strict=True)
    ]
    if vmapped:
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
        step = jax.jit(jax.vmap(step_fn, in_axes=(0, None, None)), donate_argnums=0)
        return _runner(step, stacked, idx, lambda i: (images[i], labels[i]))
    step = jax.jit(step_fn, donate_argnums=0)

    def step_each(states, x, y):
        outs = [step(s, x, y) for s in states]
        return [s for s, _ in outs], [m for _, m in outs]

    return _runner(
        step_each, members, idx, lambda i: (jax.device_put(images[i]), jax.device_put(labels[i]))
    )


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """Every case, alternative against the library's choice; see the module docstring."""
    common.check_repetitions(repetitions)
    if "jaxsched" not in peers:
        return []
    size = SMOKE if smoke else FULL
    images, labels, idx = _batches(size, smoke)
    per_step = size.batch_size
    cases = [
        (
            "convolution lowering",
            [
                ("banded matmuls", _stepper("banded", "dispatch", images, labels, idx), True),
                ("im2col + matmul", _stepper("im2col", "dispatch", images, labels, idx), False),
                ("lax.conv (XLA)", _stepper("xla", "dispatch", images, labels, idx), False),
            ],
        ),
        (
            "epoch structure",
            [
                (
                    f"lax.scan chunks of {CHUNK}",
                    _stepper("auto", "scan", images, labels, idx),
                    True,
                ),
                ("jit step per batch", _stepper("auto", "dispatch", images, labels, idx), False),
            ],
        ),
    ]
    for batch_idx in [idx] + [_batches(large, smoke)[2] for large in LARGE[smoke]]:
        cases.append(
            (
                "scan chunks' batch source",
                [
                    (
                        f"data on the device, chunks of {CHUNK}",
                        _stepper("auto", "scan", images, labels, batch_idx),
                        True,
                    ),
                    (
                        "gathered on the host, chunks <= 16 MB",
                        _stepper("auto", "host scan", images, labels, batch_idx),
                        False,
                    ),
                ],
                batch_idx,
            )
        )
    rows = []
    for case, variants, *case_idx in cases:
        batches = case_idx[0] if case_idx else idx
        times = common.interleaved({v[0]: v[1] for v in variants}, repetitions, warmup=1)
        for variant, _, baseline in variants:
            per_update = tuple(v / len(batches) for v in times[variant])
            rows.append(
                common.row(
                    NAME,
                    f"{case}, batch {batches.shape[1]}",
                    "jaxsched",
                    variant,
                    METRIC,
                    per_update,
                    items=batches.shape[1],
                    baseline=baseline,
                    note=f"{len(batches)} LeNet-5 SGD updates per repetition",
                )
            )
    grid_idx = idx[: size.grid_number]
    k = len(GRID_RATES)
    for variant, vmapped, baseline in (
        (f"step per member (x{k})", False, True),
        (f"jit(vmap(step)) over {k}", True, False),
    ):
        stats = common.repeat(_grid_stepper(vmapped, images, labels, grid_idx), repetitions)
        rows.append(
            common.row(
                NAME,
                f"grid of {k} learning rates, batch {size.batch_size}",
                "jaxsched",
                variant,
                "grid update",
                tuple(v / len(grid_idx) for v in stats.values),
                items=per_step * k,
                baseline=baseline,
                note="one update of every member, LeNet-5 conv_impl auto",
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
