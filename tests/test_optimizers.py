"""optimizers.make: names, validation, readable hyper-parameters, update rules."""

import math

import chex
import jax.numpy as jnp
import optax
import pytest

from jaxsched import optimizers


def test_hyperparams_can_be_read_back_even_when_wrapped():
    tx = optimizers.make("sgd", 0.1, momentum=0.9, nesterov=True)
    params = {"w": jnp.ones(3)}
    hp = optimizers.hyperparams(optax.MultiSteps(tx, 2).init(params))
    assert float(hp["learning_rate"]) == pytest.approx(0.1)
    assert float(hp["momentum"]) == pytest.approx(0.9)
    assert optimizers.hyperparams(optax.sgd(0.1).init(params)) == {}


def test_sgd_update_is_minus_lr_times_gradient():
    tx = optimizers.make("sgd", 0.25)
    params, grads = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([0.5, 4.0])}
    updates, _ = tx.update(grads, tx.init(params), params)
    chex.assert_trees_all_close(updates, {"w": jnp.array([-0.125, -1.0])})


def test_schedule_value_in_force_is_recorded():
    tx = optimizers.make("sgd", lambda count: 0.1 / (1.0 + count))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    for k in range(3):
        _, state = tx.update(params, state, params)
        assert float(optimizers.hyperparams(state)["learning_rate"]) == pytest.approx(0.1 / (1 + k))


@pytest.mark.parametrize(
    "name, lr, match",
    [
        ("lbfgs", 0.1, "optimizer name"),
        ("sgd", 0.0, "learning_rate"),
        ("sgd", -1.0, "learning_rate"),
        ("sgd", math.nan, "learning_rate"),
    ],
)
def test_bad_arguments(name, lr, match):
    with pytest.raises(ValueError, match=match):
        optimizers.make(name, lr)
