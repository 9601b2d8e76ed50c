"""Plumbing shared by the experiment runners: data preparation, CLI pieces, resumable results."""

import argparse
import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxsched import data, results

PREPROCESSING = ("scale", "pixel_mean", "standardize")


def load_splits(
    dataset: str,
    data_dir: str | None,
    preprocessing: str,
    train_examples: int | None,
    eval_examples: int | None,
    seed: int,
) -> tuple[data.Dataset, data.Dataset]:
    """Train and test splits as float32 images [N, H, W, C] preprocessed with train statistics.

    `train_examples` / `eval_examples` take a seeded random subset (None keeps the whole split).
    """
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
    train = _subset(data.load(dataset, "train", data_dir), train_examples, seed)
    test = _subset(data.load(dataset, "test", data_dir), eval_examples, seed + 1)
    x_train, x_test = data.to_float(train.images), data.to_float(test.images)
    if preprocessing == "pixel_mean":
        x_train, x_test = data.subtract_pixel_mean(x_train, x_test)
    elif preprocessing == "standardize":
        x_train, x_test = data.standardize_per_channel(x_train, x_test)
    return data.Dataset(x_train, train.labels), data.Dataset(x_test, test.labels)


def _subset(ds: data.Dataset, n: int | None, seed: int) -> data.Dataset:
    if n is None or n >= len(ds.labels):
        return ds
    if n < 1:
        raise ValueError(f"the number of examples must be >= 1, got {n}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds.labels))[:n])
    return data.Dataset(ds.images[idx], ds.labels[idx])


def add_common_args(parser: argparse.ArgumentParser, default_out: str) -> None:
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


def output_dir(args: argparse.Namespace, default_out: str) -> Path:
    return Path(args.out or (f"{default_out}_smoke" if args.smoke else default_out))


def completed_runs(workdir: Path, config: Any, key: str) -> dict[Any, Mapping[str, Any]]:
    """Runs already finished under `workdir` for the same config, by `run[key]`.

    A rerun after an interrupt (or a crash) picks up where the last atomic write left off.
    Returns {} when there is no results.json or it was made with another config.
    """
    path = workdir / "results.json"
    if not path.exists():
        return {}
    previous = results.read_json(path)
    if previous.get("config") != results.to_jsonable(config):
        return {}
    return {
        run[key]: run
        for run in previous.get("runs", [])
        if run.get("history", {}).get("status") in (results.DONE, results.DIVERGED)
    }


def config_overrides(args: argparse.Namespace, names: Mapping[str, str]) -> dict[str, Any]:
    """{config field: value} for each CLI argument in `names` (arg -> field) that was given."""
    return {
        field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg) is not None
    }


def replace(config: Any, **overrides: Any) -> Any:
    return dataclasses.replace(config, **overrides) if overrides else config


@dataclasses.dataclass
class Recorder:
    """Writes an experiment's results.json atomically, as often as there is something new."""

    name: str
    config: Any
    workdir: Path
    started_at: str = dataclasses.field(default_factory=results.now_iso)
    start: float = dataclasses.field(default_factory=time.perf_counter)

    def write(self, runs: list, summary: Mapping[str, Any], status: str) -> dict[str, Any]:
        doc = results.results_document(
            self.name,
            self.config,
            runs,
            summary,
            status=status,
            wall_time_s=time.perf_counter() - self.start,
            started_at=self.started_at,
        )
        results.write_json_atomic(self.workdir / "results.json", doc)
        return doc
