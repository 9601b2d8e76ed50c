"""Cyclic batch-size policies at a fixed learning rate vs a fixed batch and a cyclical LR.

    python -m experiments.cyclic_batch_size --batch-bounds-from runs/batch_size_sweep/results.json
    python -m experiments.cyclic_batch_size --b-min 64 --b-max 512
    python -m experiments.cyclic_batch_size --smoke

LeNet-5 on Fashion-MNIST, SGD. b_min / b_max are given, read from a batch_size_sweep results.json,
or (neither) detected by running the sweep first into <out>/batch_size_sweep. Every policy (see
experiments/configs/batch_size.py) trains from the same initialization for the same epochs.
Writes <out>/results.json (per policy: resumable) and figures: loss and accuracy per epoch and
per update, and the batch size per update, all policies on one plot.
"""

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

from experiments import _batch, _lr_range, common
from experiments.configs.batch_size import (
    CYCLIC,
    CYCLIC_POLICIES,
    CYCLIC_PROTOCOLS,
    CYCLIC_SMOKE,
    CyclicConfig,
)
from experiments.configs.batch_size import SWEEP as SWEEP_DEFAULT
from jaxsched import batch_schedules, results, schedules, validation

NAME = "cyclic_batch_size"


def batch_bounds(
    config: CyclicConfig,
    workdir: Path,
    *,
    quiet: bool,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """{"b_min", "b_max", "source", "learning_rate"}: given, read from a sweep's results.json,
    or swept now (on `devices`); "learning_rate" is the rate the sweep ran at (None when
    given)."""
    if config.b_min is not None and config.b_max is not None:
        return {
            "b_min": config.b_min,
            "b_max": config.b_max,
            "source": "config",
            "learning_rate": None,
        }
    if config.batch_bounds_from is not None:
        summary = common.bounds_file_summary(
            config.batch_bounds_from, "batch_bounds_from", ("b_min", "b_max")
        )
        source = config.batch_bounds_from
    else:
        sweep = dataclasses.replace(
            SWEEP_DEFAULT,
            **{
                f.name: getattr(config, f.name)
                for f in dataclasses.fields(SWEEP_DEFAULT)
                if hasattr(config, f.name)
            },
        )
        summary = _batch.run_sweep(
            sweep, workdir / _batch.SWEEP_NAME, quiet=quiet, fresh=fresh, devices=devices
        )["summary"]
        source = str(workdir / _batch.SWEEP_NAME / "results.json")
    if not summary.get("bracketed", True):
        print(f"note: the batch-size sweep did not bracket a range: {summary.get('message')}")
    b_min, b_max = summary["b_min"], summary["b_max"]
    if not (isinstance(b_min, int) and isinstance(b_max, int) and 1 <= b_min <= b_max):
        raise validation.ConfigError(
            "batch_bounds_from",
            f"must give integers 1 <= b_min <= b_max ({source})",
            f"b_min={b_min}, b_max={b_max}",
        )
    return {
        "b_min": summary["b_min"],
        "b_max": summary["b_max"],
        "source": source,
        "learning_rate": summary.get("learning_rate"),
    }


def policy_settings(
    policy: str,
    config: CyclicConfig,
    bounds: dict[str, Any],
    lr_bounds: dict[str, Any],
    num_examples: int,
) -> dict[str, Any]:
    """fit() keyword arguments (batch_size, batch_size_unit) and the learning rate of `policy`.

    The batch-size policies train at `config.lr`, else at the rate of the batch-size sweep that
    found b_min / b_max (the bounds mean something only at that rate), else at lr_min (the
    sweep's default rate).
    """
    b_min, b_max = bounds["b_min"], bounds["b_max"]
    lr = config.lr or bounds.get("learning_rate") or lr_bounds["lr_min"]
    mean_batch = math.sqrt(b_min * b_max)
    step = max(1, round(config.step_size_epochs * num_examples / mean_batch))
    levels = int(math.log2(b_max // b_min)) + 1
    step = max(step, levels)
    cap = 2 ** int(math.log2(num_examples))
    if policy == "fixed":
        return {"batch_size": b_min, "lr": lr}
    if policy == "cyclic":
        return {"batch_size": batch_schedules.cyclic_batch_size(b_min, b_max, step), "lr": lr}
    if policy == "growing_cyclic":
        limit = min(8 * b_max, cap)
        step = max(step, int(math.log2(limit // b_min)) + 1)
        return {
            "batch_size": batch_schedules.growing_cyclic_batch_size(b_min, b_max, step, limit),
            "lr": lr,
        }
    if policy == "epoch_cycle":
        return {
            "batch_size": batch_schedules.epoch_batch_cycle(b_min, levels),
            "batch_size_unit": "epoch",
            "lr": lr,
        }
    if policy == "increase":
        every = config.increase_every_epochs
        boundaries = [every * i for i in range(1, config.epochs // every + 1)]
        boundaries = [b for b in boundaries if b_min * 2 ** (boundaries.index(b) + 1) <= cap]
        return {
            "batch_size": batch_schedules.batch_size_steps(b_min, boundaries),
            "batch_size_unit": "epoch",
            "lr": lr,
        }
    clr_step = max(1, round(config.step_size_epochs * num_examples / b_min))
    return {
        "batch_size": b_min,
        "lr": schedules.cyclic_lr(lr_bounds["lr_min"], lr_bounds["lr_max"], clr_step),
    }


def run(
    config: CyclicConfig,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Trains every policy; returns the results document."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    done = recorder.begin(
        datasets=[config.dataset],
        inputs=common.bounds_inputs(config),
        fresh=fresh,
        key="policy",
    )
    train_ds, val_ds, test_ds, model = common.lenet_setup(config, validation=True)
    common.check_batch_sizes("b_max", [b for b in (config.b_min, config.b_max) if b], train_ds)
    # lr_min / lr_max are needed by the "clr" policy, and as the fixed rate when neither `lr`
    # nor the batch-size sweep gives one.
    needs_lr_bounds = "clr" in config.policies or config.lr is None
    lr_bounds = (
        _lr_range.lr_bounds(config, recorder.workdir, quiet=quiet, fresh=fresh, devices=devices)
        if needs_lr_bounds
        else None
    )
    bounds = batch_bounds(config, recorder.workdir, quiet=quiet, fresh=fresh, devices=devices)
    settings = {}  # every policy's schedule made before the first trains: errors come first
    for policy in config.policies:
        try:
            settings[policy] = policy_settings(
                policy, config, bounds, lr_bounds, len(train_ds.labels)
            )
        except ValueError as error:
            raise validation.ConfigError(
                ("b_min", "b_max"), f"must suit policy {policy!r} ({error})"
            ) from None

    def train_one(policy: str) -> dict[str, Any]:
        fit_settings = dict(settings[policy])
        return _batch.train_policy(
            policy,
            fit_settings.pop("lr"),
            model,
            (train_ds, val_ds, test_ds),
            config,
            quiet=quiet,
            devices=devices,
            strategy=config.strategy,
            **fit_settings,
        )

    runs = common.run_each(
        config.policies,
        done,
        recorder,
        train_one,
        _batch.policy_row,
        {"lr_bounds": lr_bounds, "batch_bounds": bounds},
    )
    summary = {
        "lr_bounds": lr_bounds,
        "batch_bounds": bounds,
        "table": [{"policy": r["policy"], **r["final"]} for r in runs],
    }
    doc = recorder.write(runs, summary, results.DONE)
    _batch.save_comparison_figures(doc["runs"], "policy", recorder.workdir)
    return doc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--b-min", type=int, help="smallest batch (with --b-max)")
    parser.add_argument("--b-max", type=int, help="largest batch (with --b-min)")
    parser.add_argument("--batch-bounds-from", help="a batch_size_sweep results.json")
    _lr_range.add_bounds_arguments(parser)
    parser.add_argument("--policies", nargs="+", choices=CYCLIC_POLICIES)
    parser.add_argument("--epochs", type=int, help="epochs per policy")
    parser.add_argument("--step-size-epochs", type=float, help="half cycle, in epochs")
    parser.add_argument("--strategy", choices=("shapes", "accumulate"))
    parser.add_argument("--lr", type=float, help="the batch-size policies' fixed rate")
    parser.add_argument("--momentum", type=float, help="SGD momentum (default 0)")
    parser.add_argument(
        "--max-device-batch", type=int, help="accumulate micro-batches above this size"
    )
    parser.add_argument(
        "--validation-examples",
        type=int,
        help="held out for validation (0: validate on the test split, as the notebooks)",
    )


def report(doc: dict[str, Any], workdir: Path) -> None:
    del doc
    print(f"wrote {workdir}/results.json and figures")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=CYCLIC,
        smoke=CYCLIC_SMOKE,
        add_arguments=add_arguments,
        report=report,
        protocols=CYCLIC_PROTOCOLS,
    )


if __name__ == "__main__":
    common.exit_with(main())
