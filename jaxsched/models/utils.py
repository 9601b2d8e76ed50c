"""Helpers shared by the model definitions."""

from typing import Any

import jax
import numpy as np

from jaxsched import initializers

# Keras's layer defaults, which the course's seeds ran: Glorot-uniform kernels, zero biases,
# BatchNormalization(momentum=0.99, epsilon=1e-3).
KERAS_KERNEL_INIT = initializers.get("glorot_uniform")
KERAS_BN_MOMENTUM = 0.99
KERAS_BN_EPSILON = 1e-3


def count_params(tree: Any) -> int:
    """Number of scalars in a pytree (e.g. `variables["params"]`)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))
