"""Plumbing shared by the experiment runners: the command line, resumable results, training and
testing helpers. Data preparation is in `jaxsched.data` (`load_splits`, `split_validation`)."""

import argparse
import dataclasses
import inspect
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

from jaxsched import (
    checkpoints,
    compile_cache,
    data,
    loop,
    parallel,
    results,
    runs,
    train,
    validation,
)
from jaxsched.models import LeNet5


class ExperimentParser(argparse.ArgumentParser):
    """An experiment's CLI. `parse_args` also starts the device setup the flags ask for:
    `jax.distributed` (multi-host flags or JAX_COORDINATOR_ADDRESS) before anything touches
    JAX's devices, then checks `--devices` against the devices JAX sees."""

    single_device: str | None = None  # why this experiment runs on one device, if it does

    def error(self, message: str):  # noqa: ANN201 (argparse's own)
        """A usage error: one line on stderr, exit status 2 (argparse prints the usage too)."""
        hint = "" if "\n" in message else " (see --help)"
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 (argparse's own)
        parsed = super().parse_args(args, namespace)
        multi_host = [
            flag
            for flag, value in (
                ("--coordinator-address", parsed.coordinator_address),
                ("--num-processes", parsed.num_processes),
                ("--process-id", parsed.process_id),
                ("--distributed", parsed.distributed or None),
            )
            if value is not None
        ]
        if self.single_device is not None:
            if parsed.devices not in (None, 1):
                self.error(
                    f"argument --devices: must be 1 for {self.prog} ({self.single_device}), "
                    f"got {parsed.devices}"
                )
            if multi_host:
                self.error(f"{multi_host[0]}: {self.prog} runs in one process on one device")
            return parsed
        if multi_host or os.environ.get("JAX_COORDINATOR_ADDRESS"):
            try:
                parallel.initialize(
                    parsed.coordinator_address, parsed.num_processes, parsed.process_id
                )
            except ValueError as error:
                self.error(str(error))
            if parsed.devices is None:  # one process per host: train on every process's devices
                parsed.devices = jax.device_count()
        if parsed.devices is not None:
            try:
                parallel.make_mesh(parsed.devices)
            except ValueError as error:
                self.error(f"argument --devices: {error}")
        return parsed


def experiment_parser(
    name: str, doc: str | None, *, single_device: str | None = None
) -> ExperimentParser:
    """The CLI of `python -m experiments.<name>` with the options every experiment has.

    Data parallelism: `--devices N` trains on the first N devices (`loop.fit(devices=N)`;
    default: one device, or every device of every process in a multi-host run), and
    `--coordinator-address` / `--num-processes` / `--process-id` / `--distributed` start
    `jax.distributed` (`parallel.initialize`) when the arguments are parsed. `single_device`:
    the reason an experiment that does not train through `loop.fit` runs on one device; its
    `--devices` then accepts only 1 and the multi-host flags are refused, saying why.
    """
    default_out = f"runs/{name}"
    parser = ExperimentParser(
        prog=f"python -m experiments.{name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.single_device = single_device
    parser.add_argument(
        "--smoke", action="store_true", help="tiny configuration that runs in seconds (tests, CI)"
    )
    parser.add_argument(
        "--out",
        default=None,
        help=f"output directory (default {default_out}, or {default_out}_smoke)",
    )
    parser.add_argument("--seed", type=int, default=None, help="PRNG seed")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory with the dataset's standard files (else "
        f"${data.DATA_DIR_ENV}, Debian's package, tfds)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore completed runs in an existing results.json"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not read or write JAX's persistent compilation cache (default folder "
        f"~/.cache/jaxsched/xla; ${compile_cache.ENV} sets another, or 'off')",
    )
    group = parser.add_argument_group(
        "devices and hosts",
        "data-parallel training (jaxsched.parallel); on a CPU, simulate N devices with "
        "XLA_FLAGS=--xla_force_host_platform_device_count=N"
        + (f". Not for this experiment: {single_device}" if single_device else ""),
    )
    group.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="train data-parallel on the first N devices; every batch size must be a multiple "
        "of N (default: one device; all devices of all processes in a multi-host run)",
    )
    group.add_argument(
        "--coordinator-address",
        help="host:port of process 0: start jax.distributed (else $JAX_COORDINATOR_ADDRESS)",
    )
    group.add_argument(
        "--num-processes", type=int, help="processes in the run (else $JAX_NUM_PROCESSES)"
    )
    group.add_argument(
        "--process-id", type=int, help="this process, 0 .. N-1 (else $JAX_PROCESS_ID)"
    )
    group.add_argument(
        "--distributed",
        action="store_true",
        help="start jax.distributed from the cluster's own variables (SLURM, Open MPI)",
    )
    return parser


DEFAULT_PROTOCOL = "jaxsched"  # `--protocol`'s default: the runner's DEFAULT / SMOKE configs

# Errors in what the user asked for, reported by `main` as usage errors (exit 2), no traceback.
INPUT_ERRORS = (
    runs.RunConflictError,
    runs.ResultsFileError,
    runs.OutputError,
    data.DatasetNotFoundError,
    data.DataFileError,
    checkpoints.IdentityMismatchError,
)


def main(
    argv: Sequence[str] | None,
    *,
    name: str,
    doc: str | None,
    run: Callable[..., dict[str, Any]],
    default: Any,
    smoke: Any,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    report: Callable[[dict[str, Any], Path], None],
    renames: Mapping[str, str] | None = None,
    single_device: str | None = None,
    default_out: Callable[[Any], str] | None = None,
    adjust_args: Callable[[argparse.Namespace], None] | None = None,
    protocols: Mapping[str, tuple[Any, Any]] | None = None,
) -> int:
    """The command line of every `python -m experiments.<name>`: parse, check, run, report.

    Flags come from `add_arguments` plus the shared ones (`experiment_parser`); the config is
    `default` (or `smoke` with --smoke) with the flags given replacing their fields
    (`config_from_args`; `renames` maps a field to its flag's name). Every bad value stops
    before any work with a one-line usage error naming the flag (exit 2): the config checks
    itself when made (jaxsched.validation), the output folder is created and tested for
    writing, and the runner's own input errors (data, finished runs of another identity) are
    reported the same way. Ctrl-C ends with status 130, what finished already written. JAX's
    persistent compilation cache is on (`compile_cache.enable`) unless --no-compile-cache.
    `report(doc, workdir)` prints the summary.

    `protocols`: other named configurations, {name: (full, smoke)}, chosen with
    `--protocol NAME` (e.g. "course": a course notebook's exact protocol); the default,
    "jaxsched", is (`default`, `smoke`). Flags given replace fields of the chosen one.
    """
    parser = experiment_parser(name, doc, single_device=single_device)
    add_arguments(parser)
    if protocols:
        parser.add_argument(
            "--protocol",
            choices=(DEFAULT_PROTOCOL, *protocols),
            default=DEFAULT_PROTOCOL,
            help="a named configuration: 'jaxsched' (the default) or a course notebook's exact "
            "protocol (experiments/configs; docs/course.md); with --smoke, its smoke size",
        )
    args = parser.parse_args(argv)
    if adjust_args is not None:
        adjust_args(args)
    flag = flag_namer(parser, renames)
    protocol = getattr(args, "protocol", DEFAULT_PROTOCOL)
    if protocol != DEFAULT_PROTOCOL:
        default, smoke = protocols[protocol]
    try:
        config = config_from_args(args, default, smoke, renames)
    except validation.ConfigError as error:
        parser.error(error.describe(flag))
    workdir = output_dir(args, default_out(config) if default_out else f"runs/{name}")
    try:
        runs.prepare_output(workdir)
    except runs.OutputError as error:
        parser.error(f"argument --out: {error}")
    if not args.no_compile_cache:
        compile_cache.enable()
    accepted = inspect.signature(run).parameters
    options = {"quiet": args.quiet, "fresh": args.fresh, "devices": args.devices}
    try:
        doc = run(config, workdir, **{k: v for k, v in options.items() if k in accepted})
    except validation.ConfigError as error:
        parser.error(error.describe(flag))
    except INPUT_ERRORS as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished runs are kept in {workdir}; run the same command again "
            "to resume",
            file=sys.stderr,
            flush=True,
        )
        return 130
    report(doc, workdir)
    return 0


def exit_with(status: int) -> None:
    """Ends `python -m experiments.<name>` with `status`. After Ctrl-C (130) it leaves at once
    (`os._exit`, streams flushed): interpreter teardown while XLA still compiles in another
    thread can crash with a segmentation fault, and everything finished is already on disk
    (results and checkpoints are written synchronously and atomically)."""
    if status == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def flag_namer(
    parser: argparse.ArgumentParser, renames: Mapping[str, str] | None = None
) -> Callable[[str], str]:
    """config field -> its flag ("--lr-min"), for error messages; a field without a flag (a
    preset's value) is named as itself."""
    renames = renames or {}
    flags = {
        action.dest: next((o for o in action.option_strings if o.startswith("--")), None)
        for action in parser._actions  # noqa: SLF001 (argparse has no public accessor)
    }
    return lambda field: flags.get(renames.get(field, field)) or field


def output_dir(args: argparse.Namespace, default_out: str) -> Path:
    return Path(args.out or (f"{default_out}_smoke" if args.smoke else default_out))


def config_from_args(
    args: argparse.Namespace, default: Any, smoke: Any, renames: Mapping[str, str] | None = None
) -> Any:
    """`smoke` (with --smoke) or `default`, with every config field that has a CLI argument of
    the same name (or `renames[field]`) given on the command line replaced (lists -> tuples)."""
    renames = renames or {}
    overrides = {}
    for field in dataclasses.fields(default):
        value = getattr(args, renames.get(field.name, field.name), None)
        if value is not None:
            overrides[field.name] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(smoke if args.smoke else default, **overrides)


def fmt(value: Any, spec: str = ".4f") -> str:
    """`value` formatted, or "-" for None / NaN (a diverged run's metrics)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


@dataclasses.dataclass
class Recorder:
    """Owns an experiment's output folder: checks it can be written before any work, decides
    (`begin`) which finished runs it may reuse, and writes results.json atomically, as often
    as there is something new, with the run's identity (jaxsched.runs).

    Finished work of another identity (another config, other data files, another device
    count or version) is never reused or overwritten: `begin` refuses, saying what differs,
    or with `fresh` moves it aside with a timestamp.
    """

    name: str
    config: Any
    workdir: Path
    devices: int | None = None  # data-parallel devices the runs train on (None: one)
    started_at: str = dataclasses.field(default_factory=results.now_iso)
    start: float = dataclasses.field(default_factory=time.perf_counter)
    identity: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None  # results.json of the same identity, if any

    def __post_init__(self) -> None:
        self.workdir = runs.prepare_output(self.workdir)

    @property
    def results_path(self) -> Path:
        return self.workdir / "results.json"

    @property
    def checkpoint_root(self) -> Path:
        return self.workdir / "checkpoints"

    def checkpoint_identity(self, key: str) -> dict[str, str]:
        """What a run's checkpoints are stamped with (`loop.fit(checkpoint_identity=...)`)."""
        return {"run": self.identity["digest"], "key": str(key)}

    def begin(
        self,
        *,
        datasets: Sequence[str] = (),
        inputs: Sequence[str | os.PathLike] = (),
        fresh: bool = False,
        key: str | None = None,
    ) -> dict[Any, Mapping[str, Any]]:
        """Fixes the run identity from the config, the `datasets` it reads (their files'
        hashes, `data.describe`), other `inputs` files (an earlier results.json it takes its
        bounds from) and the devices; returns the finished runs of an earlier results.json of
        the same identity by `run[key]` ({} without `key`).

        Raises RunConflictError when results.json or a checkpoint folder belongs to another
        identity (or cannot be read), unless `fresh`: they are then set aside (never deleted),
        as they are with `fresh` whatever their identity.
        """
        data_dir = getattr(self.config, "data_dir", None)
        sources = [_describe(name, data_dir) for name in datasets]
        existing = [p for p in inputs if p and Path(p).is_file()]
        if existing:
            sources.append(runs.files_record(existing))
        self.identity = runs.identity(self.config, sources, self.devices)
        if not parallel.is_writer():
            return self._completed(self._read_previous(), key) if not fresh else {}
        conflicts, previous = [], None
        try:
            previous = runs.read_results(self.results_path)
        except runs.ResultsFileError as error:
            conflicts.append(str(error))
        if previous is not None:
            stored = previous.get("identity")
            if (stored or {}).get("digest") != self.identity["digest"]:
                diff = "; ".join(runs.differences(stored, self.identity))
                conflicts.append(f"{self.results_path} was made by another run ({diff})")
        if self.checkpoint_root.is_dir():
            for folder in sorted(p for p in self.checkpoint_root.iterdir() if p.is_dir()):
                if not any(folder.iterdir()):
                    continue  # created, but cut before its first checkpoint
                try:
                    stamp = checkpoints.read_identity(folder)
                except ValueError:
                    stamp = None
                if not isinstance(stamp, dict) or stamp.get("run") != self.identity["digest"]:
                    conflicts.append(f"checkpoints in {folder} belong to another run")
                    break
        if fresh:
            for path in (self.results_path, self.checkpoint_root):
                if path.exists():
                    print(f"--fresh: set {path} aside as {runs.set_aside(path)}", flush=True)
            return {}
        if previous is not None and not conflicts:
            self.previous = previous
        if conflicts:
            raise runs.RunConflictError(
                f"{conflicts[0]}. Nothing was overwritten: rerun with --fresh to move the old "
                f"results aside (kept with a timestamp), or choose another --out"
            )
        return self._completed(previous, key)

    @property
    def finished_document(self) -> dict[str, Any] | None:
        """The complete results.json of this very run (same identity), if there is one."""
        if self.previous is not None and self.previous.get("status") == results.DONE:
            return self.previous
        return None

    def _read_previous(self) -> dict[str, Any] | None:
        try:
            return runs.read_results(self.results_path)
        except runs.ResultsFileError:
            return None

    def _completed(self, previous: Mapping[str, Any] | None, key: str | None) -> dict:
        if previous is None or key is None:
            return {}
        if (previous.get("identity") or {}).get("digest") != self.identity["digest"]:
            return {}
        return {
            run[key]: run
            for run in previous.get("runs", [])
            if run.get("history", {}).get("status") in FINISHED
        }

    def write(self, runs_: list, summary: Mapping[str, Any], status: str) -> dict[str, Any]:
        """The results document, with the run identity, `environment.devices` (the training
        devices) and `environment.process_count` next to the device facts; process 0 writes
        it."""
        if self.identity is None:
            raise RuntimeError("Recorder.begin() must fix the run identity before write()")
        doc = results.results_document(
            self.name,
            self.config,
            runs_,
            summary,
            status=status,
            wall_time_s=time.perf_counter() - self.start,
            started_at=self.started_at,
        )
        doc["identity"] = self.identity
        doc["environment"]["devices"] = self.devices or 1
        doc["environment"]["process_count"] = jax.process_count()
        if parallel.is_writer():  # multi-process runs: process 0 alone writes
            results.write_json_atomic(self.results_path, doc)
        return doc


FINISHED = (results.DONE, results.DIVERGED, results.STOPPED)


def _describe(name: str, data_dir: str | None) -> dict[str, Any]:
    """`data.describe`, after letting tfds download a dataset it has not prepared yet."""
    try:
        return data.describe(name, data_dir)
    except data.DatasetIncompleteError:
        raise
    except data.DatasetNotFoundError:
        data.load(name, "test", data_dir)  # downloads where it can, else says what is missing
        return data.describe(name, data_dir)


def bounds_inputs(config: Any) -> list[str]:
    """The results.json files a LeNet-5 experiment takes its bounds from (`bounds_from`,
    `batch_bounds_from`), part of its run identity."""
    paths = []
    if getattr(config, "lr_min", None) is None and config.bounds_from != "sweep":
        paths.append(config.bounds_from)
    if getattr(config, "b_min", None) is None and getattr(config, "batch_bounds_from", None):
        paths.append(config.batch_bounds_from)
    return paths


def bounds_file_summary(path: str, field: str, keys: Sequence[str]) -> Mapping[str, Any]:
    """The summary of the results.json at `path` (a `*_from` config field), checked to hold
    `keys`: a ConfigError naming `field` otherwise."""
    try:
        doc = runs.read_results(path)
    except runs.ResultsFileError as error:
        raise validation.ConfigError(
            field, f"must name a readable results.json ({error})"
        ) from None
    if doc is None:
        raise validation.ConfigError(field, "must name an existing results.json", repr(path))
    summary = doc.get("summary") or {}
    missing = [k for k in keys if k not in summary]
    if missing:
        raise validation.ConfigError(
            field, f"must name a results.json whose summary has {', '.join(keys)}", repr(path)
        )
    return summary


def check_batch_sizes(field: str, sizes: Sequence[int], train_ds: data.Dataset) -> None:
    """Raises ConfigError naming `field` when a batch size exceeds the training examples
    actually loaded (after any validation hold-out): checked before the first run trains."""
    available = len(train_ds.labels)
    too_big = [b for b in sizes if b > available]
    if too_big:
        raise validation.ConfigError(
            field, f"must be <= {available} (the training examples available)", too_big[0]
        )


def train_and_test(
    model: Any,
    tx: Any,
    train_ds: data.Dataset,
    val_ds: data.Dataset,
    test_ds: data.Dataset,
    devices: int | None = None,
    **fit_kwargs: Any,
) -> tuple[results.History, dict[str, float]]:
    """`loop.fit` with per-epoch validation, then one evaluation on the test split of the
    weights `fit` returns: the last epoch's, or with `restore_best="val_loss"` the best one's.
    `devices`: train and test data-parallel on the first N devices."""
    state, history = loop.fit(model, tx, train_ds, eval_data=val_ds, devices=devices, **fit_kwargs)
    test = loop.evaluate(
        train.CompiledStep(train.make_eval_step(model)),
        state,
        test_ds.images,
        test_ds.labels,
        mesh=mesh(devices),
    )
    return history, test


def mesh(devices: int | None) -> "jax.sharding.Mesh | None":
    """The data-parallel mesh of `--devices N` (None for the default single device)."""
    return None if devices is None else parallel.make_mesh(devices)


def lenet_setup(
    config: Any, *, validation: bool
) -> tuple[data.Dataset, data.Dataset | None, data.Dataset, LeNet5]:
    """(train, validation or None, test, model) for a `LeNetExperiment` config.

    With `validation`, `config.validation_examples` are held out of the training split; with
    `validation_examples` 0 nothing is, and the validation set is the test split (the course
    notebooks' `validation_data`: their protocol, not a clean model selection).
    """
    train_ds, test_ds = data.load_splits(
        config.dataset,
        config.data_dir,
        config.preprocessing,
        config.train_examples,
        config.test_examples,
        config.seed,
    )
    val_ds = None
    if validation and config.validation_examples == 0:
        val_ds = test_ds
    elif validation:
        train_ds, val_ds = data.split_validation(train_ds, config.validation_examples, config.seed)
    return train_ds, val_ds, test_ds, lenet_model(config)


def lenet_model(config: Any) -> LeNet5:
    """The LeNet-5 variant of a LeNet-5 experiment's config (input_norm, hidden_batchnorm,
    first_pool_stride, pool_batchnorm)."""
    return LeNet5(
        num_classes=data.NUM_CLASSES[config.dataset],
        input_norm=config.input_norm,
        hidden_batchnorm=config.hidden_batchnorm,
        first_pool_stride=config.first_pool_stride,
        pool_batchnorm=config.pool_batchnorm,
    )


def run_each(
    keys: Sequence[Any],
    done: Mapping[Any, Mapping[str, Any]],
    recorder: Recorder,
    train_one: Callable[[Any], dict[str, Any]],
    row: Callable[[dict[str, Any]], str],
    partial_summary: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Runs `train_one(key)` for each key not in `done` (completed runs are reused), printing
    `row(run)` and rewriting results.json after each, so an interrupt loses at most one run."""
    runs: list[dict[str, Any]] = []
    for key in keys:
        if key in done:
            runs.append(dict(done[key]))
            print(
                f"{key}: reusing the completed run in {recorder.workdir / 'results.json'}",
                flush=True,
            )
            continue
        runs.append(train_one(key))
        print(row(runs[-1]), flush=True)
        recorder.write(runs, partial_summary, "running")
    return runs
