"""Batch-size schedules (host-side, Python ints) and b_min / b_max detection from a sweep."""

import collections
import math

import numpy as np
import pytest

from jaxsched.batch_schedules import (
    batch_size_steps,
    cyclic_batch_size,
    epoch_batch_cycle,
    growing_cyclic_batch_size,
)
from jaxsched.range_test import suggest_batch_bounds

# ------------------------------------------------------------------------------------------------
# References: the triangle in floats, sampled at the middle of each unit.


def reference_level(t, step_size, num_sizes):
    """floor(num_sizes * h(p + 1/2)), h the CLR triangle of half-length step_size, in floats."""
    x = t % (2 * step_size) + 0.5
    height = x / step_size if x <= step_size else (2 * step_size - x) / step_size
    return math.floor(num_sizes * height)


def reference_cyclic(t, b_min, b_max, step_size):
    return b_min * 2 ** reference_level(t, step_size, int(math.log2(b_max / b_min)) + 1)


def is_power_of_two(n):
    return n > 0 and n & (n - 1) == 0


# ------------------------------------------------------------------------------------------------
# cyclic_batch_size


def test_cyclic_exact_sequence_over_three_cycles():
    schedule = cyclic_batch_size(32, 256, 8)
    cycle = [32, 32, 64, 64, 128, 128, 256, 256, 256, 256, 128, 128, 64, 64, 32, 32]
    assert [schedule(t) for t in range(48)] == cycle * 3


@pytest.mark.parametrize(
    "b_min, b_max, step_size",
    [(32, 256, 8), (32, 256, 4), (32, 256, 12), (32, 256, 13), (16, 1024, 70), (64, 64, 3)],
)
def test_cyclic_matches_the_closed_form_and_its_properties(b_min, b_max, step_size):
    schedule = cyclic_batch_size(b_min, b_max, step_size)
    counts = range(5 * 2 * step_size)
    values = [schedule(t) for t in counts]
    assert values == [reference_cyclic(t, b_min, b_max, step_size) for t in counts]
    assert all(type(v) is int and is_power_of_two(v) and b_min <= v <= b_max for v in values)
    assert values[0] == b_min and max(values) == b_max
    num_sizes = int(math.log2(b_max // b_min)) + 1
    sizes = [b_min * 2**k for k in range(num_sizes)]
    for start in range(0, len(values), step_size):  # every half-cycle, up or down
        half = values[start : start + step_size]
        shares = collections.Counter(half)
        assert sorted(shares) == sizes  # each size visited, none skipped
        assert set(shares.values()) <= {step_size // num_sizes, -(-step_size // num_sizes)}
        if step_size % num_sizes == 0:
            assert set(shares.values()) == {step_size // num_sizes}
        going_up = start // step_size % 2 == 0
        assert half == sorted(half, reverse=not going_up)
    up, down = values[:step_size], values[step_size : 2 * step_size]
    assert down == up[::-1]  # symmetric


def test_cyclic_at_huge_counts_and_numpy_ints():
    schedule = cyclic_batch_size(32, 256, 8)
    t = 16 * 10**15 + 7  # position 7 in its cycle
    assert (
        schedule(t) == 256 and schedule(np.int64(7)) == 256 and type(schedule(np.int64(7))) is int
    )


def test_schedules_are_pure():
    first, second = cyclic_batch_size(32, 256, 8), cyclic_batch_size(32, 256, 8)
    counts = [5, 100, 0, 5, 37, 100, 3, 0]
    values = [first(t) for t in counts]
    assert values == [first(t) for t in counts] == [second(t) for t in counts]
    assert [first(t) for t in reversed(counts)] == values[::-1]  # no dependence on call order
    steps = batch_size_steps(128, [2, 4])
    assert [steps(t) for t in (5, 0, 5, 0)] == [512, 128, 512, 128]


# ------------------------------------------------------------------------------------------------
# growing_cyclic_batch_size


def test_growing_cycle_peaks_double_and_respect_b_limit():
    b_min, b_max, b_limit, step_size = 32, 128, 1024, 8
    schedule = growing_cyclic_batch_size(b_min, b_max, step_size, b_limit=b_limit)
    for cycle in range(7):
        start = 2 * step_size * cycle
        values = [schedule(t) for t in range(start, start + 2 * step_size)]
        peak = min(b_max * 2**cycle, b_limit)
        assert max(values) == peak and values[0] == values[-1] == b_min
        assert sorted(set(values)) == [
            b_min * 2**k for k in range(int(math.log2(peak // b_min)) + 1)
        ]
        assert values == [reference_cyclic(t, b_min, peak, step_size) for t in range(2 * step_size)]
    peaks = [max(schedule(t) for t in range(16 * c, 16 * c + 16)) for c in range(5)]
    assert peaks == [128, 256, 512, 1024, 1024]


def test_growing_cycle_zero_is_the_plain_cycle_and_without_limit_ends_when_sizes_do_not_fit():
    schedule = growing_cyclic_batch_size(32, 256, 6)  # 4 sizes; cycles 0..2 fit in 6 units
    plain = cyclic_batch_size(32, 256, 6)
    assert [schedule(t) for t in range(12)] == [plain(t) for t in range(12)]
    assert max(schedule(t) for t in range(24, 36)) == 1024  # cycle 2: 6 sizes in 6 units
    with pytest.raises(ValueError, match="b_limit"):
        schedule(36)  # cycle 3 would need 7 sizes


# ------------------------------------------------------------------------------------------------
# epoch_batch_cycle, batch_size_steps


def test_epoch_cycle():
    schedule = epoch_batch_cycle(64, 3)
    assert [schedule(e) for e in range(8)] == [64, 128, 256, 64, 128, 256, 64, 128]
    assert [epoch_batch_cycle(32, 1)(e) for e in range(3)] == [32, 32, 32]


def test_batch_size_steps_multiplies_where_a_step_decay_would_divide():
    schedule = batch_size_steps(128, [10, 20, 30], factor=5)  # Smith et al.: 128 -> 640 -> ...
    values = [schedule(t) for t in range(40)]
    assert values == [128] * 10 + [640] * 10 + [3200] * 10 + [16000] * 10
    assert all(type(v) is int for v in values)
    assert [batch_size_steps(64, [0, 3])(t) for t in range(5)] == [128, 128, 128, 256, 256]
    assert batch_size_steps(64, [])(10**9) == 64


# ------------------------------------------------------------------------------------------------
# Bad arguments.


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: cyclic_batch_size(256, 32, 8), "b_min must be <= b_max"),
        (lambda: cyclic_batch_size(48, 256, 8), "b_min must be a power of two, got 48"),
        (lambda: cyclic_batch_size(32, 384, 8), "b_max must be a power of two, got 384"),
        (lambda: cyclic_batch_size(0, 256, 8), "b_min"),
        (lambda: cyclic_batch_size(32, 256, 0), "step_size"),
        (lambda: cyclic_batch_size(32, 256, 3), "step_size must be >= the number of batch"),
        (lambda: cyclic_batch_size(32, 256, 2.5), "step_size"),
        (lambda: cyclic_batch_size(32, 256, 8, num_examples=200), "num_examples=200"),
        (lambda: growing_cyclic_batch_size(64, 32, 8), "b_min must be <= b_max"),
        (lambda: growing_cyclic_batch_size(32, 256, 8, b_limit=128), "b_limit must be >= b_max"),
        (lambda: growing_cyclic_batch_size(32, 256, 8, b_limit=768), "b_limit must be a power"),
        (lambda: growing_cyclic_batch_size(32, 256, 5, b_limit=1024), "step_size"),
        (lambda: growing_cyclic_batch_size(32, 256, 8, num_examples=10**6), "b_limit must be"),
        (
            lambda: growing_cyclic_batch_size(32, 256, 8, b_limit=2048, num_examples=1000),
            "num_examples=1000",
        ),
        (lambda: epoch_batch_cycle(48, 3), "b_min must be a power of two, got 48"),
        (lambda: epoch_batch_cycle(32, 0), "num_sizes"),
        (lambda: epoch_batch_cycle(32, 4, num_examples=255), "num_examples=255"),
        (lambda: batch_size_steps(0, [10]), "initial"),
        (lambda: batch_size_steps(128, [10, 10]), "boundaries must be strictly increasing"),
        (lambda: batch_size_steps(128, [20, 10]), "boundaries must be strictly increasing"),
        (lambda: batch_size_steps(128, [-1, 10]), "boundaries"),
        (lambda: batch_size_steps(128, [10], factor=1), "factor"),
        (lambda: batch_size_steps(128, [10], factor=1.5), "factor"),
        (lambda: batch_size_steps(128, [10, 20], 4, num_examples=2000), "num_examples=2000"),
    ],
)
def test_bad_arguments_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sizes_equal_to_the_dataset_are_allowed():
    assert cyclic_batch_size(32, 256, 8, num_examples=256)(7) == 256
    assert batch_size_steps(100, [1], 5, num_examples=500)(1) == 500


@pytest.mark.parametrize(
    "schedule",
    [
        cyclic_batch_size(32, 256, 8),
        growing_cyclic_batch_size(32, 256, 8, b_limit=1024),
        epoch_batch_cycle(32, 3),
        batch_size_steps(32, [1]),
    ],
)
@pytest.mark.parametrize("count", [-1, 1.5, True, "3", None])
def test_bad_counts(schedule, count):
    with pytest.raises(ValueError, match="count must be a non-negative integer"):
        schedule(count)


# ------------------------------------------------------------------------------------------------
# suggest_batch_bounds


def sweep(start_log2, accuracies):
    return [2 ** (start_log2 + i) for i in range(len(accuracies))], accuracies


def test_clean_plateau_then_fall():
    #          16    32    64    128    256   512    1024  2048  4096  8192
    sizes, acc = sweep(4, [0.90, 0.91, 0.91, 0.915, 0.91, 0.905, 0.88, 0.84, 0.79, 0.73])
    s = suggest_batch_bounds(sizes, acc)
    assert (s["b_min"], s["b_max"]) == (16, 512)
    assert s["plateau"] == [16, 32, 64, 128, 256, 512]
    assert s["bracketed"] and s["best_batch_size"] == 128
    assert s["best_accuracy"] == pytest.approx(0.91) and s["threshold"] == pytest.approx(0.89)
    assert "beyond b_max=512" in s["message"] and "1024" in s["message"]
    assert "smallest batch swept" in s["message"]
    assert s["diverged"] == [] and s["sizes"] == sizes and isinstance(s["rule"], str)


def test_noise_neither_ends_nor_creates_the_plateau_where_naive_rules_fail():
    # A spurious dip at 128 inside the plateau; a spurious high point at 8192 after the fall.
    #          16    32     64    128   256    512   1024   2048  4096  8192   16384
    sizes, acc = sweep(4, [0.90, 0.905, 0.91, 0.87, 0.905, 0.90, 0.895, 0.85, 0.80, 0.905, 0.70])
    tolerance = 0.02
    band = max(acc) - tolerance
    naive_largest_within = max(b for b, a in zip(sizes, acc, strict=True) if a >= band)
    assert naive_largest_within == 8192  # past the fall: wrong
    naive_first_drop = next(b for b, a in zip(sizes, acc, strict=True) if a < band)
    assert naive_first_drop == 128  # ends the plateau at the dip (b_max would be 64): wrong

    s = suggest_batch_bounds(sizes, acc, tolerance=tolerance)
    assert (s["b_min"], s["b_max"]) == (16, 1024) and s["bracketed"]
    assert s["plateau"] == [16, 32, 64, 128, 256, 512, 1024]
    assert s["best_batch_size"] == 64  # ties in smoothed accuracy go to the best measured
    assert s["smoothed"][3] == pytest.approx(0.905)  # the dip is outvoted
    assert s["smoothed"][9] == pytest.approx(0.80)  # so is the lucky large batch


def test_non_monotone_curve_with_worse_tiny_batches():
    #          8     16    32    64    128   256    512   1024  2048  4096
    sizes, acc = sweep(3, [0.80, 0.86, 0.90, 0.91, 0.91, 0.905, 0.90, 0.86, 0.82, 0.78])
    s = suggest_batch_bounds(sizes, acc)
    assert (s["b_min"], s["b_max"]) == (32, 512) and s["bracketed"]
    assert s["best_batch_size"] == 64
    assert "smallest batch swept" not in s["message"]


@pytest.mark.parametrize("missing", [math.nan, None, math.inf])
def test_diverged_smallest_batches_are_excluded(missing):
    #          8        16       32    64     128   256   512   1024  2048  4096
    sizes, acc = sweep(3, [missing, missing, 0.88, 0.905, 0.91, 0.91, 0.90, 0.87, 0.83, 0.80])
    s = suggest_batch_bounds(sizes, acc)
    assert s["diverged"] == [8, 16] and s["smoothed"][:2] == [None, None]
    # 32 measured 0.88, below the band 0.89, next to a diverged size: not pulled into the plateau.
    assert (s["b_min"], s["b_max"]) == (64, 512) and s["bracketed"]


def test_a_diverged_size_splits_the_plateau_and_can_bound_it():
    #          32    64    128   256     512   1024  2048  4096
    sizes, acc = sweep(5, [0.90, 0.91, 0.91, math.nan, 0.90, 0.90, 0.85, 0.80])
    s = suggest_batch_bounds(sizes, acc)
    assert (s["b_min"], s["b_max"]) == (32, 128) and s["bracketed"]
    assert "256: diverged" in s["message"]


def test_repeated_sizes_are_averaged_and_any_divergence_counts():
    sizes = [32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024]
    acc = [0.89, 0.91, 0.9, 0.9, 0.91, 0.89, 0.9, 0.9, 0.7, 0.72, 0.6, math.nan]
    s = suggest_batch_bounds(sizes, acc)
    assert s["sizes"] == [32, 64, 128, 256, 512, 1024] and s["diverged"] == [1024]
    assert (s["b_min"], s["b_max"]) == (32, 256) and s["bracketed"]


def test_not_bracketed_when_accuracy_never_falls():
    sizes, acc = sweep(5, [0.90, 0.905, 0.90, 0.895, 0.90, 0.895, 0.89, 0.895, 0.89])  # to 8192
    s = suggest_batch_bounds(sizes, acc)
    assert not s["bracketed"] and (s["b_min"], s["b_max"]) == (32, 8192)
    assert (
        "accuracy at the largest batch 8192 is still within 0.02 of the best: extend the sweep "
        "to larger batches" in s["message"]
    )


def test_not_bracketed_when_the_best_is_the_largest_batch():
    sizes, acc = sweep(5, [0.70, 0.75, 0.80, 0.85, 0.885, 0.90])
    s = suggest_batch_bounds(sizes, acc)
    assert not s["bracketed"] and s["best_batch_size"] == 1024 and s["b_max"] == 1024
    assert s["b_min"] == 512
    assert "best accuracy is at the largest batch 1024: extend the sweep to larger" in s["message"]


def test_a_fall_at_the_last_point_alone_is_not_trusted():
    sizes, acc = sweep(5, [0.90] * 7 + [0.80])
    s = suggest_batch_bounds(sizes, acc)
    assert not s["bracketed"] and s["b_max"] == 4096
    assert "one point is not trusted" in s["message"]
    s = suggest_batch_bounds(*sweep(5, [0.90] * 7 + [0.80, 0.75]))  # two points confirm it
    assert s["bracketed"] and s["b_max"] == 2048


def test_not_bracketed_with_fewer_than_three_usable_points():
    s = suggest_batch_bounds([64, 128, 256], [math.nan, 0.9, 0.85])
    assert not s["bracketed"] and "only 2 batch size(s)" in s["message"]
    assert (s["b_min"], s["b_max"]) == (128, 128)  # best effort from the measured points
    s = suggest_batch_bounds([256], [0.9])
    assert not s["bracketed"] and (s["b_min"], s["b_max"]) == (256, 256)


@pytest.mark.parametrize(
    "sizes, acc, kwargs, match",
    [
        ([32, 64], [0.9], {}, "same length"),
        ([0, 64, 128], [0.9, 0.9, 0.8], {}, "batch_sizes must all be positive integers"),
        ([-32, 64, 128], [0.9, 0.9, 0.8], {}, "batch_sizes"),
        ([32.5, 64, 128], [0.9, 0.9, 0.8], {}, "batch_sizes"),
        ([32, 64, 128], [0.9, 0.9, 0.8], {"tolerance": 0.0}, "tolerance must be in \\(0, 1\\)"),
        ([32, 64, 128], [0.9, 0.9, 0.8], {"tolerance": 1.0}, "tolerance"),
        ([32, 64, 128], [0.9, 0.9, 0.8], {"tolerance": -0.1}, "tolerance"),
        ([32, 64, 128], [90.0, 91.0, 80.0], {}, "final_accuracies must be fractions"),
        ([32, 64], [math.nan, None], {}, "every run diverged"),
    ],
)
def test_suggest_batch_bounds_bad_input(sizes, acc, kwargs, match):
    with pytest.raises(ValueError, match=match):
        suggest_batch_bounds(sizes, acc, **kwargs)
