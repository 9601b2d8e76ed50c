"""Collapse of deep narrow nets ("dead ReLU"): many small regressions fitted at once.

One simulation draws its own data x ~ U(-x_limit, x_limit), y = |x| (float32[n, 1] each), its
own initial weights and its own shuffling from one PRNG key, trains a 1 -> [Dense width +
activation] x depth -> Dense 1 net by MSE on Keras-style shuffled batches (a `lax.scan` over
the updates) and reports the variance of its predictions on its own test points: a net whose
predictions are (nearly) constant "collapsed". `make_simulation` returns that as a pure
function key -> outputs, so `jit(vmap(simulate))` trains every simulation in one program.
"""

import functools
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsched import initializers
from jaxsched.models.mlp import MLP

ACTIVATIONS = ("relu", "leaky_relu")
Simulation = Callable[[jax.Array], dict[str, jax.Array]]


def collapsed(pred_variance: Any, threshold: float) -> np.ndarray:
    """bool[...] of the shape of `pred_variance`: a net collapsed when its test predictions'
    variance is <= threshold."""
    return np.asarray(pred_variance) <= threshold


def make_model(
    depth: int,
    width: int,
    activation: str = "relu",
    initializer: str = "glorot_uniform",
    *,
    leaky_slope: float = 0.01,
) -> MLP:
    """1 -> depth x [Dense width + activation] -> Dense 1 (inputs [B, 1] -> outputs [B, 1]).

    activation: "relu", or "leaky_relu" with slope `leaky_slope` for x < 0. Kernels from
    `initializer` (a Keras name, `jaxsched.initializers`), zero biases (Keras's defaults with
    "glorot_uniform")."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    fn = (
        nn.relu
        if activation == "relu"
        else functools.partial(nn.leaky_relu, negative_slope=leaky_slope)
    )
    return MLP(
        hidden=(width,) * depth,
        num_classes=1,
        activation=fn,
        kernel_init=initializers.get(initializer),
    )


def sample_data(key: jax.Array, n: int, x_limit: float) -> tuple[jax.Array, jax.Array]:
    """(x, y) float32[n, 1]: x ~ U(-x_limit, x_limit), y = |x|."""
    x = jax.random.uniform(key, (n, 1), minval=-x_limit, maxval=x_limit)
    return x, jnp.abs(x)


def batch_plan(key: jax.Array, n: int, batch_size: int, epochs: int) -> tuple[jax.Array, jax.Array]:
    """Keras's shuffled batches as fixed shapes for a scan: (indices int32[U, batch_size],
    weights float32[U, batch_size]), U = epochs * ceil(n / batch_size) updates.

    Epoch e is a fresh permutation (key folded with e) cut into batches; the last, partial batch
    is padded with index 0 at weight 0, so sum(weights * loss) is the mean over its real
    examples (Keras's loss of a partial batch)."""
    steps = -(-n // batch_size)
    pad = steps * batch_size - n
    sizes = np.full(steps, batch_size)
    sizes[-1] = n - (steps - 1) * batch_size
    real = np.arange(steps * batch_size) < n
    weights = jnp.asarray(np.where(real, 1.0 / np.repeat(sizes, batch_size), 0.0), jnp.float32)

    def epoch(e: jax.Array) -> jax.Array:
        perm = jax.random.permutation(jax.random.fold_in(key, e), n)
        return jnp.concatenate([perm, jnp.zeros(pad, perm.dtype)]).reshape(steps, batch_size)

    indices = jax.vmap(epoch)(jnp.arange(epochs)).reshape(epochs * steps, batch_size)
    return indices, jnp.tile(weights.reshape(steps, batch_size), (epochs, 1))


def make_simulation(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    train_points: int,
    test_points: int,
    batch_size: int,
    epochs: int,
    x_limit: float,
) -> Simulation:
    """The pure function key -> {"pred_variance", "init_pred_variance", "test_mse",
    "last_epoch_loss"} (float32 scalars) of one simulation: sample its `train_points` training
    and `test_points` test points (`sample_data`), initialize `model` (inputs [B, 1] -> [B, 1],
    e.g. `make_model`), train it with `tx` by MSE for `epochs` epochs of `batch_plan` batches,
    predict its test points (init_pred_variance: with the initial weights).

    The key is split by fold_in: 0 initial weights, 1 training data, 2 test data, 3 shuffling.
    """

    def loss_fn(params: Any, x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
        pred = model.apply({"params": params}, x, train=False)
        return jnp.sum(w * (pred[:, 0] - y[:, 0]) ** 2)

    def simulate(key: jax.Array) -> dict[str, jax.Array]:
        k_init, k_train, k_test, k_shuffle = (jax.random.fold_in(key, j) for j in range(4))
        x, y = sample_data(k_train, train_points, x_limit)
        x_test, y_test = sample_data(k_test, test_points, x_limit)
        params = model.init(k_init, x[:1], train=False)["params"]
        indices, weights = batch_plan(k_shuffle, train_points, batch_size, epochs)

        def step(carry, batch):
            params, opt_state = carry
            idx, w = batch
            loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx], w)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        init_pred = model.apply({"params": params}, x_test, train=False)[:, 0]
        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), (indices, weights))
        pred = model.apply({"params": params}, x_test, train=False)[:, 0]
        return {
            "pred_variance": jnp.var(pred),
            "init_pred_variance": jnp.var(init_pred),
            "test_mse": jnp.mean((pred - y_test[:, 0]) ** 2),
            "last_epoch_loss": jnp.mean(losses[-(len(losses) // epochs) :]),
        }

    return simulate


def simulation_keys(seed: int, n: int) -> jax.Array:
    """Keys [n]: simulation i's is fold_in(key(seed), i), the same whatever n is."""
    return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(n))


def run_vmapped(
    simulate: Simulation, keys: jax.Array
) -> tuple[dict[str, np.ndarray], float, float]:
    """(outputs, compile seconds, run seconds) of jit(vmap(simulate))(keys): each output
    [len(keys)], one per simulation."""
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(simulate)).lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(keys))
    return {k: np.asarray(v) for k, v in out.items()}, compile_s, time.perf_counter() - start


def run_one_by_one(
    simulate: Simulation, keys: jax.Array
) -> tuple[dict[str, np.ndarray], float, float]:
    """(outputs [len(keys)] each, compile seconds, run seconds): jit(simulate) called once per
    key in turn."""
    start = time.perf_counter()
    compiled = jax.jit(simulate).lower(keys[0]).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    outs = [jax.block_until_ready(compiled(k)) for k in keys]
    run_s = time.perf_counter() - start
    return {k: np.array([np.asarray(o[k]) for o in outs]) for k in outs[0]}, compile_s, run_s
