"""experiments.init_activations on a slice of the real Fashion-MNIST test split."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import init_activations
from experiments.configs.init_activations import SMOKE
from jaxsched import initializers, stats
from jaxsched.models.mlp import MLP

TINY = dataclasses.replace(
    SMOKE,
    dataset="fashion_mnist",
    activations=("relu", "tanh"),
    stddevs=(0.05,),
    initializers=("he_normal",),
    test_examples=200,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("init_activations")
    return workdir, init_activations.run(TINY, workdir, quiet=True)


@pytest.mark.slow
def test_results_and_figures_are_written(tiny_run):
    workdir, _ = tiny_run
    doc = json.loads((workdir / "results.json").read_text())
    assert doc["summary"]["dataset"] == "fashion_mnist" and doc["config"]["dataset"] == (
        "fashion_mnist"
    )
    assert [r["key"] for r in doc["runs"]] == [
        "relu/normal_0.05",
        "relu/he_normal",
        "tanh/normal_0.05",
        "tanh/he_normal",
    ]
    for run in doc["runs"]:
        assert [row["kind"] for row in run["layers"]] == ["linear"] + [run["activation"]] * 5
        assert len(run["layers"][1]["density"]["coords"]) == TINY.density_points
    for name in ("activations_relu.png", "activations_tanh.png", "layer_std.png"):
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"


def test_layer_statistics_match_a_numpy_forward_pass(fashion_small):
    """Mean, std and the fraction of exactly-zero ReLU outputs, against float64 NumPy from the
    same weights: a ReLU output is exactly 0 where its pre-activation is <= 0."""
    _, test = fashion_small
    images = test.images.reshape(len(test.images), -1)
    model = init_activations.make_model(TINY, "relu", initializers.get("he_normal"), 10)
    variables = model.init(jax.random.key(TINY.seed), images[:1], train=False)
    rows = init_activations.layer_rows(
        init_activations.hidden_outputs(model, variables, images), "relu", TINY
    )
    h = images.astype(np.float64)
    for i, row in enumerate(rows):
        dense = variables["params"][f"Dense_{i}"]
        pre = h @ np.asarray(dense["kernel"], np.float64) + np.asarray(dense["bias"])
        h = pre if i == 0 else np.maximum(pre, 0.0)
        assert row["zero_fraction"] == (0.0 if i == 0 else np.mean(pre <= 0))
        np.testing.assert_allclose([row["mean"], row["std"]], [h.mean(), h.std()], rtol=1e-4)
        assert row["density_of"] == ("all" if i == 0 else "nonzero")
    assert all(0.3 < row["zero_fraction"] < 0.7 for row in rows[1:])  # He: about half active


def test_he_keeps_relu_outputs_at_scale_and_small_sigma_vanishes(tiny_run):
    _, doc = tiny_run
    ratio = doc["summary"]["std_ratio_last_to_first"]
    assert 0.5 < ratio["relu/he_normal"] < 2.0  # He: Var(W) = 2 / fan_in offsets ReLU's 1/2
    # N(0, 0.05): the second moment shrinks by 100 * 0.05^2 / 2 = 1/8 per ReLU layer.
    assert ratio["relu/normal_0.05"] < 0.05


def test_summary_statistics_of_known_values():
    s = stats.summarize(np.array([0.0, 0.0, 1.0, 3.0]))
    assert s["zero_fraction"] == 0.5 and s["mean"] == 1.0
    np.testing.assert_allclose(s["std"], np.sqrt(1.5))  # population std, as numpy's default
    d = stats.density(np.random.default_rng(0).normal(size=5000), points=201)
    np.testing.assert_allclose(np.trapezoid(d["density"], d["coords"]), 1.0, atol=0.01)
    np.testing.assert_allclose(max(d["density"]), 1 / np.sqrt(2 * np.pi), rtol=0.05)


@pytest.mark.parametrize(
    "name, stddev, expected",
    [
        ("normal", 0.1, 0.01),
        ("glorot_normal", None, 2 / (784 + 100)),  # Xavier: 2 / (fan_in + fan_out)
        ("he_normal", None, 2 / 784),  # He: 2 / fan_in
        ("glorot_uniform", None, 2 / (784 + 100)),
    ],
)
def test_initializer_variances_are_the_closed_forms(name, stddev, expected):
    assert initializers.variance(name, 784, 100, stddev) == pytest.approx(expected)
    kernel = initializers.get(name, stddev)(jax.random.key(1), (784, 100), jnp.float32)
    np.testing.assert_allclose(float(jnp.mean(kernel)), 0.0, atol=0.002)
    np.testing.assert_allclose(float(jnp.var(kernel)), expected, rtol=0.03)


def test_mlp_input_linear_sows_every_hidden_layer():
    model = MLP(hidden=(4, 4), num_classes=3, input_linear=True)
    x = jnp.linspace(-1, 1, 10).reshape(2, 5)
    variables = model.init(jax.random.key(0), x, train=False)
    logits, state = model.apply(variables, x, train=False, mutable=["intermediates"])
    first, second = state["intermediates"]["hidden"]
    p = variables["params"]
    np.testing.assert_allclose(first, x @ p["Dense_0"]["kernel"], rtol=1e-6)  # no activation
    np.testing.assert_allclose(second, jnp.maximum(first @ p["Dense_1"]["kernel"], 0), rtol=1e-6)
    np.testing.assert_allclose(logits, model.apply(variables, x, train=False))


@pytest.mark.parametrize(
    "field, value", [("activations", ("elu",)), ("stddevs", (0.0,)), ("depth", 0)]
)
def test_bad_config_values_name_the_parameter(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        init_activations.run(dataclasses.replace(TINY, **{field: value}), tmp_path)
