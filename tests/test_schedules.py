"""schedules: cyclic, one-cycle and step schedules against transcribed PyTorch / Keras references.

The references below are NumPy/Python transcriptions of the published code, evaluated in
float64 with the same argument the reference implementation uses for update k:

* PyTorch `torch/optim/lr_scheduler.py`, `CyclicLR.get_lr` and `OneCycleLR.get_lr`, with
  `self.last_epoch == k` (the value after k `scheduler.step()` calls).
* bckenstler/CLR `clr_callback.py`, `CyclicLR.clr`, with `self.clr_iterations == k`.
* keras `examples/cifar10_resnet.py`, `lr_schedule(epoch)` with the 0-based epoch index that
  `LearningRateScheduler.on_epoch_begin` passes.
"""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

from jaxsched import schedules

RTOL, ATOL = 2e-6, 1e-7  # float32 schedules against float64 references

# Custom amplitude scales, as (jnp version for the schedule, NumPy version for the references).
# The first is the Keras CLR README's example scale_fn (for scale_mode="cycle").
CYCLE_SCALE = (
    lambda c: 0.5 * (1 + jnp.sin(c * jnp.pi / 2)),
    lambda c: 0.5 * (1 + np.sin(c * np.pi / 2)),
)
ITERATION_SCALE = (lambda t: 1.0 / (1.0 + t / 50.0), lambda t: 1.0 / (1.0 + t / 50.0))


# ------------------------------------------------------------------------------------------------
# References.


def torch_cyclic(
    k,
    base_lr,
    max_lr,
    step_size_up,
    step_size_down=None,
    mode="triangular",
    gamma=1.0,
    scale_fn=None,
    scale_mode="cycle",
    base_momentum=0.8,
    max_momentum=0.9,
):
    """(lr, momentum) for updates k (int array) per PyTorch CyclicLR.__init__ / get_lr."""
    k = np.asarray(k, np.float64)
    up = float(step_size_up)
    down = float(step_size_down) if step_size_down is not None else up
    total_size = up + down
    step_ratio = up / total_size
    if scale_fn is None:  # CyclicLR._init_scale_fn: the built-in modes fix scale_mode
        if mode == "triangular":
            scale_fn, scale_mode = (lambda x: np.ones_like(x)), "cycle"
        elif mode == "triangular2":
            scale_fn, scale_mode = (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
        else:  # exp_range
            scale_fn, scale_mode = (lambda x: gamma**x), "iterations"
    cycle = np.floor(1 + k / total_size)
    x = 1.0 + k / total_size - cycle
    scale_factor = np.where(x <= step_ratio, x / step_ratio, (x - 1) / (step_ratio - 1))
    scale = scale_fn(cycle) if scale_mode == "cycle" else scale_fn(k)
    lr = base_lr + (max_lr - base_lr) * scale_factor * scale
    momentum = max_momentum - (max_momentum - base_momentum) * scale_factor * scale
    return lr, momentum


def keras_clr(
    k, base_lr, max_lr, step_size, mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle"
):
    """lr for batches k per bckenstler/CLR clr_callback.py, CyclicLR.__init__ / clr()."""
    clr_iterations = np.asarray(k, np.float64)
    if scale_fn is None:
        if mode == "triangular":
            scale_fn, scale_mode = (lambda x: 1.0), "cycle"
        elif mode == "triangular2":
            scale_fn, scale_mode = (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
        elif mode == "exp_range":
            scale_fn, scale_mode = (lambda x: gamma**x), "iterations"
    cycle = np.floor(1 + clr_iterations / (2 * step_size))
    x = np.abs(clr_iterations / step_size - 2 * cycle + 1)
    argument = cycle if scale_mode == "cycle" else clr_iterations
    return base_lr + (max_lr - base_lr) * np.maximum(0, (1 - x)) * scale_fn(argument)


def torch_one_cycle(
    step_num,
    total_steps,
    max_lr,
    pct_start=0.3,
    anneal_strategy="cos",
    div_factor=25.0,
    final_div_factor=1e4,
    three_phase=False,
    base_momentum=0.85,
    max_momentum=0.95,
):
    """(lr, momentum) for update step_num per PyTorch OneCycleLR.__init__ / get_lr."""
    group = {
        "initial_lr": max_lr / div_factor,
        "max_lr": max_lr,
        "min_lr": max_lr / div_factor / final_div_factor,
        "max_momentum": max_momentum,
        "base_momentum": base_momentum,
    }
    # (end_step, start_lr, end_lr, start_momentum, end_momentum) per phase.
    if three_phase:
        phases = [
            (
                float(pct_start * total_steps) - 1,
                "initial_lr",
                "max_lr",
                "max_momentum",
                "base_momentum",
            ),
            (
                float(2 * pct_start * total_steps) - 2,
                "max_lr",
                "initial_lr",
                "base_momentum",
                "max_momentum",
            ),
            (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
        ]
    else:
        phases = [
            (
                float(pct_start * total_steps) - 1,
                "initial_lr",
                "max_lr",
                "max_momentum",
                "base_momentum",
            ),
            (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
        ]

    def anneal(start, end, pct):
        if anneal_strategy == "cos":  # OneCycleLR._annealing_cos
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start  # OneCycleLR._annealing_linear

    if step_num > total_steps:
        raise ValueError("PyTorch raises past total_steps")
    start_step = 0.0
    for i, (end_step, start_lr, end_lr, start_m, end_m) in enumerate(phases):
        if step_num <= end_step or i == len(phases) - 1:
            pct = (step_num - start_step) / (end_step - start_step)
            return anneal(group[start_lr], group[end_lr], pct), anneal(
                group[start_m], group[end_m], pct
            )
        start_step = end_step
    raise AssertionError("unreachable")


def keras_resnet_lr_schedule(epoch):
    """keras examples/cifar10_resnet.py lr_schedule(epoch)."""
    lr = 1e-3
    if epoch > 180:
        lr *= 0.5e-3
    elif epoch > 160:
        lr *= 1e-3
    elif epoch > 120:
        lr *= 1e-2
    elif epoch > 80:
        lr *= 1e-1
    return lr


# ------------------------------------------------------------------------------------------------
# Cyclic schedules.

N = 128  # at least 4 cycles of every case below; one array shape for all the tests
# name, cyclic arguments (step sizes, mode, gamma; "scale": a (jnp, NumPy) custom scale pair).
CYCLIC_CASES = [
    ("triangular", dict(step_size_up=5)),
    ("triangular_asymmetric", dict(step_size_up=3, step_size_down=7)),
    ("triangular_unit_steps", dict(step_size_up=1, step_size_down=1)),
    ("triangular2", dict(step_size_up=4, mode="triangular2")),
    ("triangular2_asymmetric", dict(step_size_up=6, step_size_down=2, mode="triangular2")),
    ("exp_range", dict(step_size_up=4, mode="exp_range", gamma=0.97)),
    ("exp_range_asymmetric", dict(step_size_up=4, step_size_down=9, mode="exp_range", gamma=0.99)),
    ("custom_cycle_default_mode", dict(step_size_up=4, scale=CYCLE_SCALE)),
    (
        "custom_cycle_asymmetric",
        dict(step_size_up=2, step_size_down=5, scale=CYCLE_SCALE, scale_mode="cycle"),
    ),
    ("custom_iterations", dict(step_size_up=5, scale=ITERATION_SCALE, scale_mode="iterations")),
    (
        "custom_iterations_asymmetric",
        dict(step_size_up=5, step_size_down=3, scale=ITERATION_SCALE, scale_mode="iterations"),
    ),
]


def _split(case):
    """(our keyword arguments, PyTorch reference's keyword arguments) for a cyclic case."""
    ours, ref = dict(case), dict(case)
    scale = ours.pop("scale", None)
    ref.pop("scale", None)
    if scale is not None:
        ours["scale_fn"], ref["scale_fn"] = scale
        ref.setdefault("scale_mode", "cycle")
    return ours, ref


class CyclicTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*CYCLIC_CASES)
    def test_lr_and_momentum_match_pytorch_and_keras_step_for_step(self, case):
        ours, ref = _split(case)
        expected_lr, expected_momentum = torch_cyclic(np.arange(N), 1e-3, 6e-3, **ref)
        lr = schedules.cyclic_lr(1e-3, 6e-3, **ours)
        momentum = schedules.cyclic_momentum(0.8, 0.9, **ours)
        fn = self.variant(lambda count: (lr(count), momentum(count)))
        per_step = np.array([fn(k) for k in range(N)])  # [N, 2]
        whole_range = fn(jnp.arange(N))
        for values in whole_range:
            chex.assert_shape(values, (N,))
            assert values.dtype == jnp.float32
        np.testing.assert_allclose(per_step[:, 0], expected_lr, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(per_step[:, 1], expected_momentum, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(whole_range[0], expected_lr, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(whole_range[1], expected_momentum, rtol=RTOL, atol=ATOL)
        # The Keras CLR callback has one step_size: compare the symmetric cases with it too.
        step_size = ref.pop("step_size_up")
        if ref.pop("step_size_down", step_size) == step_size:
            expected_keras = keras_clr(np.arange(N), 1e-3, 6e-3, step_size, **ref)
            np.testing.assert_allclose(per_step[:, 0], expected_keras, rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(whole_range[0], expected_keras, rtol=RTOL, atol=ATOL)

    @chex.variants(with_jit=True, without_jit=True)
    def test_boundaries(self):
        # up 4, down 6: starts at base, peaks at 4, back at base at 10, peaks again at 14.
        triangular = self.variant(schedules.cyclic_lr(0.1, 1.0, 4, 6))
        triangular2 = self.variant(schedules.cyclic_lr(0.1, 1.0, 4, 6, mode="triangular2"))
        exp_range = self.variant(schedules.cyclic_lr(0.1, 1.0, 4, 6, mode="exp_range", gamma=0.9))
        momentum = self.variant(schedules.cyclic_momentum(0.85, 0.95, 4, 6))
        for step, value in [(0, 0.1), (2, 0.55), (4, 1.0), (7, 0.55), (10, 0.1), (14, 1.0)]:
            np.testing.assert_allclose(triangular(step), value, rtol=1e-6)
        for step, value in [
            (4, 1.0),
            (10, 0.1),
            (14, 0.1 + 0.9 / 2),
            (24, 0.1 + 0.9 / 4),
            (30, 0.1),
        ]:
            np.testing.assert_allclose(triangular2(step), value, rtol=1e-6)
        for step in [4, 14, 24]:  # gamma**t with the global count t, not the in-cycle count
            np.testing.assert_allclose(exp_range(step), 0.1 + 0.9 * 0.9**step, rtol=1e-6)
        for step, value in [(0, 0.95), (4, 0.85), (10, 0.95), (14, 0.85)]:
            np.testing.assert_allclose(momentum(step), value, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_huge_steps_are_exact_and_finite(self):
        up, down = 7, 13  # cycle length 20
        counts = [10**9, 10**9 + 3, 10**9 + 7, 10**9 + 12, 2**31 - 2, 2**31 - 1]
        position = np.array([c % (up + down) for c in counts], np.float64)  # exact integers
        height = np.where(position <= up, position / up, (up + down - position) / down)
        triangular = self.variant(schedules.cyclic_lr(0.1, 1.0, up, down))
        np.testing.assert_allclose([triangular(c) for c in counts], 0.1 + 0.9 * height, rtol=1e-6)
        near_max = jnp.arange(N, dtype=jnp.int32) + (2**31 - N)  # up to 2**31 - 1
        for schedule, final in [
            (schedules.cyclic_lr(0.1, 1.0, up, down, mode="triangular2"), 0.1),
            (schedules.cyclic_lr(0.1, 1.0, up, down, mode="exp_range", gamma=0.999), 0.1),
            (schedules.cyclic_momentum(0.8, 0.9, up, down, mode="triangular2"), 0.9),
            (schedules.cyclic_lr(0.1, 1.0, up, down, scale_fn=CYCLE_SCALE[0]), None),
        ]:
            fn = self.variant(schedule)
            values = fn(near_max)
            chex.assert_tree_all_finite(values)
            if final is not None:
                np.testing.assert_array_equal(values, np.float32(final))
                assert float(fn(10**9)) == np.float32(final)


# ------------------------------------------------------------------------------------------------
# One-cycle policy.

ONE_CYCLE_CASES = [
    ("two_phase_cos", dict(total_steps=100)),
    (
        "two_phase_linear",
        dict(total_steps=64, anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0),
    ),
    ("three_phase_cos", dict(total_steps=37, three_phase=True)),  # phase ends 10.1, 20.2, 36
    (
        "three_phase_linear",
        dict(total_steps=100, pct_start=0.25, anneal_strategy="linear", three_phase=True),
    ),
    ("tiny_negative_first_end", dict(total_steps=3, anneal_strategy="linear", three_phase=True)),
    ("no_decay_phase", dict(total_steps=50, pct_start=1.0)),
    ("no_warmup", dict(total_steps=50, pct_start=0.0, anneal_strategy="linear")),
    ("three_phase_long_warmup", dict(total_steps=40, pct_start=0.6, three_phase=True)),
]


ONE_CYCLE_N = N  # > every case's total_steps


class OneCycleTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*ONE_CYCLE_CASES)
    def test_matches_pytorch_and_holds_final_value(self, case):
        lr_args = {k: v for k, v in case.items() if k not in ("base_momentum", "max_momentum")}
        m_args = {k: v for k, v in case.items() if k not in ("div_factor", "final_div_factor")}
        total = case["total_steps"]
        expected = np.array([torch_one_cycle(k, max_lr=0.4, **case) for k in range(total)])
        lr = schedules.one_cycle_lr(max_lr=0.4, **lr_args)
        momentum = schedules.one_cycle_momentum(**m_args)
        fn = self.variant(lambda count: jnp.stack([lr(count), momentum(count)], axis=-1))
        per_step = np.array([fn(k) for k in range(total)])
        np.testing.assert_allclose(per_step, expected, rtol=RTOL, atol=ATOL)
        # One shape for every case: 0..ONE_CYCLE_N-1 covers the cycle and counts past its end,
        # where the final value is held (PyTorch raises); then a few huge counts.
        whole_range = fn(jnp.arange(ONE_CYCLE_N))
        np.testing.assert_allclose(whole_range[:total], expected, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(
            whole_range[total:], np.broadcast_to(per_step[-1], (ONE_CYCLE_N - total, 2)), rtol=1e-6
        )
        beyond = fn(jnp.array([total, 10 * total, 2**31 - 1]))
        np.testing.assert_allclose(beyond, np.broadcast_to(per_step[-1], (3, 2)), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_boundaries(self):
        lr = self.variant(schedules.one_cycle_lr(100, 0.5))  # phase 1 ends at 29.000000000000004
        momentum = self.variant(schedules.one_cycle_momentum(100))
        np.testing.assert_allclose(lr(0), 0.5 / 25, rtol=1e-6)
        np.testing.assert_allclose(lr(29), 0.5, rtol=1e-6)
        np.testing.assert_allclose(lr(99), 0.5 / 25 / 1e4, rtol=1e-6)
        np.testing.assert_allclose([momentum(0), momentum(29), momentum(99)], [0.95, 0.85, 0.95])
        three = self.variant(schedules.one_cycle_lr(100, 0.5, pct_start=0.25, three_phase=True))
        np.testing.assert_allclose([three(24), three(48), three(99)], [0.5, 0.02, 2e-6], rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Step decays.


def test_keras_resnet_decay_matches_the_example_per_epoch():
    steps_per_epoch = 7
    counts = np.arange(200 * steps_per_epoch)
    expected = [keras_resnet_lr_schedule(epoch) for epoch in counts // steps_per_epoch]
    values = schedules.schedule_values(schedules.keras_resnet_decay(steps_per_epoch), len(counts))
    np.testing.assert_array_equal(values, np.float32(expected))
    # The first update of 0-based epoch 81 is the first at 1e-4.
    schedule = schedules.keras_resnet_decay(390, base_lr=2e-3)
    np.testing.assert_allclose([schedule(81 * 390 - 1), schedule(81 * 390)], [2e-3, 2e-4])


def test_he_et_al_decay():
    schedule = jax.jit(schedules.he_et_al_decay())
    counts = [0, 31_999, 32_000, 47_999, 48_000, 64_000, 2**31 - 1]
    np.testing.assert_allclose(
        [schedule(c) for c in counts], [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001], rtol=1e-7
    )
    # The same as optax's piecewise constant schedule (same `count >= boundary` convention).
    reference = optax.piecewise_constant_schedule(0.1, {32_000: 0.1, 48_000: 0.1})
    grid = jnp.arange(N) * 550  # 0 .. 69_850
    np.testing.assert_allclose(schedule(grid), reference(grid), rtol=1e-6)


def test_step_decay_closed_form():
    schedule = schedules.step_decay(0.2, boundaries=(3, 5), factors=(0.5, 0.01))
    expected = [0.2, 0.2, 0.2, 0.1, 0.1, 0.002, 0.002]
    np.testing.assert_allclose(schedule(jnp.arange(7)), expected, rtol=1e-7)
    np.testing.assert_allclose([schedule(k) for k in range(7)], expected, rtol=1e-7)
    np.testing.assert_allclose(schedules.step_decay(0.3, (), ())(jnp.arange(3)), [0.3] * 3)


def test_schedule_values():
    schedule = schedules.cyclic_lr(0.1, 1.0, 3, 5, mode="triangular2")
    values = schedules.schedule_values(schedule, 50)
    assert isinstance(values, np.ndarray)
    assert values.shape == (50,) and values.dtype == np.float32
    np.testing.assert_allclose(values, [schedule(k) for k in range(50)], rtol=1e-6)
    np.testing.assert_allclose(
        schedules.schedule_values(optax.constant_schedule(0.3), 4), [0.3] * 4
    )
    cosine = optax.cosine_decay_schedule(1.0, 10)
    np.testing.assert_allclose(
        schedules.schedule_values(cosine, 12), [cosine(k) for k in range(12)], atol=1e-6
    )


def test_all_schedules_return_float32_scalars():
    for schedule in [
        schedules.cyclic_lr(0.1, 1.0, 3),
        schedules.cyclic_momentum(0.8, 0.9, 3),
        schedules.one_cycle_lr(10, 1.0),
        schedules.one_cycle_momentum(10),
        schedules.he_et_al_decay(),
        schedules.keras_resnet_decay(5),
    ]:
        value = schedule(4)
        chex.assert_shape(value, ())
        assert value.dtype == jnp.float32


# ------------------------------------------------------------------------------------------------
# Under jit and inside optax.


def test_jitted_step_compiles_once_for_all_counts():
    lr_schedules = [
        schedules.cyclic_lr(0.1, 1.0, 3, 5, mode="exp_range", gamma=0.99),
        schedules.cyclic_momentum(0.8, 0.9, 3, 5, mode="triangular2"),
        schedules.one_cycle_lr(100, 1.0, three_phase=True),
        schedules.keras_resnet_decay(3),
    ]
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def values_at(step):
        return [schedule(step) for schedule in lr_schedules]

    for step in range(0, 10_000, 50):
        values_at(jnp.asarray(step, jnp.int32))


def test_sgd_and_adam_record_the_scheduled_hyperparameters():
    expected_lr, expected_momentum = torch_cyclic(np.arange(20), 0.01, 0.1, 3, 5)
    params, grads = {"w": jnp.ones(2)}, {"w": jnp.array([1.0, -2.0])}

    sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=schedules.cyclic_lr(0.01, 0.1, 3, 5))
    state, update = sgd.init(params), jax.jit(sgd.update)
    for k in range(20):
        updates, state = update(grads, state, params)
        np.testing.assert_allclose(state.hyperparams["learning_rate"], expected_lr[k], rtol=1e-6)
        chex.assert_trees_all_close(updates, {"w": -expected_lr[k] * grads["w"]})

    adam = optax.inject_hyperparams(optax.adam)(
        learning_rate=schedules.cyclic_lr(0.01, 0.1, 3, 5),
        b1=schedules.cyclic_momentum(0.8, 0.9, 3, 5),
    )
    state, update = adam.init(params), jax.jit(adam.update)
    for k in range(20):
        _, state = update(grads, state, params)
        np.testing.assert_allclose(state.hyperparams["b1"], expected_momentum[k], rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Bad arguments.

CYCLIC = dict(base_lr=0.1, max_lr=1.0, step_size_up=4)
MOMENTUM = dict(base_momentum=0.8, max_momentum=0.9, step_size_up=4)
BAD_ARGUMENTS = [
    (schedules.cyclic_lr, dict(CYCLIC, step_size_up=0), "step_size_up"),
    (schedules.cyclic_lr, dict(CYCLIC, step_size_up=-3), "step_size_up"),
    (schedules.cyclic_lr, dict(CYCLIC, step_size_up=2.5), "step_size_up"),
    (schedules.cyclic_lr, dict(CYCLIC, step_size_up=True), "step_size_up"),
    (schedules.cyclic_lr, dict(CYCLIC, step_size_down=0), "step_size_down"),
    (schedules.cyclic_lr, dict(CYCLIC, step_size_up=2**30, step_size_down=2**30), "step_size_up"),
    (schedules.cyclic_lr, dict(CYCLIC, base_lr=-0.1), "base_lr"),
    (schedules.cyclic_lr, dict(CYCLIC, base_lr=math.nan), "base_lr"),
    (schedules.cyclic_lr, dict(CYCLIC, max_lr=0.05), "max_lr"),
    (schedules.cyclic_lr, dict(CYCLIC, max_lr=math.inf), "max_lr"),
    (schedules.cyclic_lr, dict(CYCLIC, gamma=0.0), "gamma"),
    (schedules.cyclic_lr, dict(CYCLIC, gamma=1.5), "gamma"),
    (schedules.cyclic_lr, dict(CYCLIC, mode="cosine"), "mode"),
    (schedules.cyclic_lr, dict(CYCLIC, scale_fn=CYCLE_SCALE[0], scale_mode="epoch"), "scale_mode"),
    (schedules.cyclic_lr, dict(CYCLIC, scale_mode="cycle"), "scale_mode"),
    (schedules.cyclic_lr, dict(CYCLIC, scale_fn=0.5), "scale_fn"),
    (schedules.cyclic_momentum, dict(MOMENTUM, base_momentum=-0.1), "base_momentum"),
    (schedules.cyclic_momentum, dict(MOMENTUM, max_momentum=0.7), "max_momentum"),
    (schedules.cyclic_momentum, dict(MOMENTUM, max_momentum=1.5), "max_momentum"),
    (schedules.cyclic_momentum, dict(MOMENTUM, step_size_up=0), "step_size_up"),
    (schedules.cyclic_momentum, dict(MOMENTUM, gamma=2.0), "gamma"),
    (schedules.cyclic_momentum, dict(MOMENTUM, mode="exp"), "mode"),
    (schedules.cyclic_momentum, dict(MOMENTUM, scale_mode="iterations"), "scale_mode"),
    (schedules.one_cycle_lr, dict(total_steps=0, max_lr=1.0), "total_steps"),
    (schedules.one_cycle_lr, dict(total_steps=10.5, max_lr=1.0), "total_steps"),
    (schedules.one_cycle_lr, dict(total_steps=10, max_lr=0.0), "max_lr"),
    (schedules.one_cycle_lr, dict(total_steps=10, max_lr=1.0, pct_start=1.5), "pct_start"),
    (schedules.one_cycle_lr, dict(total_steps=10, max_lr=1.0, pct_start=-0.1), "pct_start"),
    (schedules.one_cycle_lr, dict(total_steps=10, max_lr=1.0, pct_start=0.1), "pct_start"),
    (
        schedules.one_cycle_lr,
        dict(total_steps=10, max_lr=1.0, anneal_strategy="exp"),
        "anneal_strategy",
    ),
    (schedules.one_cycle_lr, dict(total_steps=10, max_lr=1.0, div_factor=0.0), "div_factor"),
    (
        schedules.one_cycle_lr,
        dict(total_steps=10, max_lr=1.0, final_div_factor=-1.0),
        "final_div_factor",
    ),
    (schedules.one_cycle_momentum, dict(total_steps=10, base_momentum=0.96), "max_momentum"),
    (schedules.one_cycle_momentum, dict(total_steps=10, base_momentum=-0.5), "base_momentum"),
    (schedules.one_cycle_momentum, dict(total_steps=-1), "total_steps"),
    (schedules.step_decay, dict(base_lr=-1.0, boundaries=(), factors=()), "base_lr"),
    (schedules.step_decay, dict(base_lr=0.1, boundaries=(5, 5), factors=(0.1, 0.1)), "boundaries"),
    (schedules.step_decay, dict(base_lr=0.1, boundaries=(0,), factors=(0.1,)), "boundaries"),
    (schedules.step_decay, dict(base_lr=0.1, boundaries=(2**31,), factors=(0.1,)), "boundaries"),
    (schedules.step_decay, dict(base_lr=0.1, boundaries=(5,), factors=(0.1, 0.1)), "factors"),
    (schedules.step_decay, dict(base_lr=0.1, boundaries=(5,), factors=(-0.1,)), "factors"),
    (schedules.he_et_al_decay, dict(factor=0.0), "factor"),
    (schedules.he_et_al_decay, dict(factor=10.0), "factor"),
    (schedules.he_et_al_decay, dict(base_lr=-0.1), "base_lr"),
    (schedules.he_et_al_decay, dict(boundaries=(48_000, 32_000)), "boundaries"),
    (schedules.keras_resnet_decay, dict(steps_per_epoch=0), "steps_per_epoch"),
    (schedules.keras_resnet_decay, dict(steps_per_epoch=2**28), "steps_per_epoch"),
    (schedules.keras_resnet_decay, dict(steps_per_epoch=10, base_lr=-1.0), "base_lr"),
    (
        lambda **kw: schedules.schedule_values(optax.constant_schedule(1.0), **kw),
        dict(num_steps=0),
        "num_steps",
    ),
]


@pytest.mark.parametrize(
    "factory, kwargs, match",
    BAD_ARGUMENTS,
    ids=[f"{m}-{i}" for i, (_, _, m) in enumerate(BAD_ARGUMENTS)],
)
def test_bad_arguments(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)
