"""optimizers.make: names, validation, readable hyper-parameters, update rules."""

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsched import losses, optimizers


def test_hyperparams_can_be_read_back_even_when_wrapped():
    tx = optimizers.make("sgd", 0.1, momentum=0.9, nesterov=True)
    params = {"w": jnp.ones(3)}
    hp = optimizers.hyperparams(optax.MultiSteps(tx, 2).init(params))
    assert float(hp["learning_rate"]) == pytest.approx(0.1)
    assert float(hp["momentum"]) == pytest.approx(0.9)
    assert optimizers.hyperparams(optax.sgd(0.1).init(params)) == {}


def test_sgd_update_is_minus_lr_times_gradient():
    tx = optimizers.make("sgd", 0.25)
    params, grads = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([0.5, 4.0])}
    updates, _ = tx.update(grads, tx.init(params), params)
    chex.assert_trees_all_close(updates, {"w": jnp.array([-0.125, -1.0])})


def test_schedule_value_in_force_is_recorded():
    tx = optimizers.make("sgd", lambda count: 0.1 / (1.0 + count))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    for k in range(3):
        _, state = tx.update(params, state, params)
        assert float(optimizers.hyperparams(state)["learning_rate"]) == pytest.approx(0.1 / (1 + k))


@pytest.mark.parametrize(
    "name, lr, match",
    [
        ("lbfgs", 0.1, "optimizer name"),
        ("sgd", 0.0, "learning_rate"),
        ("sgd", -1.0, "learning_rate"),
        ("sgd", math.nan, "learning_rate"),
    ],
)
def test_bad_arguments(name, lr, match):
    with pytest.raises(ValueError, match=match):
        optimizers.make(name, lr)


# ---------------------------------------------------------------------------------------------
# Update rules against NumPy implementations of the papers' equations (float64), 4 updates of a
# 3-vector under fixed gradients. `lr` is a function of the update count t = 0, 1, ...

T = 4
W0 = np.array([0.5, -1.0, 2.0])


def _schedule(count):
    return 0.1 / (1.0 + count)


def _const(value):
    return lambda count: value


def _grads(scale: float, steps: int = T, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(steps, 3)) * scale


def _updates(tx, grads: np.ndarray, w0: np.ndarray = W0) -> np.ndarray:
    """The updates tx makes on params {"kernel": w} under the gradient sequence; float64[T, 3]."""
    params = {"kernel": jnp.asarray(w0, jnp.float32)}
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = tx.update({"kernel": jnp.asarray(g, jnp.float32)}, state, params)
        params = optax.apply_updates(params, u)
        out.append(np.asarray(u["kernel"], np.float64))
    return np.stack(out)


def sgd_momentum_ref(grads, lr, momentum, nesterov=False, lr_inside=False):
    """lr_inside=False: m = mu m + g, u = -lr m (Nesterov -lr (g + mu m)); optax / PyTorch.
    lr_inside=True: v = mu v - lr g, u = v (Nesterov mu v - lr g); Sutskever et al. 2013, Keras."""
    m, out = np.zeros(3), []
    for t, g in enumerate(grads):
        if lr_inside:
            m = momentum * m - lr(t) * g
            out.append(momentum * m - lr(t) * g if nesterov else m)
        else:
            m = momentum * m + g
            out.append(-lr(t) * (g + momentum * m if nesterov else m))
    return np.stack(out)


def adagrad_ref(grads, lr, initial_accumulator_value, eps):
    """Duchi et al. 2011 (diagonal): G_t = G_0 + sum g^2, u = -lr g / sqrt(G_t + eps)."""
    acc, out = np.full(3, initial_accumulator_value), []
    for t, g in enumerate(grads):
        acc = acc + g**2
        out.append(-lr(t) * g / np.sqrt(acc + eps))
    return np.stack(out)


def rmsprop_ref(grads, lr, rho, eps, momentum=0.0, nesterov=False, centered=False):
    """Hinton lecture 6e: v = rho v + (1 - rho) g^2, s = lr g / sqrt(v + eps) (centered: under
    the root v - gbar^2); momentum: m = mu m + s, u = -m; Nesterov: u = -(s + mu m)."""
    v, gbar, m, out = np.zeros(3), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(grads):
        v = rho * v + (1 - rho) * g**2
        gbar = rho * gbar + (1 - rho) * g
        s = lr(t) * g / np.sqrt((v - gbar**2 if centered else v) + eps)
        m = momentum * m + s
        out.append(-(s + momentum * m) if nesterov else -m)
    return np.stack(out)


def adadelta_ref(grads, lr, rho, eps):
    """Zeiler 2012, Algorithm 1, with the step scaled by lr (lr = 1 is the paper)."""
    eg, ed, out = np.zeros(3), np.zeros(3), []
    for t, g in enumerate(grads):
        eg = rho * eg + (1 - rho) * g**2
        d = np.sqrt(ed + eps) / np.sqrt(eg + eps) * g
        ed = rho * ed + (1 - rho) * d**2
        out.append(-lr(t) * d)
    return np.stack(out)


def adam_ref(grads, lr, b1, b2, eps, eps_hat=False, nesterov=False, w0=None, weight_decay=0.0):
    """Kingma & Ba 2015 Algorithm 1; eps_hat=True: their form before Section 2.1 (Keras):
    u = -lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps_hat). nesterov=True: Dozat 2016 as
    optax (constant mu = b1): mhat = b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t).
    weight_decay: Loshchilov & Hutter's decoupled decay as optax / Keras, u -= lr wd w."""
    m, v, out = np.zeros(3), np.zeros(3), []
    w = None if w0 is None else np.array(w0, np.float64)
    for k, g in enumerate(grads):
        t = k + 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        if eps_hat:
            u = -lr(k) * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        else:
            mhat = m / (1 - b1**t)
            if nesterov:
                mhat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
            u = -lr(k) * mhat / (np.sqrt(v / (1 - b2**t)) + eps)
        if weight_decay:
            u = u - lr(k) * weight_decay * w
            w = w + u
        out.append(u)
    return np.stack(out)


def keras_nadam_ref(grads, lr, b1, b2, eps):
    """Keras 3's Nadam: momentum schedule mu_t = b1 (1 - 0.5 * 0.96^t)."""
    m, v, prod, out = np.zeros(3), np.zeros(3), 1.0, []
    for k, g in enumerate(grads):
        t = k + 1
        mu_t, mu_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
        prod = prod * mu_t
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat = mu_next * m / (1 - prod * mu_next) + (1 - mu_t) * g / (1 - prod)
        out.append(-lr(k) * mhat / (np.sqrt(v / (1 - b2**t)) + eps))
    return np.stack(out)


def _make(name, lr, **kw):
    return lambda: optimizers.make(name, lr, **kw)


# (id, optimizer, reference of the gradients, gradient scale). Small gradients (g^2 ~ eps) make
# the presets' eps values visible.
REFERENCE_CASES = [
    ("sgd", _make("sgd", 0.1), lambda G: -0.1 * G, 1.0),
    (
        "sgd-momentum-optax-schedule",
        _make("sgd", _schedule, momentum=0.9),
        lambda G: sgd_momentum_ref(G, _schedule, 0.9),
        1.0,
    ),
    (
        "sgd-nesterov-optax-schedule",
        _make("sgd", _schedule, momentum=0.9, nesterov=True),
        lambda G: sgd_momentum_ref(G, _schedule, 0.9, nesterov=True),
        1.0,
    ),
    (
        "sgd-momentum-keras-schedule",
        _make("sgd", _schedule, preset="keras", momentum=0.9),
        lambda G: sgd_momentum_ref(G, _schedule, 0.9, lr_inside=True),
        1.0,
    ),
    (
        "sgd-nesterov-keras-schedule",
        _make("sgd", _schedule, preset="keras", momentum=0.9, nesterov=True),
        lambda G: sgd_momentum_ref(G, _schedule, 0.9, nesterov=True, lr_inside=True),
        1.0,
    ),
    (
        "adagrad-duchi",
        _make("adagrad", 0.5, initial_accumulator_value=0.0, eps=0.0),
        lambda G: adagrad_ref(G, _const(0.5), 0.0, 0.0),
        1.0,
    ),
    (
        "adagrad-optax",
        _make("adagrad", 0.01),
        lambda G: adagrad_ref(G, _const(0.01), 0.1, 1e-7),
        1e-3,
    ),
    (
        "adagrad-keras",
        _make("adagrad", 0.01, preset="keras"),
        lambda G: adagrad_ref(G, _const(0.01), 0.1, 1e-7),
        1e-3,
    ),
    (
        "rmsprop-hinton",
        _make("rmsprop", 0.01, decay=0.9, eps=0.0),
        lambda G: rmsprop_ref(G, _const(0.01), 0.9, 0.0),
        1.0,
    ),
    (
        "rmsprop-optax",
        _make("rmsprop", 1e-3),
        lambda G: rmsprop_ref(G, _const(1e-3), 0.9, 1e-8),
        1e-4,
    ),
    (
        "rmsprop-keras",
        _make("rmsprop", 1e-3, preset="keras"),
        lambda G: rmsprop_ref(G, _const(1e-3), 0.9, 1e-7),
        1e-4,
    ),
    (
        "rmsprop-momentum-keras-schedule",
        _make("rmsprop", _schedule, preset="keras", momentum=0.9),
        lambda G: rmsprop_ref(G, _schedule, 0.9, 1e-7, momentum=0.9),
        1e-4,
    ),
    (
        "rmsprop-centered",
        _make("rmsprop", 1e-3, centered=True, eps=1e-7),
        lambda G: rmsprop_ref(G, _const(1e-3), 0.9, 1e-7, centered=True),
        1e-4,
    ),
    (
        "rmsprop_nesterov-optax",
        _make("rmsprop_nesterov", 1e-3),
        lambda G: rmsprop_ref(G, _const(1e-3), 0.9, 1e-8, momentum=0.9, nesterov=True),
        1e-4,
    ),
    (
        "rmsprop_nesterov-keras-schedule",
        _make("rmsprop_nesterov", _schedule, preset="keras"),
        lambda G: rmsprop_ref(G, _schedule, 0.9, 1e-7, momentum=0.9, nesterov=True),
        1e-4,
    ),
    (
        "adadelta-zeiler",
        _make("adadelta", 1.0, rho=0.95, eps=1e-6),
        lambda G: adadelta_ref(G, _const(1.0), 0.95, 1e-6),
        1.0,
    ),
    (
        "adadelta-optax",
        _make("adadelta", 1.0),
        lambda G: adadelta_ref(G, _const(1.0), 0.9, 1e-6),
        1e-3,
    ),
    (
        "adadelta-keras",
        _make("adadelta", 1e-3, preset="keras"),
        lambda G: adadelta_ref(G, _const(1e-3), 0.95, 1e-7),
        1e-3,
    ),
    (
        "adam-kingma",
        _make("adam", 1e-3, b1=0.8, b2=0.99, eps=1e-3),
        lambda G: adam_ref(G, _const(1e-3), 0.8, 0.99, 1e-3),
        1.0,
    ),
    (
        "adam-optax",
        _make("adam", 1e-3),
        lambda G: adam_ref(G, _const(1e-3), 0.9, 0.999, 1e-8),
        1e-6,
    ),
    (
        "adam-keras-schedule",
        _make("adam", _schedule, preset="keras"),
        lambda G: adam_ref(G, _schedule, 0.9, 0.999, 1e-7, eps_hat=True),
        1e-6,
    ),
    (
        "nadam-optax",
        _make("nadam", 1e-3),
        lambda G: adam_ref(G, _const(1e-3), 0.9, 0.999, 1e-8, nesterov=True),
        1e-6,
    ),
    (
        "nadam-keras",
        _make("nadam", 1e-3, preset="keras"),
        lambda G: adam_ref(G, _const(1e-3), 0.9, 0.999, 1e-7, nesterov=True),
        1e-6,
    ),
    (
        "adamw-optax",
        _make("adamw", 1e-3, weight_decay=0.1),
        lambda G: adam_ref(G, _const(1e-3), 0.9, 0.999, 1e-8, w0=W0, weight_decay=0.1),
        1e-6,
    ),
    (
        "adamw-keras",
        _make("adamw", 1e-3, preset="keras"),
        lambda G: adam_ref(G, _const(1e-3), 0.9, 0.999, 1e-7, True, w0=W0, weight_decay=0.004),
        1e-6,
    ),
]


@pytest.mark.parametrize(
    "build, reference, scale", [c[1:] for c in REFERENCE_CASES], ids=[c[0] for c in REFERENCE_CASES]
)
def test_updates_match_the_papers_equations(build, reference, scale):
    grads = _grads(scale)
    np.testing.assert_allclose(_updates(build(), grads), reference(grads), rtol=2e-5, atol=0)


@pytest.mark.parametrize(
    "name, lr, options, scale, same",
    [
        ("sgd", 0.1, {"momentum": 0.9}, 1.0, True),  # constant lr: lr inside == outside
        ("sgd", _schedule, {"momentum": 0.9}, 1.0, False),
        ("adagrad", 0.01, {}, 1e-3, True),
        ("rmsprop", 1e-3, {}, 1e-4, False),
        ("rmsprop_nesterov", 1e-3, {}, 1e-4, False),
        ("adadelta", 1.0, {}, 1e-3, False),
        ("adam", 1e-3, {}, 1e-6, False),
        ("adam", 1e-3, {"eps": 1e-7}, 1e-6, False),  # same eps, still differs: eps_hat form
        ("nadam", 1e-3, {}, 1e-6, False),
        ("adamw", 1e-3, {}, 1e-6, False),
    ],
)
def test_presets_differ_exactly_where_documented(name, lr, options, scale, same):
    grads = _grads(scale)
    a = _updates(optimizers.make(name, lr, **options), grads)
    b = _updates(optimizers.make(name, lr, preset="keras", **options), grads)
    rel = np.max(np.abs(a - b) / np.abs(b))
    assert rel < 1e-5 if same else rel > 1e-2


def test_keras_nadam_momentum_warmup_is_a_transient_difference():
    # optax cannot express Keras's mu_t = b1 (1 - 0.5 * 0.96^t); the documented gap vanishes.
    grads = _grads(1.0, steps=400, seed=1)
    tx = optimizers.make("nadam", 1e-3, preset="keras")
    params = jnp.zeros(3)
    state, update = tx.init(params), jax.jit(tx.update)
    ours = []
    for g in grads:
        u, state = update(jnp.asarray(g, jnp.float32), state, params)
        ours.append(np.asarray(u, np.float64))
    ours, keras = np.stack(ours), keras_nadam_ref(grads, _const(1e-3), 0.9, 0.999, 1e-7)
    assert np.max(np.abs(ours[0] - keras[0]) / np.abs(keras[0])) > 0.1
    np.testing.assert_allclose(ours[-50:], keras[-50:], rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# Presets, read-back, descent


def test_available_and_defaults():
    assert optimizers.available() == (
        "adadelta",
        "adagrad",
        "adam",
        "adamw",
        "nadam",
        "rmsprop",
        "rmsprop_nesterov",
        "sgd",
    )
    assert optimizers.defaults("adam", "keras")["eps"] == 1e-7
    assert optimizers.defaults("adam")["eps"] == 1e-8  # optax is the default preset
    assert optimizers.defaults("adadelta", "keras") == {"rho": 0.95, "eps": 1e-7}
    assert optimizers.defaults("adagrad", "keras") == {
        "initial_accumulator_value": 0.1,
        "eps": 1e-7,
    }
    assert optimizers.defaults("rmsprop", "keras")["eps"] == 1e-7
    assert optimizers.defaults("adamw", "keras")["weight_decay"] == 0.004
    optimizers.defaults("adam", "keras")["eps"] = 1.0  # a copy: the table is unchanged
    assert optimizers.KERAS_DEFAULTS["adam"]["eps"] == 1e-7
    for table in (optimizers.OPTAX_DEFAULTS, optimizers.KERAS_DEFAULTS):
        assert set(table) == set(optimizers.available())
        for name, opts in table.items():
            assert set(opts) <= set(optimizers.option_names(name))
    assert set(optimizers.KERAS_LEARNING_RATES) == set(optimizers.available())


# name -> (extra options, hyper-parameter names besides learning_rate that must be readable)
_READBACK = {
    "sgd": ({"momentum": 0.9}, ("momentum",)),
    "adagrad": ({}, ()),
    "rmsprop": ({"momentum": 0.9}, ("momentum",)),
    "rmsprop_nesterov": ({}, ("momentum",)),
    "adadelta": ({}, ()),
    "adam": ({}, ("b1",)),
    "nadam": ({}, ("b1",)),
    "adamw": ({}, ("b1",)),
}


@pytest.mark.parametrize("preset", optimizers.PRESETS)
@pytest.mark.parametrize("name", sorted(_READBACK))
def test_hyperparams_read_back_with_a_schedule_and_weight_decay(name, preset):
    extra, names = _READBACK[name]
    tx = optimizers.make(name, _schedule, preset=preset, weight_decay=0.01, **extra)
    params = {"kernel": jnp.ones(3), "bias": jnp.ones(2)}
    state = tx.init(params)
    for k in range(3):
        _, state = tx.update(params, state, params)
        hp = optimizers.hyperparams(state)
        assert float(hp["learning_rate"]) == pytest.approx(_schedule(k))
        assert float(hp["weight_decay"]) == pytest.approx(0.01)
        for key in names:
            assert float(hp[key]) == pytest.approx(0.9)
    if preset == "keras" and name in ("adam", "adamw"):  # eps_t = eps_hat / sqrt(1 - b2^t)
        assert float(hp["eps"]) == pytest.approx(1e-7 / math.sqrt(1 - 0.999**3), rel=1e-4)
    wrapped = optax.MultiSteps(tx, 2)
    hp = optimizers.hyperparams(wrapped.init(params))
    assert float(hp["learning_rate"]) == pytest.approx(_schedule(0))


def _quadratic(w):
    return 0.5 * float(np.sum(np.array([1.0, 4.0, 9.0]) * np.asarray(w, np.float64) ** 2))


@pytest.mark.parametrize("preset", optimizers.PRESETS)
@pytest.mark.parametrize("name", optimizers.available())
def test_every_optimizer_descends_a_quadratic(name, preset):
    # At Keras's default learning rate (0.001 for adadelta: tiny but downhill steps).
    a = jnp.array([1.0, 4.0, 9.0])
    tx = optimizers.make(name, optimizers.KERAS_LEARNING_RATES[name], preset=preset)
    params = {"kernel": jnp.array([1.0, -1.0, 0.5])}
    state, start = tx.init(params), _quadratic(params["kernel"])
    for _ in range(20):
        grads = {"kernel": a * params["kernel"]}
        updates, state = tx.update(grads, state, params)
        assert float(jnp.vdot(updates["kernel"], grads["kernel"])) < 0  # a descent direction
        params = optax.apply_updates(params, updates)
    assert _quadratic(params["kernel"]) < start


def test_adadelta_descends_where_optax_default_ascends():
    grads = {"kernel": jnp.array([1.0, -2.0, 3.0])}
    params = {"kernel": jnp.zeros(3)}
    trap = optax.adadelta()  # learning_rate=None: no sign flip
    up, _ = trap.update(grads, trap.init(params), params)
    assert float(jnp.vdot(up["kernel"], grads["kernel"])) > 0
    for lr in (1.0, 1e-3):
        tx = optimizers.make("adadelta", lr, preset="keras")
        down, _ = tx.update(grads, tx.init(params), params)
        assert float(jnp.vdot(down["kernel"], grads["kernel"])) < 0
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.make("adadelta", None)


def test_jit_with_flax_params():
    model = _Tiny()
    params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 4)))["params"]
    tx = optimizers.make("adamw", _schedule, preset="keras")
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    chex.assert_tree_all_finite(updates)
    assert float(optimizers.hyperparams(state)["learning_rate"]) == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------
# Regularization: L2 in the loss vs decoupled weight decay


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(3)(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        return nn.Dense(2)(x)


def _tiny_params():
    params = _Tiny().init(jax.random.PRNGKey(0), jnp.ones((1, 4)))["params"]
    # Distinct non-zero values everywhere (Flax initialises biases to 0 and scales to 1).
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leaves = [
        jnp.linspace(-1.0, 1.0, x.size).reshape(x.shape) + 0.1 * (i + 1)
        for i, x in enumerate(leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def test_l2_penalty_closed_form_on_a_flax_tree():
    params = _tiny_params()
    sq = lambda x: float(np.sum(np.asarray(x, np.float64) ** 2))  # noqa: E731
    kernels = sq(params["Dense_0"]["kernel"]) + sq(params["Dense_1"]["kernel"])
    biases = sum(sq(params[m]["bias"]) for m in ("Dense_0", "BatchNorm_0", "Dense_1"))
    assert float(losses.l2_penalty(params)) == pytest.approx(0.01 * kernels, rel=1e-6)
    assert float(losses.l2_penalty(params, 0.5, include_biases=True)) == pytest.approx(
        0.5 * (kernels + biases), rel=1e-6
    )
    assert float(jax.jit(losses.l2_penalty)(params, 0.5)) == pytest.approx(0.5 * kernels, rel=1e-6)
    assert float(losses.l2_penalty({"BatchNorm_0": params["BatchNorm_0"]})) == 0.0


@pytest.mark.parametrize("include_biases", [False, True])
def test_l2_penalty_gradient_is_two_c_w(include_biases):
    params, c = _tiny_params(), 0.03
    grads = jax.grad(losses.l2_penalty)(params, c, include_biases)
    mask = losses.kernel_mask(params, include_biases)
    expected = jax.tree.map(lambda w, m: 2 * c * w if m else jnp.zeros_like(w), params, mask)
    chex.assert_trees_all_close(grads, expected, rtol=1e-6)
    assert not mask["BatchNorm_0"]["scale"] and mask["Dense_1"]["kernel"]
    assert mask["Dense_0"]["bias"] is include_biases


def _run_with_l2(tx, params, data_grads, c):
    """Updates when c * sum(w^2) over the kernels is added to the loss."""
    state, out = tx.init(params), []
    for g in data_grads:
        reg = jax.grad(losses.l2_penalty)(params, c)
        updates, state = tx.update(jax.tree.map(jnp.add, g, reg), state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


def _run(tx, params, data_grads):
    state, out = tx.init(params), []
    for g in data_grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


def test_weight_decay_equals_l2_for_sgd_but_not_for_adam():
    params = {"kernel": jnp.array([0.5, -1.0, 2.0])}
    data = [{"kernel": jnp.asarray(g, jnp.float32)} for g in _grads(1.0)]
    lr, c = 0.1, 0.05
    # SGD: decay wd = 2c is the same as the L2 penalty c.
    decayed = _run(optimizers.make("sgd", lr, weight_decay=2 * c), params, data)
    l2 = _run_with_l2(optimizers.make("sgd", lr), params, data, c)
    chex.assert_trees_all_close(decayed, l2, rtol=1e-5)
    # Adam: not the same.
    decayed = _run(optimizers.make("adam", lr, weight_decay=2 * c), params, data)
    l2 = _run_with_l2(optimizers.make("adam", lr), params, data, c)
    assert np.max(np.abs(np.asarray(decayed[-1]["kernel"] - l2[-1]["kernel"]))) > 1e-3
    # With no data gradient, Adam normalises the L2 gradient 2 c w away: every weight moves by
    # ~lr whatever its size; decoupled decay moves each by lr * wd * w.
    zero = [{"kernel": jnp.zeros(3)}]
    (l2,) = _run_with_l2(optimizers.make("adam", lr), params, zero, c)
    np.testing.assert_allclose(l2["kernel"], -lr * np.sign(params["kernel"]), rtol=1e-5)
    (decayed,) = _run(optimizers.make("adam", lr, weight_decay=2 * c), params, zero)
    np.testing.assert_allclose(decayed["kernel"], -lr * 2 * c * params["kernel"], rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_weight_decay_is_masked_to_kernels_by_default(name):
    params = {"Dense_0": {"kernel": jnp.array([1.0, -2.0]), "bias": jnp.array([3.0])}}
    zero = jax.tree.map(jnp.zeros_like, params)
    lr, wd = 0.1, 0.5
    (updates,) = _run(optimizers.make(name, lr, weight_decay=wd), params, [zero])
    chex.assert_trees_all_close(
        updates, {"Dense_0": {"kernel": jnp.array([-0.05, 0.1]), "bias": jnp.zeros(1)}}
    )
    (updates,) = _run(
        optimizers.make(name, lr, weight_decay=wd, weight_decay_mask="all"), params, [zero]
    )
    chex.assert_trees_all_close(updates["Dense_0"]["bias"], jnp.array([-0.15]))


# ---------------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("adam", {"epsilon": 1e-7}, r"adam: unknown option.*'epsilon'.*`epsilon` is `eps`"),
        ("sgd", {"b1": 0.9}, r"sgd: unknown option.*'b1'"),
        ("adamw", {"mask": None}, r"adamw: unknown option.*'mask'"),
        ("adam", {"preset": "torch"}, "preset"),
        ("sgd", {"momentum": 1.5}, "momentum"),
        ("sgd", {"momentum": math.nan}, "momentum"),
        ("adam", {"b1": -0.1}, "b1"),
        ("adam", {"b2": 1.0}, "b2"),
        ("rmsprop", {"decay": 1.0}, "decay"),
        ("adadelta", {"rho": -0.5}, "rho"),
        ("adam", {"eps": -1e-8}, "eps"),
        ("adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
        ("adam", {"weight_decay": -0.1}, "weight_decay"),
        ("adam", {"weight_decay": 0.1, "weight_decay_mask": "biases"}, "weight_decay_mask"),
        ("sgd", {"nesterov": True}, "momentum"),
        ("rmsprop_nesterov", {"momentum": 0.0}, "momentum"),
    ],
)
def test_bad_options(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimizers.make(name, 0.1, **kwargs)


def test_unknown_option_hints_keras_names_only_where_they_apply():
    with pytest.raises(ValueError, match=r"rmsprop: .*`rho` is `decay` here"):
        optimizers.make("rmsprop", 0.1, rho=0.9)
    with pytest.raises(ValueError, match=r"adam: unknown option\(s\) \['rho'\]") as info:
        optimizers.make("adam", 0.1, rho=0.9)
    assert "is `decay`" not in str(info.value)


def test_bad_names_and_coefficients():
    with pytest.raises(ValueError, match="optimizer name"):
        optimizers.defaults("lbfgs")
    with pytest.raises(ValueError, match="preset"):
        optimizers.defaults("adam", "pytorch")
    with pytest.raises(ValueError, match="coefficient"):
        losses.l2_penalty({"kernel": jnp.ones(2)}, -0.01)
