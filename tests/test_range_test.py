"""lr_min / lr_max selection from a grid range test."""

import math

import numpy as np
import pytest

from jaxsched import results
from jaxsched.range_test import (
    despike,
    explosion_rule,
    smooth,
    suggest_from_grid,
    suggest_from_sweep,
    sweep_beta,
    sweep_schedule,
)


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


# ---------------------------------------------------------------- sweep form


def test_sweep_schedule_is_an_exponential_ramp():
    schedule = sweep_schedule(1e-9, 10.0, 101)
    lrs = np.array([float(schedule(k)) for k in range(101)])
    np.testing.assert_allclose(lrs, 1e-9 * 10 ** (np.arange(101) / 10), rtol=1e-4)


def test_smooth_is_a_bias_corrected_ema():
    np.testing.assert_allclose(smooth([2.0, 2.0, 2.0]), [2.0, 2.0, 2.0])
    m1 = 0.5 * 1.0
    m2 = 0.5 * m1 + 0.5 * 3.0
    np.testing.assert_allclose(smooth([1.0, 3.0], beta=0.5), [m1 / 0.5, m2 / 0.75])


def synthetic_sweep(n=200, spike_at=None, nan_from=None):
    """A loss curve over 1e-6..1: flat, falls fastest near 1e-3, minimum near 0.1, explodes."""
    lrs = 1e-6 * 10 ** (6 * np.arange(n) / (n - 1))
    x = np.log10(lrs)
    loss = 2.3 - 2.0 / (1 + np.exp(-3 * (x + 3))) + 40 * np.maximum(x + 1, 0) ** 2
    if spike_at is not None:
        loss[spike_at] = 50.0
    if nan_from is not None:
        loss[nan_from:] = np.nan
    return lrs, loss


def test_sweep_suggestion_on_a_known_curve():
    lrs, loss = synthetic_sweep()
    s = suggest_from_sweep(lrs, loss, beta=0.0)  # no smoothing: read the curve itself
    assert 10**-3.2 < s["lr_min"] < 10**-2.8  # steepest fall of the logistic at 1e-3
    assert 10**-1.6 < s["lr_max"] < 10**-0.9  # minimum before the quadratic blow-up
    assert s["stopped_at"] is not None and s["used_steps"] < len(lrs)


def test_sweep_suggestion_returns_the_curve_it_read():
    lrs, loss = synthetic_sweep(spike_at=3)
    s = suggest_from_sweep(lrs, loss, beta=0.9, skip_start=10)
    curve = np.asarray(s["smoothed_loss"])
    assert len(curve) == s["used_steps"] and s["beta"] == 0.9
    np.testing.assert_allclose(curve, smooth(despike(loss), 0.9)[: len(curve)], rtol=1e-12)
    assert s["lr_max"] == lrs[10 + int(np.argmin(curve[10:]))]


def test_sweep_suggestion_survives_an_early_spike_and_nan():
    lrs, loss = synthetic_sweep(spike_at=3, nan_from=190)
    s = suggest_from_sweep(lrs, loss)
    assert 10**-3.5 < s["lr_min"] < 10**-2.3
    assert s["lr_min"] < s["lr_max"] < 1.0


def test_sweep_suggestion_needs_enough_points():
    lrs, loss = synthetic_sweep(nan_from=5)
    with pytest.raises(ValueError, match="skip_start"):
        suggest_from_sweep(lrs, loss)


def test_explosion_rule_stops_after_a_blow_up():
    history = results.History()
    history.steps["loss"] = [2.0] * 20 + [1.0] * 5
    assert not explosion_rule(factor=4)(history)
    history.steps["loss"] += [100.0] * 5
    assert explosion_rule(factor=4)(history)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr_start=1.0, lr_end=0.1, num_steps=10), "lr_start"),
        (dict(lr_start=1e-3, lr_end=0.1, num_steps=1), "num_steps"),
    ],
)
def test_sweep_schedule_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sweep_schedule(**kwargs)


def test_despike_removes_isolated_spikes_and_keeps_trends():
    np.testing.assert_array_equal(despike([1, 1, 9, 1, 1]), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(despike([1, 2, 3, 4, 5, 6]), [2, 2.5, 3, 4, 4.5, 5])


def test_sweep_beta_scales_with_the_sweep_length():
    assert sweep_beta(2000) == pytest.approx(0.98)
    assert sweep_beta(100) == pytest.approx(0.6)
    assert sweep_beta(10) == 0.0


def test_sweep_suggestion_is_not_fooled_by_batch_noise():
    # 2000 updates over 10 decades, the loss falls fastest at 1e-4, batch noise sd 0.15 (as on
    # Fashion-MNIST). Update-to-update slopes would point at noise anywhere on the curve.
    rng = np.random.default_rng(0)
    lrs = 1e-9 * 10 ** (10 * np.arange(2000) / 1999)
    x = np.log10(lrs)
    loss = 3.0 - 2.5 / (1 + np.exp(-2 * (x + 4))) + 5 * np.maximum(x + 0.5, 0) ** 2
    loss += rng.normal(0, 0.15, loss.shape)
    s = suggest_from_sweep(lrs, loss, beta=sweep_beta(2000))
    assert 10**-4.7 < s["lr_min"] < 10**-3.3
    assert 10**-2.5 < s["lr_max"] < 10**0
