"""Choosing lr_min / lr_max from an LR range test, in its grid and its one-run sweep forms.

Grid form (the course's seeds): train a fresh model for a few epochs at each learning rate of a
log-spaced grid and look at the final training loss against log10(lr). The seeds read the
bounds off that curve by eye, in the region where the loss falls fastest. `suggest_from_grid`
makes that reading a rule:

  * runs that diverged (or whose final loss is not finite) are excluded, as is every larger
    learning rate than the smallest one that diverged: past that point training is unstable;
  * lr_max is the learning rate with the lowest final loss among the rest;
  * lr_min is the lower end of the steepest-falling segment of the curve at or below lr_max:
    the adjacent pair (lr_a < lr_b) with the most negative slope
    (loss(lr_b) - loss(lr_a)) / (log10 lr_b - log10 lr_a).
  * when no segment falls (lr_max is the smallest usable rate), lr_min = lr_max / 10.

Sweep form (Smith 2017; fastai's lr_find): one run whose learning rate grows exponentially per
update (`sweep_schedule`), stopped when the smoothed loss exceeds `factor` times its best
(`explosion_rule`). `suggest_from_sweep` reads the same two quantities off the smoothed curve:

  * the per-update losses are cut at the first NaN/inf and at the explosion point;
  * isolated spikes are removed by a running median over 5 updates, the result is smoothed by a
    bias-corrected exponential moving average (beta = 0.98), and the first `skip_start` updates
    are ignored, so neither a single spike nor the start decides anything;
  * lr_max is the rate at the minimum of the smoothed loss;
  * lr_min is the rate where the smoothed loss falls fastest against log10(lr) before that
    minimum: the curve is averaged in bins a tenth of a decade wide and lr_min is the lower end
    of the most negative slope between adjacent bins (update-to-update slopes are noise when a
    sweep spends hundreds of updates per decade); when nothing falls, lr_min = lr_max / 10.
"""

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optax


def suggest_from_grid(
    learning_rates: Sequence[float], final_losses: Sequence[float]
) -> dict[str, Any]:
    """Applies the rule above.

    Args:
      learning_rates: the grid, positive, any order.
      final_losses: final training loss per learning rate; NaN/inf (or None) for diverged runs.

    Returns:
      {"lr_min", "lr_max", "steepest_segment": [lr_a, lr_b] or None, "usable": [lrs], "rule"}.

    Raises:
      ValueError: on mismatched lengths, non-positive rates, or when no run has a finite loss.
    """
    if len(learning_rates) != len(final_losses):
        raise ValueError(
            f"learning_rates and final_losses must have the same length, got "
            f"{len(learning_rates)} and {len(final_losses)}"
        )
    if any(not lr > 0 for lr in learning_rates):
        raise ValueError(f"learning_rates must all be > 0, got {list(learning_rates)}")
    points = sorted(zip(learning_rates, final_losses, strict=True))
    finite = [lr for lr, loss in points if loss is not None and math.isfinite(loss)]
    unstable = [lr for lr, loss in points if loss is None or not math.isfinite(loss)]
    if not finite:
        raise ValueError("no learning rate gave a finite final loss; try smaller rates")
    limit = min(unstable) if unstable else math.inf
    usable = [
        (lr, loss) for lr, loss in points if lr < limit and loss is not None and math.isfinite(loss)
    ]
    lr_max, _ = min(usable, key=lambda p: p[1])
    below = [p for p in usable if p[0] <= lr_max]
    segments = [((a, la), (b, lb)) for (a, la), (b, lb) in itertools.pairwise(below)]
    slopes = [(lb - la) / (math.log10(b) - math.log10(a)) for (a, la), (b, lb) in segments]
    if slopes and min(slopes) < 0:
        (lr_min, _), (seg_hi, _) = segments[slopes.index(min(slopes))]
        steepest = [lr_min, seg_hi]
    else:
        lr_min, steepest = lr_max / 10, None
    return {
        "lr_min": lr_min,
        "lr_max": lr_max,
        "steepest_segment": steepest,
        "usable": [lr for lr, _ in usable],
        "rule": "lr_max: lowest final loss below the first diverged rate; lr_min: lower end "
        "of the steepest-falling segment of loss vs log10(lr) up to lr_max",
    }


def sweep_schedule(lr_start: float, lr_end: float, num_steps: int) -> optax.Schedule:
    """lr(k) = lr_start * (lr_end / lr_start) ** (k / (num_steps - 1)), k = 0 .. num_steps - 1.

    The exponential ramp of the one-run range test (optax.exponential_decay with a growth rate).
    """
    if not 0 < lr_start < lr_end:
        raise ValueError(f"need 0 < lr_start < lr_end, got lr_start={lr_start}, lr_end={lr_end}")
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    return optax.exponential_decay(
        lr_start, transition_steps=num_steps - 1, decay_rate=lr_end / lr_start
    )


def sweep_beta(num_steps: int) -> float:
    """EMA coefficient whose time constant is 1/40 of the sweep: 0.98 for 2000 updates (fastai's
    value), less for short sweeps, whose curve a 50-update lag would shift to the right."""
    return 1.0 - 1.0 / max(1.0, num_steps / 40)


def smooth(losses: Sequence[float], beta: float = 0.98) -> np.ndarray:
    """Bias-corrected exponential moving average: s_i = m_i / (1 - beta^(i+1)),
    m_i = beta m_{i-1} + (1 - beta) loss_i (fastai's smoothing). float64[len(losses)]."""
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    out, m = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        m = beta * m + (1 - beta) * loss
        out[i] = m / (1 - beta ** (i + 1))
    return out


def despike(losses: Sequence[float], window: int = 5) -> np.ndarray:
    """Running median over `window` updates centred on each (shrunk at the ends): removes
    isolated spikes of up to window // 2 updates and keeps trends. float64[len(losses)]."""
    values = np.asarray(losses, dtype=float)
    half = window // 2
    return np.array(
        [np.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]
    )


def _explosion_index(smoothed: np.ndarray, factor: float, skip_start: int) -> int | None:
    """First index >= skip_start where the smoothed loss exceeds factor x its best so far."""
    best = np.inf
    for i in range(skip_start, len(smoothed)):
        best = min(best, smoothed[i])
        if smoothed[i] > factor * best:
            return i
    return None


def explosion_rule(factor: float = 4.0, beta: float = 0.98, skip_start: int = 10) -> Callable:
    """A `fit(stop_when=...)` rule: True once the smoothed loss exceeds factor x its best."""
    if factor <= 1:
        raise ValueError(f"factor must be > 1, got {factor}")

    def stop(history) -> bool:
        smoothed = smooth(despike(history.steps["loss"]), beta)
        return _explosion_index(smoothed, factor, skip_start) is not None

    return stop


def _steepest_fall(log_lr: np.ndarray, loss: np.ndarray, bin_decades: float) -> float | None:
    """log10(lr) at the lower end of the steepest fall between adjacent bins of log_lr.

    Each bin averages the points within `bin_decades` of log10(lr): with hundreds of updates
    per decade, update-to-update differences are mostly noise, bins of a tenth of a decade are
    not. None when fewer than two bins or nothing falls.
    """
    if len(log_lr) < 2:
        return None
    bins = np.floor((log_lr - log_lr[0]) / bin_decades).astype(int)
    centers = np.array([log_lr[bins == b].mean() for b in np.unique(bins)])
    means = np.array([loss[bins == b].mean() for b in np.unique(bins)])
    if len(centers) < 2:
        return None
    slopes = np.diff(means) / np.diff(centers)
    k = int(np.argmin(slopes))
    return float(centers[k]) if slopes[k] < 0 else None


def suggest_from_sweep(
    learning_rates: Sequence[float],
    losses: Sequence[float],
    *,
    beta: float = 0.98,
    skip_start: int = 10,
    factor: float = 4.0,
    bin_decades: float = 0.1,
) -> dict[str, Any]:
    """Applies the sweep rule of the module docstring.

    Args:
      learning_rates: the rate of each update, increasing.
      losses: the batch loss of each update (NaN/inf/None after a divergence).
      bin_decades: width in log10(lr) of the bins the slope is measured between.

    Returns:
      {"lr_min", "lr_max", "used_steps", "stopped_at", "rule"}.

    Raises:
      ValueError: on mismatched lengths or fewer than skip_start + 2 finite losses.
    """
    if len(learning_rates) != len(losses):
        raise ValueError(
            f"learning_rates and losses must have the same length, got "
            f"{len(learning_rates)} and {len(losses)}"
        )
    values = np.array([np.nan if v is None else v for v in losses], dtype=float)
    finite = np.isfinite(values)
    end = len(values) if finite.all() else int(np.argmin(finite))
    smoothed = smooth(despike(values[:end]), beta)
    explosion = _explosion_index(smoothed, factor, skip_start)
    if explosion is not None:
        end = explosion
    if end < skip_start + 2:
        raise ValueError(
            f"need at least skip_start + 2 = {skip_start + 2} usable updates before "
            f"the loss diverged or exploded, got {end}"
        )
    lrs = np.asarray(learning_rates, dtype=float)
    window = slice(skip_start, end)
    i_min = skip_start + int(np.argmin(smoothed[window]))
    lr_max = float(lrs[i_min])
    steepest = _steepest_fall(
        np.log10(lrs[skip_start : i_min + 1]), smoothed[skip_start : i_min + 1], bin_decades
    )
    lr_min = lr_max / 10 if steepest is None else float(10**steepest)
    return {
        "lr_min": lr_min,
        "lr_max": lr_max,
        "used_steps": end,
        "stopped_at": explosion,
        "rule": "lr_max: minimum of the smoothed loss; lr_min: steepest fall of the smoothed "
        "loss against log10(lr) before it",
    }
