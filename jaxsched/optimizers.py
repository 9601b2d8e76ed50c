"""Optimizer construction: `make(name, learning_rate, **options)`.

Every optimizer is wrapped in `optax.inject_hyperparams`, so the learning rate (and momentum)
in force at each update lives in the optimizer state and can be read back with
`hyperparams(opt_state)` for logging, whether it is a constant or a schedule.
"""

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import optax

LearningRate = float | optax.Schedule

# name -> (optax factory, arguments that are not numeric hyper-parameters)
_FACTORIES: dict[str, tuple[Callable[..., optax.GradientTransformation], tuple[str, ...]]] = {
    "sgd": (optax.sgd, ("nesterov",)),
    "adam": (optax.adam, ("nesterov",)),
}


def make(name: str, learning_rate: LearningRate, **options: Any) -> optax.GradientTransformation:
    """Builds optimizer `name` with a constant or scheduled learning rate.

    Args:
      name: one of `available()`.
      learning_rate: a positive float, or an `optax.Schedule` of the update count.
      **options: the optax factory's own keyword arguments (e.g. `momentum=0.9, nesterov=True`
        for "sgd").

    Returns:
      An `optax.GradientTransformation` whose state exposes its hyper-parameters.
    """
    if name not in _FACTORIES:
        raise ValueError(f"optimizer name must be one of {available()}, got {name!r}")
    if not callable(learning_rate) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0 or a schedule, got {learning_rate}")
    factory, static_args = _FACTORIES[name]
    return optax.inject_hyperparams(factory, static_args=static_args)(
        learning_rate=learning_rate, **options
    )


def available() -> tuple[str, ...]:
    """Names accepted by `make`."""
    return tuple(sorted(_FACTORIES))


def hyperparams(opt_state: optax.OptState) -> dict[str, jnp.ndarray]:
    """The injected hyper-parameters (e.g. "learning_rate") of the last update made.

    Searches the state tree, so it also works when the optimizer is wrapped (e.g. by
    `optax.MultiSteps`). Returns {} for an optimizer built without `inject_hyperparams`.
    """
    found: dict[str, jnp.ndarray] = {}

    def visit(node: Any) -> None:
        if isinstance(getattr(node, "hyperparams", None), dict):  # inject_hyperparams states
            found.update(node.hyperparams)
        elif isinstance(node, tuple | list):
            for child in node:
                visit(child)

    visit(opt_state)
    return found
