"""ResNet v1 for CIFAR: Keras parameter counts, closed forms, shapes, shortcuts, BatchNorm."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsched.models import ResNetV1, count_params
from jaxsched.models.resnet import zero_pad_shortcut


def init(model, shape=(2, 32, 32, 3)):
    return model.init(jax.random.key(0), jnp.zeros(shape), train=False)


def abstract_init(model, shape=(1, 32, 32, 3)):
    """Shapes only: parameter counts of the large models without running them."""
    return jax.eval_shape(lambda: init(model, shape))


def option_a_trainable(depth, channels=3, num_classes=10):
    """Closed-form trainable parameter count of option A (convolutions have biases)."""
    n = (depth - 2) // 6
    s = (16, 32, 64)
    total = 9 * channels * 16 + 16 + 2 * 16  # stem conv + BN (scale, bias)
    for s_in, s_out in zip((16,) + s[:-1], s, strict=True):
        total += 9 * s_in * s_out + s_out  # first conv of the stage
        total += (2 * n - 1) * (9 * s_out * s_out + s_out)  # the other convs
        total += 2 * n * 2 * s_out  # BN scale + bias
    return total + 64 * num_classes + num_classes


def batch_stats_count(depth):
    n = (depth - 2) // 6
    return 2 * (16 + 2 * n * (16 + 32 + 64))  # moving mean + variance


PROJECTIONS = (16 * 32 + 32) + (32 * 64 + 64)  # option B's two 1x1 convolutions


def test_resnet44_option_b_matches_keras_example():
    variables = abstract_init(ResNetV1(depth=44, shortcut="B"))
    assert count_params(variables) == 665_994  # Keras counts BN moving statistics too
    assert count_params(variables["params"]) == 662_826
    assert count_params(variables["batch_stats"]) == 3_168
    chex.assert_shape(variables["params"]["stage2_block1"]["projection"]["kernel"], (1, 1, 16, 32))
    chex.assert_shape(variables["params"]["stage3_block1"]["projection"]["kernel"], (1, 1, 32, 64))
    assert "projection" not in variables["params"]["stage2_block2"]


@pytest.mark.parametrize("depth", [8, 20, 44, 110])
def test_parameter_counts_closed_form(depth):
    a = abstract_init(ResNetV1(depth=depth, shortcut="A"))
    b = abstract_init(ResNetV1(depth=depth, shortcut="B"))
    assert count_params(a["params"]) == option_a_trainable(depth)
    assert count_params(a["batch_stats"]) == count_params(b["batch_stats"])
    assert count_params(b["batch_stats"]) == batch_stats_count(depth)
    assert count_params(b["params"]) == option_a_trainable(depth) + PROJECTIONS


def test_resnet44_option_a_has_no_projections():
    variables = abstract_init(ResNetV1(depth=44, shortcut="A"))
    assert count_params(variables["params"]) == 662_826 - PROJECTIONS == 660_170
    assert count_params(variables) == 665_994 - PROJECTIONS == 663_338


def test_resnet20_option_a_is_he_et_als_027m():
    trainable = count_params(abstract_init(ResNetV1(depth=20, shortcut="A"))["params"])
    assert trainable == 270_410
    assert round(trainable / 1e6, 2) == 0.27  # He et al. 2016, Table 6


@pytest.mark.parametrize("channels, shortcut", [(3, "B"), (1, "A")])
def test_logits_shape(channels, shortcut):
    model = ResNetV1(depth=8, shortcut=shortcut)
    variables = init(model, (2, 32, 32, channels))
    logits = model.apply(variables, jnp.ones((2, 32, 32, channels)), train=False)
    chex.assert_shape(logits, (2, 10))
    chex.assert_tree_all_finite(logits)
    chex.assert_shape(variables["params"]["Conv_0"]["kernel"], (3, 3, channels, 16))


def test_depth_20_layout_and_num_classes():
    model = ResNetV1(depth=20, num_classes=7)
    variables = abstract_init(model, (2, 32, 32, 3))
    logits = jax.eval_shape(
        lambda v, x: model.apply(v, x, train=False), variables, jnp.zeros((2, 32, 32, 3))
    )
    chex.assert_shape(logits, (2, 7))
    assert {k for k in variables["params"] if k.startswith("stage")} == {
        f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2, 3)
    }
    # 32x32 -> 16x16 -> 8x8: the first block of stages 2 and 3 has stride 2.
    _, state = jax.eval_shape(
        lambda v, x: model.apply(
            v, x, train=False, mutable=["intermediates"], capture_intermediates=True
        ),
        variables,
        jnp.zeros((2, 32, 32, 3)),
    )
    shapes = {
        k: v["__call__"][0].shape
        for k, v in state["intermediates"].items()
        if k.startswith("stage")
    }
    assert shapes["stage1_block3"] == (2, 32, 32, 16)
    assert shapes["stage2_block1"] == (2, 16, 16, 32)
    assert shapes["stage3_block3"] == (2, 8, 8, 64)


@pytest.mark.parametrize("depth", [0, 2, 7, 9, 21, 45, -4, 44.0])
def test_bad_depth_raises(depth):
    with pytest.raises(ValueError, match="depth must be 6n \\+ 2.*20, 32, 44"):
        abstract_init(ResNetV1(depth=depth))


def test_numpy_integer_depth_is_accepted():
    variables = abstract_init(ResNetV1(depth=np.int64(20), shortcut="A"))
    assert count_params(variables["params"]) == option_a_trainable(20)


def test_bad_shortcut_raises():
    with pytest.raises(ValueError, match="shortcut"):
        abstract_init(ResNetV1(depth=8, shortcut="C"))


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 16))
    y = zero_pad_shortcut(x, 32, 2)
    chex.assert_shape(y, (2, 16, 16, 32))
    np.testing.assert_array_equal(y[..., :16], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 16:], 0.0)
    # Same pixels as option B's 1x1 stride-2 'SAME' convolution samples.
    np.testing.assert_array_equal(zero_pad_shortcut(x, 16, 1), x)
    with pytest.raises(ValueError, match="features"):
        zero_pad_shortcut(x, 8, 2)


def test_train_mode_updates_batch_stats_and_eval_mode_does_not():
    model = ResNetV1(depth=8)
    variables = init(model, (2, 8, 8, 3))  # global pooling: any image size works
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3)) * 3 + 2
    logits, updates = model.apply(variables, x, train=True, mutable=("batch_stats",))
    chex.assert_shape(logits, (2, 10))
    before = variables["batch_stats"]["BatchNorm_0"]["mean"]
    after = updates["batch_stats"]["BatchNorm_0"]["mean"]
    assert not jnp.allclose(before, after)
    # Keras momentum 0.99: the moving mean moves 1% of the way to the batch mean.
    stem = model.apply(
        variables,
        x,
        train=True,
        mutable=("intermediates", "batch_stats"),
        capture_intermediates=True,
    )[1]["intermediates"]["Conv_0"]["__call__"][0]
    chex.assert_trees_all_close(after, 0.01 * stem.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    # Evaluation uses the moving statistics: deterministic, batch-independent, no updates.
    y1 = model.apply(variables, x, train=False)
    y2 = model.apply(variables, x[:1], train=False)
    chex.assert_trees_all_close(y1[:1], y2, rtol=1e-5, atol=1e-5)
    assert not jnp.allclose(y1, logits)


def test_gradient_step_is_finite_and_reduces_loss():
    model = ResNetV1(depth=8, shortcut="A")
    variables = init(model, (2, 8, 8, 3))
    x = jax.random.normal(jax.random.key(2), (2, 8, 8, 3))
    labels = jnp.array([3, 7])

    def loss_fn(params):
        logits, updates = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            x,
            train=True,
            mutable=("batch_stats",),
        )
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, updates

    step = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))  # compiles faster than eager VJPs
    (loss, updates), grads = step(variables["params"])
    chex.assert_tree_all_finite((loss, grads, updates))
    assert count_params(grads) == count_params(variables["params"])
    params = jax.tree.map(lambda p, g: p - 1e-2 * g, variables["params"], grads)
    assert step(params)[0][0] < loss  # same shapes: no second compilation
