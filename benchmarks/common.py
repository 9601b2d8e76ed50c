"""Plumbing shared by the benchmarks: timing, result rows, ratios, environment, output files.

A row is one measurement of one peer (plain JSON): the values of its repetitions (warm-up
excluded) with their median, min, max and relative spread, the unit, and for timings the items
processed per call (images, FLOP) so that the table can give a throughput. `add_ratios` divides
every timing by the baseline row of its (benchmark, case, metric) group, so a ratio above 1
means the peer took longer than the baseline (jaxsched).
"""

import argparse
import collections
import dataclasses
import gzip
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxsched import results

PEERS = ("jaxsched", "keras", "torch")
# The modules a peer needs (find_spec only: nothing is imported to check).
PEER_MODULES = {"jaxsched": ("jax",), "keras": ("tensorflow", "keras"), "torch": ("torch",)}
INSTALL_HINT = "pip install -e .[bench]"
OK, SKIPPED, FAILED = "ok", "skipped", "failed"
PROFILE_TOP_OPS = 8  # op kinds kept per `op_profile`
DEFAULT_OUT = "runs/benchmarks"


# ------------------------------------------------------------------------------------------------
# Timing.


@dataclasses.dataclass(frozen=True)
class Stats:
    """Summary of repeated measurements: `values` in the row's unit, one per repetition."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def min(self) -> float:
        return float(min(self.values))

    @property
    def max(self) -> float:
        return float(max(self.values))

    @property
    def spread(self) -> float:
        """(max - min) / median, dimensionless; 0 for a single value."""
        return (self.max - self.min) / self.median if self.median else 0.0


def block(tree: Any) -> Any:
    """Waits for every JAX array in `tree` (other leaves are left alone); returns `tree`."""
    import jax

    for leaf in jax.tree_util.tree_leaves(tree):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return tree


def repeat(
    fn: Callable[[], Any],
    repetitions: int = 3,
    warmup: int = 1,
    *,
    number: int = 1,
    warmup_fn: Callable[[], Any] | None = None,
) -> Stats:
    """Seconds per call of `fn`: `warmup` untimed calls, then `repetitions` timed ones.

    Each repetition calls `fn` `number` times and records the mean seconds per call; JAX
    results are waited for (`block`) inside the timed region. `warmup_fn`, when given, is what
    the warm-up calls instead of `fn` (e.g. the same work at a tiny size, for measurements that
    compile on every call anyway).
    """
    if repetitions < 1 or warmup < 0 or number < 1:
        raise ValueError(
            f"need repetitions >= 1, warmup >= 0, number >= 1; got "
            f"{repetitions}, {warmup}, {number}"
        )
    for _ in range(warmup):
        block((warmup_fn or fn)())
    values = []
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(number):
            block(fn())
        values.append((time.perf_counter() - start) / number)
    return Stats(tuple(values))


def interleaved(
    fns: Mapping[str, Callable[[], Any]], repetitions: int, warmup: int = 1, *, number: int = 1
) -> dict[str, tuple[float, ...]]:
    """Seconds per call of each of `fns` (`repeat`'s), the repetitions interleaved (A, B, C,
    A, B, C, ...) so that a machine's slow moment falls on all of them; `warmup` untimed calls
    of each first."""
    for fn in fns.values():
        for _ in range(warmup):
            block(fn())
    values: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repetitions):
        for name, fn in fns.items():
            values[name] += repeat(fn, 1, warmup=0, number=number).values
    return {name: tuple(v) for name, v in values.items()}


def op_profile(fn: Callable[[], Any], images: int) -> dict[str, float]:
    """Runs `fn` once under `jax.profiler.trace`; microseconds per image of each kind of XLA
    operation (events carrying an `hlo_op`, the trailing `.N` of a name dropped), summed over
    threads, the PROFILE_TOP_OPS largest and "total"."""
    import jax

    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            jax.block_until_ready(fn())
        (path,) = Path(folder).rglob("*.trace.json.gz")
        trace = json.loads(gzip.decompress(path.read_bytes()))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    totals: collections.Counter = collections.Counter()
    for event in events:
        op = event.get("args", {}).get("hlo_op")
        if event.get("ph") == "X" and op:
            totals[re.sub(r"\.\d+$", "", op)] += event.get("dur", 0.0)
    top = {op: us / images for op, us in totals.most_common(PROFILE_TOP_OPS)}
    return {**top, "total": sum(totals.values()) / images}


# ------------------------------------------------------------------------------------------------
# Rows.

PROGRESS = True  # `row` prints every measurement as it is made


def row(
    benchmark: str,
    case: str,
    peer: str,
    variant: str,
    metric: str,
    values: Stats | Sequence[float],
    unit: str = "s",
    *,
    items: float | None = None,
    items_unit: str = "images",
    baseline: bool = False,
    note: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One measurement: `values` (a Stats or the per-repetition values) in `unit`.

    items: what one timed call processes (e.g. images per epoch), for the throughput
      items / median in `items_unit`/s; None when it does not apply.
    baseline: the row the other rows of its (benchmark, case, metric) are divided by.
    """
    stats = values if isinstance(values, Stats) else Stats(tuple(float(v) for v in values))
    if not stats.values:
        raise ValueError(f"{benchmark}/{case}/{peer}/{metric}: no values")
    throughput = items / stats.median if items is not None and stats.median > 0 else None
    if PROGRESS:  # each measurement as it completes: a full run takes many minutes
        print(
            f"  {benchmark} | {case} | {peer} {variant} | {metric}: "
            f"{format_value(stats.median, unit)} (median of {len(stats.values)})",
            flush=True,
        )
    return {
        "benchmark": benchmark,
        "case": case,
        "peer": peer,
        "variant": variant,
        "metric": metric,
        "unit": unit,
        "status": OK,
        "median": stats.median,
        "min": stats.min,
        "max": stats.max,
        "spread": stats.spread,
        "repetitions": len(stats.values),
        "values": list(stats.values),
        "items": items,
        "items_unit": items_unit if items is not None else None,
        "throughput": throughput,
        "baseline": baseline,
        "ratio": None,
        "note": note,
        "extra": dict(extra or {}),
    }


def skipped(
    benchmark: str, peer: str, variant: str, message: str, *, case: str = "", status: str = SKIPPED
) -> dict[str, Any]:
    """A row for a peer that did not run: `message` says why (and how to get it)."""
    return {
        "benchmark": benchmark,
        "case": case,
        "peer": peer,
        "variant": variant,
        "metric": "",
        "unit": "",
        "status": status,
        "median": None,
        "min": None,
        "max": None,
        "spread": None,
        "repetitions": 0,
        "values": [],
        "items": None,
        "items_unit": None,
        "throughput": None,
        "baseline": False,
        "ratio": None,
        "note": message,
        "extra": {},
    }


def error_message(exc: BaseException, limit: int = 300) -> str:
    """`Type: message` of an exception, cut to `limit` characters."""
    text = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def add_ratios(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sets `ratio` = median / baseline median on every timing row (unit "s") of a
    (benchmark, case, metric) group that has an OK baseline row; returns the rows."""
    rows = list(rows)
    bases = {
        (r["benchmark"], r["case"], r["metric"]): r["median"]
        for r in rows
        if r["baseline"] and r["status"] == OK and r["median"]
    }
    for r in rows:
        base = bases.get((r["benchmark"], r["case"], r["metric"]))
        if r["status"] == OK and r["unit"] == "s" and base:
            r["ratio"] = r["median"] / base
    return rows


# ------------------------------------------------------------------------------------------------
# Peers.


def missing_modules(peer: str) -> list[str]:
    """The modules `peer` needs that are not installed (checked with importlib's find_spec)."""
    if peer not in PEER_MODULES:
        raise ValueError(f"peer must be one of {PEERS}, got {peer!r}")
    return [m for m in PEER_MODULES[peer] if importlib.util.find_spec(m) is None]


def unavailable(peer: str) -> str | None:
    """None when `peer` can run, else the message of its 'skipped' row."""
    missing = missing_modules(peer)
    if not missing:
        return None
    return f"skipped: {' and '.join(missing)} not installed ({INSTALL_HINT})"


def peer_rows(
    benchmark: str,
    peer: str,
    variant: str,
    peers: Sequence[str],
    measure: Callable[[], list[dict[str, Any]]],
    *,
    case: str = "",
) -> list[dict[str, Any]]:
    """Runs `measure()` for a selected, installed peer; a 'skipped' row when the peer is not
    installed or (a peer other than jaxsched) its run raises, the error in the message;
    nothing when it is not selected."""
    if peer not in peers:
        return []
    if (message := unavailable(peer)) is not None:
        print(f"{benchmark}: {peer} ({variant}) {message}", flush=True)
        return [skipped(benchmark, peer, variant, message, case=case)]
    try:
        return measure()
    except Exception as exc:  # a peer that fails here is reported, never a crash
        if peer == "jaxsched":
            raise  # jaxsched's own failure is a bug: run_and_write records it as failed
        message = f"skipped: failed here: {error_message(exc)}"
        print(f"{benchmark}: {peer} ({variant}) {message}", flush=True)
        traceback.print_exc(limit=3)
        return [skipped(benchmark, peer, variant, message, case=case)]


class WorkerProcess:
    """A spawned process of its own that runs `fn(*args)` for `call`, one call at a time, and
    stays alive between calls (its imports, thread pools and caches persist), so that peers
    measured in turn do not share a process: one framework's threads, allocator and loaded
    libraries do not slow another. Close it (or use it as a context manager) when done."""

    def __init__(self):
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) in the worker (fn importable by name, args and result picklable); its
        exception is raised here."""
        return self._pool.submit(fn, *args).result()

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------
# Environment.


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name from /proc/cpuinfo ("model name", or "Model"/"Hardware" on ARM),
    else platform.processor() or the machine type."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def thread_settings() -> dict[str, Any]:
    """Thread counts of every framework already imported (none is imported to ask)."""
    settings: dict[str, Any] = {
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "jax": "XLA CPU: one intra-op thread pool over all usable cores (XLA's default)",
    }
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        settings["tensorflow"] = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "note": "0 = TensorFlow picks (all cores), its default",
        }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        settings["torch"] = {
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
        }
    return settings


def peer_versions() -> dict[str, str | None]:
    """Versions of the peers' frameworks that this process imported (None: not imported)."""
    out = {}
    for name in ("tensorflow", "keras", "torch"):
        module = sys.modules.get(name)
        out[name] = getattr(module, "__version__", None) if module else None
    if (keras := sys.modules.get("keras")) is not None:
        out["keras_backend"] = keras.backend.backend()
    return out


def environment() -> dict[str, Any]:
    """jaxsched's environment (versions, backend, device, git commit) plus the CPU model, core
    counts, load average and thread settings; call it after the peers ran to get their
    versions and threads."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        **results.environment(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads": thread_settings(),
        "peers": peer_versions(),
    }


# ------------------------------------------------------------------------------------------------
# Output.


def format_value(value: float | None, unit: str) -> str:
    """A value with its unit: seconds as s / ms / µs, others with 4 significant digits."""
    if value is None:
        return ""
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {name}"
        return f"{value * 1e6:.3g} µs"
    if unit == "count":
        return f"{value:g}"
    return f"{value:.4g} {unit}".rstrip()


def _throughput(r: Mapping[str, Any]) -> str:
    if r["throughput"] is None:
        return ""
    t, unit = r["throughput"], r["items_unit"]
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if unit == "FLOP" and t >= scale:
            return f"{t / scale:.3g} {prefix}FLOP/s"
    return f"{t:,.0f} {unit}/s"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One Markdown table row per measurement (and per skipped peer)."""
    header = (
        "| benchmark | case | peer | variant | metric | median | min – max | n | "
        "× baseline | throughput | note |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for r in rows:
        if r["status"] == OK:
            span = f"{format_value(r['min'], r['unit'])} – {format_value(r['max'], r['unit'])}"
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            cells = [
                format_value(r["median"], r["unit"]),
                span,
                str(r["repetitions"]),
                "1 (baseline)" if r["baseline"] else ratio,
                _throughput(r),
                r["note"],
            ]
        else:
            cells = ["", "", "", "", "", r["note"]]
        cells = [r["benchmark"], r["case"], r["peer"], r["variant"], r["metric"], *cells]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_document(doc: Mapping[str, Any]) -> str:
    """benchmarks.md: a line on the machine and the run, then the table."""
    env = doc["environment"]
    size = "smoke sizes" if doc["smoke"] else "full sizes"
    versions = [f"jax {env['jax']}"] + [
        f"{k} {v}" for k, v in env["peers"].items() if v and k != "keras_backend"
    ]
    head = (
        f"Measured {doc['finished_at'] or doc['started_at']} on {env['cpu_model']} "
        f"({env['usable_cores']} usable of {env['cpu_count']} cores; JAX backend "
        f"{env['backend']}), {', '.join(versions)}; {size}, {doc['repetitions']} repetitions "
        "after a warm-up "
        "(median, min – max); × baseline = median / the baseline's median (above 1: slower)."
    )
    return f"{head}\n\n{markdown_table(doc['rows'])}"


def document(
    rows: Sequence[Mapping[str, Any]],
    *,
    benchmarks: Sequence[str],
    smoke: bool,
    peers: Sequence[str],
    repetitions: int,
    started_at: str,
    status: str,
) -> dict[str, Any]:
    """The benchmarks.json document (ratios added to the rows)."""
    return results.to_jsonable(
        {
            "benchmarks": list(benchmarks),
            "status": status,
            "smoke": smoke,
            "peers": list(peers),
            "repetitions": repetitions,
            "started_at": started_at,
            "finished_at": results.now_iso() if status != "running" else None,
            "environment": environment(),
            "rows": add_ratios(dict(r) for r in rows),
        }
    )


def write(doc: Mapping[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Writes out_dir/benchmarks.json and out_dir/benchmarks.md, each atomically."""
    out_dir = Path(out_dir)
    json_path = results.write_json_atomic(out_dir / "benchmarks.json", doc)
    md_path = results.write_text_atomic(out_dir / "benchmarks.md", markdown_document(doc))
    return json_path, md_path


# ------------------------------------------------------------------------------------------------
# Command line.

RunFn = Callable[[bool, Sequence[str], int], list[dict[str, Any]]]


def parser(prog: str, doc: str | None, default_out: str) -> argparse.ArgumentParser:
    """The options every benchmark CLI has: --smoke, --peers, --repetitions, --out."""
    p = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes (seconds; what CI runs)")
    p.add_argument(
        "--peers", nargs="+", choices=PEERS, default=list(PEERS), help="frameworks to run"
    )
    p.add_argument(
        "--repetitions",
        type=_positive_int,
        default=3,
        help="timed repetitions of every measurement after the warm-up (default 3, >= 1)",
    )
    p.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    return p


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1 (anything else is a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def check_repetitions(repetitions: int) -> None:
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")


def run_and_write(
    runs: Mapping[str, RunFn],
    *,
    smoke: bool,
    peers: Sequence[str],
    repetitions: int,
    out_dir: str | os.PathLike,
) -> tuple[dict[str, Any], bool]:
    """Runs every benchmark in `runs` in turn, rewriting the output after each; a benchmark
    that raises leaves a 'failed' row and the others still run. Returns (document, all ok)."""
    check_repetitions(repetitions)
    started, rows, ok = results.now_iso(), [], True
    common = dict(smoke=smoke, peers=peers, repetitions=repetitions, started_at=started)
    for name, run in runs.items():
        print(f"== {name} ({'smoke' if smoke else 'full'})", flush=True)
        try:
            rows.extend(run(smoke, peers, repetitions))
        except Exception as exc:
            ok = False
            traceback.print_exc()
            rows.append(skipped(name, "jaxsched", "", error_message(exc), status=FAILED))
        write(document(rows, benchmarks=list(runs), status="running", **common), out_dir)
    doc = document(rows, benchmarks=list(runs), status="done", **common)
    write(doc, out_dir)
    return doc, ok


def main_for(name: str, run: RunFn, doc: str | None, argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.<name>`: runs one benchmark, writes and prints its table."""
    args = parser(f"python -m benchmarks.{name}", doc, f"{DEFAULT_OUT}/{name}").parse_args(argv)
    result, ok = run_and_write(
        {name: run},
        smoke=args.smoke,
        peers=args.peers,
        repetitions=args.repetitions,
        out_dir=args.out,
    )
    print(markdown_table(result["rows"]))
    print(f"wrote {args.out}/benchmarks.json and benchmarks.md")
    return 0 if ok else 1
