"""experiments.dead_relu and jaxsched.collapse: the collapse criterion, the Wilson interval,
Keras-style batches, and the vmapped simulations against the same simulations run one at a
time."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import dead_relu
from experiments.configs.dead_relu import DEFAULT, SMOKE
from jaxsched import collapse, stats

TINY = dataclasses.replace(
    SMOKE,
    activations=("relu",),
    initializers=("he_normal",),
    simulations=6,
    train_points=100,
    test_points=50,
    batch_size=32,
    depth=3,  # a smaller program to compile than the default 10 layers
    one_by_one=3,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dead_relu")
    return workdir, dead_relu.run(TINY, workdir, quiet=True)


@pytest.mark.slow
def test_results_and_figures_are_written(tiny_run):
    workdir, _ = tiny_run
    doc = json.loads((workdir / "results.json").read_text())
    (run,) = doc["runs"]
    assert run["key"] == "relu/he_normal" and run["simulations"] == 6
    assert len(run["pred_variance"]) == len(run["test_mse"]) == 6
    assert run["wall_time_s"] >= run["run_time_s"] > 0
    assert run["one_by_one"]["s_per_simulation"] > 0 and run["one_by_one"]["same_collapse"]
    for name in ("collapsed.png", "pred_variance.png"):
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"


def test_collapsed_fraction_and_interval_follow_from_the_variances(tiny_run):
    _, doc = tiny_run
    (run,) = doc["runs"]
    dead = np.asarray(run["pred_variance"]) <= TINY.collapse_variance
    assert run["collapsed"] == dead.sum() and run["fraction"] == dead.mean()
    assert (run["ci_low"], run["ci_high"]) == stats.wilson_interval(int(dead.sum()), 6)
    assert run["ci_low"] <= run["fraction"] <= run["ci_high"]


def test_vmapped_simulations_equal_the_same_simulations_run_one_by_one(tiny_run):
    _, doc = tiny_run
    (run,) = doc["runs"]
    single = run["one_by_one"]["outputs"]
    for key in ("test_mse", "last_epoch_loss", "init_pred_variance", "pred_variance"):
        np.testing.assert_allclose(single[key], run[key][:3], rtol=1e-5, atol=1e-9, err_msg=key)
    assert run["one_by_one"]["max_rel_diff_test_mse"] < 1e-5
    # The simulations differ from each other: their own data, weights and shuffling.
    assert len(set(np.round(run["last_epoch_loss"], 6))) == 6


def test_collapse_criterion_closed_forms():
    x = np.linspace(-math.sqrt(7), math.sqrt(7), 1001)
    # A constant net collapsed; the identity (variance ~ 7/3) and |x| (~ 7/12) did not.
    assert collapse.collapsed(np.var(np.full(1000, 1.32)), 1e-3)
    assert not collapse.collapsed(np.var(x), 1e-3)
    assert not collapse.collapsed(np.var(np.abs(x)), 1e-3)
    np.testing.assert_allclose(np.var(np.abs(x)), 7 / 12, rtol=1e-2)
    # The boundary counts as collapsed (variance <= threshold).
    np.testing.assert_array_equal(
        collapse.collapsed(np.array([1e-3, 1.0001e-3, 0.0]), 1e-3), [True, False, True]
    )


def test_wilson_interval_known_values():
    np.testing.assert_allclose(stats.wilson_interval(50, 100), (0.40383, 0.59617), atol=1e-5)
    z2 = 1.959963984540054**2
    assert stats.wilson_interval(0, 10) == (0.0, pytest.approx(z2 / (10 + z2)))
    lo, hi = stats.wilson_interval(3, 40, 0.9)
    assert stats.wilson_interval(37, 40, 0.9) == (pytest.approx(1 - hi), pytest.approx(1 - lo))
    with pytest.raises(ValueError, match="successes"):
        stats.wilson_interval(11, 10)


def test_batch_plan_is_keras_shuffled_batches_with_a_partial_last_one():
    indices, weights = collapse.batch_plan(jax.random.key(0), 100, 32, 2)
    assert indices.shape == weights.shape == (8, 32)  # 2 epochs x ceil(100 / 32)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)  # each batch's mean loss
    np.testing.assert_allclose(weights[3, :4], 1 / 4)  # 100 = 3 x 32 + 4
    for epoch in range(2):
        real = np.asarray(indices[4 * epoch : 4 * epoch + 4])[np.asarray(weights[:4]) > 0]
        np.testing.assert_array_equal(np.sort(real), np.arange(100))
    assert not np.array_equal(indices[:4], indices[4:])  # reshuffled each epoch


def test_data_and_keras_default_initialization():
    x, y = collapse.sample_data(jax.random.key(0), 2000, math.sqrt(7))
    assert float(jnp.max(jnp.abs(x))) <= math.sqrt(7) and bool(jnp.all(y == jnp.abs(x)))
    model = collapse.make_model(TINY.depth, TINY.width, "relu", "glorot_uniform")
    params = model.init(jax.random.key(0), x[:1], train=False)["params"]
    assert len(params) == TINY.depth + 1 and params["Dense_3"]["kernel"].shape == (2, 1)
    assert float(jnp.max(jnp.abs(params["Dense_1"]["kernel"]))) <= math.sqrt(6 / 4)
    assert DEFAULT.depth == 10 and DEFAULT.width == 2
    assert all(not jnp.any(p["bias"]) for p in params.values())  # zero biases
    keys = collapse.simulation_keys(0, 5)
    np.testing.assert_array_equal(
        jax.random.key_data(keys[:3]), jax.random.key_data(collapse.simulation_keys(0, 3))
    )


@pytest.mark.parametrize(
    "field, value",
    [("simulations", 0), ("confidence", 1.5), ("activations", ("elu",)), ("one_by_one", 99)],
)
def test_bad_config_values_name_the_parameter(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        dead_relu.run(dataclasses.replace(TINY, **{field: value}), tmp_path)
