"""Plumbing shared by the experiment runners: data preparation, CLI pieces, resumable results."""

import argparse
import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxsched import data, loop, parallel, results, train
from jaxsched.models import LeNet5

PREPROCESSING = ("scale", "pixel_mean", "standardize")


def load_splits(
    dataset: str,
    data_dir: str | None,
    preprocessing: str,
    train_examples: int | None,
    eval_examples: int | None,
    seed: int,
    image_size: int | None = None,
) -> tuple[data.Dataset, data.Dataset]:
    """Train and test splits as float32 images [N, H, W, C] preprocessed with train statistics.

    `train_examples` / `eval_examples` take a seeded random subset (None keeps the whole split);
    `image_size` zero-pads smaller images to that side (28 -> 32 for 32x32 nets).
    """
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
    train = _subset(data.load(dataset, "train", data_dir), train_examples, seed)
    test = _subset(data.load(dataset, "test", data_dir), eval_examples, seed + 1)
    if image_size is not None and image_size != train.images.shape[1]:
        train = data.Dataset(data.resize(train.images, image_size, "pad"), train.labels)
        test = data.Dataset(data.resize(test.images, image_size, "pad"), test.labels)
    x_train, x_test = data.to_float(train.images), data.to_float(test.images)
    if preprocessing == "pixel_mean":
        x_train, x_test = data.subtract_pixel_mean(x_train, x_test)
    elif preprocessing == "standardize":
        x_train, x_test = data.standardize_per_channel(x_train, x_test)
    return data.Dataset(x_train, train.labels), data.Dataset(x_test, test.labels)


def resolve_dataset(name: str, data_dir: str | None, preferred: str = "cifar10") -> str:
    """ "auto" -> `preferred` (the course's dataset) where it can be loaded, else
    "fashion_mnist" (real data, always installable offline), saying so; others unchanged."""
    if name != "auto":
        return name
    try:
        data.load(preferred, "test", data_dir)
        return preferred
    except data.DatasetNotFoundError:
        print(
            f"{preferred} is not available here; running on Fashion-MNIST (real data) instead. "
            f"See README 'Data' to add {preferred}.",
            flush=True,
        )
        return "fashion_mnist"


def _subset(ds: data.Dataset, n: int | None, seed: int) -> data.Dataset:
    if n is None or n >= len(ds.labels):
        return ds
    if n < 1:
        raise ValueError(f"the number of examples must be >= 1, got {n}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds.labels))[:n])
    return data.Dataset(ds.images[idx], ds.labels[idx])


class ExperimentParser(argparse.ArgumentParser):
    """An experiment's CLI. `parse_args` also starts the device setup the flags ask for:
    `jax.distributed` (multi-host flags or JAX_COORDINATOR_ADDRESS) before anything touches
    JAX's devices, then checks `--devices` against the devices JAX sees."""

    single_device: str | None = None  # why this experiment runs on one device, if it does

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


def output_dir(args: argparse.Namespace, default_out: str) -> Path:
    return Path(args.out or (f"{default_out}_smoke" if args.smoke else default_out))


def completed_runs(
    workdir: Path, config: Any, key: str, devices: int | None = None
) -> dict[Any, Mapping[str, Any]]:
    """Runs already finished under `workdir` for the same config and device count, by
    `run[key]`.

    A rerun after an interrupt (or a crash) picks up where the last atomic write left off.
    Returns {} when there is no results.json or it was made with another config or on another
    number of devices (`environment.devices`, 1 in files written before it was recorded).
    """
    path = workdir / "results.json"
    if not path.exists():
        return {}
    previous = results.read_json(path)
    if previous.get("config") != results.to_jsonable(config):
        return {}
    if previous.get("environment", {}).get("devices", 1) != (devices or 1):
        return {}
    return {
        run[key]: run
        for run in previous.get("runs", [])
        if run.get("history", {}).get("status") in (results.DONE, results.DIVERGED, results.STOPPED)
    }


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
    """Writes an experiment's results.json atomically, as often as there is something new."""

    name: str
    config: Any
    workdir: Path
    devices: int | None = None  # data-parallel devices the runs train on (None: one)
    started_at: str = dataclasses.field(default_factory=results.now_iso)
    start: float = dataclasses.field(default_factory=time.perf_counter)

    def write(self, runs: list, summary: Mapping[str, Any], status: str) -> dict[str, Any]:
        """The results document, with `environment.devices` (the training devices) and
        `environment.process_count` next to the device facts; process 0 writes it."""
        doc = results.results_document(
            self.name,
            self.config,
            runs,
            summary,
            status=status,
            wall_time_s=time.perf_counter() - self.start,
            started_at=self.started_at,
        )
        doc["environment"]["devices"] = self.devices or 1
        doc["environment"]["process_count"] = jax.process_count()
        if parallel.is_writer():  # multi-process runs: process 0 alone writes
            results.write_json_atomic(self.workdir / "results.json", doc)
        return doc


def lr_bounds(
    config: Any, workdir: Path, *, quiet: bool, devices: int | None = None
) -> dict[str, Any]:
    """{"lr_min", "lr_max", "source"} for a LeNet-5 experiment's `config`.

    From `config.lr_min` / `config.lr_max` when both are set; else from the summary of the
    lr_range_test results.json at `config.bounds_from`; else (bounds_from == "sweep") by running
    the one-run range test with the experiment's data and model settings into
    workdir/lr_range_test (reused when it is already there), on `devices`.
    """
    from experiments import lr_range_test  # noqa: PLC0415 (lr_range_test imports this module)
    from experiments.configs import lr_range_test as range_configs  # noqa: PLC0415

    if config.lr_min is not None and config.lr_max is not None:
        bounds = {"lr_min": config.lr_min, "lr_max": config.lr_max, "source": "config"}
    elif config.bounds_from == "sweep":
        sweep = dataclasses.replace(
            range_configs.DEFAULT,
            method="sweep",
            dataset=config.dataset,
            data_dir=config.data_dir,
            batch_size=config.batch_size,
            seed=config.seed,
            input_norm=config.input_norm,
            hidden_batchnorm=config.hidden_batchnorm,
            preprocessing=config.preprocessing,
            train_examples=config.train_examples,
            eval_examples=config.test_examples,
            sweep_steps=config.sweep_steps,
        )
        summary = lr_range_test.run(sweep, workdir / "lr_range_test", quiet=quiet, devices=devices)[
            "summary"
        ]
        bounds = {
            "lr_min": summary["lr_min"],
            "lr_max": summary["lr_max"],
            "source": str(workdir / "lr_range_test" / "results.json"),
        }
    else:
        summary = results.read_json(config.bounds_from)["summary"]
        bounds = {
            "lr_min": summary["lr_min"],
            "lr_max": summary["lr_max"],
            "source": config.bounds_from,
        }
    if not (bounds["lr_min"] and bounds["lr_max"] and 0 < bounds["lr_min"] < bounds["lr_max"]):
        raise ValueError(f"need 0 < lr_min < lr_max, got {bounds}")
    print(
        f"lr_min = {bounds['lr_min']:.3g}, lr_max = {bounds['lr_max']:.3g} "
        f"(from {bounds['source']})"
    )
    return bounds


def split_validation(ds: data.Dataset, n: int, seed: int) -> tuple[data.Dataset, data.Dataset]:
    """Holds out a seeded random `n` examples of `ds` as a validation set."""
    if not 0 < n < len(ds.labels):
        raise ValueError(f"validation_examples must be in [1, {len(ds.labels) - 1}], got {n}")
    perm = np.random.default_rng([seed, 7]).permutation(len(ds.labels))
    keep, held = np.sort(perm[n:]), np.sort(perm[:n])
    return (
        data.Dataset(ds.images[keep], ds.labels[keep]),
        data.Dataset(ds.images[held], ds.labels[held]),
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

    With `validation`, `config.validation_examples` are held out of the training split.
    """
    train_ds, test_ds = load_splits(
        config.dataset,
        config.data_dir,
        config.preprocessing,
        config.train_examples,
        config.test_examples,
        config.seed,
    )
    val_ds = None
    if validation:
        train_ds, val_ds = split_validation(train_ds, config.validation_examples, config.seed)
    model = LeNet5(
        num_classes=int(train_ds.labels.max()) + 1,
        input_norm=config.input_norm,
        hidden_batchnorm=config.hidden_batchnorm,
    )
    return train_ds, val_ds, test_ds, model


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
