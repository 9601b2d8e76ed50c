"""train.make_train_step(example_block=K): the batch computed in blocks of K examples gives the
same update as the whole batch at once (models without BatchNorm), on real Fashion-MNIST."""

import chex
import jax
import numpy as np
import pytest

from jaxsched import losses, optimizers, train
from jaxsched.models import MLP, LeNet5

TOL = dict(rtol=2e-5, atol=2e-6)


def bn_free_lenet():
    return LeNet5(input_norm="none", hidden_batchnorm=False)


def two_steps(model, tx, images, labels, **options):
    """Two updates from the same initialization; (state, [metrics, metrics])."""
    state = train.init_train_state(model, tx, jax.random.key(0), images[:1])
    step = jax.jit(train.make_train_step(model, tx, **options))
    out = []
    for _ in range(2):
        state, metrics = step(state, images, labels)
        out.append(jax.device_get(metrics))
    return state, out


@pytest.mark.parametrize("block", [64, 50, 199])  # exact blocks, a remainder, one tiny block
def test_blocked_update_equals_the_whole_batch(fashion_small, block):
    ds = fashion_small[0]
    images, labels = ds.images[:200], ds.labels[:200]
    model, tx = bn_free_lenet(), optimizers.make("sgd", 0.1, momentum=0.9)
    whole, whole_metrics = two_steps(model, tx, images, labels)
    blocked, blocked_metrics = two_steps(model, tx, images, labels, example_block=block)
    chex.assert_trees_all_close(blocked.params, whole.params, **TOL)
    chex.assert_trees_all_close(blocked.opt_state, whole.opt_state, **TOL)
    for mine, ref in zip(blocked_metrics, whole_metrics, strict=True):
        np.testing.assert_allclose(mine["loss"], ref["loss"], rtol=1e-6)
        assert mine["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-7)
    assert whole_metrics[1]["loss"] < whole_metrics[0]["loss"]  # it does learn


def test_blocked_update_with_regularizer_and_mse(fashion_small):
    ds = fashion_small[0]
    x = ds.images[:96].reshape(96, -1)
    y = (ds.labels[:96] % 3).astype(np.float32)
    model, tx = MLP(hidden=(32,), num_classes=1), optimizers.make("adam", 1e-3)
    options = dict(regularizer=lambda p: losses.l2_penalty(p, 1e-3), loss="mse")
    whole, whole_metrics = two_steps(model, tx, x, y, **options)
    blocked, blocked_metrics = two_steps(model, tx, x, y, example_block=40, **options)
    chex.assert_trees_all_close(blocked.params, whole.params, **TOL)
    np.testing.assert_allclose(blocked_metrics[1]["loss"], whole_metrics[1]["loss"], rtol=1e-6)
    assert np.isnan(blocked_metrics[1]["accuracy"]) and np.isnan(whole_metrics[1]["accuracy"])


def test_a_batch_no_larger_than_the_block_is_the_plain_step(fashion_small):
    ds = fashion_small[0]
    model, tx = bn_free_lenet(), optimizers.make("sgd", 0.1)
    whole, _ = two_steps(model, tx, ds.images[:32], ds.labels[:32])
    blocked, _ = two_steps(model, tx, ds.images[:32], ds.labels[:32], example_block=32)
    chex.assert_trees_all_equal(blocked.params, whole.params)


def test_dropout_blocks_draw_their_own_masks(fashion_small):
    ds = fashion_small[0]
    model = LeNet5(input_norm="none", hidden_batchnorm=False, hidden_dropout=0.5)
    tx = optimizers.make("sgd", 0.1)
    whole, _ = two_steps(model, tx, ds.images[:128], ds.labels[:128])
    blocked, metrics = two_steps(model, tx, ds.images[:128], ds.labels[:128], example_block=64)
    assert all(np.isfinite(m["loss"]) for m in metrics)
    difference = jax.tree.map(lambda a, b: float(abs(a - b).max()), blocked.params, whole.params)
    assert max(jax.tree.leaves(difference)) > 1e-4  # other masks, not the same update


def test_batchnorm_models_and_bad_blocks_are_refused(fashion_small):
    ds = fashion_small[0]
    tx = optimizers.make("sgd", 0.1)
    with pytest.raises(ValueError, match="example_block needs a model without BatchNorm"):
        two_steps(LeNet5(), tx, ds.images[:128], ds.labels[:128], example_block=64)
    for bad in (0, -3, 2.5, "64", True):
        with pytest.raises(ValueError, match="example_block must be an int >= 1"):
            train.make_train_step(bn_free_lenet(), tx, example_block=bad)
    with pytest.raises(ValueError, match="batchnorm_groups=1"):
        train.make_train_step(bn_free_lenet(), tx, example_block=8, batchnorm_groups=2)


def test_fit_with_example_block_trains_the_same_run(fashion_small):
    from jaxsched import loop

    ds, _ = fashion_small
    runs = [
        loop.fit(
            bn_free_lenet(),
            optimizers.make("sgd", 0.1),
            ds,
            epochs=1,
            batch_size=128,
            seed=1,
            quiet=True,
            example_block=block,
        )
        for block in (None, 48)
    ]
    (whole, whole_history), (blocked, blocked_history) = runs
    chex.assert_trees_all_close(blocked.params, whole.params, **TOL)
    np.testing.assert_allclose(
        blocked_history.steps["loss"], whole_history.steps["loss"], rtol=1e-5
    )
    with pytest.raises(ValueError, match="example_block needs a model without BatchNorm"):
        loop.fit(LeNet5(), optimizers.make("sgd", 0.1), ds, epochs=1, batch_size=128,
                 quiet=True, example_block=48)  # fmt: skip
