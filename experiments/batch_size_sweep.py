"""Batch-size sweep: LeNet-5 on Fashion-MNIST at a fixed learning rate, one batch size at a time.

    python -m experiments.batch_size_sweep            # 16, 32, ..., 8192; 5 epochs each
    python -m experiments.batch_size_sweep --smoke    # seconds

The rate is lr_min from an LR range test (or --lr). Batches above --max-device-batch are
accumulated over micro-batches (optax.MultiSteps). Plots final training loss and accuracy
against log2(batch size) and detects b_min / b_max with `jaxsched.range_test
.suggest_batch_bounds`. Writes <out>/results.json (after every batch size: resumable) and
<out>/batch_size_sweep.png.
"""

import argparse
from pathlib import Path
from typing import Any

from experiments import common
from experiments.configs.batch_size import SWEEP, SWEEP_SMOKE, SweepConfig
from jaxsched import loop, optimizers, plots, range_test, results

NAME = "batch_size_sweep"


def run(
    config: SweepConfig,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Trains one fresh model per batch size; returns the results document."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    done = recorder.begin(
        datasets=[config.dataset],
        inputs=common.bounds_inputs(config),
        fresh=fresh,
        key="batch_size",
    )
    train_ds, _, test_ds, model = common.lenet_setup(config, validation=False)
    common.check_batch_sizes("batch_sizes", config.batch_sizes, train_ds)
    if config.lr is not None:
        lr, lr_source = config.lr, "config"
    else:
        bounds = common.lr_bounds(
            config, recorder.workdir, quiet=quiet, fresh=fresh, devices=devices
        )
        lr, lr_source = bounds["lr_min"], bounds["source"]

    def train_one(size: int) -> dict[str, Any]:
        _, history = loop.fit(
            model,
            optimizers.make("sgd", lr),
            train_ds,
            epochs=config.epochs,
            batch_size=size,
            max_device_batch=config.max_device_batch,
            seed=config.seed,
            eval_data=test_ds,
            max_loss=config.divergence_loss,
            devices=devices,
            quiet=quiet,
            description=f"batch {size}",
        )
        return {"batch_size": size, "final": final_metrics(history), "history": history.to_dict()}

    runs = common.run_each(
        config.batch_sizes, done, recorder, train_one, _row, {"learning_rate": lr}
    )
    bounds = range_test.suggest_batch_bounds(
        [r["batch_size"] for r in runs],
        [r["final"]["train_accuracy"] for r in runs],
        tolerance=config.tolerance,
    )
    summary = {
        "learning_rate": lr,
        "learning_rate_source": lr_source,
        **bounds,
        "table": [{"batch_size": r["batch_size"], **r["final"]} for r in runs],
    }
    doc = recorder.write(runs, summary, results.DONE)
    plots.save(plots.batch_size_sweep(doc["runs"], summary), recorder.workdir / f"{NAME}.png")
    return doc


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    return (
        f"batch {run['batch_size']:<6} {f['status']:<9} train loss "
        f"{common.fmt(f['train_loss'])}  acc {common.fmt(f['train_accuracy'])}  test acc "
        f"{common.fmt(f['val_accuracy'])}  {f['updates']} updates, "
        f"{f['train_time_s']:.1f} s"
    )


def final_metrics(history: results.History) -> dict[str, Any]:
    return {
        "status": history.status,
        "train_loss": history.final("train_loss"),
        "train_accuracy": history.final("train_accuracy"),
        "val_loss": history.final("val_loss"),
        "val_accuracy": history.final("val_accuracy"),
        "updates": len(history.steps["loss"]),
        "train_time_s": float(sum(history.epochs["train_time_s"])),
        "num_compilations": history.num_compilations,
        "compile_time_s": history.compile_time_s,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="batch sizes to try")
    parser.add_argument("--epochs", type=int, help="epochs per batch size")
    parser.add_argument("--lr", type=float, help="fixed learning rate (default: lr_min)")
    common.add_bounds_arguments(parser)
    parser.add_argument("--max-device-batch", type=int, help="accumulate above this size")


def report(doc: dict[str, Any], workdir: Path) -> None:
    s = doc["summary"]
    print(f"\nb_min = {s['b_min']}  b_max = {s['b_max']}  (lr {s['learning_rate']:.3g})")
    if not s.get("bracketed", True):
        print(f"note: {s['message']}")
    print(f"wrote {workdir}/results.json and {workdir}/{NAME}.png")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=SWEEP,
        smoke=SWEEP_SMOKE,
        add_arguments=add_arguments,
        report=report,
    )


if __name__ == "__main__":
    common.exit_with(main())
