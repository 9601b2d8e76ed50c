r"""Batch-size schedules: host-side, pure functions of the update count or the epoch.

Unlike the learning-rate schedules of `jaxsched.schedules`, these run on the host, not under
jit: `schedule(count)` takes a Python int, `count`, in the unit the training loop's
`batch_size_unit` names, "update" (the number of optimizer updates already made, 0, 1, 2, ...)
or "epoch" (the 0-based epoch), and returns a Python int, the batch size of the next update (or
of that epoch): `BatchSizeSchedule = Callable[[int], int]`. They are pure: closures over ints,
the same count always gives the same size. A negative or non-integer count (a traced array
included) raises ValueError. Every constructor takes an optional `num_examples` and raises if
the schedule could produce a batch larger than that.

`jaxsched.loop.fit(batch_size=schedule, batch_size_unit=...)` takes them; `jaxsched.batching`
lays their batches out before training.

References:
  Smith, Kindermans, Ying & Le, "Don't Decay the Learning Rate, Increase the Batch Size",
  ICLR 2018, https://arxiv.org/abs/1711.00489.
  Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
  https://arxiv.org/abs/1506.01186.
"""

import numbers
from collections.abc import Callable, Sequence
from typing import Any

from jaxsched.schedules import _as_count

BatchSizeSchedule = Callable[[int], int]


def _as_power_of_two(name: str, value: Any) -> int:
    """`value` as a positive int that is a power of two, else ValueError naming `name`."""
    value = _as_count(name, value)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two, got {value}")
    return value


def _check_num_examples(num_examples: Any, largest: int, what: str) -> None:
    """ValueError unless num_examples is None or >= largest (`what` says where it comes from)."""
    if num_examples is None:
        return
    num_examples = _as_count("num_examples", num_examples)
    if largest > num_examples:
        raise ValueError(
            f"the schedule's largest batch size {what}={largest} is larger than the dataset: "
            f"num_examples={num_examples}"
        )


def _host_count(count: Any) -> int:
    """`count` as a non-negative Python int (numpy integers accepted), else ValueError."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
        raise ValueError(
            f"count must be a non-negative integer (updates made, or the 0-based epoch; "
            f"batch-size schedules run on the host, not under jit), got {count!r}"
        )
    return int(count)


def _num_sizes(b_min: int, b_max: int) -> int:
    """L + 1, the number of powers of two from b_min to b_max (both powers of two)."""
    return (b_max // b_min).bit_length()


def _triangle_level(position: int, step_size: int, num_sizes: int) -> int:
    """Level in [0, num_sizes) of `position` in [0, 2 * step_size): the triangle h(p) sampled at
    the middle of unit p, floor(h(p + 1/2) * num_sizes), in integer arithmetic. The way down is
    the way up reversed. Needs step_size >= num_sizes so that no level is skipped."""
    if position >= step_size:
        position = 2 * step_size - 1 - position
    return (2 * position + 1) * num_sizes // (2 * step_size)


def _check_step_size(step_size: Any, num_sizes: int, sizes: str) -> int:
    step_size = _as_count("step_size", step_size)
    if step_size < num_sizes:
        raise ValueError(
            f"step_size must be >= the number of batch sizes in a cycle ({num_sizes}: {sizes}) "
            f"so that each is visited, got {step_size}"
        )
    return step_size


def cyclic_batch_size(
    b_min: int, b_max: int, step_size: int, num_examples: int | None = None
) -> BatchSizeSchedule:
    r"""A triangular cycle of batch sizes between `b_min` and `b_max`, in powers of two.

    The batch-size analogue of `schedules.cyclic_lr`'s triangle, drawn in log2 space. With
    :math:`t` the count, :math:`S` = `step_size`, :math:`L = \log_2(b_{max} / b_{min})` (so
    L + 1 sizes), :math:`p = t \bmod 2S` and the triangle height :math:`h(x) = x / S` for
    :math:`x \le S`, :math:`(2S - x) / S` after it, evaluated at the middle of unit p:

    .. math::
      \ell(t) = \left\lfloor (L + 1) \, h(p + \tfrac12) \right\rfloor, \qquad
      b(t) = b_{min} \cdot 2^{\ell(t)}

    On the way up (:math:`p < S`) this is :math:`\lfloor (2p + 1)(L + 1) / 2S \rfloor`, on the
    way down the same at :math:`2S - 1 - p`: the second half-cycle is the first reversed. The
    cycle starts at `b_min` (t = 0), holds `b_max` around its middle and is back at `b_min` at
    its end; each of the L + 1 sizes gets exactly S / (L + 1) units per half-cycle when L + 1
    divides S, and floor or ceil of it otherwise. (Sampling the triangle at the start of each
    unit instead, as `schedules.cyclic_lr` does for learning rates, would give `b_max` one extra
    unit and `b_min` one fewer on every way down.)

    Args:
      b_min: smallest batch size, a power of two.
      b_max: largest batch size, a power of two >= b_min.
      step_size: units (optimizer updates or epochs, the caller's unit) in each half-cycle, a
        positive integer >= L + 1, the number of sizes, so that every size is visited.
      num_examples: optional training-set size; if given, b_max must not exceed it.

    Returns:
      schedule: count (int >= 0, updates made or 0-based epoch) -> batch size (Python int).
      A negative or non-integer count raises ValueError.

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import batch_schedules
      >>> batch_size = batch_schedules.cyclic_batch_size(32, 128, step_size=3)
      >>> [batch_size(k) for k in range(8)]
      [32, 64, 128, 128, 64, 32, 32, 64]

    References:
      Smith, Kindermans, Ying & Le, "Don't Decay the Learning Rate, Increase the Batch Size",
      ICLR 2018, https://arxiv.org/abs/1711.00489; Smith 2017 (CLR),
      https://arxiv.org/abs/1506.01186.
    """
    b_min = _as_power_of_two("b_min", b_min)
    b_max = _as_power_of_two("b_max", b_max)
    if b_min > b_max:
        raise ValueError(f"b_min must be <= b_max, got b_min={b_min}, b_max={b_max}")
    num_sizes = _num_sizes(b_min, b_max)
    step_size = _check_step_size(step_size, num_sizes, f"{b_min} to {b_max}")
    _check_num_examples(num_examples, b_max, "b_max")

    def schedule(count: int) -> int:
        position = _host_count(count) % (2 * step_size)
        return b_min << _triangle_level(position, step_size, num_sizes)

    return schedule


def growing_cyclic_batch_size(
    b_min: int,
    b_max: int,
    step_size: int,
    b_limit: int | None = None,
    num_examples: int | None = None,
) -> BatchSizeSchedule:
    r"""Cycles of batch sizes whose peak doubles every cycle: `cyclic_batch_size` growing.

    Cycle :math:`c = \lfloor t / 2S \rfloor` (0-based, each `2 * step_size` units long) is the
    triangle of `cyclic_batch_size` from `b_min` up to the peak

    .. math::
      b_{peak}(c) = \min(b_{max} \cdot 2^c, \; b_{limit})

    and back, with its own :math:`L_c = \log_2(b_{peak}(c) / b_{min})` (so cycle c has one
    more size than cycle c - 1 until the peak reaches `b_limit`, and every cycle still starts
    and ends at `b_min`). Once capped, the cycles repeat `cyclic_batch_size(b_min, b_limit)`.

    Args:
      b_min: smallest batch size, a power of two.
      b_max: peak of the first cycle, a power of two >= b_min.
      step_size: units (updates or epochs) in each half-cycle, a positive integer, at least
        the number of sizes of the largest cycle (log2(b_limit / b_min) + 1).
      b_limit: optional cap on the peaks, a power of two >= b_max. Without it the peaks grow
        without bound and the schedule is defined only while a cycle's L_c + 1 sizes fit in
        `step_size` (cycles c <= step_size - log2(b_max / b_min) - 1); a later count raises
        ValueError.
      num_examples: optional training-set size; if given, b_limit is required and must not
        exceed it.

    Returns:
      schedule: count (int >= 0, updates made or 0-based epoch) -> batch size (Python int).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import batch_schedules
      >>> batch_size = batch_schedules.growing_cyclic_batch_size(32, 64, step_size=3, b_limit=128)
      >>> [batch_size(k) for k in range(12)]
      [32, 64, 64, 64, 64, 32, 32, 64, 128, 128, 64, 32]

    References:
      Smith, Kindermans, Ying & Le 2018, https://arxiv.org/abs/1711.00489.
    """
    b_min = _as_power_of_two("b_min", b_min)
    b_max = _as_power_of_two("b_max", b_max)
    if b_min > b_max:
        raise ValueError(f"b_min must be <= b_max, got b_min={b_min}, b_max={b_max}")
    first_sizes = _num_sizes(b_min, b_max)
    if b_limit is None:
        if num_examples is not None:
            raise ValueError(
                f"b_limit must be given (a power of two <= num_examples={num_examples}) when "
                f"num_examples is: without it the peaks b_max * 2**c grow without bound"
            )
        step_size = _check_step_size(step_size, first_sizes, f"{b_min} to {b_max}")
        most_sizes = step_size
    else:
        b_limit = _as_power_of_two("b_limit", b_limit)
        if b_limit < b_max:
            raise ValueError(f"b_limit must be >= b_max={b_max}, got {b_limit}")
        most_sizes = _num_sizes(b_min, b_limit)
        step_size = _check_step_size(step_size, most_sizes, f"{b_min} to b_limit={b_limit}")
        _check_num_examples(num_examples, b_limit, "b_limit")

    def schedule(count: int) -> int:
        cycle, position = divmod(_host_count(count), 2 * step_size)
        num_sizes = first_sizes + cycle
        if num_sizes > most_sizes:
            if b_limit is not None:
                num_sizes = most_sizes
            else:
                raise ValueError(
                    f"count {count} is in cycle {cycle}, whose {num_sizes} batch sizes "
                    f"(b_min={b_min} to {b_max << cycle}) do not fit in step_size={step_size}: "
                    f"pass b_limit or a larger step_size"
                )
        return b_min << _triangle_level(position, step_size, num_sizes)

    return schedule


def epoch_batch_cycle(
    b_min: int, num_sizes: int, num_examples: int | None = None
) -> BatchSizeSchedule:
    r"""A sawtooth of batch sizes, one size per epoch: `b_min`, 2 `b_min`, 4 `b_min`, ... .

    .. math::
      b(e) = b_{min} \cdot 2^{\,e \bmod n}

    with :math:`e` the 0-based epoch and :math:`n` = `num_sizes`; meant for
    `batch_size_unit="epoch"` (with "update" it changes the size every update).

    Args:
      b_min: batch size of epochs 0, n, 2n, ..., a power of two.
      num_sizes: sizes in a cycle, a positive integer; the largest is b_min * 2**(n - 1).
      num_examples: optional training-set size; if given, the largest size must not exceed it.

    Returns:
      schedule: 0-based epoch (int >= 0) -> batch size (Python int).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import batch_schedules
      >>> batch_size = batch_schedules.epoch_batch_cycle(32, num_sizes=3)
      >>> [batch_size(epoch) for epoch in range(6)]
      [32, 64, 128, 32, 64, 128]
    """
    b_min = _as_power_of_two("b_min", b_min)
    num_sizes = _as_count("num_sizes", num_sizes)
    _check_num_examples(num_examples, b_min << (num_sizes - 1), "b_min * 2**(num_sizes - 1)")

    def schedule(epoch: int) -> int:
        return b_min << (_host_count(epoch) % num_sizes)

    return schedule


def batch_size_steps(
    initial: int, boundaries: Sequence[int], factor: int = 2, num_examples: int | None = None
) -> BatchSizeSchedule:
    r"""A batch size that grows by `factor` at each boundary: "increase the batch size" instead
    of "decay the learning rate".

    .. math::
      b(t) = b_0 \cdot f^{\#\{i : t \ge t_i\}}

    Smith et al. (2018) replace each step of a step decay that divides the learning rate by
    :math:`f` with a step that multiplies the batch size by :math:`f`: the counterpart of
    `schedules.step_decay(lr, boundaries, [f**-1, f**-2, ...])` is
    `batch_size_steps(b_0, boundaries, f)` (they did it per epoch, so use
    `batch_size_unit="epoch"` with epoch boundaries: counted in updates, boundaries arrive later
    as the batch grows, since an epoch then has fewer updates).

    Args:
      initial: batch size before the first boundary, a positive integer (any, not only powers
        of two).
      boundaries: counts (updates or epochs, the caller's unit) from which on the size is
        multiplied once more, strictly increasing non-negative integers (may be empty).
      factor: the multiplier, an integer >= 2.
      num_examples: optional training-set size; if given, the final size
        initial * factor**len(boundaries) must not exceed it.

    Returns:
      schedule: count (int >= 0, updates made or 0-based epoch) -> batch size (Python int).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import batch_schedules
      >>> batch_size = batch_schedules.batch_size_steps(128, boundaries=[2, 4], factor=2)
      >>> [batch_size(epoch) for epoch in range(6)]
      [128, 128, 256, 256, 512, 512]

    References:
      Smith, Kindermans, Ying & Le 2018, https://arxiv.org/abs/1711.00489.
    """
    initial = _as_count("initial", initial)
    boundaries = tuple(_as_count("boundaries", b, minimum=0) for b in boundaries)
    if any(b1 >= b2 for b1, b2 in zip(boundaries, boundaries[1:], strict=False)):
        raise ValueError(f"boundaries must be strictly increasing, got {list(boundaries)}")
    factor = _as_count("factor", factor, minimum=2)
    _check_num_examples(
        num_examples, initial * factor ** len(boundaries), "initial * factor**len(boundaries)"
    )

    def schedule(count: int) -> int:
        count = _host_count(count)
        return initial * factor ** sum(1 for boundary in boundaries if count >= boundary)

    return schedule
