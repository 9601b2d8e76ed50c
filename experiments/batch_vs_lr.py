"""Increase the batch size instead of decaying the learning rate (Smith et al. 2018).

    python -m experiments.batch_vs_lr            # lr fixed at lr_max, batch 32 -> 16384
    python -m experiments.batch_vs_lr --smoke

LeNet-5 on Fashion-MNIST, SGD. The learning rate stays at lr_max while the batch doubles every
`double_every_epochs` epochs from b_start to b_end (accumulated over micro-batches above
max_device_batch); the comparison is the cyclical-learning-rate run at batch b_start for the
same epochs. Writes <out>/results.json and figures: training loss against batch size, and
loss / accuracy per epoch and per update for both runs.
"""

import argparse
import math
from pathlib import Path
from typing import Any

from experiments import _batch, _lr_range, common
from experiments.configs.batch_size import BATCH_VS_LR, BATCH_VS_LR_SMOKE, BatchVsLrConfig
from jaxsched import batch_schedules, plots, results, schedules

NAME = "batch_vs_lr"
RUNS = ("increase_batch", "clr")


def run(
    config: BatchVsLrConfig,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Trains the growing-batch run and the CLR run; returns the results document."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    done = recorder.begin(
        datasets=[config.dataset],
        inputs=common.bounds_inputs(config),
        fresh=fresh,
        key="policy",
    )
    train_ds, val_ds, test_ds, model = common.lenet_setup(config, validation=True)
    common.check_batch_sizes("b_start", [config.b_start], train_ds)
    lr_bounds = _lr_range.lr_bounds(
        config, recorder.workdir, quiet=quiet, fresh=fresh, devices=devices
    )
    n = len(train_ds.labels)
    doublings = int(math.log2(config.b_end // config.b_start))
    boundaries = [config.double_every_epochs * i for i in range(1, doublings + 1)]
    settings = {
        "increase_batch": dict(
            lr=config.lr if config.lr is not None else lr_bounds["lr_max"],
            batch_size=batch_schedules.batch_size_steps(config.b_start, boundaries, num_examples=n),
            batch_size_unit="epoch",
        ),
        "clr": dict(
            lr=schedules.cyclic_lr(
                lr_bounds["lr_min"],
                lr_bounds["lr_max"],
                max(1, round(config.step_size_epochs * n / config.b_start)),
            ),
            batch_size=config.b_start,
        ),
    }

    def train_one(name: str) -> dict[str, Any]:
        kwargs = dict(settings[name])
        return _batch.train_policy(
            name,
            kwargs.pop("lr"),
            model,
            (train_ds, val_ds, test_ds),
            config,
            quiet=quiet,
            devices=devices,
            **kwargs,
        )

    runs = common.run_each(
        RUNS, done, recorder, train_one, _batch.policy_row, {"lr_bounds": lr_bounds}
    )
    summary = {
        "lr_bounds": lr_bounds,
        "batch_boundaries_epochs": boundaries,
        "table": [{"policy": r["policy"], **r["final"]} for r in runs],
    }
    doc = recorder.write(runs, summary, results.DONE)
    _batch.save_comparison_figures(doc["runs"], "policy", recorder.workdir)
    plots.save(plots.loss_by_batch_size(doc["runs"][0]), recorder.workdir / "loss_vs_batch.png")
    return doc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _lr_range.add_bounds_arguments(parser)
    parser.add_argument("--lr", type=float, help="the growing-batch run's rate (default lr_max)")
    parser.add_argument("--epochs", type=int, help="epochs of each run")
    parser.add_argument("--b-start", type=int, help="first batch size")
    parser.add_argument("--b-end", type=int, help="largest batch size")
    parser.add_argument("--double-every-epochs", type=int, help="epochs between doublings")
    parser.add_argument("--step-size-epochs", type=float, help="CLR half cycle, in epochs")


def report(doc: dict[str, Any], workdir: Path) -> None:
    del doc
    print(f"wrote {workdir}/results.json and figures")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=BATCH_VS_LR,
        smoke=BATCH_VS_LR_SMOKE,
        add_arguments=add_arguments,
        report=report,
    )


if __name__ == "__main__":
    common.exit_with(main())
