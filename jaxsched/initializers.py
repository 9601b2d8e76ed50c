"""Kernel initializers by Keras's names, and the variances they draw with (closed forms)."""

import jax

# Keras name -> (scale, mode, distribution) of jax.nn.initializers.variance_scaling; the
# "truncated_normal" draws are rescaled so the variance is scale / fan, as Keras's.
VARIANCE_SCALING: dict[str, tuple[float, str, str]] = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}
NAMES = tuple(VARIANCE_SCALING)


def get(name: str, stddev: float | None = None) -> jax.nn.initializers.Initializer:
    """The initializer `name` (one of NAMES), or with name "normal" N(0, stddev^2)
    (Keras's RandomNormal(stddev=...): not truncated)."""
    if name == "normal":
        if stddev is None or not stddev > 0:
            raise ValueError(f"stddev must be > 0 for the normal initializer, got {stddev}")
        return jax.nn.initializers.normal(stddev)
    if name not in VARIANCE_SCALING:
        raise ValueError(f"initializer must be 'normal' or one of {NAMES}, got {name!r}")
    return jax.nn.initializers.variance_scaling(*VARIANCE_SCALING[name])


def variance(name: str, fan_in: int, fan_out: int, stddev: float | None = None) -> float:
    """The variance of each kernel entry that get(name, stddev) draws for a [fan_in, fan_out]
    Dense kernel: stddev^2, or scale / fan_in, scale / fan_out, scale / ((fan_in + fan_out) / 2)."""
    get(name, stddev)  # validates
    if name == "normal":
        return float(stddev) ** 2
    scale, mode, _ = VARIANCE_SCALING[name]
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    return scale / fan
