"""Multi-layer perceptrons over flattened images."""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxsched import initializers

HE_NORMAL = initializers.get("he_normal")


class MLP(nn.Module):
    """Flatten -> (input dropout) -> [Dense h, activation, (dropout)] per hidden -> Dense logits.

    The course's CIFAR-10 MLP is `MLP(hidden=(1000, 1000))`: ReLU, He-normal kernels, zero
    biases; its dropout variant uses input_dropout=0.2, hidden_dropout=0.5.

    Attributes:
      hidden: widths of the hidden layers.
      num_classes: size of the logits.
      activation: elementwise non-linearity of the hidden layers.
      kernel_init: initializer of every kernel (biases start at zero).
      input_dropout / hidden_dropout: dropout rates in [0, 1).
      input_linear: the first hidden layer has no activation (the course's initialization
        experiment: 784 -> Dense 100 linear -> activated Dense layers).

    Each hidden layer's output (after its activation, before dropout) is sown into the
    "intermediates" collection as "hidden" (a tuple, first layer first): read it with
    `apply(..., mutable=["intermediates"])`.
    """

    hidden: Sequence[int] = (1000, 1000)
    num_classes: int = 10
    activation: Callable[[jnp.ndarray], jnp.ndarray] = nn.relu
    kernel_init: Callable = HE_NORMAL
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    input_linear: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        """Maps inputs [B, ...] to logits float32[B, num_classes]."""
        for name, rate in (
            ("input_dropout", self.input_dropout),
            ("hidden_dropout", self.hidden_dropout),
        ):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        x = x.reshape((x.shape[0], -1)).astype(jnp.float32)
        x = nn.Dropout(self.input_dropout, deterministic=not train)(x)
        for i, width in enumerate(self.hidden):
            x = nn.Dense(width, kernel_init=self.kernel_init)(x)
            if not (self.input_linear and i == 0):
                x = self.activation(x)
            self.sow("intermediates", "hidden", x)
            x = nn.Dropout(self.hidden_dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, kernel_init=self.kernel_init)(x)


GLOROT_UNIFORM = initializers.get("glorot_uniform")


class DepthWidthNet(nn.Module):
    """The depth-vs-width study's regression net, as the course's Keras model:
    inputs [B, D] -> Dense w_1 + ReLU -> [BatchNorm -> Dense w_l + ReLU] for l = 2.. -> Dense 1.

    Kernels Glorot-uniform (Keras's Dense default), biases zero; BatchNorm with Keras's
    momentum 0.99 and epsilon 1e-3. Layers are named hidden_0, bn_1, hidden_1, ..., output, so a
    net's variables embed in a wider or deeper one's by name (jaxsched.shape_grid pads them).

    Attributes:
      widths: the hidden widths, first layer first (at least one).
      batch_norm: the BatchNorm before every hidden Dense after the first.

    `unit_masks` (one float[w_l] per hidden layer, 1 = the unit exists) and `layer_gates`
    (bool[L], layer l exists) let one padded net compute a narrower or shallower one exactly:
    a masked unit outputs 0 (after its ReLU and after the next BatchNorm), so it receives zero
    gradient and sends nothing; a gated-off layer passes its input through unchanged (every
    hidden width must then be equal).
    """

    widths: Sequence[int] = (16,)
    batch_norm: bool = True
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    @nn.compact
    def __call__(
        self,
        x: jnp.ndarray,
        *,
        train: bool,
        unit_masks: Sequence[jnp.ndarray] | None = None,
        layer_gates: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        """Maps inputs [B, ...] to predictions float32[B, 1]."""
        h = x.reshape((x.shape[0], -1)).astype(jnp.float32)
        for i, width in enumerate(self.widths):
            y = h
            if i > 0 and self.batch_norm:
                y = nn.BatchNorm(
                    use_running_average=not train,
                    momentum=self.bn_momentum,
                    epsilon=self.bn_epsilon,
                    name=f"bn_{i}",
                )(y)
                if unit_masks is not None:
                    y = y * unit_masks[i - 1]
            y = nn.relu(nn.Dense(width, kernel_init=GLOROT_UNIFORM, name=f"hidden_{i}")(y))
            if unit_masks is not None:
                y = y * unit_masks[i]
            h = y if layer_gates is None or i == 0 else jnp.where(layer_gates[i], y, h)
        return nn.Dense(1, kernel_init=GLOROT_UNIFORM, name="output")(h)
