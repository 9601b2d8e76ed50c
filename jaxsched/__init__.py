"""jaxsched: learning-rate and batch-size schedule experiments in JAX, Flax and optax.

The names most users need are at the top level; everything else is in its module
(`jaxsched.data`, `jaxsched.loop`, `jaxsched.range_test`, ...):

  cyclic_lr, one_cycle_lr   cyclical and one-cycle learning rates (optax schedules)
  fit, fit_grid             train a Flax module; a grid of rates / seeds at once
  lr_find, batch_size_find  the LR range test and the batch-size range on any model
  optimizers, schedules,    the optimizer factory, the schedules, and batch-size schedules
  batch_schedules

Submodules load on first use, so `import jaxsched` is cheap.

Examples:
  >>> import jaxsched
  >>> schedule = jaxsched.cyclic_lr(0.001, 0.006, step_size_up=4)
  >>> [round(float(schedule(k)), 4) for k in (0, 2, 4, 6, 8)]
  [0.001, 0.0035, 0.006, 0.0035, 0.001]
"""

import importlib
from typing import Any

__version__ = "0.2.0"

_ATTRIBUTES = {
    "cyclic_lr": "jaxsched.schedules",
    "one_cycle_lr": "jaxsched.schedules",
    "fit": "jaxsched.loop",
    "fit_grid": "jaxsched.sweep",
    "lr_find": "jaxsched.find",
    "batch_size_find": "jaxsched.find",
}
_MODULES = ("optimizers", "schedules", "batch_schedules")

__all__ = ["__version__", *_ATTRIBUTES, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"jaxsched.{name}")
    raise AttributeError(f"module 'jaxsched' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
