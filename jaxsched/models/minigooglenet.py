"""MiniGoogLeNet: the small Inception network of Rosebrock's "Deep Learning for Computer Vision
with Python" (Practitioner Bundle, `pyimagesearch/nn/conv/minigooglenet.py`), as Keras builds it.

    conv_module(K, k, s, padding):  Conv K@kxk stride s (with bias) -> BN -> ReLU
    inception_module(K1, K3):       concat[conv_module(K1, 1x1), conv_module(K3, 3x3)]  (same)
    downsample_module(K):           concat[conv_module(K, 3x3, stride 2, valid),
                                           MaxPool 3x3 stride 2 (valid)]

    input [B, 32, 32, C]                                           C = 1 or 3
    -> conv_module(96, 3x3, stride 1)                              32 x 32 x 96
    -> inception(32, 32) -> inception(32, 48)                      32 x 32 x 80
    -> downsample(80)                                              15 x 15 x 160
    -> inception(112, 48) -> inception(96, 64)
       -> inception(80, 80) -> inception(48, 96)                   15 x 15 x 144
    -> downsample(96)                                              7 x 7 x 240
    -> inception(176, 160) -> inception(176, 160)                  7 x 7 x 336
    -> AvgPool 7x7 (stride 7, valid) -> Dropout 0.5 -> Flatten     336
    -> Dense num_classes (logits; the softmax is in the loss)

Every filter count K above becomes max(1, round(K * width)) (`width` = 1 is the book's
network); the max-pool branch passes its input's channels through. As in Keras, the 7x7 average
pool has stride 7 and 'valid' padding, so inputs must leave at least a 7x7 map after the second
downsample (32x32 gives exactly 7x7 -> 1x1; 28x28 would give 6x6 and is rejected).

Layers use Keras's defaults: Glorot-uniform kernels and zero biases on every convolution and on
the Dense layer, BatchNormalization(momentum=0.99, epsilon=1e-3). Keras's
`MiniGoogLeNet.build(32, 32, 1, 10).count_params()` is 1,654,522: 1,651,098 trainable and 3,424
BatchNorm moving statistics (mean and variance of the 1,712 BatchNorm channels); with 3 input
channels (CIFAR-10), 1,656,250 (1,652,826 trainable). Here the trainable count is
`variables["params"]` and the moving statistics are `variables["batch_stats"]`.

References:
  A. Rosebrock. Deep Learning for Computer Vision with Python, Practitioner Bundle (the
  MiniGoogLeNet chapter, CIFAR-10), after the small Inception network of Zhang et al.,
  Understanding deep learning requires rethinking generalization, ICLR 2017 (Appendix A), and
  Szegedy et al., Going Deeper with Convolutions, CVPR 2015.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from jaxsched.models.conv import BatchBlock, Conv, ConvImpl, resolve_batch_block
from jaxsched.models.utils import KERAS_BN_EPSILON, KERAS_BN_MOMENTUM, KERAS_KERNEL_INIT

# (kind, filters): the body after the first conv_module, in order.
LAYOUT: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("inception", (32, 32)),
    ("inception", (32, 48)),
    ("downsample", (80,)),
    ("inception", (112, 48)),
    ("inception", (96, 64)),
    ("inception", (80, 80)),
    ("inception", (48, 96)),
    ("downsample", (96,)),
    ("inception", (176, 160)),
    ("inception", (176, 160)),
)
STEM_FILTERS = 96
POOL_SIZE = 7


def scaled(filters: int, width: float) -> int:
    """A filter count under the width multiplier: max(1, round(filters * width))."""
    return max(1, round(filters * width))


class ConvModule(nn.Module):
    """Conv features@kxk (stride, padding, with bias) -> BatchNorm -> ReLU."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: str = "SAME"
    conv_impl: ConvImpl = "xla"
    conv_batch_block: BatchBlock = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """float[B, H, W, C] -> float[B, H', W', features]."""
        x = Conv(
            self.features,
            (self.kernel_size, self.kernel_size),
            strides=self.stride,
            padding=self.padding,
            kernel_init=KERAS_KERNEL_INIT,
            impl=self.conv_impl,
            batch_block=self.conv_batch_block,
        )(x)
        x = nn.BatchNorm(
            use_running_average=not train, momentum=KERAS_BN_MOMENTUM, epsilon=KERAS_BN_EPSILON
        )(x)
        return nn.relu(x)


class InceptionModule(nn.Module):
    """[B, H, W, C] -> [B, H, W, f1x1 + f3x3]: a 1x1 and a 3x3 conv_module, concatenated."""

    f1x1: int
    f3x3: int
    conv_impl: ConvImpl = "xla"
    conv_batch_block: BatchBlock = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        conv = functools.partial(
            ConvModule, conv_impl=self.conv_impl, conv_batch_block=self.conv_batch_block
        )
        a = conv(self.f1x1, 1, name="conv_1x1")(x, train=train)
        b = conv(self.f3x3, 3, name="conv_3x3")(x, train=train)
        return jnp.concatenate([a, b], axis=-1)


class DownsampleModule(nn.Module):
    """[B, H, W, C] -> [B, (H - 3) // 2 + 1, (W - 3) // 2 + 1, features + C]: a 3x3 stride-2
    'valid' conv_module and a 3x3 stride-2 'valid' max pool, concatenated."""

    features: int
    conv_impl: ConvImpl = "xla"
    conv_batch_block: BatchBlock = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        conv = ConvModule(
            self.features,
            3,
            stride=2,
            padding="VALID",
            conv_impl=self.conv_impl,
            conv_batch_block=self.conv_batch_block,
            name="conv_3x3",
        )(x, train=train)
        pool = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
        return jnp.concatenate([conv, pool], axis=-1)


class MiniGoogLeNet(nn.Module):
    """MiniGoogLeNet (see the module docstring for the layout and shapes).

    Submodules are named "stem", then "inception_1" ... "inception_8" and "downsample_1",
    "downsample_2" in layout order, then "dropout" and "classifier".

    Attributes:
      num_classes: size of the logits.
      dropout: dropout rate before the classifier, in [0, 1) (the book's 0.5).
      width: filter-count multiplier > 0; every K becomes max(1, round(K * width)). 1.0 is the
        book's network; e.g. 0.25 is a narrow one for tests and smoke runs.
      conv_impl: how the convolutions are lowered, "xla" (default), "im2col" or "auto" (im2col
        on CPU); the parameters are the same (jaxsched.models.conv). XLA's convolution measured
        faster here on CPU too: 53-59 against 49-50 images/s at batch 64 (im2col's patches of
        the 3x3 convolutions over 64-336 input channels are 9x their input).
      conv_batch_block: compute each convolution of a batch larger than this in interleaved
        slices of at most this many examples, the BatchNorms over the whole batch
        (`jaxsched.models.conv.Conv.batch_block`): "auto" (default) is 64 on CPU, no slicing
        on GPU/TPU; None never slices. At batch 512 on CPU: 55-67 images/s sliced against 29
        whole (43 with im2col); the same numbers up to float round-off.
    """

    num_classes: int = 10
    dropout: float = 0.5
    width: float = 1.0
    conv_impl: ConvImpl = "xla"
    conv_batch_block: BatchBlock = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """Maps float images [B, H, W, C] (32x32 in the book) to logits float32[B, num_classes]."""
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        if x.ndim != 4:
            raise ValueError(f"expected images [B, H, W, C], got shape {x.shape}")
        resolve_batch_block(self.conv_batch_block, "conv_batch_block")
        k = lambda filters: scaled(filters, self.width)  # noqa: E731
        options = dict(conv_impl=self.conv_impl, conv_batch_block=self.conv_batch_block)

        x = x.astype(jnp.float32)
        x = ConvModule(k(STEM_FILTERS), 3, name="stem", **options)(x, train=train)
        counts = {"inception": 0, "downsample": 0}
        for kind, filters in LAYOUT:
            counts[kind] += 1
            name = f"{kind}_{counts[kind]}"
            if kind == "inception":
                module = InceptionModule(*map(k, filters), name=name, **options)
            else:
                module = DownsampleModule(*map(k, filters), name=name, **options)
            x = module(x, train=train)
        if min(x.shape[1:3]) < POOL_SIZE:
            raise ValueError(
                f"the final feature map is {x.shape[1]}x{x.shape[2]}, smaller than the "
                f"{POOL_SIZE}x{POOL_SIZE} average pool; MiniGoogLeNet needs inputs of at least "
                "31x31 (32x32 in the book)"
            )
        x = nn.avg_pool(x, (POOL_SIZE, POOL_SIZE), strides=(POOL_SIZE, POOL_SIZE))
        x = nn.Dropout(self.dropout, deterministic=not train, name="dropout")(x)
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(self.num_classes, kernel_init=KERAS_KERNEL_INIT, name="classifier")(x)
