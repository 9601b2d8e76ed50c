"""Matplotlib figures drawn from results documents only (never from training objects)."""

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from jaxsched import results  # noqa: E402


def save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Saves `fig` as PNG atomically (`results.atomic_path`) and closes it."""
    try:
        with results.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def _finite(values: Sequence[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def lr_range_grid(runs: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> plt.Figure:
    """Final training loss and accuracy against log10(lr), one point per run.

    runs: [{"learning_rate", "final": {"train_loss", "train_accuracy"}, "status"}, ...]
    summary: with "lr_min" / "lr_max" (drawn as vertical lines when present).
    Diverged runs are marked with red crosses along the top of each panel.
    """
    runs = sorted(runs, key=lambda r: r["learning_rate"])
    log_lr = np.log10([r["learning_rate"] for r in runs])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in (
        (axes[0], "train_loss", "final training loss"),
        (axes[1], "train_accuracy", "final training accuracy"),
    ):
        values = _finite([r["final"].get(key) for r in runs])
        ok = np.isfinite(values)
        ax.plot(log_lr[ok], values[ok], "o-", label="completed")
        if (~ok).any():
            top = np.nanmax(values) if ok.any() else 1.0
            ax.plot(
                log_lr[~ok],
                np.full((~ok).sum(), top),
                "rx",
                markersize=10,
                label="diverged (NaN/inf)",
            )
        for name, style in (("lr_min", "g--"), ("lr_max", "m--")):
            if summary.get(name):
                ax.axvline(
                    math.log10(summary[name]),
                    color=style[0],
                    linestyle="--",
                    label=f"{name} = {summary[name]:g}",
                )
        ax.set_xlabel("log10(learning rate)")
        ax.set_ylabel(label)
        if key == "train_loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("LR range test (grid): one fresh model per learning rate")
    fig.tight_layout()
    return fig


def _moving_average(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): the trailing moving average of `values` over `window` points, NaNs dropped."""
    values = values[np.isfinite(values)]
    k = max(1, min(window, len(values)))
    return np.arange(k - 1, len(values)), np.convolve(values, np.ones(k) / k, mode="valid")


def step_curves(
    runs: Sequence[Mapping[str, Any]], key: str, *, smooth: int = 50, logy: bool = False
) -> plt.Figure:
    """Per-update `key` ("loss", "accuracy", "learning_rate") of each run, one line per run.

    runs: [{"label", "history": {"steps": {key: [...]}}}, ...]; a moving average over `smooth`
    updates tames the batch-to-batch noise (1 draws the raw values).
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        x, y = _moving_average(_finite(run["history"]["steps"][key]), smooth)
        if len(y):
            ax.plot(x, y, lw=1, label=f"{run['label']} ({run['history']['status']})")
    ax.set_xlabel("iteration (optimizer update)")
    name = key.replace("_", " ")
    ax.set_ylabel(name if smooth <= 1 else f"{name} (moving average, {smooth} updates)")
    if logy:
        ax.set_yscale("log", base=2 if key == "batch_size" else 10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def epoch_curves(
    runs: Sequence[Mapping[str, Any]], x: str = "epoch", eval_name: str = "validation"
) -> plt.Figure:
    """Train and validation loss and accuracy per epoch, every run on the same four panels.

    x: "epoch", or "updates" to place each epoch's values at the updates made by its end
    (runs with different batch sizes make different numbers of updates per epoch).
    eval_name: what the per-epoch evaluation set is, for the titles ("test" when it is one).
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = (
        ("train_loss", "training loss"),
        ("val_loss", f"{eval_name} loss"),
        ("train_accuracy", "training accuracy"),
        ("val_accuracy", f"{eval_name} accuracy"),
    )
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for run in runs:
            epochs = run["history"]["epochs"]
            if epochs.get(key):
                ax.plot(epochs[x], _finite(epochs[key]), marker=".", lw=1, label=run["label"])
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if "loss" in key:
            ax.set_yscale("log")
    for ax in axes[1]:
        ax.set_xlabel("epoch" if x == "epoch" else "optimizer updates")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def lr_sweep(run: Mapping[str, Any], summary: Mapping[str, Any]) -> plt.Figure:
    """Batch loss (faint) and the smoothed curve the rule read, against the learning rate of a
    one-run sweep.

    run: {"history": {"steps": {"learning_rate", "loss"}}}; summary: `range_test.
    suggest_from_sweep`'s ("lr_min", "lr_max", "smoothed_loss": the first used_steps updates,
    "beta"), drawn as given (nothing is recomputed here).
    """
    steps = run["history"]["steps"]
    lrs, loss = _finite(steps["learning_rate"]), _finite(steps["loss"])
    ok = np.isfinite(loss)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(lrs[ok], loss[ok], color="0.7", lw=0.8, label="batch loss")
    smoothed = _finite(summary.get("smoothed_loss") or [])
    if len(smoothed):
        label = f"smoothed (beta {summary['beta']:.2f})" if "beta" in summary else "smoothed"
        ax.plot(lrs[: len(smoothed)], smoothed, lw=2, label=label)
    for name, color in (("lr_min", "g"), ("lr_max", "m")):
        if summary.get(name):
            ax.axvline(
                summary[name], color=color, linestyle="--", label=f"{name} = {summary[name]:.3g}"
            )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (grows every update)")
    ax.set_ylabel("training loss")
    if ok.any():
        ax.set_ylim(0, min(np.nanmax(loss[ok]), 3 * np.nanmax(loss[ok][:10])) * 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("LR range test (one-run sweep)")
    fig.tight_layout()
    return fig


def schedule_curves(
    named: Mapping[str, Any], num_steps: int, *, logy: bool = False, ylabel: str = "learning rate"
) -> plt.Figure:
    """Draws each `optax.Schedule` in `named` ({label: schedule}) over updates 0..num_steps-1."""
    from jaxsched.schedules import schedule_values

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, schedule in named.items():
        ax.plot(np.arange(num_steps), schedule_values(schedule, num_steps), lw=1.2, label=label)
    ax.set_xlabel("update count (optimizer updates already made)")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def epoch_metric(
    runs: Sequence[Mapping[str, Any]],
    key: str,
    *,
    logy: bool = False,
    error: bool = False,
    title: str = "",
) -> plt.Figure:
    """One per-epoch metric (e.g. "train_loss") of each run: runs = [{"label", "history"}].

    error: plot 1 - value (an accuracy drawn as an error rate, as Hoffer et al.'s Figure 3a).
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        epochs = run["history"]["epochs"]
        if epochs.get(key):
            ax.plot(
                epochs["epoch"],
                1 - _finite(epochs[key]) if error else _finite(epochs[key]),
                marker=".",
                lw=1,
                label=f"{run['label']} ({run['history']['status']})",
            )
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    name = key.replace("_", " ")
    ax.set_ylabel(name.replace("accuracy", "error") if error else name)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def bars(values: Mapping[str, float | None], ylabel: str) -> plt.Figure:
    """A bar per labelled value (None drawn as 0)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(values) + 2), 4))
    ax.bar(range(len(values)), [v or 0.0 for v in values.values()])
    ax.set_xticks(range(len(values)), list(values), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def batch_size_sweep(runs: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> plt.Figure:
    """Final training loss and accuracy against log2(batch size), b_min / b_max marked.

    runs: [{"batch_size", "final": {"train_loss", "train_accuracy", "val_accuracy"}}, ...].
    """
    runs = sorted(runs, key=lambda r: r["batch_size"])
    log_b = np.log2([r["batch_size"] for r in runs])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (
        (axes[0], ("train_loss",), "final training loss"),
        (axes[1], ("train_accuracy", "val_accuracy"), "final accuracy"),
    )
    for ax, keys, label in panels:
        for key in keys:
            ax.plot(
                log_b,
                _finite([r["final"].get(key) for r in runs]),
                "o-",
                label=key.replace("_", " ").replace("val", "test"),
            )
        for name, color in (("b_min", "g"), ("b_max", "m")):
            if summary.get(name):
                ax.axvline(
                    math.log2(summary[name]),
                    color=color,
                    linestyle="--",
                    label=f"{name} = {summary[name]}",
                )
        ax.set_xlabel("log2(batch size)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"batch-size sweep at a fixed learning rate ({summary.get('learning_rate', 0):.3g})"
    )
    fig.tight_layout()
    return fig


def loss_by_batch_size(run: Mapping[str, Any]) -> plt.Figure:
    """Mean training loss over the updates made at each batch size of a growing-batch run."""
    steps = run["history"]["steps"]
    sizes = np.array(steps["batch_size"])
    loss = _finite(steps["loss"])
    unique = np.unique(sizes)
    means = [np.nanmean(loss[sizes == b]) for b in unique]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(unique, means, "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("mean training loss at that batch size")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def before_after(before: np.ndarray, after: np.ndarray, title: str = "") -> plt.Figure:
    """Images float[N, H, W, C] in one row and their augmented versions in the next."""
    n = len(before)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for j in range(n):
        for row, images, label in ((0, before, "before"), (1, after, "after")):
            image = np.asarray(images[j])
            ax = axes[row, j]
            ax.imshow(
                image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1),
                cmap="gray" if image.shape[-1] == 1 else None,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _violin_stats(values: Any) -> dict[str, Any]:
    """matplotlib `Axes.violin` stats of raw samples or of a precomputed density (below)."""
    from jaxsched.stats import density, summarize

    if isinstance(values, Mapping):
        coords = np.asarray(values["coords"], dtype=float)
        dens = np.asarray(values["density"], dtype=float)
        weights = dens / dens.sum() if dens.sum() > 0 else np.full(len(dens), 1 / len(dens))
        cdf = np.cumsum(weights)
        out = {
            "mean": float(coords @ weights),
            "median": float(coords[min(np.searchsorted(cdf, 0.5), len(coords) - 1)]),
            "min": float(coords[0]),
            "max": float(coords[-1]),
        }
        out.update({k: values[k] for k in ("mean", "median", "min", "max") if k in values})
        return {**out, "coords": coords, "vals": dens}
    v = np.asarray(values, dtype=float).ravel()
    d, s = density(v), summarize(v)
    return {
        "coords": np.asarray(d["coords"]),
        "vals": np.asarray(d["density"]),
        **{k: s[k] for k in ("mean", "median", "min", "max")},
    }


def violins(
    panels: Mapping[str, Mapping[str, Any]],
    *,
    ylabel: str = "",
    title: str = "",
    ncols: int | None = None,
    sharey: bool = False,
) -> plt.Figure:
    """Violin plots: a panel per entry of `panels` ({panel title: {violin label: values}}), its
    violins left to right in the mapping's order, each scaled to the same maximum width.

    values: raw samples (a sequence of numbers; drawn as a Gaussian KDE, Scott's bandwidth), or
      a precomputed density {"coords", "density"} (stats.density) with optional "mean",
      "median", "min", "max" (else taken from the density). The mean is a black bar, the
      median a white dot, the extremes the whiskers' ends.
    sharey: one y range for all panels (else each panel its own).
    """
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    width = max(len(v) for v in panels.values())
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(max(3.0, 0.45 * width + 1.2) * ncols, 3.8 * nrows),
        sharey=sharey,
        squeeze=False,
    )
    for ax, (panel, violins_) in zip(axes.flat, panels.items(), strict=False):
        stats = [_violin_stats(v) for v in violins_.values()]
        positions = np.arange(1, len(stats) + 1)
        parts = ax.violin(stats, positions, widths=0.8, showextrema=True)
        for body in parts["bodies"]:
            body.set_alpha(0.6)
        for name in ("cmins", "cmaxes", "cbars"):
            parts[name].set_linewidth(0.8)
        ax.hlines([s["mean"] for s in stats], positions - 0.25, positions + 0.25, color="k", lw=1.5)
        ax.scatter(positions, [s["median"] for s in stats], s=12, c="w", edgecolors="k", zorder=3)
        ax.set_xticks(positions, list(violins_), fontsize=8)
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def proportions(
    values: Mapping[str, Mapping[str, float]], ylabel: str, title: str = ""
) -> plt.Figure:
    """A bar per labelled proportion {"value", "lo", "hi"} with its interval as error bars."""
    labels = list(values)
    p = np.array([values[k]["value"] for k in labels])
    lo = np.array([values[k]["lo"] for k in labels])
    hi = np.array([values[k]["hi"] for k in labels])
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(labels) + 2), 4.2))
    x = np.arange(len(labels))
    ax.bar(x, p, color="C0", alpha=0.7)
    ax.errorbar(x, p, yerr=[p - lo, hi - p], fmt="none", ecolor="k", capsize=6, lw=1.2)
    for xi, pi, hi_ in zip(x, p, hi, strict=True):
        ax.annotate(f"{pi:.3f}", (xi, hi_), xytext=(0, 4), textcoords="offset points", ha="center")
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, min(1.12, max(hi.max() * 1.2, 0.05)))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def histograms(
    named: Mapping[str, Sequence[float]],
    xlabel: str,
    *,
    bins: int = 60,
    vline: float | None = None,
    vline_label: str = "",
    title: str = "",
    logy: bool = False,
) -> plt.Figure:
    """Step histograms of each labelled sample on shared bins (NaN dropped), with an optional
    vertical line; logy draws the counts on a log scale."""
    arrays = {k: _finite(v) for k, v in named.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()])
    edges = np.histogram_bin_edges(finite, bins=bins)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, a in arrays.items():
        ax.hist(a[np.isfinite(a)], bins=edges, histtype="step", lw=1.3, label=label)
    if vline is not None:
        ax.axvline(vline, color="k", linestyle="--", lw=1, label=vline_label or None)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def line_panels(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    x: Sequence[float],
    xticklabels: Sequence[str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    logy: bool = False,
) -> plt.Figure:
    """A panel per entry of `panels` ({panel title: {line label: y values at `x`}})."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], panels.items(), strict=True):
        for label, y in lines.items():
            ax.plot(x, _finite(y), marker="o", ms=3, lw=1.2, label=label)
        if xticklabels is not None:
            ax.set_xticks(list(x), list(xticklabels))
        if logy:
            ax.set_yscale("log")
        ax.set_title(panel)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def scaling(
    panels: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    metric: str,
    title: str = "",
    ncols: int | None = None,
) -> plt.Figure:
    """Speedup or parallel efficiency against the number of devices (log2 axis), one panel per
    entry of `panels`, with the ideal line (speedup = N, efficiency = 1).

    panels: {panel title: {line label: {"devices": [N, ...], "values": [...], "measured":
    bool, optional "style": matplotlib keywords}}}; measured lines are solid with markers,
    predicted ones dashed, unless "style" says otherwise.
    metric: "speedup" or "efficiency".
    """
    if metric not in ("speedup", "efficiency"):
        raise ValueError(f"metric must be 'speedup' or 'efficiency', got {metric!r}")
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(4.4 * ncols, 3.8 * nrows),
        squeeze=False,
        sharey=metric == "efficiency",
    )
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for ax, (panel, lines) in zip(axes.flat, panels.items(), strict=False):
        top = max(max(line["devices"]) for line in lines.values())
        ideal = 2.0 ** np.arange(0, math.log2(top) + 1)
        ax.plot(
            ideal,
            ideal if metric == "speedup" else np.ones_like(ideal),
            "k:",
            lw=1.2,
            label="ideal",
        )
        for label, line in lines.items():
            style = (
                dict(marker="o", ms=4, lw=1.4) if line.get("measured") else dict(ls="--", lw=1.2)
            )
            style.update(line.get("style", {}))
            ax.plot(line["devices"], _finite(line["values"]), label=label, **style)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ideal)
        ax.xaxis.set_major_formatter(plain)
        if metric == "speedup":
            ax.set_yscale("log", base=2)
            ax.yaxis.set_major_formatter(plain)
        else:
            ax.set_ylim(0, 1.05 if ax.get_ylim()[1] <= 1.05 else None)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("devices")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("speedup" if metric == "speedup" else "parallel efficiency")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def scatter_fits(
    points: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    fits: Mapping[str, Mapping[str, Any]],
    xlabel: str,
    ylabel: str,
    *,
    logx: bool = False,
    logy: bool = False,
    title: str = "",
) -> plt.Figure:
    """Per label a scatter of (x, y) points and its fitted line with a confidence band, as
    seaborn's lmplot(hue=label). `fits[label]` is `stats.linear_fit`'s output ("at", "fit",
    "lo", "hi"), fitted on log10(x) when `logx` and on log10(y) when `logy` (so it draws as a
    line on the log axes)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (label, (x, y)) in enumerate(points.items()):
        color = f"C{i}"
        ax.scatter(x, y, s=14, color=color, alpha=0.7, label=label)
        fit = fits.get(label)
        if fit is not None:
            at = np.asarray(fit["at"], dtype=float)
            at = 10.0**at if logx else at
            line, lo, hi = (np.asarray(fit[k], dtype=float) for k in ("fit", "lo", "hi"))
            if logy:
                line, lo, hi = 10.0**line, 10.0**lo, 10.0**hi
            ax.plot(at, line, color=color, lw=1.5)
            ax.fill_between(at, lo, hi, color=color, alpha=0.15, lw=0)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
