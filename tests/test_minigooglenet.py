"""MiniGoogLeNet: shapes, parameter counts (by hand and against tf.keras), train / eval modes,
a few SGD steps on real Fashion-MNIST, and the two convolution lowerings."""

import functools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsched import optimizers, train
from jaxsched.models import MiniGoogLeNet, count_params

KEY = jax.random.key(0)
# For the variables actually computed: XLA compiles threefry's draws slowly on CPU (about half a
# second per parameter array here, 12 s for this net's init); the "rbg" generator compiles in a
# fraction of that. Only the random values differ.
FAST_KEY = jax.random.key(0, impl="rbg")

# Keras's MiniGoogLeNet.build(32, 32, 1, 10).count_params(), BatchNorm moving statistics
# included (test_keras_builds_the_same_count rebuilds it where TensorFlow is installed).
KERAS_TOTAL_1CH = 1_654_522
KERAS_TOTAL_3CH = 1_656_250

# The book's layout, written out again here rather than read from the module.
INCEPTIONS_1 = [(32, 32), (32, 48)]
INCEPTIONS_2 = [(112, 48), (96, 64), (80, 80), (48, 96)]
INCEPTIONS_3 = [(176, 160), (176, 160)]


def hand_count(channels: int, classes: int = 10) -> tuple[int, int]:
    """(trainable, BatchNorm statistics) of MiniGoogLeNet summed over its conv_modules."""
    convs = []  # (kernel size, input channels, output channels) of every conv_module

    def conv(k, cin, cout):
        convs.append((k, cin, cout))
        return cout

    c = conv(3, channels, 96)
    for f1, f3 in INCEPTIONS_1:
        c = conv(1, c, f1) + conv(3, c, f3)
    c = conv(3, c, 80) + c  # downsample: conv branch + max-pool branch (channels kept)
    for f1, f3 in INCEPTIONS_2:
        c = conv(1, c, f1) + conv(3, c, f3)
    c = conv(3, c, 96) + c
    for f1, f3 in INCEPTIONS_3:
        c = conv(1, c, f1) + conv(3, c, f3)
    assert c == 336
    # kernel + bias, then BatchNorm scale + offset; the moving mean and variance are not trained
    trainable = sum(k * k * cin * cout + cout + 2 * cout for k, cin, cout in convs)
    trainable += c * classes + classes  # Dense on the 1x1x336 pooled map
    stats = sum(2 * cout for _, _, cout in convs)
    return trainable, stats


def shapes(model, x):
    """The variables' shapes, without computing anything."""
    return jax.eval_shape(lambda x: model.init(KEY, x, train=False), x)


@pytest.mark.parametrize("channels", [1, 3])
def test_output_and_intermediate_shapes(channels):
    model = MiniGoogLeNet()
    x = jax.ShapeDtypeStruct((4, 32, 32, channels), jnp.float32)
    variables = shapes(model, x)
    logits, state = jax.eval_shape(
        lambda v, x: model.apply(
            v, x, train=False, capture_intermediates=True, mutable=["intermediates"]
        ),
        variables,
        x,
    )
    chex.assert_shape(logits, (4, 10))
    inter = state["intermediates"]
    out = {name: inter[name]["__call__"][0].shape for name in inter if name != "__call__"}
    assert out["stem"] == (4, 32, 32, 96)
    assert out["inception_1"] == (4, 32, 32, 64)
    assert out["inception_2"] == (4, 32, 32, 80)
    assert out["downsample_1"] == (4, 15, 15, 160)
    assert out["inception_6"] == (4, 15, 15, 144)
    assert out["downsample_2"] == (4, 7, 7, 240)
    assert out["inception_8"] == (4, 7, 7, 336)
    assert out["dropout"] == (4, 1, 1, 336)  # after the 7x7 average pool


def test_small_inputs_are_rejected():
    with pytest.raises(ValueError, match="7x7 average pool"):
        shapes(MiniGoogLeNet(), jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32))
    for bad in (MiniGoogLeNet(dropout=1.0), MiniGoogLeNet(width=0.0)):
        with pytest.raises(ValueError, match="dropout|width"):
            shapes(bad, jax.ShapeDtypeStruct((1, 32, 32, 1), jnp.float32))


@pytest.mark.parametrize("channels, keras_total", [(1, KERAS_TOTAL_1CH), (3, KERAS_TOTAL_3CH)])
def test_parameter_counts_by_hand_and_keras_total(channels, keras_total):
    variables = shapes(MiniGoogLeNet(), jax.ShapeDtypeStruct((1, 32, 32, channels), jnp.float32))
    trainable, stats = hand_count(channels)
    assert count_params(variables["params"]) == trainable
    assert count_params(variables["batch_stats"]) == stats == 3_424
    assert trainable + stats == keras_total
    assert set(variables) == {"params", "batch_stats"}


def test_width_scales_every_filter_count():
    variables = shapes(
        MiniGoogLeNet(width=0.25, num_classes=7),
        jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32),
    )
    params = variables["params"]
    assert params["stem"]["Conv_0"]["kernel"].shape == (3, 3, 3, 24)
    assert params["downsample_2"]["conv_3x3"]["Conv_0"]["kernel"].shape == (3, 3, 12 + 24, 24)
    assert params["classifier"]["kernel"].shape == (84, 7)  # (44 + 40) channels pooled


@pytest.mark.slow
def test_keras_builds_the_same_count():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow")
    layers = tf.keras.layers

    def conv(x, k, size, stride=1, padding="same"):
        x = layers.Conv2D(k, (size, size), strides=stride, padding=padding)(x)
        return layers.Activation("relu")(layers.BatchNormalization(axis=-1)(x))

    def inception(x, f1, f3):
        return layers.concatenate([conv(x, f1, 1), conv(x, f3, 3)])

    def downsample(x, k):
        pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
        return layers.concatenate([conv(x, k, 3, 2, "valid"), pool])

    inputs = layers.Input((32, 32, 1))
    x = conv(inputs, 96, 3)
    for f1, f3 in INCEPTIONS_1:
        x = inception(x, f1, f3)
    x = downsample(x, 80)
    for f1, f3 in INCEPTIONS_2:
        x = inception(x, f1, f3)
    x = downsample(x, 96)
    for f1, f3 in INCEPTIONS_3:
        x = inception(x, f1, f3)
    x = layers.Flatten()(layers.Dropout(0.5)(layers.AveragePooling2D((7, 7))(x)))
    keras_model = tf.keras.Model(inputs, layers.Dense(10, activation="softmax")(x))

    variables = shapes(MiniGoogLeNet(), jax.ShapeDtypeStruct((1, 32, 32, 1), jnp.float32))
    ours = count_params(variables["params"]) + count_params(variables["batch_stats"])
    assert keras_model.count_params() == ours == KERAS_TOTAL_1CH
    keras_trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert keras_trainable == count_params(variables["params"])


@pytest.fixture(scope="module")
def narrow():
    """A width-0.25 MiniGoogLeNet, its variables, and 4 random 32x32x1 images.

    XLA's convolution: on this small a net the im2col lowering ("auto" on CPU) runs no faster
    and compiles slower; test_both_lowerings_give_the_same_logits checks im2col."""
    model = MiniGoogLeNet(width=0.25, conv_impl="xla")
    x = jax.random.uniform(jax.random.key(1), (4, 32, 32, 1))
    return model, jax.jit(functools.partial(model.init, train=False))(FAST_KEY, x), x


def test_dropout_and_batchnorm_act_only_in_training(narrow):
    model, variables, x = narrow

    @functools.partial(jax.jit, static_argnames="train")
    def run(variables, x, rng, train):
        return model.apply(
            variables, x, train=train, rngs={"dropout": rng}, mutable=["batch_stats"]
        )

    eval_a, eval_stats = run(variables, x, jax.random.key(2), train=False)
    eval_b, _ = run(variables, x, jax.random.key(3), train=False)
    chex.assert_trees_all_equal(eval_a, eval_b)  # deterministic, whatever the key
    # evaluation reads the moving statistics and writes none
    chex.assert_trees_all_equal(
        eval_stats.get("batch_stats", variables["batch_stats"]), variables["batch_stats"]
    )

    train_a, train_stats = run(variables, x, jax.random.key(2), train=True)
    train_b, _ = run(variables, x, jax.random.key(3), train=True)
    assert not np.allclose(train_a, train_b)  # dropout differs with the key
    moved = jax.tree.map(
        lambda new, old: bool(jnp.any(new != old)),
        train_stats["batch_stats"],
        variables["batch_stats"],
    )
    assert all(jax.tree.leaves(moved))  # every BatchNorm's moving mean and variance updated


def test_both_lowerings_give_the_same_logits(narrow):
    _, variables, x = narrow
    logits = {}
    for impl in ("xla", "im2col"):
        model = MiniGoogLeNet(width=0.25, conv_impl=impl)
        logits[impl] = jax.jit(functools.partial(model.apply, train=False))(variables, x[:2])
    chex.assert_trees_all_close(logits["im2col"], logits["xla"], rtol=1e-4, atol=1e-5)


def test_sliced_convolutions_give_the_same_training_logits_and_statistics(narrow):
    # conv_batch_block reaches every convolution (19 of them, 2 slices each: 38 in the program)
    # and leaves the whole-batch BatchNorm as it was.
    _, variables, x = narrow

    def train_apply(block):
        model = MiniGoogLeNet(width=0.25, dropout=0.0, conv_batch_block=block)
        apply = functools.partial(model.apply, train=True, mutable=["batch_stats"])
        convolutions = str(jax.make_jaxpr(apply)(variables, x)).count("conv_general_dilated")
        return jax.jit(apply)(variables, x), convolutions

    (whole, whole_stats), whole_count = train_apply(None)
    (sliced, sliced_stats), sliced_count = train_apply(2)
    assert (whole_count, sliced_count) == (19, 38)
    chex.assert_trees_all_close(sliced, whole, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_close(sliced_stats, whole_stats, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_narrow_net_learns_real_fashion_mnist(fashion_small):
    train_ds, _ = fashion_small
    images = jax.image.resize(jnp.asarray(train_ds.images[:64]), (64, 32, 32, 1), "bilinear")
    labels = jnp.asarray(train_ds.labels[:64])
    model = MiniGoogLeNet(width=0.25, conv_impl="xla")  # faster to compile (see `narrow`)
    tx = optimizers.make("sgd", 0.01, momentum=0.9)
    state = train.init_train_state(model, tx, FAST_KEY, images)
    step = jax.jit(train.make_train_step(model, tx))
    loss = []
    for _ in range(10):
        state, metrics = step(state, images, labels)
        loss.append(float(metrics["loss"]))
    assert np.all(np.isfinite(loss))
    assert int(state.step) == 10
    assert np.mean(loss[-3:]) < 0.9 * loss[0], loss  # e.g. 2.44 -> 1.98
