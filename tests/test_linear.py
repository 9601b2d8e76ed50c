"""jaxsched.linear: the two losses, their subgradients, the per-sample SGD trainer, the data."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsched import linear

W = jnp.array([2.0, -1.0])
# (x, y, margin y w.x): margins -0.5, 0, 1, 0.25, 2 (all exact in float32).
CASES = [
    ((0.25, 1.0), 1.0, -0.5),  # misclassified
    ((0.5, 1.0), 1.0, 0.0),  # on the boundary
    ((0.0, 1.0), -1.0, 1.0),  # correct, margin exactly 1
    ((0.5, 0.75), 1.0, 0.25),  # correct, margin < 1
    ((1.0, 0.0), 1.0, 2.0),  # correct, margin > 1
]


@pytest.mark.parametrize("x, y, m", CASES)
def test_losses_and_subgradients_match_hand_computed_values(x, y, m):
    x = jnp.array(x)
    assert float(linear.margin(W, x, y)) == m
    assert float(linear.perceptron_loss(W, x, y)) == max(0.0, -m)
    assert float(linear.hinge_loss(W, x, y)) == max(0.0, 1.0 - m)
    # Subgradient -y x where the sample updates (perceptron: m <= 0; hinge: m < 1), else 0.
    g_perceptron = jax.grad(linear.perceptron_loss)(W, x, y)
    g_hinge = jax.grad(linear.hinge_loss)(W, x, y)
    np.testing.assert_array_equal(g_perceptron, -y * x if m <= 0 else jnp.zeros(2))
    np.testing.assert_array_equal(g_hinge, -y * x if m < 1 else jnp.zeros(2))


def test_losses_are_per_sample_on_batches():
    x = jnp.array([c[0] for c in CASES])
    y = jnp.array([c[1] for c in CASES])
    np.testing.assert_array_equal(linear.perceptron_loss(W, x, y), [0.5, 0, 0, 0, 0])
    np.testing.assert_array_equal(linear.hinge_loss(W, x, y), [1.5, 1, 0, 0.75, 0])
    # A point on the boundary is an error: 3 of 5 have margin > 0.
    assert float(linear.accuracy(W, x, y)) == pytest.approx(3 / 5)


@pytest.mark.parametrize("name", ["perceptron", "hinge"])
@pytest.mark.parametrize("x, y, m", CASES)
def test_one_sgd_step_is_w_plus_lr_y_x_exactly_when_the_rule_says(name, x, y, m):
    lr = 0.025
    x = jnp.array([x])
    trace = linear.sgd_per_sample(
        linear.LOSSES[name], W, x, jnp.array([y]), jax.random.key(0), learning_rate=lr, epochs=1
    )
    updates = m <= 0 if name == "perceptron" else m < 1
    expected = W + jnp.float32(lr) * y * x[0] if updates else W
    np.testing.assert_array_equal(trace.weights[0], expected)
    assert float(trace.loss[0]) == float(linear.LOSSES[name](W, x[0], y))
    assert float(trace.accuracy[0]) == float(m > 0)


def _reference(loss_name, w0, x, y, key, lr, epochs, shuffle):
    """The documented algorithm as a NumPy loop: per-epoch order, pre-update loss and hit."""
    w = np.asarray(w0, dtype=np.float64)
    weights, losses, accs = [], [], []
    for epoch in range(epochs):
        order = (
            np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), len(y)))
            if shuffle
            else np.arange(len(y))
        )
        ls, hits = [], []
        for i in order:
            m = y[i] * (x[i] @ w)
            ls.append(max(0.0, -m) if loss_name == "perceptron" else max(0.0, 1 - m))
            hits.append(m > 0)
            if (m <= 0) if loss_name == "perceptron" else (m < 1):
                w = w + lr * y[i] * x[i]
        weights.append(w)
        losses.append(np.mean(ls))
        accs.append(np.mean(hits))
    return np.array(weights), np.array(losses), np.array(accs)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("name", ["perceptron", "hinge"])
def test_trainer_matches_a_per_sample_loop(name, shuffle):
    x, y = linear.linearly_separable_2d(jax.random.key(1), 12)
    w0 = jnp.array([-0.8, 0.6])  # boundary far off: both losses make many updates
    key = jax.random.key(2)
    trace = linear.sgd_per_sample(
        linear.LOSSES[name], w0, x, y, key, learning_rate=0.1, epochs=4, shuffle=shuffle
    )
    ref = _reference(name, w0, np.asarray(x, np.float64), np.asarray(y), key, 0.1, 4, shuffle)
    for got, want in zip(trace, ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert trace.weights.shape == (4, 2) and trace.loss.shape == trace.accuracy.shape == (4,)


def test_trainer_is_deterministic_for_a_key_and_the_order_depends_on_it():
    x, y = linear.linearly_separable_2d(jax.random.key(1), 12)  # shapes as above: no recompile
    w0 = jnp.array([-0.8, 0.6])

    def train(seed):
        return linear.sgd_per_sample(
            linear.hinge_loss, w0, x, y, jax.random.key(seed), learning_rate=0.05, epochs=4
        )

    for a, b in zip(train(0), train(0), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(train(0).weights, train(1).weights)


def test_perceptron_stops_updating_once_it_separates_the_training_points():
    x, y = linear.linearly_separable_2d(jax.random.key(1), 12)
    w0 = linear.glorot_uniform(jax.random.key(3), 2)  # a start that separates within 3 epochs
    trace = linear.sgd_per_sample(
        linear.perceptron_loss, w0, x, y, jax.random.key(2), learning_rate=1.0, epochs=4
    )
    assert float(trace.accuracy[0]) < 1
    np.testing.assert_array_equal(trace.accuracy[-2:], [1.0, 1.0])
    np.testing.assert_array_equal(trace.loss[-2:], [0.0, 0.0])
    np.testing.assert_array_equal(trace.weights[-1], trace.weights[-2])  # no update in epoch 4


def test_data_follow_the_labelling_rule():
    x, y = linear.linearly_separable_2d(jax.random.key(0), 1000)
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == (1000, 2) and y.shape == (1000,)
    assert x.dtype == y.dtype == np.float32
    assert x.min() >= 0 and x.max() < 1
    np.testing.assert_array_equal(y, np.where(x[:, 0] <= x[:, 1], -1.0, 1.0))
    assert 0.4 < (y == 1).mean() < 0.6
    # The true normal (1, -1) separates them: accuracy 1 (no point lies exactly on x0 = x1).
    assert float(linear.accuracy(jnp.array([1.0, -1.0]), x, y)) == 1.0
    np.testing.assert_array_equal(x, linear.linearly_separable_2d(jax.random.key(0), 1000)[0])


def test_glorot_uniform_is_keras_dense_default_range():
    w = np.stack([linear.glorot_uniform(jax.random.key(s), 2) for s in range(200)])
    assert w.shape == (200, 2) and w.dtype == np.float32
    assert np.abs(w).max() <= math.sqrt(2) and np.abs(w).max() > 1.2
    np.testing.assert_array_equal(w[0], linear.glorot_uniform(jax.random.key(0), 2))
