"""Results files: atomic, plain JSON, environment metadata; History round trip."""

import json
import math
import os

import numpy as np
import pytest

import jaxsched
from jaxsched import results


def test_write_is_plain_json_with_non_finite_as_null(tmp_path):
    path = results.write_json_atomic(
        tmp_path / "sub" / "r.json",
        {"a": math.nan, "b": [1.5, math.inf, np.float32(2.0)], "c": np.arange(3), "d": (1, "x")},
    )
    text = path.read_text()
    assert json.loads(text) == {"a": None, "b": [1.5, None, 2.0], "c": [0, 1, 2], "d": [1, "x"]}
    assert "NaN" not in text and "Infinity" not in text
    assert os.listdir(path.parent) == ["r.json"]  # no temporary file left behind
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = results.write_json_atomic(tmp_path / "r.json", {"ok": 1})
    with pytest.raises(TypeError, match="object"):
        results.write_json_atomic(path, {"bad": object()})
    assert results.read_json(path) == {"ok": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_an_interrupted_write_keeps_the_previous_file(tmp_path):
    path = results.write_text_atomic(tmp_path / "a.md", "old")
    with pytest.raises(KeyboardInterrupt), results.atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.md"]


def test_history_round_trips_through_json(tmp_path):
    h = results.History()
    h.steps["loss"] += [2.3, math.nan]
    h.steps["learning_rate"] += [0.1, 0.1]
    h.steps["accuracy"] += [0.1, 0.0]
    h.status, h.diverged_at_step = results.DIVERGED, 1
    path = results.write_json_atomic(tmp_path / "h.json", h.to_dict())
    back = results.History.from_dict(results.read_json(path))
    assert back.status == results.DIVERGED and back.diverged_at_step == 1
    assert back.steps["loss"][0] == 2.3 and math.isnan(back.steps["loss"][1])
    assert math.isnan(back.final("train_loss"))


def test_results_document_records_config_versions_device_and_times():
    doc = results.results_document(
        "x", {"lr": 0.1}, [], {"k": 1}, status="done", wall_time_s=1.5, started_at=results.now_iso()
    )
    env = doc["environment"]
    assert env["jaxsched"] == jaxsched.__version__
    for key in ("jax", "flax", "optax", "backend", "device_kind", "device_count", "python"):
        assert env[key], key
    assert doc["config"] == {"lr": 0.1} and doc["wall_time_s"] == 1.5
    assert doc["finished_at"] is not None
