"""Figures are drawn from results documents and schedules, and saved atomically as PNG."""

import os

import numpy as np

from jaxsched import plots, range_test, schedules


def test_schedule_curves_draw_the_schedule_values(tmp_path):
    tri = schedules.cyclic_lr(0.001, 0.006, 10)
    fig = plots.schedule_curves({"triangular": tri}, 40)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), schedules.schedule_values(tri, 40))
    path = plots.save(fig, tmp_path / "s.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and os.listdir(tmp_path) == ["s.png"]


def test_step_curves_skip_non_finite_values_and_label_runs():
    runs = [{"label": "a", "history": {"status": "diverged", "steps": {"loss": [2.0, 1.0, None]}}}]
    fig = plots.step_curves(runs, "loss", smooth=1)
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), [2.0, 1.0])
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "a (diverged)"


def test_violins_draw_raw_samples_and_precomputed_densities(tmp_path):
    from jaxsched import stats

    rng = np.random.default_rng(0)
    gamma = rng.normal(1.0, 0.1, 64)  # e.g. one BatchNorm layer's scales
    panels = {
        "raw": {"a": gamma, "b": rng.normal(0, 2, 500)},
        "precomputed": {"c": {**stats.density(gamma), "mean": 7.0}},
    }
    fig = plots.violins(panels, ylabel="value", title="t")
    raw, pre = fig.axes[:2]
    assert [t.get_text() for t in raw.get_xticklabels()] == ["a", "b"]
    assert raw.get_title() == "raw" and len(raw.collections) >= 2  # bodies, whiskers, medians
    segments = [s for c in pre.collections if hasattr(c, "get_segments") for s in c.get_segments()]
    assert any(np.allclose(s[:, 1], 7.0) for s in segments)  # the given mean is drawn
    assert plots.save(fig, tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"


def test_lr_sweep_draws_the_smoothed_curve_the_rule_read():
    lrs = np.geomspace(1e-4, 1.0, 60).tolist()
    loss = (2.0 - np.linspace(0, 1, 60) + 0.05 * np.sin(np.arange(60))).tolist()
    summary = range_test.suggest_from_sweep(lrs, loss, beta=0.8, skip_start=5)
    fig = plots.lr_sweep({"history": {"steps": {"learning_rate": lrs, "loss": loss}}}, summary)
    raw, smoothed = fig.axes[0].get_lines()[:2]
    np.testing.assert_allclose(raw.get_ydata(), loss)
    np.testing.assert_allclose(smoothed.get_ydata(), summary["smoothed_loss"])
    assert "0.80" in smoothed.get_label()
