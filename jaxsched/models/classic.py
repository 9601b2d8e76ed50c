"""The classic ImageNet CNNs the course does its arithmetic on: AlexNet, VGG19, Inception modules.

Every layer (convolution, max-pool, dense) is a named submodule, so `jaxsched.arithmetic` can
trace each one's input and output shapes and count its parameters and multiply-accumulates.

    AlexNet (Krizhevsky et al. 2012, one tower), input 227x227x3:
      conv1 96@11x11/4 -> pool1 3/2 -> conv2 256@5x5 pad 2 -> pool2 3/2
      -> conv3 384@3x3 pad 1 -> conv4 384@3x3 pad 1 -> conv5 256@3x3 pad 1 -> pool5 3/2
      -> fc6 4096 -> fc7 4096 -> fc8 num_classes             62,378,344 parameters (1000 classes)

    VGG19 (Simonyan & Zisserman 2015, configuration E), input 224x224x3:
      [conv 64 x2, pool] [conv 128 x2, pool] [conv 256 x4, pool] [conv 512 x4, pool]
      [conv 512 x4, pool] -> fc6 4096 -> fc7 4096 -> fc8 num_classes
      every conv 3x3 'SAME' stride 1, every pool 2x2/2              143,667,240 parameters

    Inception module (Szegedy et al. 2015), input [B, H, W, C], branches concatenated on channels:
      naive:   1x1 | 3x3 | 5x5 | 3x3 max-pool (stride 1)
      reduced: 1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3 max-pool -> 1x1 pool proj
      every conv 'SAME' stride 1 with ReLU, so the output keeps H x W.

ReLU follows every convolution and hidden dense layer; dropout (train=True only) follows fc6
and fc7. AlexNet's local response normalization is left out: it has no parameters and keeps
shapes, so it changes none of the counts.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (filters, convolutions)


class MaxPool(nn.Module):
    """`nn.max_pool` as a named layer: window x window, stride x stride."""

    window: int = 2
    stride: int = 2
    padding: str = "VALID"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """[B, H, W, C] -> [B, H', W', C]."""
        return nn.max_pool(
            x, (self.window, self.window), strides=(self.stride, self.stride), padding=self.padding
        )


def _classifier(
    x: jnp.ndarray, hidden: int, num_classes: int, dropout_rate: float, train: bool
) -> jnp.ndarray:
    """Flatten -> fc6 hidden ReLU -> (dropout) -> fc7 hidden ReLU -> (dropout) -> fc8 logits."""
    x = x.reshape((x.shape[0], -1))
    for name in ("fc6", "fc7"):
        x = nn.relu(nn.Dense(hidden, name=name)(x))
        x = nn.Dropout(dropout_rate, deterministic=not train)(x)
    return nn.Dense(num_classes, name="fc8")(x)


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {rate}")


class AlexNet(nn.Module):
    """AlexNet, single tower. Maps float images [B, 227, 227, 3] to logits [B, num_classes]."""

    num_classes: int = 1000
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
        _check_rate(self.dropout_rate)
        x = x.astype(jnp.float32)
        x = nn.relu(nn.Conv(96, (11, 11), strides=4, padding="VALID", name="conv1")(x))
        x = MaxPool(3, 2, name="pool1")(x)
        x = nn.relu(nn.Conv(256, (5, 5), padding=2, name="conv2")(x))
        x = MaxPool(3, 2, name="pool2")(x)
        for name, features in (("conv3", 384), ("conv4", 384), ("conv5", 256)):
            x = nn.relu(nn.Conv(features, (3, 3), padding=1, name=name)(x))
        x = MaxPool(3, 2, name="pool5")(x)
        return _classifier(x, 4096, self.num_classes, self.dropout_rate, train)


class VGG19(nn.Module):
    """VGG19. Maps float images [B, 224, 224, 3] to logits [B, num_classes].

    Layers are named conv{stage}_{k}, pool{stage}, fc6, fc7, fc8 (stages 1..5).
    """

    num_classes: int = 1000
    dropout_rate: float = 0.5
    stages: Sequence[tuple[int, int]] = VGG19_STAGES

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
        _check_rate(self.dropout_rate)
        x = x.astype(jnp.float32)
        for stage, (features, convs) in enumerate(self.stages, start=1):
            for k in range(1, convs + 1):
                x = nn.relu(nn.Conv(features, (3, 3), padding="SAME", name=f"conv{stage}_{k}")(x))
            x = MaxPool(2, 2, name=f"pool{stage}")(x)
        return _classifier(x, 4096, self.num_classes, self.dropout_rate, train)


def _conv(features: int, size: int, name: str) -> nn.Conv:
    return nn.Conv(features, (size, size), padding="SAME", name=name)


class InceptionNaive(nn.Module):
    """Naive Inception module: [B, H, W, C] -> [B, H, W, f1x1 + f3x3 + f5x5 + C].

    Layers: "1x1", "3x3", "5x5" (convolutions with those many filters) and "pool" (3x3 max-pool,
    stride 1, 'SAME'); the branch of a layer is its name up to the first "_".
    """

    filters_1x1: int = 128
    filters_3x3: int = 192
    filters_5x5: int = 96

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        branches = [
            nn.relu(_conv(self.filters_1x1, 1, "1x1")(x)),
            nn.relu(_conv(self.filters_3x3, 3, "3x3")(x)),
            nn.relu(_conv(self.filters_5x5, 5, "5x5")(x)),
            MaxPool(3, 1, "SAME", name="pool")(x),
        ]
        return jnp.concatenate(branches, axis=-1)


class InceptionReduced(nn.Module):
    """Inception module with dimension reductions (GoogLeNet's):
    [B, H, W, C] -> [B, H, W, filters_1x1 + filters_3x3 + filters_5x5 + pool_proj].

    Attributes follow GoogLeNet's table: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
    Layers: "1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool", "pool_proj"; the branch of
    a layer is its name up to the first "_".
    """

    filters_1x1: int = 128
    reduce_3x3: int = 64
    filters_3x3: int = 192
    reduce_5x5: int = 64
    filters_5x5: int = 96
    pool_proj: int = 64

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        def reduce_then(reduce: int, features: int, size: int) -> jnp.ndarray:
            name = f"{size}x{size}"
            y = nn.relu(_conv(reduce, 1, f"{name}_reduce")(x))
            return nn.relu(_conv(features, size, name)(y))

        branches = [
            nn.relu(_conv(self.filters_1x1, 1, "1x1")(x)),
            reduce_then(self.reduce_3x3, self.filters_3x3, 3),
            reduce_then(self.reduce_5x5, self.filters_5x5, 5),
            nn.relu(_conv(self.pool_proj, 1, "pool_proj")(MaxPool(3, 1, "SAME", name="pool")(x))),
        ]
        return jnp.concatenate(branches, axis=-1)


class ConvStack(nn.Module):
    """`depth` stacked kernel_size x kernel_size 'VALID' stride-1 convolutions of `features`
    filters (ReLU between them): [B, H, W, C] -> [B, H - depth (k - 1), W - depth (k - 1), F]."""

    depth: int = 1
    kernel_size: int = 3
    features: int = 64

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for k in range(1, self.depth + 1):
            x = nn.Conv(self.features, (self.kernel_size,) * 2, padding="VALID", name=f"conv{k}")(x)
            if k < self.depth:
                x = nn.relu(x)
        return x
