"""What JAX's persistent compilation cache saves a rerun: experiment runners run twice, each in
its own process, the first with an empty cache folder, the second reading what the first wrote.

    python -m benchmarks.rerun_compile [--smoke]

Both runs use the runner's `--smoke` configuration (its real model and step shapes, few
updates: compile time depends on the programs, not on how long they run) and their own output
folder (so no finished result is reused). Measured per run, by JAX's own monitoring events: the
seconds spent tracing, lowering and compiling every program (on a persistent-cache hit,
reading the executable back instead of compiling), the cache hits and misses, and the
process's wall time, imports included. The full size runs five runners; `--smoke` one.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import common
from jaxsched import compile_cache

NAME = "rerun_compile"
ROOT = Path(__file__).resolve().parents[1]
RUNNERS = (
    "lr_range_test",
    "clr_fashion_mnist",
    "batch_size_sweep",
    "batch_augmentation",
    "minigooglenet",
)
SMOKE_RUNNERS = ("perceptron",)  # the cheapest runner: the smoke checks the mechanism
COMPILE, WALL = "compile (all steps)", "process wall time"
RUNS = ("first run, empty cache", "second run, cache filled")


# Runs the runner as `python -m` would, summing JAX's own compile-time monitoring events.
CHILD = """
import atexit, json, runpy, sys
from jax import monitoring
seconds, counts = {}, {}
def on_duration(event, duration, **_):
    seconds[event] = seconds.get(event, 0.0) + duration
def on_event(event, **_):
    counts[event] = counts.get(event, 0) + 1
monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
path, runner, *args = sys.argv[1:]
atexit.register(lambda: open(path, "w").write(json.dumps({"seconds": seconds, "counts": counts})))
sys.argv = [runner, *args]
runpy.run_module(runner, run_name="__main__", alter_sys=True)
"""
# JAX's events (jax._src.dispatch): tracing to a jaxpr, lowering to StableHLO, and XLA
# compiling or, on a persistent-cache hit, reading the executable back.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
HITS, MISSES = "/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"


def run_runner(runner: str, out: Path, cache: Path) -> dict[str, Any]:
    """`python -m experiments.<runner> --smoke --quiet --out <out>` with the compile cache in
    `cache`; returns {"compile_s", "wall_s", "cache_hits", "cache_misses"}."""
    env = {**os.environ, compile_cache.ENV: str(cache)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # the runner's own cache set-up is measured
    stats = out.with_suffix(".events.json")
    argv = [f"experiments.{runner}", "--smoke", "--quiet", "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(stats), *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"experiments.{runner} failed: {proc.stderr[-2000:]}")
    events = json.loads(stats.read_text())
    return {
        "compile_s": sum(events["seconds"].get(e, 0.0) for e in COMPILE_EVENTS),
        "wall_s": wall,
        "cache_hits": events["counts"].get(HITS, 0),
        "cache_misses": events["counts"].get(MISSES, 0),
    }


def runner_rows(runner: str) -> list[dict[str, Any]]:
    """Two runs of `runner` sharing a fresh cache folder; rows per run, the first the baseline."""
    with tempfile.TemporaryDirectory(prefix="rerun_compile-") as tmp:
        cache = Path(tmp) / "xla"
        outs = [run_runner(runner, Path(tmp) / f"run{i}", cache) for i in (1, 2)]
    case = f"experiments.{runner} --smoke"
    rows = []
    for metric, key in ((COMPILE, "compile_s"), (WALL, "wall_s")):
        for i, (variant, out) in enumerate(zip(RUNS, outs, strict=True)):
            extra = {k: out[k] for k in ("cache_hits", "cache_misses")}
            rows.append(
                common.row(
                    NAME, case, "jaxsched", variant, metric, [out[key]], baseline=i == 0,
                    extra=extra,
                )
            )  # fmt: skip
    return rows


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """jaxsched only (a peer has no counterpart); one pair of runs per runner, whatever
    `repetitions` (each pair needs its own empty cache)."""
    common.check_repetitions(repetitions)
    rows: list[dict[str, Any]] = []
    for runner in SMOKE_RUNNERS if smoke else RUNNERS:
        rows += common.peer_rows(
            NAME, "jaxsched", runner, peers, lambda runner=runner: runner_rows(runner)
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
