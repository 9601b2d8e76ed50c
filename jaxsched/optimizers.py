r"""Optimizer construction: `make(name, learning_rate, preset=..., **options)`.

Every optimizer is built from optax's transforms and wrapped in `optax.inject_hyperparams`, so
the learning rate (and `momentum` / `b1` where the optimizer has one) in force at each update
lives in the optimizer state and can be read back with `hyperparams(opt_state)` for logging,
whether it is a constant or a schedule of the update count.

Optimizers (`available()`), with g_t the gradient, \eta_t the learning rate at update t
(t = 1, 2, ...), and the update u_t added to the parameters w:

- "sgd": u_t = -\eta_t g_t; with `momentum` \mu (optax form) m_t = \mu m_{t-1} + g_t,
  u_t = -\eta_t m_t, or with `nesterov=True` u_t = -\eta_t (g_t + \mu m_t).
- "adagrad" (Duchi et al. 2011): G_t = G_0 + \sum_{s<=t} g_s^2 (G_0 =
  `initial_accumulator_value`), u_t = -\eta_t g_t / \sqrt{G_t + eps}.
- "rmsprop" (Hinton, lecture 6e): v_t = \rho v_{t-1} + (1 - \rho) g_t^2 (`decay` = \rho),
  s_t = \eta_t g_t / \sqrt{v_t + eps}; u_t = -s_t, or with `momentum` \mu: m_t = \mu m_{t-1} + s_t,
  u_t = -m_t (the learning rate is inside the momentum, as in Keras). Also `centered=True`
  (v_t - \bar g_t^2 under the root) and `eps_in_sqrt=False` (\sqrt{v_t} + eps).
- "rmsprop_nesterov": RMSProp with Nesterov momentum, exactly
  `optax.rmsprop(lr, decay=\rho, eps=eps, momentum=\mu, nesterov=True)`:
      v_t = \rho v_{t-1} + (1 - \rho) g_t^2
      s_t = \eta_t g_t / \sqrt{v_t + eps}
      m_t = \mu m_{t-1} + s_t
      u_t = -(s_t + \mu m_t)
  i.e. Sutskever et al. (2013)'s Nesterov momentum in Bengio et al. (2013)'s reformulation
  (the look-ahead step \mu m_t is taken at once) applied to RMS-normalised steps s_t. Keras has no
  Nesterov RMSprop; `momentum` defaults to 0.9 in both presets.
- "adadelta" (Zeiler 2012): E[g^2]_t = \rho E[g^2]_{t-1} + (1 - \rho) g_t^2,
  d_t = \sqrt{E[d^2]_{t-1} + eps} / \sqrt{E[g^2]_t + eps} g_t,
  E[d^2]_t = \rho E[d^2]_{t-1} + (1 - \rho) d_t^2, u_t = -\eta_t d_t (\eta = 1 is the paper).
  Note `optax.adadelta(learning_rate=None)` skips the sign flip and *ascends*; `make` always
  scales by -\eta_t (`learning_rate` must be > 0), so it descends.
- "adam" (Kingma & Ba 2015, Algorithm 1): m_t = b1 m_{t-1} + (1 - b1) g_t,
  v_t = b2 v_{t-1} + (1 - b2) g_t^2, \hat m_t = m_t / (1 - b1^t), \hat v_t = v_t / (1 - b2^t),
  u_t = -\eta_t \hat m_t / (\sqrt{\hat v_t} + eps).
- "nadam" (Dozat 2016, as optax implements it: constant momentum b1):
  \hat m_t = b1 m_t / (1 - b1^{t+1}) + (1 - b1) g_t / (1 - b1^t), otherwise as "adam".
- "adamw" (Loshchilov & Hutter 2019, as optax.adamw): u_t = -\eta_t (adam's step + \lambda w).

Presets
-------
`preset="optax"` (the default) uses optax's own defaults; `preset="keras"` uses Keras 3's (what
the course's seeds ran), and where Keras's algorithm differs but optax's transforms can express
it, Keras's algorithm. Options passed to `make` override the preset. Option names are optax's;
Keras's names in [brackets]. Keras's default learning rates are in `KERAS_LEARNING_RATES`.

| optimizer        | option [Keras name] | optax            | keras            | Keras lr | alg. |
|------------------|---------------------|------------------|------------------|----------|------|
| sgd              | momentum, nesterov  | None, False      | 0.0, False       | 0.01     | (1)  |
| adagrad          | initial_accum_value | 0.1              | 0.1              | 0.001    | same |
|                  | eps [epsilon]       | 1e-7             | 1e-7             |          |      |
| rmsprop          | decay [rho]         | 0.9              | 0.9              | 0.001    | same |
|                  | eps [epsilon]       | 1e-8             | 1e-7             |          |      |
|                  | momentum, centered  | None, False      | 0.0, False       |          |      |
| rmsprop_nesterov | decay, eps          | 0.9, 1e-8        | 0.9, 1e-7        | (0.001)  | (2)  |
|                  | momentum            | 0.9              | 0.9 (ours)       |          |      |
| adadelta         | rho                 | 0.9              | 0.95             | 0.001    | same |
|                  | eps [epsilon]       | 1e-6             | 1e-7             |          |      |
| adam             | b1, b2 [beta_1/_2]  | 0.9, 0.999       | 0.9, 0.999       | 0.001    | (3)  |
|                  | eps [epsilon]       | 1e-8             | 1e-7 (eps_hat)   |          |      |
| nadam            | b1, b2, eps         | 0.9, 0.999, 1e-8 | 0.9, 0.999, 1e-7 | 0.001    | (4)  |
| adamw            | b1, b2, eps         | as adam          | as adam          | 0.001    | (3)  |
|                  | weight_decay        | 1e-4             | 0.004            |          | (5)  |

Where the algorithms themselves differ (Keras 3.x source, keras/src/optimizers/*.py; "same"
rows differ in their defaults only: eps inside the square root in both, Adagrad's accumulator
starting at 0.1 in both, Adadelta's E[d^2] accumulating the step before the learning rate in
both. The papers differ from both: Duchi et al.'s Adagrad starts at 0 with \delta outside the
root; Hinton's RMSProp and Zeiler's Adadelta have no learning rate, i.e. lr = 1 for Adadelta):

(1) sgd with momentum: Keras keeps the learning rate inside the velocity (as Sutskever et al.
    2013: v_t = \mu v_{t-1} - \eta_t g_t, u_t = v_t; Nesterov u_t = \mu v_t - \eta_t g_t);
    optax (and PyTorch) keep it outside (u_t = -\eta_t m_t). Identical for a constant learning
    rate; under a schedule they differ, and the "keras" preset chains `scale_by_learning_rate`
    before `trace`, which is Keras's exactly.
(2) Keras has no Nesterov RMSprop (its RMSprop momentum is plain); the "keras" preset is
    Keras's RMSprop defaults with the Nesterov momentum above (lr inside the momentum, as
    Keras's plain RMSprop momentum). (Keras 2 / tf.keras's RMSprop without momentum put eps
    outside the root: `eps_in_sqrt=False`.)
(3) adam, adamw: Keras uses Kingma & Ba's "epsilon hat" form (before their Section 2.1),
    u_t = -\eta_t sqrt(1 - b2^t) / (1 - b1^t) m_t / (sqrt(v_t) + eps_hat), which is optax's
    update with eps_t = eps_hat / sqrt(1 - b2^t) (32 eps_hat at t = 1). The "keras" preset
    passes that schedule as `eps` (`keras_epsilon`), so it is exact, and
    `hyperparams(state)["eps"]` shows eps_t.
(4) nadam: Keras 3 warms the momentum up, \mu_t = b1 (1 - 0.5 * 0.96^t), and bias-corrects
    with \prod_{s<=t} \mu_s; optax uses a constant b1 (Dozat's Algorithm 2 with \mu_t = b1).
    optax cannot express that schedule (b1 also drives m_t, which Keras updates with the
    constant b1), so the "keras" preset keeps optax's Nadam with Keras's eps. Measured against
    Keras 3.15 on random gradients, the updates differ by tens of percent over the first ~100
    updates, ~2% at 200 and ~1e-4 from 300 on (0.96^t < 1e-3 for t > 170). (tf.keras 2 used
    0.96^(0.004 t), a warm-up lasting ~10^4 updates.) Keras's Nadam eps is outside
    sqrt(vhat_t), as optax's: no eps_hat form here.
(5) weight decay: Keras applies w <- w - lr * wd * w to every variable (unless
    `exclude_from_weight_decay`), the same equation as here; but here it is masked to "kernel"
    leaves by default: pass `weight_decay_mask="all"` to decay everything as Keras does.

Regularization (do not confuse the two):

- L2 in the loss (`losses.l2_penalty`, Keras's `kernel_regularizer=l2(c)`): adds c sum(w^2) to the
  loss, so 2 c w joins the gradient and is rescaled by the adaptive denominators like any
  gradient: under Adam a weight with small gradients is shrunk by ~\eta_t per update whatever
  its size.
- decoupled weight decay (`make(..., weight_decay=\lambda)`, Loshchilov & Hutter 2019, as Keras
  and PyTorch scale it): u_t = (optimizer's update) - \eta_t \lambda w, applied after (outside)
  the optimizer, so it bypasses momentum and adaptive scaling. For plain SGD it equals L2 with
  c = \lambda / 2; for adaptive optimizers it does not. "adamw" uses optax.adamw's own
  `weight_decay` (same equation).
"""

import inspect
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import optax

from jaxsched import losses

LearningRate = float | optax.Schedule

PRESETS = ("optax", "keras")
DEFAULT_PRESET = "optax"


def _sgd_keras(
    learning_rate: float,
    momentum: float | None = 0.0,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
    """SGD with the learning rate inside the momentum, as Keras: v = mu v - lr g."""
    return optax.chain(
        optax.scale_by_learning_rate(learning_rate),
        optax.trace(momentum, nesterov, accumulator_dtype)
        if momentum is not None
        else optax.identity(),
    )


def _rmsprop_nesterov(
    learning_rate: float,
    decay: float = 0.9,
    eps: float = 1e-8,
    momentum: float = 0.9,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    return optax.rmsprop(
        learning_rate,
        decay=decay,
        eps=eps,
        initial_scale=initial_scale,
        eps_in_sqrt=eps_in_sqrt,
        centered=centered,
        momentum=momentum,
        nesterov=True,
        bias_correction=bias_correction,
    )


def _adadelta(
    learning_rate: float, rho: float = 0.9, eps: float = 1e-6
) -> optax.GradientTransformation:
    # optax.adadelta's own weight_decay is coupled (added before the rescaling); `make` applies
    # decoupled decay instead, so it is not exposed.
    return optax.adadelta(learning_rate, rho=rho, eps=eps)


def _nadam(
    learning_rate: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    return optax.nadam(learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype)


def _adamw(
    learning_rate: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: float = 1e-4,
    weight_decay_mask: Any = None,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    return optax.adamw(
        learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        mu_dtype=mu_dtype,
        weight_decay=weight_decay,
        mask=weight_decay_mask,
        nesterov=nesterov,
    )


def _decoupled_weight_decay(
    learning_rate: float, weight_decay: float, mask: Any
) -> optax.GradientTransformation:
    """Adds -lr * weight_decay * w to the (finished) update: w <- w + u - lr * wd * w."""
    return optax.add_decayed_weights(-learning_rate * weight_decay, mask)


_Factory = Callable[..., optax.GradientTransformation]

# name -> optax factory; the "keras" preset replaces some (see the module docstring)
_FACTORIES: dict[str, _Factory] = {
    "sgd": optax.sgd,
    "adagrad": optax.adagrad,
    "rmsprop": optax.rmsprop,
    "rmsprop_nesterov": _rmsprop_nesterov,
    "adadelta": _adadelta,
    "adam": optax.adam,
    "nadam": _nadam,
    "adamw": _adamw,
}
_KERAS_FACTORIES: dict[str, _Factory] = {"sgd": _sgd_keras}

# Arguments that are not numeric hyper-parameters (inject_hyperparams must not schedule them).
_STATIC = frozenset(
    {
        "nesterov",
        "eps_in_sqrt",
        "centered",
        "bias_correction",
        "mu_dtype",
        "accumulator_dtype",
        "weight_decay_mask",
        "mask",
    }
)

OPTAX_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": None, "nesterov": False},
    "adagrad": {"initial_accumulator_value": 0.1, "eps": 1e-7},
    "rmsprop": {"decay": 0.9, "eps": 1e-8, "momentum": None, "centered": False},
    "rmsprop_nesterov": {"decay": 0.9, "eps": 1e-8, "momentum": 0.9},
    "adadelta": {"rho": 0.9, "eps": 1e-6},
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "nadam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "adamw": {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-4},
}
KERAS_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.0, "nesterov": False},
    "adagrad": {"initial_accumulator_value": 0.1, "eps": 1e-7},
    "rmsprop": {"decay": 0.9, "eps": 1e-7, "momentum": 0.0, "centered": False},
    "rmsprop_nesterov": {"decay": 0.9, "eps": 1e-7, "momentum": 0.9},
    "adadelta": {"rho": 0.95, "eps": 1e-7},
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-7},
    "nadam": {"b1": 0.9, "b2": 0.999, "eps": 1e-7},
    "adamw": {"b1": 0.9, "b2": 0.999, "eps": 1e-7, "weight_decay": 0.004},
}
# Keras 3's default learning_rate per optimizer (make() always takes it explicitly).
KERAS_LEARNING_RATES: dict[str, float] = {
    "sgd": 0.01,
    "adagrad": 0.001,
    "rmsprop": 0.001,
    "rmsprop_nesterov": 0.001,
    "adadelta": 0.001,
    "adam": 0.001,
    "nadam": 0.001,
    "adamw": 0.001,
}
_PRESET_TABLES = {"optax": OPTAX_DEFAULTS, "keras": KERAS_DEFAULTS}

# option -> (low, high, high included): checked for plain numbers (schedules are not checked)
_RANGES: dict[str, tuple[float, float, bool]] = {
    "momentum": (0.0, 1.0, False),
    "b1": (0.0, 1.0, False),
    "b2": (0.0, 1.0, False),
    "decay": (0.0, 1.0, False),
    "rho": (0.0, 1.0, False),
    "eps": (0.0, float("inf"), True),
    "eps_root": (0.0, float("inf"), True),
    "weight_decay": (0.0, float("inf"), True),
    "initial_accumulator_value": (0.0, float("inf"), True),
    "initial_scale": (0.0, float("inf"), True),
}
# Keras argument names people will reach for -> optax's
_KERAS_NAMES = {"epsilon": "eps", "beta_1": "b1", "beta_2": "b2", "rho": "decay", "lr": None}


def available() -> tuple[str, ...]:
    """Names accepted by `make`.

    Examples:
      >>> from jaxsched import optimizers
      >>> optimizers.available()
      ('adadelta', 'adagrad', 'adam', 'adamw', 'nadam', 'rmsprop', 'rmsprop_nesterov', 'sgd')
    """
    return tuple(sorted(_FACTORIES))


def defaults(name: str, preset: str = DEFAULT_PRESET) -> dict[str, Any]:
    """The hyper-parameters `make(name, lr, preset=preset)` uses when no option is given.

    Returns a fresh dict keyed by optax's option names (see the module docstring's table).

    Examples:
      >>> from jaxsched import optimizers
      >>> optimizers.defaults("adam")
      {'b1': 0.9, 'b2': 0.999, 'eps': 1e-08}
      >>> optimizers.defaults("adam", preset="keras")
      {'b1': 0.9, 'b2': 0.999, 'eps': 1e-07}
    """
    _check_name(name)
    _check_preset(preset)
    return dict(_PRESET_TABLES[preset][name])


def option_names(name: str) -> tuple[str, ...]:
    """Option names `make(name, ...)` accepts besides `learning_rate` and `preset`.

    Examples:
      >>> from jaxsched import optimizers
      >>> optimizers.option_names("sgd")
      ('accumulator_dtype', 'momentum', 'nesterov', 'weight_decay', 'weight_decay_mask')
    """
    _check_name(name)
    params = set(inspect.signature(_FACTORIES[name]).parameters) - {"learning_rate"}
    return tuple(sorted(params | {"weight_decay", "weight_decay_mask"}))


def make(
    name: str,
    learning_rate: LearningRate,
    *,
    preset: str = DEFAULT_PRESET,
    **options: Any,
) -> optax.GradientTransformation:
    """Builds optimizer `name` with a constant or scheduled learning rate.

    Args:
      name: one of `available()`.
      learning_rate: a positive float, or an `optax.Schedule` of the update count (optimizer
        updates, starting at 0).
      preset: "optax" (optax's default hyper-parameters) or "keras" (Keras 3's defaults and,
        where optax can express it, Keras's algorithm); see the module docstring.
      **options: hyper-parameters overriding the preset, by optax's names (`option_names(name)`),
        e.g. `momentum=0.9, nesterov=True` for "sgd", `b1`, `b2`, `eps` for "adam". Numeric
        ones may be schedules. Also, for every optimizer:
        weight_decay: float >= 0 (or a schedule), decoupled weight decay wd: the update gets
          -lr * wd * w (for "adamw" this is optax.adamw's own `weight_decay`).
        weight_decay_mask: which parameters decay: "kernels" (default: leaves named "kernel"),
          "all", or an optax mask (a bool tree or a function of the params).

    Returns:
      An `optax.GradientTransformation` whose state exposes its hyper-parameters to
      `hyperparams`: "learning_rate" always; "momentum" / "b1" where the optimizer has one.

    Raises:
      ValueError: naming the parameter, for an unknown name, preset or option, a
        learning_rate that is not > 0, or an option out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxsched import optimizers
      >>> tx = optimizers.make("sgd", 0.1, momentum=0.9)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> {k: round(float(v), 4) for k, v in optimizers.hyperparams(state).items()}
      {'learning_rate': 0.1, 'momentum': 0.9}
    """
    _check_name(name)
    _check_preset(preset)
    _check_learning_rate(learning_rate)
    allowed = option_names(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hints = [
            f"`{k}` is `{_KERAS_NAMES[k]}` here" for k in unknown if _KERAS_NAMES.get(k) in allowed
        ]
        raise ValueError(
            f"{name}: unknown option(s) {unknown}; {name} accepts {list(allowed)}"
            + (f" ({'; '.join(hints)})" if hints else "")
        )
    kwargs = {**_PRESET_TABLES[preset][name], **options}
    _check_ranges(name, kwargs)
    mask = _resolve_mask(kwargs.pop("weight_decay_mask", "kernels"))
    weight_decay = 0.0
    if name == "adamw":
        kwargs["weight_decay_mask"] = mask
    else:
        weight_decay = kwargs.pop("weight_decay", 0.0)
    if preset == "keras" and name in ("adam", "adamw"):
        kwargs["eps"] = keras_epsilon(kwargs["eps"], kwargs["b2"])

    factories = {**_FACTORIES, **_KERAS_FACTORIES} if preset == "keras" else _FACTORIES
    factory = factories[name]
    tx = _inject(factory)(learning_rate=learning_rate, **kwargs)
    if callable(weight_decay) or weight_decay > 0:
        decay = _inject(_decoupled_weight_decay)(
            learning_rate=learning_rate, weight_decay=weight_decay, mask=mask
        )
        tx = optax.chain(tx, decay)
    return tx


def keras_epsilon(
    epsilon_hat: float | optax.Schedule, b2: float | optax.Schedule
) -> optax.Schedule:
    """optax's `eps` schedule equal to Keras Adam's `epsilon` ("epsilon hat").

    Keras: u_t = -lr sqrt(1 - b2^t) / (1 - b1^t) m_t / (sqrt(v_t) + epsilon_hat), which is
    optax's -lr mhat_t / (sqrt(vhat_t) + eps_t) with eps_t = epsilon_hat / sqrt(1 - b2^t).

    Returns:
      A schedule of the update count (0 for the first update, where t = 1).

    Examples:
      >>> from jaxsched import optimizers
      >>> eps = optimizers.keras_epsilon(1e-7, b2=0.999)
      >>> [round(float(eps(k)) / 1e-7, 2) for k in (0, 1, 999)]  # eps_t / epsilon_hat
      [31.62, 22.37, 1.26]
    """

    def eps_t(count):
        t = count + 1
        b = b2(count) if callable(b2) else b2
        e = epsilon_hat(count) if callable(epsilon_hat) else epsilon_hat
        return e / jnp.sqrt(1.0 - jnp.asarray(b, jnp.float32) ** t)

    return eps_t


def hyperparams(opt_state: optax.OptState) -> dict[str, jnp.ndarray]:
    """The injected hyper-parameters (e.g. "learning_rate") of the last update made.

    Searches the state tree, so it also works when the optimizer is wrapped (e.g. by
    `optax.MultiSteps`). Returns {} for an optimizer built without `inject_hyperparams`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxsched import optimizers
      >>> state = optimizers.make("adam", 1e-3).init({"w": jnp.zeros(2)})
      >>> hparams = optimizers.hyperparams(state)
      >>> sorted(hparams), round(float(hparams["learning_rate"]), 4)
      (['b1', 'b2', 'eps', 'eps_root', 'learning_rate'], 0.001)
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


def _inject(factory: _Factory) -> Callable[..., optax.GradientTransformation]:
    static = _STATIC & set(inspect.signature(factory).parameters)
    return optax.inject_hyperparams(factory, static_args=tuple(sorted(static)))


def _check_name(name: str) -> None:
    if name not in _FACTORIES:
        raise ValueError(f"optimizer name must be one of {available()}, got {name!r}")


def _check_learning_rate(learning_rate: Any) -> None:
    if callable(learning_rate):
        return
    try:
        positive = float(learning_rate) > 0  # NaN is not
    except (TypeError, ValueError):
        positive = False
    if not positive:
        raise ValueError(f"learning_rate must be > 0 or a schedule, got {learning_rate!r}")


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")


def _check_ranges(name: str, kwargs: dict[str, Any]) -> None:
    for key, value in kwargs.items():
        if key not in _RANGES or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        low, high, closed = _RANGES[key]
        if not (low <= value <= high if closed else low <= value < high):
            interval = f"[{low}, {high}{']' if closed else ')'}"
            raise ValueError(f"{name}: {key} must be in {interval}, got {value}")
    if kwargs.get("nesterov", name == "rmsprop_nesterov") and not kwargs.get("momentum"):
        raise ValueError(
            f"{name}: Nesterov momentum needs momentum > 0, got momentum={kwargs.get('momentum')}"
        )


def _resolve_mask(mask: Any) -> Any:
    if isinstance(mask, str):
        if mask == "kernels":
            return losses.kernel_mask
        if mask == "all":
            return None
        raise ValueError(
            f"weight_decay_mask must be 'kernels', 'all' or an optax mask, got {mask!r}"
        )
    return mask


def accumulate(
    tx: optax.GradientTransformation, every_k: int | Callable[[Any], Any]
) -> optax.GradientTransformation:
    """Averages the gradients of `every_k` micro-batches into one update of `tx` (optax.MultiSteps).

    k equal micro-batches of size m give the update of one batch of k*m examples (the mean
    gradient), for models without BatchNorm; BatchNorm statistics come from each micro-batch.
    `tx`'s own count, and so every schedule inside it, advances once per *optimizer update*,
    never per micro-batch, and `hyperparams(state)` still reads the inner rates.

    Args:
      tx: the optimizer to wrap.
      every_k: a positive int, or a function of the number of updates made so far returning the
        micro-batches of the next update (jnp-traceable: it runs inside the jitted step, so a
        varying k needs no recompilation).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jaxsched import optimizers
      >>> tx = optimizers.accumulate(optax.sgd(1.0), every_k=2)
      >>> state = tx.init(jnp.zeros(2))
      >>> for grad in ([1.0, 3.0], [3.0, 5.0]):  # no update, then the mean gradient's update
      ...     updates, state = tx.update(jnp.array(grad), state)
      ...     print(updates.tolist())
      [0.0, 0.0]
      [-2.0, -4.0]
    """
    if not callable(every_k) and (not isinstance(every_k, int) or every_k < 1):
        raise ValueError(f"every_k must be a positive int or a schedule, got {every_k!r}")
    return optax.MultiSteps(tx, every_k_schedule=every_k).gradient_transformation()
