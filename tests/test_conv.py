"""The im2col and banded lowerings of jaxsched.models.conv.Conv against flax's (XLA's)
convolution, and batch slicing."""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsched.models import LeNet5, ResNetV1
from jaxsched.models.conv import (
    BANDED_MAX_CHANNELS,
    CPU_BATCH_BLOCK,
    MAX_BATCH_BLOCKS,
    Conv,
    banded_conv,
    banded_matrix,
    batch_block_count,
    im2col_conv,
    in_batch_slices,
    resolve_batch_block,
    resolve_impl,
)

IMAGES = jax.random.normal(jax.random.key(0), (3, 11, 12, 4))


@pytest.mark.parametrize("padding", ["SAME", "VALID", 1, ((1, 2), (0, 1))])
@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("kernel_size", [(1, 1), (3, 3), (5, 5), (2, 3)])
@pytest.mark.parametrize("impl", ["im2col", "banded"])
def test_matmul_lowerings_equal_xla_convolution_and_its_gradients(
    impl, padding, strides, kernel_size
):
    # (jitted: one compiled program per call instead of one per operation)
    xla = nn.Conv(7, kernel_size, strides=strides, padding=padding)
    ours = Conv(7, kernel_size, strides=strides, padding=padding, impl=impl)
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


@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (1, 3), (3, 2)])
@pytest.mark.parametrize("tile", [1, 2, 3, 4, 7, 50])
def test_banded_conv_equals_lax_for_every_tile(tile, strides):
    # Tiles that divide the output width, that leave a short last tile, one column (im2col)
    # and more than the width (whole rows): the same convolution, values and gradients.
    x = jax.random.normal(jax.random.key(20), (2, 10, 13, 3))
    kernel = jax.random.normal(jax.random.key(21), (3, 4, 3, 5))

    def lax_conv(x, kernel):
        return jax.lax.conv_general_dilated(
            x, kernel, strides, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def banded(x, kernel):
        return banded_conv(x, kernel, strides, "SAME", tile=tile)

    chex.assert_trees_all_close(banded(x, kernel), lax_conv(x, kernel), atol=1e-5, rtol=1e-5)
    weights = jax.random.normal(jax.random.key(22), lax_conv(x, kernel).shape)

    def grads(conv):
        return jax.grad(lambda x, k: jnp.sum(jnp.sin(conv(x, k)) * weights), argnums=(0, 1))

    chex.assert_trees_all_close(
        grads(banded)(x, kernel), grads(lax_conv)(x, kernel), atol=1e-4, rtol=1e-4
    )


def test_banded_matrix_holds_each_tap_once_per_output_column():
    kernel = jnp.arange(1.0, 1.0 + 2 * 3 * 2 * 4).reshape(2, 3, 2, 4)  # kh, kw, C, F
    matrix = banded_matrix(kernel, tile=4, stride=2)
    wt = (4 - 1) * 2 + 3
    chex.assert_shape(matrix, (2 * wt * 2, 4 * 4))
    m = np.asarray(matrix).reshape(2, wt, 2, 4, 4)  # i, p, c, j, f
    for j in range(4):
        for p in range(wt):
            tap = p - 2 * j
            want = kernel[:, tap] if 0 <= tap < 3 else np.zeros((2, 2, 4))
            np.testing.assert_array_equal(m[:, p, :, j, :], want)
    # Every kernel value appears once in each of the tile's output columns, nothing else.
    assert np.count_nonzero(m) == 4 * kernel.size


def test_im2col_conv_matches_lax_on_lenet_shapes():
    x = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1))
    kernel = jax.random.normal(jax.random.key(3), (5, 5, 1, 6))
    want = jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    chex.assert_trees_all_close(im2col_conv(x, kernel, padding="SAME"), want, atol=1e-5)
    chex.assert_shape(im2col_conv(x, kernel), (4, 24, 24, 6))
    chex.assert_trees_all_close(banded_conv(x, kernel, padding="SAME"), want, atol=1e-5)
    chex.assert_shape(banded_conv(x, kernel), (4, 24, 24, 6))


@pytest.mark.slow
def test_lenet_and_resnet_give_the_same_logits_with_either_lowering():
    def jitted(method):
        return jax.jit(functools.partial(method, train=False))

    x = jax.random.uniform(jax.random.key(4), (2, 28, 28, 1))
    variables = jitted(LeNet5(conv_impl="xla").init)(jax.random.key(5), x)
    logits = {
        impl: jitted(LeNet5(conv_impl=impl).apply)(variables, x)
        for impl in ("xla", "im2col", "banded")
    }
    chex.assert_trees_all_close(logits["im2col"], logits["xla"], atol=1e-5)
    chex.assert_trees_all_close(logits["banded"], logits["xla"], atol=1e-5)

    x = jax.random.uniform(jax.random.key(6), (2, 32, 32, 3))
    variables = jitted(ResNetV1(8).init)(jax.random.key(7), x)
    logits = {
        impl: jitted(ResNetV1(8, conv_impl=impl).apply)(variables, x) for impl in ("xla", "im2col")
    }
    chex.assert_trees_all_close(logits["im2col"], logits["xla"], atol=1e-4)


@pytest.mark.parametrize("impl", ["im2col", "banded"])
def test_matmul_lowerings_under_vmap_equal_one_member_at_a_time(impl):
    conv = Conv(5, (3, 3), padding="SAME", impl=impl)
    keys = jax.random.split(jax.random.key(8), 3)
    stacked = jax.vmap(lambda k: conv.init(k, IMAGES))(keys)
    together = jax.vmap(lambda v: conv.apply(v, IMAGES))(stacked)
    for i, k in enumerate(keys):  # a batched matmul: the same sums, maybe in another order
        one = conv.apply(conv.init(k, IMAGES), IMAGES)
        chex.assert_trees_all_close(together[i], one, atol=1e-6, rtol=1e-5)


def test_auto_is_banded_for_few_channels_on_cpu_and_unsupported_convolutions_fall_back():
    cpu = jax.default_backend() == "cpu"
    assert resolve_impl("auto") == ("banded" if cpu else "xla")
    assert resolve_impl("auto", BANDED_MAX_CHANNELS) == ("banded" if cpu else "xla")
    assert resolve_impl("auto", BANDED_MAX_CHANNELS + 1) == ("im2col" if cpu else "xla")
    assert resolve_impl("xla") == "xla"
    for impl in ("im2col", "banded"):
        dilated = Conv(3, (3, 3), kernel_dilation=2, impl=impl)
        variables = dilated.init(jax.random.key(9), IMAGES)
        reference = nn.Conv(3, (3, 3), kernel_dilation=2).apply(variables, IMAGES)
        np.testing.assert_allclose(dilated.apply(variables, IMAGES), reference, atol=1e-6)


def test_bad_impl_names_the_parameter():
    with pytest.raises(ValueError, match="impl must be one of"):
        Conv(3, (3, 3), impl="fft").init(jax.random.key(0), IMAGES)
    with pytest.raises(ValueError, match="channels"):
        im2col_conv(IMAGES, jnp.zeros((3, 3, 2, 5)))
    with pytest.raises(ValueError, match="channels"):
        banded_conv(IMAGES, jnp.zeros((3, 3, 2, 5)))
    for tile in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="tile must be an int >= 1"):
            banded_conv(IMAGES, jnp.zeros((3, 3, 4, 5)), tile=tile)


# ------------------------------------------------------------------------------------------------
# Batch slicing (Conv.batch_block).


@pytest.mark.parametrize(
    "batch, block, count",
    [
        (64, 64, 1),  # fits in one block
        (65, 64, 5),  # ceil = 2 does not divide 65; 5 is the smallest divisor >= 2
        (128, 64, 2),
        (1024, 64, 16),
        (4096, 64, 16),  # 64 slices wanted, capped at MAX_BATCH_BLOCKS
        (100, 64, 2),
        (1000, 64, 10),  # no divisor of 1000 in [16, 16]: the largest one <= 16
        (97, 64, 1),  # prime: not sliced
        (12, 5, 3),
        (8, 1, 8),
    ],
)
def test_batch_block_count_is_the_smallest_fitting_divisor(batch, block, count):
    assert MAX_BATCH_BLOCKS == 16
    assert batch_block_count(batch, block) == count
    assert batch_block_count(batch, None) == 1


def test_in_batch_slices_interleaves_and_restores_the_order():
    x = jnp.arange(24.0).reshape(12, 2)
    seen = []

    def record(part):
        seen.append(np.asarray(part[:, 0]))
        return part * 10.0

    np.testing.assert_array_equal(in_batch_slices(record, x, 3), x * 10.0)
    # Slice i holds examples i, i + 3, i + 6, ...: every slice spans the whole batch axis.
    np.testing.assert_array_equal(np.stack(seen), [[0, 6, 12, 18], [2, 8, 14, 20], [4, 10, 16, 22]])
    with pytest.raises(ValueError, match="not divisible into 5 slices"):
        in_batch_slices(record, x, 5)


@pytest.mark.parametrize("impl", ["xla", "im2col", "banded"])
def test_a_sliced_convolution_equals_the_whole_batch_one(impl):
    x = jax.random.normal(jax.random.key(10), (12, 9, 9, 3))
    whole = Conv(5, (3, 3), strides=2, padding="SAME", impl=impl)
    sliced = Conv(5, (3, 3), strides=2, padding="SAME", impl=impl, batch_block=4)
    variables = jax.jit(whole.init)(jax.random.key(11), x)
    chex.assert_trees_all_equal(variables, jax.jit(sliced.init)(jax.random.key(11), x))
    chex.assert_trees_all_close(
        jax.jit(sliced.apply)(variables, x), jax.jit(whole.apply)(variables, x), atol=1e-5
    )

    def grads(module):
        loss = lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)) * jnp.arange(5.0))  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, x)

    chex.assert_trees_all_close(grads(sliced), grads(whole), atol=1e-4, rtol=1e-4)


def test_resnet_with_sliced_convolutions_trains_as_the_unsliced_one():
    # BatchNorm statistics still span the whole batch: the same logits, batch statistics and
    # gradients (the filter gradients summed slice by slice: float round-off only).
    x = jax.random.normal(jax.random.key(12), (16, 32, 32, 3))
    labels = jnp.arange(16) % 10
    whole, sliced = ResNetV1(8, conv_batch_block=None), ResNetV1(8, conv_batch_block=4)
    variables = jax.jit(functools.partial(whole.init, train=False))(jax.random.key(13), x)

    def loss(model, params):
        logits, updates = model.apply(
            {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
        )
        one_hot = jax.nn.one_hot(labels, 10)
        return -jnp.mean(jnp.sum(one_hot * jax.nn.log_softmax(logits), -1)), updates

    def run(model):
        return jax.jit(jax.grad(functools.partial(loss, model), has_aux=True))(variables["params"])

    (grads_sliced, stats_sliced), (grads_whole, stats_whole) = run(sliced), run(whole)
    chex.assert_trees_all_close(stats_sliced, stats_whole, atol=1e-5, rtol=1e-5)
    chex.assert_trees_all_close(grads_sliced, grads_whole, atol=1e-5, rtol=1e-4)


def test_batch_block_auto_is_cpu_only_and_bad_values_name_the_parameter():
    want = CPU_BATCH_BLOCK if jax.default_backend() == "cpu" else None
    assert resolve_batch_block("auto") == want
    assert resolve_batch_block(None) is None and resolve_batch_block(7) == 7
    assert resolve_batch_block(np.int64(32)) == 32
    for bad in (0, -3, True, 2.5, "big"):
        with pytest.raises(ValueError, match="batch_block must be an int >= 1, 'auto' or None"):
            resolve_batch_block(bad)
    with pytest.raises(ValueError, match="conv_batch_block must be"):
        ResNetV1(8, conv_batch_block=0).init(jax.random.key(0), IMAGES[:, :, :, :3], train=False)
