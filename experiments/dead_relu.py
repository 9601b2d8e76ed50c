"""Dead (collapsed) deep narrow ReLU nets: 1000 simulations per variant in one vmapped jit.

    python -m experiments.dead_relu                           # 4 variants x 1000 simulations
    python -m experiments.dead_relu --simulations 200 --activations relu
    python -m experiments.dead_relu --smoke                   # seconds

Each simulation fits 1 -> [Dense 2 + ReLU] x 10 -> Dense 1 to y = |x|, x ~ U(-sqrt 7, sqrt 7)
(3000 points, MSE, Adam, 2 epochs at batch 64), and "collapsed" when its predictions on 1000
test points have variance <= 1e-3. For ReLU and LeakyReLU (0.01), with Keras's default
initialization (Glorot uniform, zero bias) and with He normal, all simulations of a variant
train together: one jitted computation vmapped over the simulations, a lax.scan over the
updates. Writes <out>/results.json (collapsed fraction, 95% Wilson interval, wall times, each
simulation's prediction variance) and figures collapsed.png and pred_variance.png; prints the
table. Synthetic data: no dataset is needed.
"""

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import common
from experiments.configs.dead_relu import ACTIVATIONS, DEFAULT, INITIALIZERS, SMOKE, Config
from jaxsched import initializers, optimizers, plots, results, stats
from jaxsched.models.mlp import MLP

NAME = "dead_relu"
SUMMARY_KEYS = (
    "key",
    "collapsed",
    "simulations",
    "fraction",
    "ci_low",
    "ci_high",
    "collapsed_at_init",
    "wall_time_s",
)
VARIANCE_FLOOR = 1e-12  # prediction variances are drawn as log10(max(variance, this))


def collapsed(pred_variance: Any, threshold: float) -> np.ndarray:
    """bool[...]: a net collapsed when its test predictions' variance is <= threshold."""
    return np.asarray(pred_variance) <= threshold


def make_model(config: Config, activation: str, initializer: str) -> MLP:
    """1 -> depth x [Dense width + activation] -> Dense 1; kernels from `initializer`, zero bias."""
    fn = (
        nn.relu
        if activation == "relu"
        else functools.partial(nn.leaky_relu, negative_slope=config.leaky_slope)
    )
    return MLP(
        hidden=(config.width,) * config.depth,
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
    config: Config, activation: str, initializer: str
) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """The pure function key -> {"pred_variance", "init_pred_variance", "test_mse",
    "last_epoch_loss"} (float32 scalars) of one simulation: sample its data, initialize, train,
    predict its test points (init_pred_variance: with the initial weights)."""
    model = make_model(config, activation, initializer)
    tx = optimizers.make(config.optimizer, config.learning_rate, preset=config.preset)

    def loss_fn(params: Any, x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
        pred = model.apply({"params": params}, x, train=False)
        return jnp.sum(w * (pred[:, 0] - y[:, 0]) ** 2)

    def simulate(key: jax.Array) -> dict[str, jax.Array]:
        k_init, k_train, k_test, k_shuffle = (jax.random.fold_in(key, j) for j in range(4))
        x, y = sample_data(k_train, config.train_points, config.x_limit)
        x_test, y_test = sample_data(k_test, config.test_points, config.x_limit)
        params = model.init(k_init, x[:1], train=False)["params"]
        indices, weights = batch_plan(
            k_shuffle, config.train_points, config.batch_size, config.epochs
        )

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
            "last_epoch_loss": jnp.mean(losses[-(len(losses) // config.epochs) :]),
        }

    return simulate


def simulation_keys(seed: int, n: int) -> jax.Array:
    """Simulation i's key: fold_in(key(seed), i), the same whatever n is."""
    return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(n))


def run_vmapped(
    simulate: Callable[[jax.Array], dict[str, jax.Array]], keys: jax.Array
) -> tuple[dict[str, np.ndarray], float, float]:
    """(outputs per simulation, compile seconds, run seconds) of jit(vmap(simulate))(keys)."""
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(simulate)).lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(keys))
    return {k: np.asarray(v) for k, v in out.items()}, compile_s, time.perf_counter() - start


def run_one_by_one(
    simulate: Callable[[jax.Array], dict[str, jax.Array]], keys: jax.Array
) -> tuple[dict[str, np.ndarray], float, float]:
    """(outputs, compile seconds, run seconds): jit(simulate) called once per key in turn."""
    start = time.perf_counter()
    compiled = jax.jit(simulate).lower(keys[0]).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    outs = [jax.block_until_ready(compiled(k)) for k in keys]
    run_s = time.perf_counter() - start
    return {k: np.array([np.asarray(o[k]) for o in outs]) for k in outs[0]}, compile_s, run_s


def run(
    config: Config, workdir: str | Path, *, quiet: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Simulates every (activation, initializer) variant; returns the results document.

    A variant takes seconds, so there is nothing to resume: a complete results.json of the
    same config is reused, `fresh` sets it aside and recomputes."""
    del quiet
    recorder = common.Recorder(NAME, config, Path(workdir))
    recorder.begin(fresh=fresh)
    if recorder.finished_document is not None:
        print(f"reusing the complete {recorder.results_path} of this config (--fresh redoes it)")
        return recorder.finished_document
    keys = simulation_keys(config.seed, config.simulations)
    runs = []
    for activation in config.activations:
        for initializer in config.initializers:
            runs.append(_variant(config, activation, initializer, keys))
            print(_row(runs[-1]), flush=True)
            recorder.write(runs, {}, "running")
    summary = {
        "table": [
            {
                **{k: r[k] for k in SUMMARY_KEYS},
                "one_by_one_s_per_simulation": r["one_by_one"]["s_per_simulation"],
            }
            for r in runs
        ],
    }
    doc = recorder.write(runs, summary, results.DONE)
    _figures(doc, recorder.workdir)
    return doc


def _variant(config: Config, activation: str, initializer: str, keys: jax.Array) -> dict[str, Any]:
    simulate = make_simulation(config, activation, initializer)
    out, compile_s, run_s = run_vmapped(simulate, keys)
    dead = collapsed(out["pred_variance"], config.collapse_variance)
    count = int(dead.sum())
    lo, hi = stats.wilson_interval(count, len(dead), config.confidence)
    one_by_one = {"simulations": config.one_by_one, "s_per_simulation": None}
    if config.one_by_one:
        single, single_compile_s, single_run_s = run_one_by_one(simulate, keys[: config.one_by_one])
        one_by_one.update(
            s_per_simulation=single_run_s / config.one_by_one,
            compile_time_s=single_compile_s,
            # vmapped against one-by-one results of the same simulations: float32 rounding
            # (a constant net's prediction variance is rounding noise, ~1e-15, hence absolute)
            max_rel_diff_test_mse=_max_rel_diff(single["test_mse"], out["test_mse"]),
            max_rel_diff_last_epoch_loss=_max_rel_diff(
                single["last_epoch_loss"], out["last_epoch_loss"]
            ),
            max_abs_diff_pred_variance=float(
                np.max(np.abs(single["pred_variance"] - out["pred_variance"][: config.one_by_one]))
            ),
            # the one-by-one outputs themselves, for checks against the vmapped ones
            outputs=dict(single),
            same_collapse=bool(
                np.array_equal(
                    collapsed(single["pred_variance"], config.collapse_variance),
                    dead[: config.one_by_one],
                )
            ),
        )
    return {
        "key": f"{activation}/{initializer}",
        "activation": activation,
        "initializer": initializer,
        "simulations": len(dead),
        "collapsed": count,
        "fraction": count / len(dead),
        # already below the threshold with the initial weights ("born dead" for ReLU)
        "collapsed_at_init": int(
            collapsed(out["init_pred_variance"], config.collapse_variance).sum()
        ),
        "ci_low": lo,
        "ci_high": hi,
        "confidence": config.confidence,
        "compile_time_s": compile_s,
        "run_time_s": run_s,
        "wall_time_s": compile_s + run_s,
        "one_by_one": one_by_one,
        "mean_test_mse": {
            "collapsed": float(out["test_mse"][dead].mean()) if count else None,
            "not_collapsed": float(out["test_mse"][~dead].mean()) if count < len(dead) else None,
        },
        "pred_variance": out["pred_variance"],
        "init_pred_variance": out["init_pred_variance"],
        "test_mse": out["test_mse"],
        "last_epoch_loss": out["last_epoch_loss"],
    }


def _max_rel_diff(single: np.ndarray, batched: np.ndarray) -> float:
    """max |single - batched| / |single| over the first len(single) simulations."""
    return float(np.max(np.abs(single - batched[: len(single)]) / np.abs(single)))


def _row(run: dict[str, Any]) -> str:
    single = run["one_by_one"]["s_per_simulation"]
    return (
        f"{run['key']:<28} collapsed {run['collapsed']:>4}/{run['simulations']} = "
        f"{run['fraction']:.3f} [{run['ci_low']:.3f}, {run['ci_high']:.3f}] "
        f"({run['collapsed_at_init']} at init)  "
        f"vmapped {run['wall_time_s']:.1f} s (compile {run['compile_time_s']:.1f} s)"
        + ("" if single is None else f"  one by one {1e3 * single:.1f} ms/simulation")
    )


def _figures(doc: dict[str, Any], workdir: Path) -> None:
    config = doc["config"]
    n = config["simulations"]
    pct = round(100 * config["confidence"])
    plots.save(
        plots.proportions(
            {
                r["key"]: {"value": r["fraction"], "lo": r["ci_low"], "hi": r["ci_high"]}
                for r in doc["runs"]
            },
            "fraction of simulations collapsed",
            title=f"collapsed nets (prediction variance <= {config['collapse_variance']:g}), "
            f"{n} simulations each, {pct}% Wilson intervals",
        ),
        workdir / "collapsed.png",
    )
    plots.save(
        plots.histograms(
            {
                r["key"]: np.log10(np.maximum(plots._finite(r["pred_variance"]), VARIANCE_FLOOR))
                for r in doc["runs"]
            },
            f"log10(variance of the test predictions), floored at {VARIANCE_FLOOR:g}",
            vline=float(np.log10(max(config["collapse_variance"], VARIANCE_FLOOR))),
            vline_label="collapse threshold",
            title=f"{n} simulations per variant; the variance of y = |x| is "
            f"{config['x_limit'] ** 2 / 12:.3f}",
            logy=True,
        ),
        workdir / "pred_variance.png",
    )


SINGLE_DEVICE = "its simulations are vmapped into one program, not trained with loop.fit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--activations", nargs="+", choices=ACTIVATIONS)
    parser.add_argument("--initializers", nargs="+", choices=INITIALIZERS)
    parser.add_argument("--simulations", type=int, help="simulations per variant")
    parser.add_argument("--epochs", type=int, help="epochs per simulation")
    parser.add_argument("--one-by-one", type=int, help="simulations also run one at a time")


def report(doc: dict[str, Any], workdir: Path) -> None:
    confidence = round(100 * doc["config"]["confidence"])
    print(f"\ncollapsed fraction, {confidence}% Wilson interval, wall time")
    for row in doc["summary"]["table"]:
        print(
            f"{row['key']:<28} {row['fraction']:.3f} [{row['ci_low']:.3f}, "
            f"{row['ci_high']:.3f}]  {row['wall_time_s']:.1f} s"
        )
    print(f"wrote {workdir}/results.json and figures")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=DEFAULT,
        smoke=SMOKE,
        add_arguments=add_arguments,
        report=report,
        single_device=SINGLE_DEVICE,
    )


if __name__ == "__main__":
    common.exit_with(main())
