"""The im2col lowering of jaxsched.models.conv.Conv against flax's (XLA's) convolution."""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsched.models import LeNet5, ResNetV1
from jaxsched.models.conv import Conv, im2col_conv, resolve_impl

IMAGES = jax.random.normal(jax.random.key(0), (3, 11, 12, 4))


@pytest.mark.parametrize("padding", ["SAME", "VALID", 1, ((1, 2), (0, 1))])
@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("kernel_size", [(1, 1), (3, 3), (5, 5), (2, 3)])
def test_im2col_equals_xla_convolution_and_its_gradients(padding, strides, kernel_size):
    # (jitted: one compiled program per call instead of one per operation)
    xla = nn.Conv(7, kernel_size, strides=strides, padding=padding)
    ours = Conv(7, kernel_size, strides=strides, padding=padding, impl="im2col")
    variables = jax.jit(xla.init)(jax.random.key(1), IMAGES)
    # Same parameter names, shapes and initializers: variables move between the two.
    chex.assert_trees_all_equal(variables, jax.jit(ours.init)(jax.random.key(1), IMAGES))
    chex.assert_trees_all_close(
        jax.jit(ours.apply)(variables, IMAGES),
        jax.jit(xla.apply)(variables, IMAGES),
        atol=1e-5,
        rtol=1e-5,
    )

    def grads(module):
        loss = lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, IMAGES)

    chex.assert_trees_all_close(grads(ours), grads(xla), atol=1e-4, rtol=1e-4)


def test_im2col_conv_matches_lax_on_lenet_shapes():
    x = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1))
    kernel = jax.random.normal(jax.random.key(3), (5, 5, 1, 6))
    want = jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    chex.assert_trees_all_close(im2col_conv(x, kernel, padding="SAME"), want, atol=1e-5)
    chex.assert_shape(im2col_conv(x, kernel), (4, 24, 24, 6))


@pytest.mark.slow
def test_lenet_and_resnet_give_the_same_logits_with_either_lowering():
    def jitted(method):
        return jax.jit(functools.partial(method, train=False))

    x = jax.random.uniform(jax.random.key(4), (2, 28, 28, 1))
    variables = jitted(LeNet5(conv_impl="xla").init)(jax.random.key(5), x)
    logits = {
        impl: jitted(LeNet5(conv_impl=impl).apply)(variables, x) for impl in ("xla", "im2col")
    }
    chex.assert_trees_all_close(logits["im2col"], logits["xla"], atol=1e-5)

    x = jax.random.uniform(jax.random.key(6), (2, 32, 32, 3))
    variables = jitted(ResNetV1(8).init)(jax.random.key(7), x)
    logits = {
        impl: jitted(ResNetV1(8, conv_impl=impl).apply)(variables, x) for impl in ("xla", "im2col")
    }
    chex.assert_trees_all_close(logits["im2col"], logits["xla"], atol=1e-4)


def test_im2col_under_vmap_equals_one_member_at_a_time():
    conv = Conv(5, (3, 3), padding="SAME", impl="im2col")
    keys = jax.random.split(jax.random.key(8), 3)
    stacked = jax.vmap(lambda k: conv.init(k, IMAGES))(keys)
    together = jax.vmap(lambda v: conv.apply(v, IMAGES))(stacked)
    for i, k in enumerate(keys):
        chex.assert_trees_all_close(together[i], conv.apply(conv.init(k, IMAGES), IMAGES))


def test_auto_is_im2col_on_cpu_and_unsupported_convolutions_fall_back():
    assert resolve_impl("auto") == ("im2col" if jax.default_backend() == "cpu" else "xla")
    assert resolve_impl("xla") == "xla"
    dilated = Conv(3, (3, 3), kernel_dilation=2, impl="im2col")
    variables = dilated.init(jax.random.key(9), IMAGES)
    reference = nn.Conv(3, (3, 3), kernel_dilation=2).apply(variables, IMAGES)
    np.testing.assert_allclose(dilated.apply(variables, IMAGES), reference, atol=1e-6)


def test_bad_impl_names_the_parameter():
    with pytest.raises(ValueError, match="impl must be one of"):
        Conv(3, (3, 3), impl="fft").init(jax.random.key(0), IMAGES)
    with pytest.raises(ValueError, match="channels"):
        im2col_conv(IMAGES, jnp.zeros((3, 3, 2, 5)))
