"""lr_min / lr_max selection from a grid range test."""

import math

import pytest

from jaxsched.range_test import suggest_from_grid


def test_picks_min_loss_and_steepest_fall():
    lrs = [10.0, 1.0, 0.1, 0.01, 1e-3, 1e-4]
    losses = [math.nan, 0.5, 0.3, 0.6, 1.9, 2.2]
    s = suggest_from_grid(lrs, losses)
    assert s["lr_max"] == 0.1
    # slopes per decade: 1e-4->1e-3: -0.3, 1e-3->1e-2: -1.3, 1e-2->1e-1: -0.3
    assert s["lr_min"] == 1e-3 and s["steepest_segment"] == [1e-3, 1e-2]
    assert s["usable"] == [1e-4, 1e-3, 0.01, 0.1, 1.0]


def test_rates_above_the_first_divergence_are_excluded():
    # 1.0 diverged; 10.0 happened to end finite and low, but is past the unstable point.
    s = suggest_from_grid([10.0, 1.0, 0.1, 0.01], [0.01, math.inf, 0.4, 1.0])
    assert s["lr_max"] == 0.1 and s["lr_min"] == 0.01
    assert 10.0 not in s["usable"]


def test_no_falling_segment_falls_back_to_a_decade_below():
    s = suggest_from_grid([0.1, 0.01], [None, 0.9])
    assert s["lr_max"] == 0.01 and s["lr_min"] == pytest.approx(1e-3)
    assert s["steepest_segment"] is None


def test_uneven_grids_use_slopes_per_log_unit():
    # The 1e-3 -> 1e-1 segment falls further (1.0) but over two decades: slope -0.5 per decade;
    # 1e-4 -> 1e-3 falls 0.6 in one decade.
    s = suggest_from_grid([1e-4, 1e-3, 1e-1], [2.0, 1.4, 0.4])
    assert s["lr_min"] == 1e-4


@pytest.mark.parametrize(
    "lrs, losses, match",
    [
        ([0.1, 0.01], [1.0], "same length"),
        ([0.1, 0.0], [1.0, 2.0], "learning_rates"),
        ([0.1, 0.01], [math.nan, None], "finite"),
    ],
)
def test_bad_input(lrs, losses, match):
    with pytest.raises(ValueError, match=match):
        suggest_from_grid(lrs, losses)
