r"""Learning-rate and momentum schedules: pure functions of the optimizer update count.

Every schedule here is an `optax.Schedule`: `schedule(count)` takes `count`, the number of
optimizer updates already made (0, 1, 2, ...; int, optimizer updates, not gradient
computations), and returns the value used by the next update as a float32 scalar (or a float32
array, elementwise, for an array of counts). This is the count optax keeps in its state
(`optax.inject_hyperparams`, `optax.scale_by_schedule`), so update k uses `schedule(k)`. The
schedules are closures over `jnp` math: they accept Python ints and traced int32 counts, and a
jitted function taking the count as an argument compiles once for all counts.

Batch-size schedules, which run on the host rather than under jit, are in
`jaxsched.batch_schedules`.

Conventions of the implementations we reproduce step for step:

* PyTorch (`torch.optim.lr_scheduler`): update k uses the value computed after k calls of
  `scheduler.step()`, i.e. with `last_epoch == k` (the constructor's own step sets
  `last_epoch = 0` before the first update).
* Keras CLR callback (bckenstler/CLR `clr_callback.py`): batch k trains at `clr()` with
  `clr_iterations == k` (0 before the first batch, +1 in `on_batch_end`).
* Keras `LearningRateScheduler`: epoch e (0-based) trains at `schedule(e)`, so an update count
  maps to `epoch = count // steps_per_epoch`.

Valid counts: integers 0 <= count <= 2**31 - 1 (optax's int32 count; larger with
`jax_enable_x64`). Cycle positions are computed with integer arithmetic (`divmod` of the count
by the cycle length), so they are exact over that whole range, and amplitude scales are
computed so that they underflow to 0 rather than overflow (no inf/NaN after any number of
cycles). Float counts are accepted but are exact only below 2**24.

References:
  Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
  https://arxiv.org/abs/1506.01186.
  Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning
  Rates", 2019, https://arxiv.org/abs/1708.07120.
  He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
  https://arxiv.org/abs/1512.03385.
"""

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

ScaleFn = Callable[[jax.Array], jax.typing.ArrayLike]

MODES = ("triangular", "triangular2", "exp_range")
SCALE_MODES = ("cycle", "iterations")
ANNEAL_STRATEGIES = ("cos", "linear")
MAX_COUNT = 2**31 - 1  # largest int32 update count

# The Keras CIFAR-10 ResNet example's lr_schedule(epoch): factor of base_lr once epoch > E.
_KERAS_RESNET_EPOCHS = (80, 120, 160, 180)
_KERAS_RESNET_FACTORS = (1e-1, 1e-2, 1e-3, 0.5e-3)


# ------------------------------------------------------------------------------------------------
# Argument checks (each error names the parameter).


def _as_count(name: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int in [minimum, MAX_COUNT]; integral floats (e.g. 2000.) are accepted."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer():
        integral = True
    if not integral or not minimum <= value <= MAX_COUNT:
        raise ValueError(f"{name} must be an integer in [{minimum}, 2**31 - 1], got {value!r}")
    return int(value)


def _as_real(name: str, value: Any, requirement: str, ok: Callable[[float], bool]) -> float:
    """`value` as a finite float satisfying `ok`, else ValueError '{name} must be {requirement}'."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not ok(number):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return number


def _check_bounds(low_name: str, low: Any, high_name: str, high: Any, upper: float) -> None:
    """0 <= low <= high <= upper, all finite."""
    low = _as_real(low_name, low, f"in [0, {upper}]", lambda v: 0 <= v <= upper)
    _as_real(high_name, high, f"in [{low_name}={low}, {upper}]", lambda v: low <= v <= upper)


# ------------------------------------------------------------------------------------------------
# Cyclical schedules (Smith 2017; PyTorch CyclicLR; Keras CLR).


def _cycle_factor(
    step_size_up: Any,
    step_size_down: Any,
    mode: str,
    gamma: Any,
    scale_fn: ScaleFn | None,
    scale_mode: str | None,
) -> Callable[[Any], jax.Array]:
    """Validates the cycle arguments; returns count -> triangle height * amplitude scale."""
    up = _as_count("step_size_up", step_size_up)
    down = up if step_size_down is None else _as_count("step_size_down", step_size_down)
    if up + down > MAX_COUNT:
        raise ValueError(
            f"step_size_up + step_size_down must be <= 2**31 - 1, got {up} + {down} = {up + down}"
        )
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    gamma = _as_real("gamma", gamma, "in (0, 1]", lambda v: 0 < v <= 1)
    if scale_fn is not None and not callable(scale_fn):
        raise ValueError(f"scale_fn must be callable or None, got {scale_fn!r}")
    if scale_mode is not None:
        if scale_mode not in SCALE_MODES:
            raise ValueError(f"scale_mode must be one of {SCALE_MODES} or None, got {scale_mode!r}")
        if scale_fn is None:
            raise ValueError(
                f"scale_mode={scale_mode!r} needs a scale_fn (the built-in modes fix their own)"
            )
    total = up + down
    log_gamma = math.log(gamma)  # float64 on the host; gamma**t = exp(t * log(gamma))

    def factor(count: Any) -> jax.Array:
        cycle_index, position = jnp.divmod(jnp.asarray(count), total)  # exact for int counts
        position = position.astype(jnp.float32)
        cycle = (cycle_index + 1).astype(jnp.float32)  # 1-based, as in PyTorch and Keras
        iterations = jnp.asarray(count).astype(jnp.float32)  # global count, never reset
        height = jnp.where(position <= up, position / up, (total - position) / down)
        if scale_fn is not None:
            argument = iterations if scale_mode == "iterations" else cycle
            scale = jnp.asarray(scale_fn(argument), jnp.float32)
        elif mode == "triangular":
            scale = jnp.float32(1.0)
        elif mode == "triangular2":
            scale = jnp.exp2(1.0 - cycle)  # 1 / 2**(cycle - 1), underflows to 0, never inf
        else:  # exp_range
            scale = jnp.exp(iterations * jnp.float32(log_gamma))
        return height * scale

    return factor


def cyclic_lr(
    base_lr: float,
    max_lr: float,
    step_size_up: int,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: ScaleFn | None = None,
    scale_mode: str | None = None,
) -> optax.Schedule:
    r"""Cyclical learning rate (CLR): triangular cycles between `base_lr` and `max_lr`.

    With :math:`t` the update count, :math:`u, d` the step sizes up and down, :math:`L = u + d`
    the cycle length, the cycle number :math:`c = \lfloor t / L \rfloor + 1` (1-based) and the
    position in the cycle :math:`p = t \bmod L`:

    .. math::
      h(t) = \begin{cases} p / u, & p \le u \\ (L - p) / d, & p > u \end{cases}
      \qquad
      \eta(t) = \eta_{base} + (\eta_{max} - \eta_{base}) \, h(t) \, s(t)

    where the amplitude scale :math:`s` is 1 (`triangular`), :math:`2^{-(c - 1)}`
    (`triangular2`: halved each cycle), :math:`\gamma^t` (`exp_range`: `t` is the global update
    count, never reset per cycle), or `scale_fn(c)` / `scale_fn(t)` for a custom `scale_fn`
    with `scale_mode` "cycle" / "iterations". The rate starts at `base_lr` (t = 0), peaks at
    `max_lr * s` after `step_size_up` updates and is back at `base_lr` at the end of each cycle.

    This is PyTorch's `CyclicLR` with `last_epoch = t` and, for symmetric cycles, the Keras CLR
    callback's `clr()` with `clr_iterations = t`, step for step in every mode. (Both document
    `exp_range` and "iterations" as counting "cycle iterations", but both codes, and this
    function, use the global count.)

    Counts 0 <= t <= 2**31 - 1 are all valid: c and p come from an integer `divmod`, so the
    position in the cycle stays exact after any number of cycles (a float32 `t / L` would not),
    and the `triangular2` and `exp_range` scales underflow to 0, so the rate tends to `base_lr`
    without inf or NaN.

    Args:
      base_lr: lower bound of the cycle, >= 0.
      max_lr: upper bound, >= base_lr; reached only where the scale is 1.
      step_size_up: updates in the increasing half of a cycle, a positive integer (Smith
        suggests 2-10 epochs' worth of updates).
      step_size_down: updates in the decreasing half; defaults to `step_size_up`.
      mode: "triangular", "triangular2" or "exp_range"; ignored (but still checked) when
        `scale_fn` is given.
      gamma: `exp_range`'s decay per update, in (0, 1]; ignored by the other modes.
      scale_fn: optional custom amplitude scale, a jnp-compatible elementwise callable returning
        values in [0, 1]. It receives a float32 array: the 1-based cycle number, or the update
        count (exact below 2**24).
      scale_mode: "cycle" (the default when `scale_fn` is given) or "iterations"; only with
        `scale_fn`.

    Returns:
      schedule: update count (int, optimizer updates) -> learning rate (float32).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import schedules
      >>> lr = schedules.cyclic_lr(0.001, 0.009, step_size_up=2, mode="triangular2")
      >>> [round(float(lr(k)), 4) for k in range(9)]  # the second cycle peaks at half
      [0.001, 0.005, 0.009, 0.005, 0.001, 0.003, 0.005, 0.003, 0.001]

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks", 2017,
      https://arxiv.org/abs/1506.01186; PyTorch `torch.optim.lr_scheduler.CyclicLR`;
      https://github.com/bckenstler/CLR (`clr_callback.py`).
    """
    base_lr = _as_real("base_lr", base_lr, ">= 0", lambda v: v >= 0)
    max_lr = _as_real("max_lr", max_lr, f">= base_lr={base_lr}", lambda v: v >= base_lr)
    factor = _cycle_factor(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
    amplitude = max_lr - base_lr

    def schedule(count: Any) -> jax.Array:
        return (base_lr + amplitude * factor(count)).astype(jnp.float32)

    return schedule


def cyclic_momentum(
    base_momentum: float,
    max_momentum: float,
    step_size_up: int,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: ScaleFn | None = None,
    scale_mode: str | None = None,
) -> optax.Schedule:
    r"""Momentum cycled inversely to `cyclic_lr`: high when the learning rate is low.

    .. math::
      m(t) = m_{max} - (m_{max} - m_{base}) \, h(t) \, s(t)

    with :math:`h, s` as in `cyclic_lr` (same step sizes, mode, gamma, scale function). This is
    the momentum PyTorch's `CyclicLR(cycle_momentum=True)` sets for update t; use it for SGD's
    `momentum` or Adam's `b1` through `optax.inject_hyperparams`.

    Args:
      base_momentum: momentum at the learning-rate peak, in [0, 1].
      max_momentum: momentum at the start and end of each cycle, in [base_momentum, 1].
      step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode: as in `cyclic_lr`.

    Returns:
      schedule: update count (int, optimizer updates) -> momentum (float32).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import schedules
      >>> momentum = schedules.cyclic_momentum(0.85, 0.95, step_size_up=2)
      >>> [round(float(momentum(k)), 4) for k in range(5)]
      [0.95, 0.9, 0.85, 0.9, 0.95]

    References:
      Smith, "A disciplined approach to neural network hyper-parameters: Part 1", 2018,
      https://arxiv.org/abs/1803.09820; PyTorch `torch.optim.lr_scheduler.CyclicLR`.
    """
    _check_bounds("base_momentum", base_momentum, "max_momentum", max_momentum, 1.0)
    factor = _cycle_factor(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
    top, amplitude = float(max_momentum), float(max_momentum) - float(base_momentum)

    def schedule(count: Any) -> jax.Array:
        return (top - amplitude * factor(count)).astype(jnp.float32)

    return schedule


# ------------------------------------------------------------------------------------------------
# One-cycle policy (Smith & Topin 2019; PyTorch OneCycleLR).


def _one_cycle(
    total_steps: Any,
    pct_start: Any,
    anneal_strategy: str,
    three_phase: bool,
    values: Sequence[tuple[float, float]],
) -> optax.Schedule:
    """PyTorch OneCycleLR's phase logic; `values[i]` = (start, end) value of phase i."""
    total_steps = _as_count("total_steps", total_steps)
    pct_start = _as_real("pct_start", pct_start, "in [0, 1]", lambda v: 0 <= v <= 1)
    if anneal_strategy not in ANNEAL_STRATEGIES:
        raise ValueError(
            f"anneal_strategy must be one of {ANNEAL_STRATEGIES}, got {anneal_strategy!r}"
        )
    # The phases' end steps, computed exactly as PyTorch does (Python floats).
    ends = [float(pct_start * total_steps) - 1]
    if three_phase:
        ends.append(float(2 * pct_start * total_steps) - 2)
    ends.append(total_steps - 1)
    if ends[0] == 0:  # phase 1 (and 2 of 3) would be empty: PyTorch divides by zero at step 0
        raise ValueError(
            f"pct_start * total_steps must not be 1 (the warm-up phase would last 0 updates), "
            f"got pct_start={pct_start}, total_steps={total_steps}"
        )
    starts = [0.0, *ends[:-1]]
    # Non-zero spans; a zero span (pct_start=1, or 2*pct_start*T = T+1 with three phases) only
    # ever belongs to a phase no count in [0, total_steps) reaches.
    spans = [end - start if end != start else 1.0 for start, end in zip(starts, ends, strict=True)]

    def anneal(start: float, end: float, done: jax.Array, left: jax.Array) -> jax.Array:
        # PyTorch's _annealing_cos, end + (start - end) / 2 * (cos(pi * pct) + 1), and
        # _annealing_linear, (end - start) * pct + start, rewritten as weighted sums with
        # done = pct and left = 1 - pct computed separately: the same values, without float32
        # cancellation near either end (so min_lr comes out to ~1 ulp, not ~1e-4 relative).
        if start == end:  # a flat phase (momentum's third): exactly constant
            return jnp.full_like(done, start)
        if anneal_strategy == "cos":
            half_pi = jnp.float32(math.pi / 2)
            return start * jnp.sin(half_pi * left) ** 2 + end * jnp.sin(half_pi * done) ** 2
        return start * left + end * done

    def schedule(count: Any) -> jax.Array:
        count = jnp.clip(jnp.asarray(count), 0, total_steps - 1)  # hold the final value
        step = count.astype(jnp.float32)
        integer = jnp.issubdtype(count.dtype, jnp.integer)
        phases = [
            anneal(*values[i], (step - starts[i]) / spans[i], (ends[i] - step) / spans[i])
            for i in range(len(ends))
        ]
        value = phases[-1]
        for i in reversed(range(len(ends) - 1)):  # the first phase with step <= end wins
            bound = min(math.floor(ends[i]), MAX_COUNT) if integer else ends[i]
            value = jnp.where(count <= bound, phases[i], value)
        return value.astype(jnp.float32)

    return schedule


def one_cycle_lr(
    total_steps: int,
    max_lr: float,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> optax.Schedule:
    r"""The one-cycle learning-rate policy, exactly as PyTorch's `OneCycleLR`.

    With :math:`T` = `total_steps`, :math:`p` = `pct_start`,
    :math:`\eta_0 = \eta_{max} / \text{div\_factor}` and
    :math:`\eta_{min} = \eta_0 / \text{final\_div\_factor}`, the phases end at the (float)
    steps :math:`e_1 = pT - 1`, then :math:`e_2 = 2pT - 2` (three phases only), then
    :math:`T - 1`. Update t belongs to the first phase with :math:`t \le e_i` (the last one
    otherwise); with :math:`s_i` the previous phase's end (0 for the first) it uses

    .. math::
      \text{anneal}(a_i, b_i, (t - s_i) / (e_i - s_i)), \quad
      \text{anneal}_{cos}(a, b, x) = b + \frac{a - b}{2} (\cos(\pi x) + 1), \quad
      \text{anneal}_{linear}(a, b, x) = a + (b - a) x

    going :math:`\eta_0 \to \eta_{max} \to \eta_{min}` (two phases) or
    :math:`\eta_0 \to \eta_{max} \to \eta_0 \to \eta_{min}` (three phases).

    PyTorch raises past `total_steps` (and extrapolates at t = total_steps); this schedule
    holds its value at t = total_steps - 1 (`min_lr`) for every later count, and the value at
    t = 0 for negative counts.

    Args:
      total_steps: updates in the cycle, a positive integer.
      max_lr: peak learning rate, > 0.
      pct_start: fraction of `total_steps` spent increasing the rate, in [0, 1];
        `pct_start * total_steps` must not be exactly 1 (PyTorch divides by zero there).
        With `three_phase`, values above ~0.5 give PyTorch's (odd) schedule that never anneals
        to `min_lr`.
      anneal_strategy: "cos" or "linear".
      div_factor: initial_lr = max_lr / div_factor, > 0.
      final_div_factor: min_lr = initial_lr / final_div_factor, > 0.
      three_phase: a third phase anneals initial_lr -> min_lr after a symmetric
        warm-up / cool-down; otherwise the second phase goes max_lr -> min_lr.

    Returns:
      schedule: update count (int, optimizer updates) -> learning rate (float32).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import schedules
      >>> lr = schedules.one_cycle_lr(total_steps=10, max_lr=0.1, anneal_strategy="linear")
      >>> [round(float(lr(k)), 4) for k in range(10)]
      [0.004, 0.052, 0.1, 0.0857, 0.0714, 0.0571, 0.0429, 0.0286, 0.0143, 0.0]

    References:
      Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates", 2019, https://arxiv.org/abs/1708.07120; PyTorch
      `torch.optim.lr_scheduler.OneCycleLR`.
    """
    max_lr = _as_real("max_lr", max_lr, "> 0", lambda v: v > 0)
    div_factor = _as_real("div_factor", div_factor, "> 0", lambda v: v > 0)
    final_div_factor = _as_real("final_div_factor", final_div_factor, "> 0", lambda v: v > 0)
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    if three_phase:
        values = [(initial_lr, max_lr), (max_lr, initial_lr), (initial_lr, min_lr)]
    else:
        values = [(initial_lr, max_lr), (max_lr, min_lr)]
    return _one_cycle(total_steps, pct_start, anneal_strategy, three_phase, values)


def one_cycle_momentum(
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    three_phase: bool = False,
) -> optax.Schedule:
    r"""The momentum PyTorch's `OneCycleLR(cycle_momentum=True)` sets: inverse to the rate.

    Same phases and annealing as `one_cycle_lr` (same `total_steps`, `pct_start`,
    `anneal_strategy`, `three_phase`), going :math:`m_{max} \to m_{base} \to m_{max}` (two
    phases) or :math:`m_{max} \to m_{base} \to m_{max} \to m_{max}` (three phases). Held at its
    final value past `total_steps`. Use it for SGD's `momentum` or Adam's `b1`.

    Args:
      total_steps, pct_start, anneal_strategy, three_phase: as in `one_cycle_lr`.
      base_momentum: momentum at the learning-rate peak, in [0, 1].
      max_momentum: momentum at the start and end, in [base_momentum, 1].

    Returns:
      schedule: update count (int, optimizer updates) -> momentum (float32).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import schedules
      >>> momentum = schedules.one_cycle_momentum(total_steps=10)
      >>> [round(float(momentum(k)), 4) for k in (0, 2, 5, 9)]
      [0.95, 0.85, 0.8889, 0.95]

    References:
      Smith & Topin 2019, https://arxiv.org/abs/1708.07120; PyTorch
      `torch.optim.lr_scheduler.OneCycleLR`.
    """
    _check_bounds("base_momentum", base_momentum, "max_momentum", max_momentum, 1.0)
    low, high = float(base_momentum), float(max_momentum)
    if three_phase:
        values = [(high, low), (low, high), (high, high)]
    else:
        values = [(high, low), (low, high)]
    return _one_cycle(total_steps, pct_start, anneal_strategy, three_phase, values)


# ------------------------------------------------------------------------------------------------
# Step decays used by the seeds.


def step_decay(
    base_lr: float, boundaries: Sequence[int], factors: Sequence[float]
) -> optax.Schedule:
    r"""Piecewise-constant rate: `base_lr * factors[i]` from update `boundaries[i]` on.

    .. math::
      \eta(t) = \eta_{base} \cdot f_{k(t)}, \quad k(t) = \#\{i : t \ge b_i\}, \quad f_0 = 1

    The factors are absolute multipliers of `base_lr` (not cumulative, unlike
    `optax.piecewise_constant_schedule`'s scales; the boundary convention `t >= b` is the same),
    and each piece is rounded to float32 once, so the values are the nearest float32 to the
    float64 products.

    Args:
      base_lr: rate before the first boundary, >= 0.
      boundaries: update counts at which the rate changes, strictly increasing positive
        integers (may be empty).
      factors: one multiplier of `base_lr` per boundary, each >= 0.

    Returns:
      schedule: update count (int, optimizer updates) -> learning rate (float32).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import schedules
      >>> lr = schedules.step_decay(0.1, boundaries=[3, 6], factors=[0.1, 0.01])
      >>> [round(float(lr(k)), 4) for k in range(8)]
      [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001]
    """
    base_lr = _as_real("base_lr", base_lr, ">= 0", lambda v: v >= 0)
    boundaries = [_as_count("boundaries", b) for b in boundaries]
    if any(b1 >= b2 for b1, b2 in zip(boundaries, boundaries[1:], strict=False)):
        raise ValueError(f"boundaries must be strictly increasing, got {boundaries}")
    factors = [_as_real("factors", f, ">= 0", lambda v: v >= 0) for f in factors]
    if len(factors) != len(boundaries):
        raise ValueError(
            f"factors must have one entry per boundary ({len(boundaries)}), got {len(factors)}"
        )
    values = np.asarray([base_lr] + [base_lr * f for f in factors], np.float32)

    def schedule(count: Any) -> jax.Array:
        count = jnp.asarray(count)
        value = jnp.full(count.shape, values[0])
        for boundary, piece_value in zip(boundaries, values[1:], strict=True):
            value = jnp.where(count >= boundary, piece_value, value)
        return value

    return schedule


def he_et_al_decay(
    base_lr: float = 0.1, boundaries: Sequence[int] = (32_000, 48_000), factor: float = 0.1
) -> optax.Schedule:
    r"""He et al. (2016)'s CIFAR-10 ResNet schedule: 0.1, divided by 10 at 32k and 48k updates.

    .. math::
      \eta(t) = \eta_{base} \cdot \text{factor}^{\#\{i : t \ge b_i\}}

    (the paper terminates training at 64k updates, batch 128).

    Args:
      base_lr: initial rate, >= 0.
      boundaries: update counts of the decays, strictly increasing positive integers.
      factor: multiplier applied at each boundary, in (0, 1].

    Returns:
      schedule: update count (int, optimizer updates) -> learning rate (float32).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import schedules
      >>> lr = schedules.he_et_al_decay()
      >>> [round(float(lr(k)), 4) for k in (0, 31_999, 32_000, 48_000)]
      [0.1, 0.1, 0.01, 0.001]

    References:
      He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
      section 4.2, https://arxiv.org/abs/1512.03385.
    """
    factor = _as_real("factor", factor, "in (0, 1]", lambda v: 0 < v <= 1)
    return step_decay(base_lr, boundaries, [factor ** (i + 1) for i in range(len(boundaries))])


def keras_resnet_decay(steps_per_epoch: int, base_lr: float = 1e-3) -> optax.Schedule:
    r"""The Keras CIFAR-10 ResNet example's `lr_schedule(epoch)`, per update.

    The example (`keras/examples/cifar10_resnet.py`, Adam) returns, for the 0-based epoch index
    `LearningRateScheduler` passes at the start of each epoch, `1e-3` times 0.5e-3 if
    epoch > 180, 1e-3 if epoch > 160, 1e-2 if epoch > 120, 1e-1 if epoch > 80, else 1. Here
    epoch = count // steps_per_epoch, so the rate drops at the first update of (0-based) epochs
    81, 121, 161 and 181:

    .. math::
      \eta(t) = \eta_{base} \cdot f(\lfloor t / S \rfloor), \quad
      f(e) = \begin{cases} 5 \cdot 10^{-4}, & e > 180 \\ 10^{-3}, & e > 160 \\
      10^{-2}, & e > 120 \\ 10^{-1}, & e > 80 \\ 1, & \text{otherwise} \end{cases}

    (The example's `ReduceLROnPlateau` is overridden by the scheduler at each epoch start, so
    it is not part of the schedule.)

    Args:
      steps_per_epoch: updates per epoch, a positive integer (ceil(50000 / batch_size) for
        the example's full CIFAR-10 training set).
      base_lr: the example's 1e-3, >= 0.

    Returns:
      schedule: update count (int, optimizer updates) -> learning rate (float32).

    Raises:
      ValueError: naming the offending parameter.

    Examples:
      >>> from jaxsched import schedules
      >>> lr = schedules.keras_resnet_decay(steps_per_epoch=10)
      >>> [round(float(lr(k)), 7) for k in (0, 809, 810, 1210, 1610, 1810)]
      [0.001, 0.001, 0.0001, 1e-05, 1e-06, 5e-07]

    References:
      https://github.com/keras-team/keras/blob/2.3.1/examples/cifar10_resnet.py
    """
    steps_per_epoch = _as_count("steps_per_epoch", steps_per_epoch)
    last_epoch = _KERAS_RESNET_EPOCHS[-1] + 1
    if last_epoch * steps_per_epoch > MAX_COUNT:
        raise ValueError(
            f"steps_per_epoch must be <= (2**31 - 1) // {last_epoch}, got {steps_per_epoch}"
        )
    boundaries = [(epoch + 1) * steps_per_epoch for epoch in _KERAS_RESNET_EPOCHS]
    return step_decay(base_lr, boundaries, _KERAS_RESNET_FACTORS)


# ------------------------------------------------------------------------------------------------
# Evaluation.


def schedule_values(schedule: optax.Schedule, num_steps: int) -> np.ndarray:
    """Evaluates `schedule` at counts 0, 1, ..., num_steps - 1 in one jitted, vmapped call.

    Args:
      schedule: any `optax.Schedule` (jnp-traceable).
      num_steps: how many counts, a positive integer.

    Returns:
      values: float[num_steps] (the schedule's dtype, float32 for this module's schedules).

    Raises:
      ValueError: if `num_steps` is not a positive integer.

    Examples:
      >>> from jaxsched import schedules
      >>> values = schedules.schedule_values(schedules.cyclic_lr(0.1, 0.5, step_size_up=2), 5)
      >>> values.shape, [round(float(v), 4) for v in values]
      ((5,), [0.1, 0.3, 0.5, 0.3, 0.1])
    """
    num_steps = _as_count("num_steps", num_steps)
    counts = jnp.arange(num_steps, dtype=jnp.int32)
    return np.asarray(jax.jit(jax.vmap(schedule))(counts))
