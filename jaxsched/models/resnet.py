"""ResNet v1 for CIFAR (He et al. 2016, Section 4.2), as the Keras CIFAR-10 example builds it.

    input [B, H, W, C]
    -> Conv 16@3x3 -> BN -> ReLU
    -> stage 1: n blocks, 16 filters, H x W
    -> stage 2: n blocks, 32 filters, H/2 x W/2 (the first block has stride 2)
    -> stage 3: n blocks, 64 filters, H/4 x W/4 (the first block has stride 2)
    -> global average pooling -> Dense num_classes (logits)

    block: y = BN(Conv3x3(ReLU(BN(Conv3x3_stride(x)))));  out = ReLU(y + shortcut(x))

depth = 6n + 2 (20, 32, 44, 56, 110 in the paper). Where a block changes the shape, the shortcut
is either option "A", the parameter-free zero-padded identity He et al. used on CIFAR, or option
"B", the 1x1 stride-2 convolution (with bias, no BatchNorm) of Keras's `examples/cifar10_resnet.py`
(`resnet_v1`), which the course's seeds ran. As in that example, every convolution has a bias
and He-normal kernels, and the classifier is Dense with He-normal kernels; Keras's
AveragePooling2D(8) + Flatten is the global mean for 32x32 inputs.

Keras's ResNet-44 v1 (option B) has 665,994 parameters, 662,826 of them trainable (the other
3,168 are BatchNorm moving statistics). In general, with s = (16, 32, 64), C input channels,
K classes and n blocks per stage, the trainable count of option A is

    (9 C s1 + s1) + 2 s1                                          stem conv + BN
    + sum_i [ (9 s_{i-1} s_i + s_i) + (2n - 1)(9 s_i^2 + s_i) + 4 n s_i ]   (s0 = s1)
    + 64 K + K                                                    Dense

option B adds (16 * 32 + 32) + (32 * 64 + 64) = 2,656 for the two projections, and the
BatchNorm moving statistics add 2 * (16 + 2 n (16 + 32 + 64)) = 32 + 448 n.

The seeds trained with Keras's `kernel_regularizer=l2(1e-4)` on every convolution: add
`jaxsched.losses.l2_penalty(params, 1e-4)` to the loss to reproduce it (the model itself has
no regularizer).

References:
  He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016.
  https://arxiv.org/abs/1512.03385
"""

import numbers
from collections.abc import Callable
from typing import Literal

import flax.linen as nn
import jax.numpy as jnp

from jaxsched import initializers
from jaxsched.models.conv import BatchBlock, Conv, ConvImpl, resolve_batch_block
from jaxsched.models.utils import KERAS_BN_EPSILON, KERAS_BN_MOMENTUM

Shortcut = Literal["A", "B"]

# Keras's 'he_normal': truncated normal, variance 2 / fan_in.
HE_NORMAL = initializers.get("he_normal")

STAGE_FEATURES = (16, 32, 64)


def zero_pad_shortcut(x: jnp.ndarray, features: int, stride: int) -> jnp.ndarray:
    """He et al.'s option A: identity subsampled by `stride`, zero channels appended.

    Args:
      x: float[B, H, W, C].
      features: output channels, >= C.
      stride: spatial subsampling; keeps pixels 0, stride, 2 * stride, ... (as the 1x1
        stride-2 'same' convolution of option B samples them).

    Returns:
      float[B, ceil(H / stride), ceil(W / stride), features]: x's channels first, then
      features - C zero channels.
    """
    channels = x.shape[-1]
    if features < channels:
        raise ValueError(f"features must be >= the input's {channels} channels, got {features}")
    x = x[:, ::stride, ::stride, :]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, features - channels)))


class ResidualBlock(nn.Module):
    """Conv3x3(stride)-BN-ReLU-Conv3x3-BN, added to the shortcut, then ReLU.

    Attributes:
      features: output channels.
      stride: stride of the first convolution (2 downsamples).
      shortcut: "A" (zero-padded identity) or "B" (1x1 convolution) where the shape changes;
        the identity otherwise.
      kernel_init: initializer of the convolution kernels (biases start at zero).
      bn_momentum: decay of the BatchNorm running averages (Keras's 0.99 by default).
      conv_impl: how the convolutions are lowered (see ResNetV1).
      conv_batch_block: the convolutions' batch slicing (see ResNetV1).
    """

    features: int
    stride: int = 1
    shortcut: Shortcut = "B"
    kernel_init: Callable = HE_NORMAL
    bn_momentum: float = KERAS_BN_MOMENTUM
    conv_impl: ConvImpl = "xla"
    conv_batch_block: BatchBlock = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """Maps float[B, H, W, C] to float[B, H / stride, W / stride, features]."""
        conv = lambda kernel, stride, name: Conv(  # noqa: E731
            self.features,
            (kernel, kernel),
            strides=(stride, stride),
            padding="SAME",
            kernel_init=self.kernel_init,
            impl=self.conv_impl,
            batch_block=self.conv_batch_block,
            name=name,
        )
        batchnorm = lambda name: nn.BatchNorm(  # noqa: E731
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=KERAS_BN_EPSILON,
            name=name,
        )
        y = nn.relu(batchnorm("bn1")(conv(3, self.stride, "conv1")(x)))
        y = batchnorm("bn2")(conv(3, 1, "conv2")(y))
        if self.stride != 1 or x.shape[-1] != self.features:
            if self.shortcut == "A":
                x = zero_pad_shortcut(x, self.features, self.stride)
            else:
                x = conv(1, self.stride, "projection")(x)
        return nn.relu(x + y)


class ResNetV1(nn.Module):
    """ResNet v1 for CIFAR-sized images: depth 6n + 2, stages of 16 / 32 / 64 filters.

    Attributes:
      depth: number of weighted layers, 6n + 2 with n >= 1 (8, 20, 32, 44, 56, 110, ...).
      num_classes: size of the logits.
      shortcut: "B" (default): 1x1 stride-2 convolution where the shape changes, Keras's
        `resnet_v1`; "A": parameter-free zero-padded identity, He et al.'s CIFAR choice.
      kernel_init: initializer of every kernel (biases start at zero); Keras's he_normal.
      bn_momentum: decay of the BatchNorm running averages used at evaluation. Keras's 0.99
        (the default) leaves 0.99**n of the initial statistics after n updates, so runs of a
        few hundred updates evaluate badly; PyTorch's default corresponds to 0.9.
      conv_impl: how the convolutions are lowered (jaxsched.models.conv): "xla" (default),
        "im2col" or "auto" (im2col on CPU). im2col measured 1.6x slower for ResNet-44 on CPU
        (its 3x3 convolutions over 16-64 channels), so XLA's convolution is the default here.
      conv_batch_block: compute each convolution of a batch larger than this in interleaved
        slices of at most this many examples (`jaxsched.models.conv.Conv.batch_block`), the
        BatchNorms still over the whole batch: "auto" (default) is 64 on CPU, where ResNet-44's
        step on 1024 images (batch augmentation M = 16) ran 2x faster (67.6 against 33.8
        images/s; benchmarks/resnet_step.py), and no slicing on GPU/TPU; None never slices.
        Same numbers up to float round-off; a sliced program takes longer to compile (at
        most 16 slices per convolution).
    """

    depth: int = 44
    num_classes: int = 10
    shortcut: Shortcut = "B"
    kernel_init: Callable = HE_NORMAL
    bn_momentum: float = KERAS_BN_MOMENTUM
    conv_impl: ConvImpl = "xla"
    conv_batch_block: BatchBlock = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """Maps float images [B, H, W, C] to logits float32[B, num_classes]."""
        resolve_batch_block(self.conv_batch_block, "conv_batch_block")
        if not isinstance(self.depth, numbers.Integral) or self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(
                "depth must be 6n + 2 with n >= 1 (e.g. 8, 20, 32, 44, 56, 110), "
                f"got {self.depth!r}"
            )
        if self.shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {self.shortcut!r}")
        blocks_per_stage = (self.depth - 2) // 6

        x = x.astype(jnp.float32)
        x = Conv(
            STAGE_FEATURES[0],
            (3, 3),
            padding="SAME",
            kernel_init=self.kernel_init,
            impl=self.conv_impl,
            batch_block=self.conv_batch_block,
        )(x)
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"bn_momentum must be in [0, 1), got {self.bn_momentum!r}")
        x = nn.BatchNorm(
            use_running_average=not train, momentum=self.bn_momentum, epsilon=KERAS_BN_EPSILON
        )(x)
        x = nn.relu(x)
        for stage, features in enumerate(STAGE_FEATURES):
            for block in range(blocks_per_stage):
                x = ResidualBlock(
                    features,
                    stride=2 if stage > 0 and block == 0 else 1,
                    shortcut=self.shortcut,
                    kernel_init=self.kernel_init,
                    bn_momentum=self.bn_momentum,
                    conv_impl=self.conv_impl,
                    conv_batch_block=self.conv_batch_block,
                    name=f"stage{stage + 1}_block{block + 1}",
                )(x, train=train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, kernel_init=self.kernel_init)(x)
