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
