"""The dead-ReLU study's simulations: jaxsched's one vmapped program against the course's Keras
loop, with the collapsed fraction of both computed the same way.

    python -m benchmarks.dead_relu [--smoke] [--peers jaxsched keras]

A simulation fits 1 -> [Dense 2 + ReLU] x 10 -> Dense 1 (Glorot-uniform kernels, zero biases:
Keras's defaults) to y = |x| on its own 3000 points x ~ U(-sqrt 7, sqrt 7), MSE, Adam 1e-3,
2 epochs at batch 64, and collapsed when its predictions on its own 1000 test points have
variance <= 1e-3 (experiments/configs/dead_relu.py). jaxsched: all 1000 simulations as
`jit(vmap(simulate))` of `jaxsched.collapse`; each repetition compiles it again (the
compile and the warm run are also reported apart). Keras: per simulation, the course's loop:
draw the data, build, compile and fit a model, predict the test points; `keras_simulations`
of them are timed one by one per repetition (after one untimed) and the total for all 1000 is
extrapolated from their mean.
"""

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from benchmarks import common
from benchmarks.peers import keras_tf
from experiments.configs.dead_relu import DEFAULT, Config, simulation
from experiments.configs.dead_relu import SMOKE as SMOKE_CONFIG
from jaxsched import collapse, stats

NAME = "dead_relu"
ACTIVATION, INITIALIZER = "relu", "glorot_uniform"
TOTAL, PER_SIM, FRACTION = "all simulations", "per simulation", "collapsed fraction"


@dataclasses.dataclass(frozen=True)
class Size:
    config: Config
    keras_simulations: int  # timed per repetition, then extrapolated


FULL = Size(DEFAULT, keras_simulations=20)
SMOKE = Size(SMOKE_CONFIG, keras_simulations=2)


def fraction_row(case: str, peer: str, variant: str, dead: np.ndarray, note: str) -> dict:
    """The collapsed fraction of `dead` (bool per simulation) with its 95% Wilson interval."""
    count, n = int(dead.sum()), len(dead)
    lo, hi = stats.wilson_interval(count, n, 0.95)
    return common.row(
        NAME,
        case,
        peer,
        variant,
        FRACTION,
        [count / n],
        "",
        note=f"{count}/{n} collapsed, 95% Wilson [{lo:.3f}, {hi:.3f}]; {note}",
        extra={"collapsed": count, "simulations": n, "ci95": [lo, hi]},
    )


def jaxsched_rows(size: Size, case: str, repetitions: int) -> list[dict[str, Any]]:
    config = size.config
    simulate = simulation(config, ACTIVATION, INITIALIZER)
    keys = collapse.simulation_keys(config.seed, config.simulations)
    compile_s, compiled = [], None
    for _ in range(repetitions):
        start = time.perf_counter()
        compiled = jax.jit(jax.vmap(simulate)).lower(keys).compile()
        compile_s.append(time.perf_counter() - start)
    run = common.repeat(lambda: compiled(keys), repetitions, warmup=1)
    out = jax.device_get(compiled(keys))
    dead = collapse.collapsed(out["pred_variance"], config.collapse_variance)
    totals = [c + r for c, r in zip(compile_s, run.values, strict=True)]
    n, variant = config.simulations, "jit(vmap(simulate))"
    return [
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            TOTAL,
            totals,
            baseline=True,
            note="compile + run, one program",
        ),
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            PER_SIM,
            [t / n for t in totals],
            baseline=True,
            note=f"(compile + run) / {n}",
        ),
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            "compile",
            compile_s,
            note="lower + compile of the vmapped program",
        ),
        common.row(
            NAME, case, "jaxsched", variant, "run (warm)", run, note=f"{n} simulations, compiled"
        ),
        fraction_row(case, "jaxsched", variant, dead, f"all {n} simulations"),
    ]


def keras_rows(size: Size, case: str, repetitions: int) -> list[dict[str, Any]]:
    config, k = size.config, size.keras_simulations
    keras_tf.dead_relu_simulation(config, seed=10**6)  # warm-up, untimed
    sims = [
        [keras_tf.dead_relu_simulation(config, seed=r * k + i) for i in range(k)]
        for r in range(repetitions)
    ]
    per_sim = [s["seconds"] for rep in sims for s in rep]
    totals = [config.simulations * np.mean([s["seconds"] for s in rep]) for rep in sims]
    variances = np.array([s["pred_variance"] for rep in sims for s in rep])
    dead = collapse.collapsed(np.nan_to_num(variances, nan=0.0), config.collapse_variance)
    variant = "build + compile + fit per simulation"
    return [
        common.row(
            NAME,
            case,
            "keras",
            variant,
            TOTAL,
            totals,
            note=f"extrapolated: {config.simulations} x the mean of {k} timed per repetition",
        ),
        common.row(
            NAME,
            case,
            "keras",
            variant,
            PER_SIM,
            per_sim,
            note=f"{len(per_sim)} simulations timed one by one",
        ),
        fraction_row(case, "keras", variant, dead, f"the {len(dead)} Keras simulations"),
    ]


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """jaxsched's vmapped program and the Keras loop on the same study."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    case = f"{size.config.simulations} simulations, {ACTIVATION}, {INITIALIZER}"
    return common.peer_rows(
        NAME,
        "jaxsched",
        "jit(vmap(simulate))",
        peers,
        lambda: jaxsched_rows(size, case, repetitions),
        case=case,
    ) + common.peer_rows(
        NAME,
        "keras",
        "build + compile + fit per simulation",
        peers,
        lambda: keras_rows(size, case, repetitions),
        case=case,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
