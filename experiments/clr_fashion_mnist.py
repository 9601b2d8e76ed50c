"""Cyclical learning rates vs constant rates: LeNet-5 on Fashion-MNIST, SGD, batch 64.

    python -m experiments.clr_fashion_mnist            # all policies, early stopping
    python -m experiments.clr_fashion_mnist --smoke    # seconds

lr_min / lr_max come from an LR range test (run here as a one-run sweep, or read from a previous
`lr_range_test` results.json with --bounds-from), then each policy trains from the same
initialization until the validation loss stops improving. Writes <out>/results.json (after each
policy: an interrupted run resumes) and figures: learning rate, training loss and accuracy per
update, and train/validation loss and accuracy per epoch, all policies on one plot.
"""

import argparse
from pathlib import Path
from typing import Any

from experiments import _lr_range, common
from experiments.configs.clr_fashion_mnist import DEFAULT, POLICIES, PROTOCOLS, SMOKE, Config
from jaxsched import data, loop, optimizers, plots, results, schedules

NAME = "clr_fashion_mnist"
KERAS_SGD_LR = 0.01


def run(
    config: Config,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Trains every policy and returns the results document (also in workdir/results.json)."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    done = recorder.begin(
        datasets=[config.dataset],
        inputs=common.bounds_inputs(config),
        fresh=fresh,
        key="policy",
    )
    train_ds, val_ds, test_ds, model = common.lenet_setup(config, validation=True)
    common.check_batch_sizes("batch_size", [config.batch_size], train_ds)
    bounds = _lr_range.lr_bounds(
        config, recorder.workdir, quiet=quiet, fresh=fresh, devices=devices
    )
    steps_per_epoch = data.num_batches(len(train_ds.labels), config.batch_size)

    def train_one(policy: str) -> dict[str, Any]:
        history, test = common.train_and_test(
            model,
            optimizers.make(
                config.optimizer,
                make_schedule(policy, bounds, config, steps_per_epoch),
                preset=config.preset,
            ),
            train_ds,
            val_ds,
            test_ds,
            epochs=config.max_epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            restore_best="val_loss" if config.restore_best else None,
            stop_when=loop.early_stopping(config.patience),
            max_loss=config.divergence_loss,
            devices=devices,
            quiet=quiet,
            description=policy,
        )
        return {
            "policy": policy,
            "final": _final(history, test, config),
            "history": history.to_dict(),
        }

    runs = common.run_each(config.policies, done, recorder, train_one, _row, {"bounds": bounds})
    summary = {
        "bounds": bounds,
        "steps_per_epoch": steps_per_epoch,
        "target_accuracy": config.target_accuracy,
        "table": [{"policy": r["policy"], **r["final"]} for r in runs],
    }
    doc = recorder.write(runs, summary, results.DONE)
    _figures(doc["runs"], recorder.workdir)
    return doc


def make_schedule(policy: str, bounds: dict[str, Any], config: Config, steps_per_epoch: int):
    """The learning rate of `policy`: a float, or a schedule of the update count."""
    lr_min, lr_max = bounds["lr_min"], bounds["lr_max"]
    step_size = max(1, round(config.step_size_epochs * steps_per_epoch))
    if policy == "constant_max":
        return lr_max
    if policy == "constant_keras":
        return KERAS_SGD_LR
    if policy == "clr_paper":
        return schedules.cyclic_lr(*config.clr_paper_bounds, step_size)
    return schedules.cyclic_lr(lr_min, lr_max, step_size, mode=policy, gamma=config.gamma)


def _final(history: results.History, test: dict[str, float], config: Config) -> dict[str, Any]:
    val_acc = history.epochs["val_accuracy"]
    to_target = loop.time_to_accuracy(history, config.target_accuracy)
    return {
        "status": history.status,
        "epochs": len(history.epochs["epoch"]),
        "best_val_accuracy": max(val_acc) if val_acc else None,
        "tested_epoch": history.best_epoch or len(val_acc),
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "updates_to_target": to_target["updates"],
        "seconds_to_target": to_target["seconds"],
        "wall_time_s": history.wall_time_s,
    }


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    best = "-" if f["best_val_accuracy"] is None else f"{f['best_val_accuracy']:.4f}"
    target = f["updates_to_target"] if f["updates_to_target"] is not None else "never"
    return (
        f"{run['policy']:<15} {f['status']:<9} {f['epochs']:>3} epochs  best val acc {best}"
        f"  test acc {f['test_accuracy']:.4f}  updates to target {target}"
    )


def _figures(runs: list[dict[str, Any]], workdir: Path) -> None:
    labelled = [{**r, "label": r["policy"]} for r in runs]
    plots.save(
        plots.step_curves(labelled, "learning_rate", smooth=1, logy=True),
        workdir / "learning_rate.png",
    )
    plots.save(plots.step_curves(labelled, "loss", logy=True), workdir / "train_loss_steps.png")
    plots.save(plots.step_curves(labelled, "accuracy"), workdir / "train_accuracy_steps.png")
    plots.save(plots.epoch_curves(labelled), workdir / "epochs.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _lr_range.add_bounds_arguments(parser)
    parser.add_argument("--policies", nargs="+", choices=POLICIES, help="policies to train")
    parser.add_argument("--max-epochs", type=int, help="cap on epochs per policy")
    parser.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    parser.add_argument("--step-size-epochs", type=float, help="half a cycle, in epochs")
    parser.add_argument(
        "--optimizer", choices=optimizers.available(), help="under the schedule (default sgd)"
    )
    parser.add_argument(
        "--no-restore-best",
        dest="restore_best",
        action="store_const",
        const=False,
        default=None,
        help="test the last epoch's weights, not the best validation epoch's",
    )
    parser.add_argument(
        "--validation-examples",
        type=int,
        help="held out for validation (0: validate on the test split, as the notebooks)",
    )


def report(doc: dict[str, Any], workdir: Path) -> None:
    print(f"\nwrote {workdir}/results.json and figures ({len(doc['runs'])} policies)")


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
        protocols=PROTOCOLS,
    )


if __name__ == "__main__":
    common.exit_with(main())
