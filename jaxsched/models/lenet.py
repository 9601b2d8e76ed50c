"""LeNet-5 as the course's Keras seeds define it.

    input [B, H, W, C]
    -> (input BatchNorm) -> (input dropout)
    -> Conv 6@5x5 'same' tanh   -> (BN) -> AvgPool 2/s -> [(BN)] -> (dropout)
    -> Conv 16@5x5 'valid' tanh -> (BN) -> AvgPool 2/2 -> [(BN)] -> (dropout)
    -> Conv 120@5x5 'valid' tanh -> (BN) -> Flatten    -> (dropout)
    -> Dense 84 tanh -> (BN) -> (dropout)
    -> Dense num_classes (logits)

With 28x28 inputs the 'same' first convolution plays the role of LeCun's 32x32 padding, so the
third convolution sees 5x5 maps and outputs 1x1x120. Keras parameter counts (BatchNorm moving
statistics included, as Keras counts them): 62,614 with input BN (62,160 trainable), 62,610
without it, 61,706 without any BatchNorm.

The course's two other LeNet-5 notebooks pool the first time with stride s = 1: the second
convolution sees 27x27, the third 11x11, and the flatten feeds 7x7x120 = 5,880 values to the
dense layer. With a BatchNorm after each pooling as well ([(BN)] above, `pool_batchnorm`) that
net has the notebooks' 546,542 parameters (546,044 trainable); without any BatchNorm 545,546.
`dropout_first` puts each dropout right after its activation, before its BatchNorm and, in the
two convolution blocks, before the pooling too (input: dropout, then BatchNorm; hidden:
activation -> dropout -> BN -> pool), the Conv -> Dropout -> BatchNorm -> Pool order of the
course's BatchNorm + dropout notebook as this project reads it. It changes a net without
BatchNorm as well: the dropout then acts on the 28x28 / 23x23 maps, not the pooled ones.
"""

from typing import Literal

import flax.linen as nn
import jax.numpy as jnp

from jaxsched.models.conv import Conv, ConvImpl
from jaxsched.models.utils import KERAS_BN_EPSILON, KERAS_BN_MOMENTUM, KERAS_KERNEL_INIT

InputNorm = Literal["batchnorm", "none"]


class LeNet5(nn.Module):
    """LeNet-5 with optional BatchNorm and dropout.

    Attributes:
      num_classes: size of the logits.
      input_norm: "batchnorm" normalizes the input with a BatchNorm layer; "none" feeds it as
        given (standardize it in the data pipeline instead).
      hidden_batchnorm: BatchNorm after each hidden layer's activation.
      input_dropout: dropout rate on the input, in [0, 1).
      hidden_dropout: dropout rate after each hidden layer, in [0, 1).
      first_pool_stride: 2 (LeCun, the default) or 1 (the course's 546,542-parameter variant).
      pool_batchnorm: also a BatchNorm after each average pooling (with `hidden_batchnorm`).
      dropout_first: dropout right after each activation, before BatchNorm (and pooling),
        instead of after them.
      conv_impl: how the convolutions are lowered, "auto" (banded matmuls on CPU, XLA's
        convolution on GPU/TPU), "xla", "im2col" or "banded"; the parameters are the same
        (jaxsched.models.conv).
    """

    num_classes: int = 10
    input_norm: InputNorm = "batchnorm"
    hidden_batchnorm: bool = True
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    first_pool_stride: int = 2
    pool_batchnorm: bool = False
    dropout_first: bool = False
    conv_impl: ConvImpl = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """Maps float images [B, H, W, C] to logits float32[B, num_classes]."""
        if self.input_norm not in ("batchnorm", "none"):
            raise ValueError(f"input_norm must be 'batchnorm' or 'none', got {self.input_norm!r}")
        for name, rate in (
            ("input_dropout", self.input_dropout),
            ("hidden_dropout", self.hidden_dropout),
        ):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        if self.first_pool_stride not in (1, 2):
            raise ValueError(f"first_pool_stride must be 1 or 2, got {self.first_pool_stride!r}")

        def batchnorm(y):
            return nn.BatchNorm(
                use_running_average=not train, momentum=KERAS_BN_MOMENTUM, epsilon=KERAS_BN_EPSILON
            )(y)

        def hidden_norm(y):
            return batchnorm(y) if self.hidden_batchnorm else y

        def hidden_drop(y):
            return nn.Dropout(self.hidden_dropout, deterministic=not train)(y)

        conv = lambda features, padding: Conv(  # noqa: E731
            features, (5, 5), padding=padding, kernel_init=KERAS_KERNEL_INIT, impl=self.conv_impl
        )
        dense = lambda features: nn.Dense(features, kernel_init=KERAS_KERNEL_INIT)  # noqa: E731
        pool = lambda y, stride: nn.avg_pool(y, (2, 2), strides=(stride, stride))  # noqa: E731
        pool_norm = hidden_norm if self.pool_batchnorm else (lambda y: y)
        stride = self.first_pool_stride

        def norm_drop(y, norm):
            """The layer's BatchNorm and dropout, in the configured order."""
            return norm(hidden_drop(y)) if self.dropout_first else hidden_drop(norm(y))

        x = x.astype(jnp.float32)
        input_norm = batchnorm if self.input_norm == "batchnorm" else (lambda y: y)
        input_drop = nn.Dropout(self.input_dropout, deterministic=not train)
        x = input_norm(input_drop(x)) if self.dropout_first else input_drop(input_norm(x))
        if self.dropout_first:  # each layer: activation -> dropout -> BN (-> pool [-> BN])
            x = pool_norm(pool(norm_drop(jnp.tanh(conv(6, "SAME")(x)), hidden_norm), stride))
            x = pool_norm(pool(norm_drop(jnp.tanh(conv(16, "VALID")(x)), hidden_norm), 2))
            x = norm_drop(jnp.tanh(conv(120, "VALID")(x)), hidden_norm)
            x = x.reshape((x.shape[0], -1))
        else:  # the Keras seeds': activation -> BN -> pool [-> BN] -> dropout
            x = hidden_drop(pool_norm(pool(hidden_norm(jnp.tanh(conv(6, "SAME")(x))), stride)))
            x = hidden_drop(pool_norm(pool(hidden_norm(jnp.tanh(conv(16, "VALID")(x))), 2)))
            x = hidden_norm(jnp.tanh(conv(120, "VALID")(x)))
            x = hidden_drop(x.reshape((x.shape[0], -1)))
        x = norm_drop(jnp.tanh(dense(84)(x)), hidden_norm)
        return dense(self.num_classes)(x)
