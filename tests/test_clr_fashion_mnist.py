"""experiments.clr_fashion_mnist end to end on a tiny slice of the real Fashion-MNIST."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import _lr_range, clr_fashion_mnist
from experiments.configs.clr_fashion_mnist import SMOKE
from jaxsched import data, schedules

TINY = dataclasses.replace(
    SMOKE,
    lr_min=0.001,
    lr_max=0.05,
    max_epochs=2,
    policies=("constant_max", "triangular", "clr_paper"),
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("clr")
    return workdir, clr_fashion_mnist.run(TINY, workdir, quiet=True)


@pytest.mark.slow
def test_every_policy_trains_and_is_reported(tiny_run):
    workdir, doc = tiny_run
    on_disk = json.loads((workdir / "results.json").read_text())
    assert on_disk["status"] == "done"
    assert [r["policy"] for r in on_disk["runs"]] == list(TINY.policies)
    assert on_disk["summary"]["bounds"] == {"lr_min": 0.001, "lr_max": 0.05, "source": "config"}
    for run in on_disk["runs"]:
        assert run["final"]["epochs"] == 2 and 0 <= run["final"]["test_accuracy"] <= 1
    for name in (
        "learning_rate.png",
        "train_loss_steps.png",
        "train_accuracy_steps.png",
        "epochs.png",
    ):
        assert (workdir / name).stat().st_size > 0


def test_logged_learning_rates_follow_each_policy(tiny_run):
    _, doc = tiny_run
    runs = {r["policy"]: r for r in doc["runs"]}
    steps_per_epoch = doc["summary"]["steps_per_epoch"]
    step_size = round(TINY.step_size_epochs * steps_per_epoch)
    n = len(runs["triangular"]["history"]["steps"]["learning_rate"])
    np.testing.assert_allclose(
        runs["constant_max"]["history"]["steps"]["learning_rate"], 0.05, rtol=1e-6
    )
    expected = schedules.schedule_values(schedules.cyclic_lr(0.001, 0.05, step_size), n)
    np.testing.assert_allclose(
        runs["triangular"]["history"]["steps"]["learning_rate"], expected, rtol=1e-5
    )
    paper = runs["clr_paper"]["history"]["steps"]["learning_rate"]
    assert min(paper) == pytest.approx(0.001) and max(paper) <= 0.006 + 1e-9


def test_bounds_from_a_range_test_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"summary": {"lr_min": 1e-4, "lr_max": 0.1}}))
    config = dataclasses.replace(SMOKE, bounds_from=str(path))
    bounds = _lr_range.lr_bounds(config, tmp_path, quiet=True)
    assert (bounds["lr_min"], bounds["lr_max"]) == (1e-4, 0.1)
    path.write_text(json.dumps({"summary": {"lr_min": None, "lr_max": 0.1}}))
    with pytest.raises(ValueError, match="lr_min"):
        _lr_range.lr_bounds(config, tmp_path, quiet=True)


def test_validation_split_is_disjoint_and_seeded():
    ds = data.Dataset(np.arange(20).reshape(20, 1, 1, 1), np.arange(20))
    a_train, a_val = data.split_validation(ds, 5, seed=0)
    b_train, b_val = data.split_validation(ds, 5, seed=0)
    np.testing.assert_array_equal(a_val.labels, b_val.labels)
    assert len(a_val.labels) == 5 and len(a_train.labels) == 15
    assert set(a_train.labels) | set(a_val.labels) == set(range(20))
    with pytest.raises(ValueError, match="validation_examples"):
        data.split_validation(ds, 20, seed=0)


def test_unknown_policy_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="policies"):
        clr_fashion_mnist.run(dataclasses.replace(TINY, policies=("cosine",)), tmp_path)
