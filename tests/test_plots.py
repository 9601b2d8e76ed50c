"""Figures are drawn from results documents and schedules, and saved atomically as PNG."""

import os

import numpy as np

from jaxsched import plots, schedules


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
