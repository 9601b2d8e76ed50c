"""experiments.bn_dropout end to end on a small real Fashion-MNIST subset."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import bn_dropout
from experiments.configs.bn_dropout import SMOKE, VARIANTS
from jaxsched import data, loop
from jaxsched.models.utils import KERAS_BN_MOMENTUM

TINY = dataclasses.replace(SMOKE, dataset="fashion_mnist", train_examples=256, test_examples=128)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bn_dropout")
    return workdir, bn_dropout.run(TINY, workdir, quiet=True)


@pytest.mark.slow
def test_every_variant_runs_and_is_tabulated(tiny_run):
    workdir, _ = tiny_run
    doc = json.loads((workdir / "results.json").read_text())
    assert doc["summary"]["dataset"] == "fashion_mnist"
    assert [r["variant"] for r in doc["runs"]] == list(TINY.variants)
    assert set(TINY.variants) < set(VARIANTS)  # "input_bn+dropout": the course protocol's
    table = doc["summary"]["table"].splitlines()
    assert len(table) == 2 + len(TINY.variants)
    for run in doc["runs"]:
        final = run["final"]
        assert final["status"] == "done"
        assert 0.0 <= final["train_accuracy"] <= 1.0 and 0.0 <= final["test_accuracy"] <= 1.0
        assert np.isfinite(final["test_loss"]) and final["test_loss"] > 0
        assert len(run["history"]["epochs"]["val_accuracy"]) == TINY.epochs
    for name in ("accuracy.png", "batchnorm_parameters.png"):
        assert (workdir / name).stat().st_size > 0


def test_batchnorm_layers_and_channels_per_variant(tiny_run):
    _, doc = tiny_run
    runs = {r["variant"]: r for r in doc["runs"]}
    widths = lambda run: [len(v["gamma"]) for v in run["batchnorm"].values()]  # noqa: E731
    assert widths(runs["standardize+bn"]) == [6, 16, 120, 84]
    assert widths(runs["bn+dropout"]) == [6, 16, 120, 84]
    assert widths(runs["input_bn+bn"]) == [1, 6, 16, 120, 84]
    assert runs["dropout"]["batchnorm"] == {}
    for run in doc["runs"]:
        for layer in run["batchnorm"].values():
            assert min(layer["moving_variance"]) > 0


def test_input_batchnorm_moving_mean_tracks_the_pixel_mean(tiny_run):
    # Keras's moving mean after k updates from 0: (1 - 0.99^k) * (mean of the batch means).
    _, doc = tiny_run
    run = next(r for r in doc["runs"] if r["variant"] == "input_bn+bn")
    train_ds, _ = data.load_splits("fashion_mnist", None, "scale", 256, 128, TINY.seed)
    updates = run["history"]["epochs"]["updates"][-1]
    expected = (1 - KERAS_BN_MOMENTUM**updates) * train_ds.images.mean()
    (moving_mean,) = run["batchnorm"]["BatchNorm_0"]["moving_mean"]
    np.testing.assert_allclose(moving_mean, expected, rtol=0.05)


def test_standardized_variants_see_standardized_inputs(tiny_run):
    _, doc = tiny_run
    runs = {r["variant"]: r for r in doc["runs"]}
    assert runs["dropout"]["final"]["preprocessing"] == "standardize"
    assert runs["input_bn+bn"]["final"]["preprocessing"] == "scale"


def test_auto_falls_back_to_fashion_mnist_without_mnist(tmp_path):
    assert data.resolve_dataset("auto", str(tmp_path), preferred="mnist") == "fashion_mnist"


def test_bad_config_names_the_parameter():
    with pytest.raises(ValueError, match="variants must each be one of"):
        dataclasses.replace(TINY, variants=("bn",))
    with pytest.raises(ValueError, match=r"hidden_dropout must be a finite number in \[0, 1\)"):
        dataclasses.replace(TINY, hidden_dropout=1.0)


def test_resume_skips_completed_variants(tiny_run, monkeypatch):
    workdir, doc = tiny_run
    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("retrained a completed run"))
    assert bn_dropout.run(TINY, workdir, quiet=True)["runs"] == doc["runs"]
