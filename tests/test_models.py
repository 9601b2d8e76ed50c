"""LeNet-5: Keras parameter counts, shapes, BatchNorm / dropout switches."""

import chex
import jax
import jax.numpy as jnp
import pytest

from jaxsched.models import MLP, LeNet5, count_params


def init(model, shape=(2, 28, 28, 1)):
    return model.init(jax.random.key(0), jnp.zeros(shape), train=False)


@pytest.mark.parametrize(
    "kwargs, total, trainable",
    [
        (dict(), 62_614, 62_160),  # input BN + hidden BN
        (dict(input_norm="none"), 62_610, 62_158),  # hidden BN only
        (
            dict(input_norm="none", hidden_batchnorm=False, input_dropout=0.2, hidden_dropout=0.5),
            61_706,
            61_706,
        ),  # dropout, no BN
        # The course's other LeNet-5: first pool stride 1, BN after the pools too (546,542).
        (dict(first_pool_stride=1, pool_batchnorm=True), 546_542, 546_044),
        (dict(first_pool_stride=1, pool_batchnorm=True, dropout_first=True), 546_542, 546_044),
        (dict(first_pool_stride=1, input_norm="none", hidden_batchnorm=False), 545_546, 545_546),
        (dict(pool_batchnorm=True), 62_702, 62_204),
    ],
)
def test_parameter_counts_match_keras(kwargs, total, trainable):
    variables = init(LeNet5(**kwargs))
    assert count_params(variables) == total  # Keras counts BN moving statistics too
    assert count_params(variables["params"]) == trainable


def test_logits_shape_and_layer_shapes():
    model = LeNet5(num_classes=7)
    variables = init(model)
    logits = model.apply(variables, jnp.ones((3, 28, 28, 1)), train=False)
    chex.assert_shape(logits, (3, 7))
    chex.assert_tree_all_finite(logits)
    # The third convolution sees 5x5 maps: a 5x5x16x120 kernel and a 1x1x120 output.
    chex.assert_shape(variables["params"]["Conv_2"]["kernel"], (5, 5, 16, 120))


def test_first_pool_stride_1_feeds_7x7x120_to_the_dense_layer():
    model = LeNet5(first_pool_stride=1, pool_batchnorm=True)
    variables = init(model)
    # 28 -> 'same' 28 -> pool/1 27 -> conv 23 -> pool/2 11 -> conv 7: 7 * 7 * 120 = 5,880.
    chex.assert_shape(variables["params"]["Dense_0"]["kernel"], (5_880, 84))
    logits = model.apply(variables, jnp.ones((3, 28, 28, 1)), train=False)
    chex.assert_shape(logits, (3, 10))
    with pytest.raises(ValueError, match="first_pool_stride must be 1 or 2"):
        init(LeNet5(first_pool_stride=3))


@pytest.mark.parametrize("dropout_first", [False, True])
def test_dropout_first_puts_the_input_dropout_before_the_input_batchnorm(dropout_first):
    model = LeNet5(input_dropout=0.5, dropout_first=dropout_first)
    variables = init(model)
    x = jnp.ones((64, 28, 28, 1))  # constant: BatchNorm sees variance 0 unless dropout came first
    _, updates = model.apply(
        variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}
    )
    var_update = (
        updates["batch_stats"]["BatchNorm_0"]["var"]
        - variables["batch_stats"]["BatchNorm_0"]["var"] * 0.99
    )  # (1 - momentum) * batch variance
    batch_var = float(var_update[0]) / 0.01
    if dropout_first:  # inputs 0 or 2 with probability 1/2: variance 1
        assert 0.8 < batch_var < 1.2
    else:
        assert batch_var == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kwargs", [dict(), dict(first_pool_stride=1, pool_batchnorm=True)])
def test_dropout_first_only_moves_the_dropout(kwargs):
    x = jax.random.normal(jax.random.key(2), (4, 28, 28, 1))
    variables = init(LeNet5(**kwargs))
    # Without dropout the two orders are the same function of the same parameters...
    same = [LeNet5(**kwargs, dropout_first=first) for first in (False, True)]
    a, b = (m.apply(variables, x, train=True, mutable=["batch_stats"])[0] for m in same)
    chex.assert_trees_all_close(a, b, rtol=1e-6)
    # ...with it they differ, BatchNorm or not (the dropout also moves before the pooling).
    rngs = {"dropout": jax.random.key(0)}
    for extra in (dict(), dict(input_norm="none", hidden_batchnorm=False)):
        models = [
            LeNet5(**kwargs, **extra, hidden_dropout=0.5, dropout_first=first)
            for first in (False, True)
        ]
        v = init(models[0])
        a, b = (m.apply(v, x, train=True, mutable=["batch_stats"], rngs=rngs)[0] for m in models)
        assert not jnp.allclose(a, b)


def test_train_mode_updates_batch_stats_and_eval_mode_does_not():
    model = LeNet5()
    variables = init(model)
    x = jax.random.normal(jax.random.key(1), (4, 28, 28, 1)) * 3 + 2
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    before = variables["batch_stats"]["BatchNorm_0"]["mean"]
    after = updates["batch_stats"]["BatchNorm_0"]["mean"]
    assert not jnp.allclose(before, after)
    y1 = model.apply(variables, x, train=False)
    y2 = model.apply(variables, x, train=False)
    chex.assert_trees_all_equal(y1, y2)


def test_dropout_is_random_in_training_and_off_in_evaluation():
    model = LeNet5(input_norm="none", hidden_batchnorm=False, input_dropout=0.2, hidden_dropout=0.5)
    variables = init(model)
    x = jnp.ones((2, 28, 28, 1))
    a = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(0)})
    b = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert not jnp.allclose(a, b)
    chex.assert_trees_all_equal(
        model.apply(variables, x, train=False),
        LeNet5(input_norm="none", hidden_batchnorm=False).apply(variables, x, train=False),
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(input_norm="layernorm"), "input_norm"),
        (dict(hidden_dropout=1.0), "hidden_dropout"),
        (dict(input_dropout=-0.1), "input_dropout"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        init(LeNet5(**kwargs))


def test_cifar_mlp_parameter_count_and_he_normal_init():
    model = MLP(hidden=(1000, 1000))
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)
    # 3072*1000+1000 + 1000*1000+1000 + 1000*10+10, as Keras's summary gives.
    assert count_params(variables) == 3_072_000 + 1000 + 1_000_000 + 1000 + 10_010
    kernel = variables["params"]["Dense_0"]["kernel"]
    # He normal (truncated normal with std sqrt(2 / fan_in)).
    assert abs(float(kernel.std()) - (2 / 3072) ** 0.5) < 0.05 * (2 / 3072) ** 0.5
    assert float(jnp.abs(variables["params"]["Dense_0"]["bias"]).max()) == 0.0
    logits = model.apply(variables, jnp.ones((4, 32, 32, 3)), train=False)
    chex.assert_shape(logits, (4, 10))


def test_mlp_dropout_only_in_training():
    model = MLP(hidden=(32,), input_dropout=0.2, hidden_dropout=0.5)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 8)), train=False)
    x = jnp.ones((2, 8))
    a = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(0)})
    b = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert not jnp.allclose(a, b)
    chex.assert_trees_all_equal(
        model.apply(variables, x, train=False), MLP(hidden=(32,)).apply(variables, x, train=False)
    )
    with pytest.raises(ValueError, match="hidden_dropout"):
        MLP(hidden_dropout=1.5).init(jax.random.key(0), x, train=False)
