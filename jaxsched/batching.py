"""Planning the batches of a run: a batch size (or batch-size schedule) becomes, per epoch, the
list of update sizes, and each update becomes k micro-batches of one size.

Every distinct micro-batch shape is a compiled train step, so the plan makes the shapes explicit
before training starts. Two strategies for a varying batch size:

  "shapes"      each update is one batch of its own size: one executable per distinct size
                (compiled once, cached, counted). Fastest per update; costs a compilation per size.
  "accumulate"  every update is k micro-batches of one fixed size m (k = size / m), averaged by
                optax.MultiSteps whose k follows the plan inside the jitted step: one compilation,
                but small micro-batches use the device less well.

With `max_device_batch`, an update larger than it is split into equal micro-batches (k =
ceil(size / max_device_batch), which must divide the size) under either strategy.
"""

import numbers
from collections.abc import Callable
from typing import NamedTuple

BatchSize = int | Callable[[int], int]
STRATEGIES = ("shapes", "accumulate")
UNITS = ("update", "epoch")


class Plan(NamedTuple):
    """sizes[e]: the batch size of each update of epoch e; micro[u], num_micro_batches[u]: the
    micro-batch size and micro-batch count of update u (global index; size = micro * count);
    truncated: the last epoch was cut short by max_steps (a "step" is one optimizer update)."""

    sizes: list[list[int]]
    micro: list[int]
    num_micro_batches: list[int]
    truncated: bool

    @property
    def num_updates(self) -> int:
        return len(self.micro)


def plan(
    num_examples: int,
    batch_size: BatchSize,
    *,
    epochs: int,
    unit: str = "update",
    max_steps: int | None = None,
    strategy: str = "shapes",
    micro_batch_size: int | None = None,
    max_device_batch: int | None = None,
) -> Plan:
    """Evaluates `batch_size` on the host and splits every update into micro-batches.

    Args:
      num_examples: N, the training examples.
      batch_size: an int, or a schedule: a function of the update count (unit "update") or of
        the 0-based epoch (unit "epoch") returning a size in [1, N]. An epoch ends when fewer
        examples remain in its permutation than the next update needs (they are dropped).
      epochs: epochs to plan.
      max_steps: stop after this many updates.
      strategy: "shapes" or "accumulate" (see the module docstring).
      micro_batch_size: "accumulate"'s micro-batch size; default the smallest planned size (or
        max_device_batch if smaller). Every size must be a multiple of it.
      max_device_batch: the largest micro-batch to put on the device at once.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if unit not in UNITS:
        raise ValueError(f"batch_size_unit must be one of {UNITS}, got {unit!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    if max_device_batch is not None and max_device_batch < 1:
        raise ValueError(f"max_device_batch must be >= 1 or None, got {max_device_batch}")
    schedule = batch_size if callable(batch_size) else (lambda _: batch_size)
    limit = float("inf") if max_steps is None else max_steps
    sizes: list[list[int]] = []
    updates, truncated = 0, False
    for epoch in range(epochs):
        remaining, epoch_sizes = num_examples, []
        while updates < limit:
            size = schedule(updates if unit == "update" else epoch)
            size = int(size) if isinstance(size, numbers.Integral) else size
            if not isinstance(size, int) or not 1 <= size <= num_examples:
                where = f"update {updates}" if unit == "update" else f"epoch {epoch}"
                raise ValueError(
                    f"batch_size must be an int in [1, num_examples={num_examples}], got "
                    f"{size!r} at {where}"
                )
            if size > remaining:
                break
            epoch_sizes.append(size)
            remaining -= size
            updates += 1
        if not epoch_sizes:
            break
        sizes.append(epoch_sizes)
        if updates >= limit:
            truncated = remaining >= schedule(updates if unit == "update" else epoch)
            break
    flat = [s for epoch_sizes in sizes for s in epoch_sizes]
    micro, counts = _split(flat, strategy, micro_batch_size, max_device_batch)
    return Plan(sizes, micro, counts, truncated)


def _split(
    sizes: list[int], strategy: str, micro_batch_size: int | None, max_device_batch: int | None
) -> tuple[list[int], list[int]]:
    """(micro-batch size, micro-batch count) per update."""
    cap = max_device_batch or max(sizes)
    if strategy == "accumulate":
        m = micro_batch_size or min(min(sizes), cap)
        if m > cap:
            raise ValueError(f"micro_batch_size={m} exceeds max_device_batch={max_device_batch}")
        bad = sorted({s for s in sizes if s % m})
        if bad:
            raise ValueError(
                f"with strategy 'accumulate' every batch size must be a multiple of "
                f"micro_batch_size={m}; these are not: {bad}"
            )
        return [m] * len(sizes), [s // m for s in sizes]
    micro, counts = [], []
    for s in sizes:
        k = -(-s // cap)
        if s % k:
            raise ValueError(
                f"batch size {s} exceeds max_device_batch={max_device_batch} and does not split "
                f"into {k} equal micro-batches; use sizes divisible by {k} (e.g. powers of two)"
            )
        micro.append(s // k)
        counts.append(k)
    return micro, counts
