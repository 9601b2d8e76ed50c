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
  * lr_max is the rate at the minimum of the smoothed loss; when that minimum is the first
    update read, or is not below the loss before the first update (nothing trained: every
    rate too large, or all too small), there is no suggestion;
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

    Examples:
      >>> from jaxsched import range_test
      >>> lrs, losses = [1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.3, 2.0, 0.9, 0.5, float("nan")]
      >>> result = range_test.suggest_from_grid(lrs, losses)
      >>> result["lr_min"], result["lr_max"], result["steepest_segment"]
      (0.001, 0.1, [0.001, 0.01])
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

    Examples:
      >>> from jaxsched import range_test
      >>> lr = range_test.sweep_schedule(1e-4, 1.0, num_steps=5)
      >>> [round(float(lr(k)), 4) for k in range(5)]
      [0.0001, 0.001, 0.01, 0.1, 1.0]
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
    value), less for short sweeps, whose curve a 50-update lag would shift to the right.

    Examples:
      >>> from jaxsched import range_test
      >>> round(range_test.sweep_beta(2000), 4), round(range_test.sweep_beta(400), 4)
      (0.98, 0.9)
    """
    return 1.0 - 1.0 / max(1.0, num_steps / 40)


def smooth(losses: Sequence[float], beta: float = 0.98) -> np.ndarray:
    """Bias-corrected exponential moving average: s_i = m_i / (1 - beta^(i+1)),
    m_i = beta m_{i-1} + (1 - beta) loss_i (fastai's smoothing). float64[len(losses)].

    Examples:
      >>> from jaxsched import range_test
      >>> range_test.smooth([1.0, 2.0, 3.0], beta=0.5).round(4).tolist()
      [1.0, 1.6667, 2.4286]
    """
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    out, m = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        m = beta * m + (1 - beta) * loss
        out[i] = m / (1 - beta ** (i + 1))
    return out


def despike(losses: Sequence[float], window: int = 5) -> np.ndarray:
    """Running median over `window` updates centred on each (shrunk at the ends): removes
    isolated spikes of up to window // 2 updates and keeps trends. float64[len(losses)].

    Examples:
      >>> from jaxsched import range_test
      >>> range_test.despike([3.0, 3.0, 9.0, 2.0, 2.0, 2.0]).tolist()  # the spike goes
      [3.0, 3.0, 3.0, 2.0, 2.0, 2.0]
    """
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
    """A `fit(stop_when=...)` rule: True once the smoothed loss exceeds factor x its best.

    Examples:
      >>> from types import SimpleNamespace as History
      >>> from jaxsched import range_test
      >>> stop = range_test.explosion_rule(factor=4.0, skip_start=0)
      >>> falling, exploding = [2.0, 1.5, 1.0], [1.0] * 3 + [50.0] * 6
      >>> stop(History(steps={"loss": falling})), stop(History(steps={"loss": exploding}))
      (False, True)
    """
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
      {"lr_min", "lr_max", "used_steps", "stopped_at", "rule", "beta", "smoothed_loss": the
       smoothed curve the rule read, one value per update of the first used_steps}.

    Raises:
      ValueError: on mismatched lengths, fewer than skip_start + 2 finite losses, or a
        smoothed loss that never falls (below its first value read, or below the loss before
        the first update).

    Examples:
      >>> import numpy as np
      >>> from jaxsched import range_test
      >>> losses = np.concatenate([np.full(15, 2.0), np.linspace(2.0, 0.5, 15), np.full(11, 9.0)])
      >>> result = range_test.suggest_from_sweep(np.geomspace(1e-4, 1.0, 41), losses)
      >>> round(result["lr_min"], 4), round(result["lr_max"], 4), result["stopped_at"]
      (0.0398, 0.0794, None)
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
    if i_min == skip_start or not smoothed[i_min] < values[0]:
        raise ValueError(
            f"the smoothed loss never falls below its first value read (update {skip_start}) "
            f"or below the loss before the first update ({values[0]:.4g}): no rate swept "
            f"trains; lower the start if the loss rose at once, raise the end if it stayed flat"
        )
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
        "beta": beta,
        "smoothed_loss": smoothed[:end].tolist(),
    }


# ------------------------------------------------------------------------------------------------
# Batch-size range: b_min / b_max for batch_schedules.cyclic_batch_size from a batch-size sweep.


def _median3_tukey(values: Sequence[float]) -> list[float]:
    """Running median of 3 with Tukey's end-point rule: interior y_i = median(x_{i-1}, x_i,
    x_{i+1}); ends y_0 = median(x_0, y_1, 3 y_1 - 2 y_2) (and mirrored), i.e. an end point is
    kept unless it disagrees with both its neighbour and the trend extrapolated from the next
    two. Needs len >= 3."""

    def median(a: float, b: float, c: float) -> float:
        return sorted((a, b, c))[1]

    x = list(values)
    y = [x[0]] + [median(*x[i - 1 : i + 2]) for i in range(1, len(x) - 1)] + [x[-1]]
    y[0] = median(x[0], y[1], 3 * y[1] - 2 * y[2])
    y[-1] = median(x[-1], y[-2], 3 * y[-2] - 2 * y[-3])
    return y


def suggest_batch_bounds(
    batch_sizes: Sequence[int],
    final_accuracies: Sequence[float | None],
    *,
    tolerance: float = 0.02,
) -> dict[str, Any]:
    """b_min / b_max for `cyclic_batch_size` from a batch-size sweep: the plateau of accuracy.

    The sweep trains the same model with the same fixed learning rate for the same number of
    epochs at each batch size (powers of two, so the bounds can be passed to the cyclic
    schedules). Accuracy usually falls as batches grow (fewer updates are made) and can also be
    worse, or diverge, at the smallest batches (too much gradient noise for the rate). The rule:

      1. Sort by batch size. Repeated sizes (seeds) are averaged; a size at which any run
         diverged (NaN/inf/None accuracy) counts as diverged.
      2. Smooth over the sorted sizes, i.e. in log2(batch), with a running median of 3 (Tukey's
         end-point rule at both ends), diverged sizes entering as accuracy 0: one point that
         disagrees with both neighbours is replaced by one of them, so a single noisy point can
         neither end the plateau (a spurious dip inside it) nor create one (a spurious high
         point after the fall), and a point next to a diverged size is not pulled up.
      3. best = the highest smoothed accuracy among non-diverged sizes (ties: highest measured).
      4. The plateau is the contiguous run of sizes around best whose smoothed accuracy is
         >= best - tolerance; it never contains a diverged size (a cycle visits every size
         between its bounds). b_min and b_max are its smallest and largest sizes.
      5. bracketed = True when a larger size than b_max was swept and either its smoothed
         accuracy is below the band or it diverged, with at least 3 usable (finite) sizes.
         Because of the median, a fall seen only at the largest size is not trusted: the sweep
         must go at least two sizes past the fall.

    Why not a naive rule: "the largest batch within tolerance of the best" is moved past the
    fall by one lucky large-batch run (a spurious high point after the fall), and a lucky
    best raises the band so real plateau points drop out of it; it also ignores contiguity, so
    a curve that comes back within tolerance after falling (non-monotone noise) is read as one
    plateau. "The first drop" (walk up from the best, or from the smallest batch, to the first
    point below the band) is ended early by one unlucky run inside the plateau, and when the
    smallest batches are worse the walk from the smallest batch starts below the band. Both
    read single raw points; this rule reads the median of three.

    Limits: an isolated outlier is removed only if its two neighbours agree; one right next to
    the edge of the plateau (e.g. a spurious high point at the first size past the fall) can
    move that edge by one grid step. Sizes not swept between b_min and b_max are not checked.

    Args:
      batch_sizes: the swept sizes, positive integers, any order (repeats allowed).
      final_accuracies: final accuracy (a fraction in [0, 1]) per run; NaN/inf/None for runs
        that diverged.
      tolerance: how far below the best smoothed accuracy still counts as the plateau, in
        (0, 1) (a fraction, like the accuracies).

    Returns:
      {"b_min", "b_max": the plateau's bounds (best effort when not bracketed),
       "bracketed": bool, "message": str (what to extend when not bracketed),
       "best_batch_size", "best_accuracy": the best size and its smoothed accuracy,
       "threshold": best_accuracy - tolerance, "plateau": [sizes from b_min to b_max],
       "sizes": [distinct sizes, sorted], "smoothed": [smoothed accuracy per size, None where
       diverged], "diverged": [sizes], "rule": one line}.

    Raises:
      ValueError: on mismatched lengths, sizes that are not positive integers, accuracies
        outside [0, 1], tolerance outside (0, 1), or when every run diverged.

    Examples:
      >>> from jaxsched import range_test
      >>> sizes = [16, 32, 64, 128, 256, 512]
      >>> result = range_test.suggest_batch_bounds(sizes, [0.90, 0.91, 0.91, 0.90, 0.85, 0.80])
      >>> result["b_min"], result["b_max"], result["bracketed"]
      (16, 128, True)
    """
    sizes, ok, raw, usable = _sweep_means(
        _check_batch_sweep(batch_sizes, final_accuracies, tolerance)
    )
    enough = len(usable) >= 3
    smoothed = _median3_tukey(raw) if enough else list(raw)
    best = max(usable, key=lambda i: (smoothed[i], raw[i]))
    threshold = smoothed[best] - tolerance
    low, high = _band_around(best, ok, smoothed, threshold)
    bracketed = enough and high < len(sizes) - 1
    message = _plateau_message(
        sizes,
        ok,
        raw,
        smoothed,
        n_usable=len(usable),
        best=best,
        low=low,
        high=high,
        threshold=threshold,
        tolerance=tolerance,
    )
    rule = (
        "running median of 3 in log2(batch) (diverged = 0); b_min..b_max: the contiguous "
        "non-diverged run around the best smoothed accuracy within tolerance of it; bracketed "
        "when a larger swept batch falls below that band or diverged"
    )
    return _bounds_record(
        sizes, ok, smoothed, best, (low, high), threshold, bracketed, message, rule
    )


BATCH_BOUND_RULES = ("plateau", "relative_drop")


def relative_drop_batch_bounds(
    batch_sizes: Sequence[int],
    final_accuracies: Sequence[float | None],
    *,
    drop: float = 0.035,
) -> dict[str, Any]:
    """b_min / b_max by the course notebooks' rule: the sizes whose final accuracy is within a
    relative `drop` of the best one.

      1. Sort by batch size; repeated sizes are averaged, a diverged run (NaN/inf/None) makes
         its size diverged. No smoothing: the raw accuracies, as the notebooks read them.
      2. best = the highest accuracy; threshold = best * (1 - drop).
      3. b_min..b_max: the contiguous run of non-diverged sizes around the best whose accuracy
         is >= threshold. bracketed: a larger swept size falls below it (or diverged).

    `suggest_batch_bounds` (the plateau rule, jaxsched's default) reads a running median
    instead, so one lucky or unlucky run cannot move the bounds; this rule is kept to reproduce
    the notebooks (3.5 % gave them 16 / 256).

    Args:
      batch_sizes / final_accuracies: as `suggest_batch_bounds`.
      drop: the relative drop from the best still inside the bounds, in (0, 1).

    Returns:
      The keys of `suggest_batch_bounds` ("smoothed" holds the raw means).

    Examples:
      >>> from jaxsched import range_test
      >>> sizes = [16, 32, 64, 128, 256, 512]
      >>> result = range_test.relative_drop_batch_bounds(
      ...     sizes, [0.90, 0.91, 0.90, 0.89, 0.88, 0.80], drop=0.035)
      >>> result["b_min"], result["b_max"], round(result["threshold"], 5)
      (16, 256, 0.87815)
    """
    if isinstance(drop, bool) or not isinstance(drop, (int, float, np.number)) or not 0 < drop < 1:
        raise ValueError(f"drop must be in (0, 1), got {drop!r}")
    sizes, ok, raw, usable = _sweep_means(
        _check_batch_sweep(batch_sizes, final_accuracies, tolerance=0.5)  # (unused here)
    )
    best = max(usable, key=lambda i: raw[i])
    threshold = raw[best] * (1 - drop)
    low, high = _band_around(best, ok, raw, threshold)
    bracketed = high < len(sizes) - 1
    message = (
        f"b_max {sizes[high]}: {sizes[high + 1]} falls more than {drop:.1%} below the best"
        if bracketed
        else f"every size from {sizes[low]} up is within {drop:.1%} of the best: sweep larger "
        "batches to find b_max"
    )
    rule = (
        f"the course notebooks': the contiguous sizes around the best final accuracy within a "
        f"relative {drop:.1%} of it (raw accuracies)"
    )
    return _bounds_record(sizes, ok, raw, best, (low, high), threshold, bracketed, message, rule)


def _sweep_means(
    runs: dict[int, list[float]],
) -> tuple[list[int], list[bool], list[float], list[int]]:
    """(sizes sorted, ok per size (no run diverged), mean accuracy per size (0 where diverged),
    indices of the ok sizes); raises ValueError when every run diverged."""
    sizes = sorted(runs)
    ok = [all(math.isfinite(v) for v in runs[s]) for s in sizes]
    raw = [float(np.mean(runs[s])) if good else 0.0 for s, good in zip(sizes, ok, strict=True)]
    usable = [i for i in range(len(sizes)) if ok[i]]
    if not usable:
        raise ValueError("every run diverged: lower the learning rate or sweep larger batches")
    return sizes, ok, raw, usable


def _band_around(
    best: int, ok: list[bool], curve: list[float], threshold: float
) -> tuple[int, int]:
    """(low, high): the contiguous ok indices around `best` whose `curve` >= threshold."""

    def inside(i: int) -> bool:
        return ok[i] and curve[i] >= threshold - 1e-12

    low = high = best
    while low > 0 and inside(low - 1):
        low -= 1
    while high < len(curve) - 1 and inside(high + 1):
        high += 1
    return low, high


def _bounds_record(
    sizes: list[int],
    ok: list[bool],
    curve: list[float],
    best: int,
    band: tuple[int, int],
    threshold: float,
    bracketed: bool,
    message: str,
    rule: str,
) -> dict[str, Any]:
    """The dict `suggest_batch_bounds` and `relative_drop_batch_bounds` return."""
    low, high = band
    return {
        "b_min": sizes[low],
        "b_max": sizes[high],
        "bracketed": bracketed,
        "message": message,
        "best_batch_size": sizes[best],
        "best_accuracy": curve[best],
        "threshold": threshold,
        "plateau": sizes[low : high + 1],
        "sizes": sizes,
        "smoothed": [v if good else None for v, good in zip(curve, ok, strict=True)],
        "diverged": [s for s, good in zip(sizes, ok, strict=True) if not good],
        "rule": rule,
    }


def _check_batch_sweep(
    batch_sizes: Sequence[int], final_accuracies: Sequence[float | None], tolerance: float
) -> dict[int, list[float]]:
    """`suggest_batch_bounds`'s input checks: the runs' accuracies (NaN if diverged) by size."""
    if len(batch_sizes) != len(final_accuracies):
        raise ValueError(
            f"batch_sizes and final_accuracies must have the same length, got "
            f"{len(batch_sizes)} and {len(final_accuracies)}"
        )
    if not batch_sizes:
        raise ValueError("batch_sizes must not be empty")
    for size in batch_sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"batch_sizes must all be positive integers, got {list(batch_sizes)}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.number)):
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
    runs: dict[int, list[float]] = {}
    for size, accuracy in zip(batch_sizes, final_accuracies, strict=True):
        value = math.nan if accuracy is None else float(accuracy)
        if math.isfinite(value) and not 0 <= value <= 1:
            raise ValueError(
                f"final_accuracies must be fractions in [0, 1] (NaN/None for diverged runs), "
                f"got {accuracy!r}"
            )
        runs.setdefault(int(size), []).append(value)
    return runs


def _plateau_message(
    sizes: list[int],
    ok: list[bool],
    raw: list[float],
    smoothed: list[float],
    *,
    n_usable: int,
    best: int,
    low: int,
    high: int,
    threshold: float,
    tolerance: float,
) -> str:
    """`suggest_batch_bounds`'s message: why the plateau sizes[low..high] is (not) bracketed
    and what to extend."""
    enough = n_usable >= 3
    bracketed = enough and high < len(sizes) - 1
    b_min, b_max = sizes[low], sizes[high]
    if not enough:
        message = (
            f"only {n_usable} batch size(s) gave a finite accuracy; sweep at least 3 "
            f"(powers of two) to bracket the plateau"
        )
    elif bracketed:
        after = sizes[high + 1]
        reason = "diverged" if not ok[high + 1] else f"smoothed accuracy {smoothed[high + 1]:.4g}"
        message = (
            f"accuracy falls by more than {tolerance} beyond b_max={b_max} "
            f"(next batch {after}: {reason}; band >= {threshold:.4g})"
        )
    elif best == len(sizes) - 1:
        message = (
            f"the best accuracy is at the largest batch {b_max}: extend the sweep to larger batches"
        )
    else:
        message = (
            f"accuracy at the largest batch {b_max} is still within {tolerance} of the best: "
            f"extend the sweep to larger batches"
        )
        if raw[high] < threshold:
            message += (
                f" (it falls at {b_max} alone, and one point is not trusted: sweep at least "
                f"one larger batch)"
            )
    if enough and low == 0:
        message += f"; b_min={b_min} is the smallest batch swept (smaller ones were not tried)"
    return message
