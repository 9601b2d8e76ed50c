"""Small statistics helpers for experiment summaries (pure NumPy)."""

import math
from statistics import NormalDist
from typing import Any

import numpy as np


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (lo, hi) for a binomial proportion successes / trials.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and is not empty at 0 or n
    successes: with z the two-sided normal quantile of `confidence`, p = successes / trials,
      centre = (p + z^2 / 2n) / (1 + z^2 / n),
      half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2).
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials={trials}], got {successes}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n, p = trials, successes / trials
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return lo, hi


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, fraction exactly zero, min, max and quartiles of all `values`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("values must not be empty")
    q1, median, q3 = np.quantile(v, (0.25, 0.5, 0.75))
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "zero_fraction": float(np.mean(v == 0.0)),
        "min": float(v.min()),
        "max": float(v.max()),
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
    }


def density(
    values: np.ndarray, *, points: int = 100, max_samples: int = 20_000, seed: int = 0
) -> dict[str, list[float]]:
    """Gaussian kernel density estimate of `values` (Scott's bandwidth, as matplotlib's
    violinplot), on `points` evenly spaced coords from min to max.

    More than `max_samples` values are subsampled (seeded) first. Returns {"coords", "density"}
    (density integrates to ~1; a constant input gives a single spike of density 1).
    """
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size > max_samples:
        v = np.random.default_rng(seed).choice(v, max_samples, replace=False)
    lo, hi = float(v.min()), float(v.max())
    coords = np.linspace(lo, hi, points)
    std = v.std()
    if std == 0.0 or hi == lo:
        return {"coords": coords.tolist(), "density": np.ones(points).tolist()}
    bandwidth = std * v.size ** (-1 / 5)
    dens = np.zeros(points)
    for chunk in np.array_split(v, max(1, v.size // 4096)):
        z = (coords[:, None] - chunk[None, :]) / bandwidth
        dens += np.exp(-0.5 * z * z).sum(axis=1)
    dens /= v.size * bandwidth * math.sqrt(2 * math.pi)
    return {"coords": coords.tolist(), "density": dens.tolist()}


def linear_fit(
    x: np.ndarray, y: np.ndarray, at: np.ndarray, confidence: float = 0.95
) -> dict[str, Any]:
    """Least-squares line y = intercept + slope x, and at the points `at` its fitted values with
    the two-sided `confidence` band of the fitted mean (Student's t, n - 2 degrees of freedom):
    fit +- t s sqrt(1/n + (a - mean x)^2 / sum (x - mean x)^2), s^2 the residual variance.
    (seaborn's lmplot draws a bootstrap band of the same quantity.) Needs 3 or more points
    with at least two distinct x.

    Returns {"slope", "intercept", "at", "fit", "lo", "hi"} (lists for the arrays).

    Examples:
      >>> from jaxsched.stats import linear_fit
      >>> out = linear_fit(np.array([0.0, 1, 2, 3]), np.array([1.0, 3, 5, 7]), np.array([4.0]))
      >>> round(out["slope"], 6), round(out["intercept"], 6), out["lo"] == out["hi"]
      (2.0, 1.0, True)
    """
    from scipy import stats as scipy_stats  # a dependency of jax

    x, y, at = (np.asarray(v, dtype=np.float64) for v in (x, y, at))
    if x.shape != y.shape or x.ndim != 1 or x.size < 3 or np.ptp(x) == 0:
        raise ValueError(f"need 3+ points (x, y) with 2+ distinct x, got {x.size}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n, mx = x.size, x.mean()
    sxx = np.sum((x - mx) ** 2)
    slope = float(np.sum((x - mx) * (y - y.mean())) / sxx)
    intercept = float(y.mean() - slope * mx)
    residual = y - (intercept + slope * x)
    s = math.sqrt(float(np.sum(residual**2)) / (n - 2))
    t = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 2))
    fit = intercept + slope * at
    half = t * s * np.sqrt(1 / n + (at - mx) ** 2 / sxx)
    return {
        "slope": slope,
        "intercept": intercept,
        "at": at.tolist(),
        "fit": fit.tolist(),
        "lo": (fit - half).tolist(),
        "hi": (fit + half).tolist(),
    }
