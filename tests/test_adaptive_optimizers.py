"""experiments.adaptive_optimizers end to end on tiny real Fashion-MNIST and CIFAR-format files."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import adaptive_optimizers
from experiments.configs.adaptive_optimizers import SMOKE
from jaxsched import data, loop

TINY = dataclasses.replace(
    SMOKE, dataset="fashion_mnist", hidden=(32,), train_examples=256, test_examples=128
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("adaptive")
    return workdir, adaptive_optimizers.run(TINY, workdir, quiet=True)


@pytest.mark.slow
def test_each_optimizer_runs_with_each_regularization(tiny_run):
    workdir, doc = tiny_run
    on_disk = json.loads((workdir / "results.json").read_text())
    assert on_disk["summary"]["dataset"] == "fashion_mnist"
    assert [r["key"] for r in on_disk["runs"]] == [
        "l2/sgd",
        "l2/adam",
        "dropout/sgd",
        "dropout/adam",
    ]
    for run in on_disk["runs"]:
        assert run["final"]["status"] == "done" and run["final"]["epochs"] == 2
        assert run["final"]["train_time_s"] > 0
    for name in ("train_loss_l2.png", "train_loss_dropout.png", "train_time.png"):
        assert (workdir / name).stat().st_size > 0


def test_keras_default_learning_rates_are_used_and_logged(tiny_run):
    _, doc = tiny_run
    runs = {r["key"]: r for r in doc["runs"]}
    np.testing.assert_allclose(runs["l2/sgd"]["history"]["steps"]["learning_rate"], 0.01)
    np.testing.assert_allclose(runs["l2/adam"]["history"]["steps"]["learning_rate"], 0.001)


def test_l2_runs_report_the_penalty_in_their_loss(tiny_run):
    _, doc = tiny_run
    runs = {r["key"]: r for r in doc["runs"]}
    # Same initialization: the first batch's loss differs exactly by 0.01 * sum(kernel^2) > 0.
    first_l2 = runs["l2/sgd"]["history"]["steps"]["loss"][0]
    first_dropout_free = runs["dropout/sgd"]["history"]["steps"]["loss"][0]
    assert first_l2 > first_dropout_free + 0.05


def test_resume_skips_completed_runs(tiny_run, monkeypatch):
    workdir, doc = tiny_run
    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("retrained a completed run"))
    assert adaptive_optimizers.run(TINY, workdir, quiet=True)["runs"] == doc["runs"]


def test_auto_dataset_prefers_cifar10_when_present(tiny_cifar_root, tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert data.resolve_dataset("auto", str(tiny_cifar_root)) == "cifar10"
    assert data.resolve_dataset("auto", str(tmp_path / "empty")) == "fashion_mnist"
    config = dataclasses.replace(
        TINY,
        dataset="auto",
        data_dir=str(tiny_cifar_root),
        train_examples=None,
        test_examples=None,
        epochs=1,
        batch_size=16,
        optimizers=("adam",),
        regularizations=("l2",),
    )
    doc = adaptive_optimizers.run(config, tmp_path / "out", quiet=True)
    assert doc["summary"]["dataset"] == "cifar10"
    assert len(doc["runs"][0]["history"]["steps"]["loss"]) == 80 // 16  # 5 files x 16 images
