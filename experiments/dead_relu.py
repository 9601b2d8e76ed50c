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
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments import common
from experiments.configs.dead_relu import (
    ACTIVATIONS,
    DEFAULT,
    INITIALIZERS,
    SMOKE,
    Config,
    simulation,
)
from jaxsched import collapse, plots, results, stats

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
    keys = collapse.simulation_keys(config.seed, config.simulations)
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
    simulate = simulation(config, activation, initializer)
    out, compile_s, run_s = collapse.run_vmapped(simulate, keys)
    dead = collapse.collapsed(out["pred_variance"], config.collapse_variance)
    count = int(dead.sum())
    lo, hi = stats.wilson_interval(count, len(dead), config.confidence)
    one_by_one = {"simulations": config.one_by_one, "s_per_simulation": None}
    if config.one_by_one:
        single, single_compile_s, single_run_s = collapse.run_one_by_one(
            simulate, keys[: config.one_by_one]
        )
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
                    collapse.collapsed(single["pred_variance"], config.collapse_variance),
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
            collapse.collapsed(out["init_pred_variance"], config.collapse_variance).sum()
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
