"""jaxsched: learning-rate and batch-size schedule experiments in JAX, Flax and optax."""

__version__ = "0.1.0"
