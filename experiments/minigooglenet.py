"""MiniGoogLeNet on Fashion-MNIST: LR range test, cyclical learning rate, growing batch.

    python -m experiments.minigooglenet            # the notebook's protocol (hours on a CPU)
    python -m experiments.minigooglenet --smoke    # under a minute

The course notebook's study, in three parts run in order (SGD with momentum 0.9, images
pixel-mean-subtracted and resized 28 -> 32, the test split evaluated after every epoch):

1. lr_find: the one-run LR range test (1e-9 to 10 over 5 epochs' worth of updates at batch
   64) gives lr_min / lr_max (skipped when --lr-min and --lr-max are given);
2. clr: cyclic_lr(lr_min, lr_max, mode="exp_range") at batch 64 for 60 epochs, with the
   notebook's shift-and-flip augmentation;
3. batch_growth: the rate fixed at lr_max while the batch doubles every epoch from 32 to 16384
   (large batches accumulated over micro-batches): training loss per batch size and final
   test accuracy, to compare generalization with part 2.

Writes <out>/results.json after each part (an interrupted run resumes; finished parts are
reused only for the identical configuration) and figures: lr_sweep.png, epochs.png (both
training runs per epoch) and loss_vs_batch.png.
"""

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from experiments import common
from experiments.configs.minigooglenet import DEFAULT, PREPROCESSING, SMOKE, Config
from jaxsched import (
    augment,
    batch_schedules,
    data,
    find,
    loop,
    optimizers,
    plots,
    range_test,
    results,
    schedules,
    validation,
)
from jaxsched.models import MiniGoogLeNet

NAME = "minigooglenet"


def run(
    config: Config,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Runs the parts of the study not finished yet; returns the results document (also in
    workdir/results.json)."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    done = recorder.begin(datasets=[config.dataset], fresh=fresh, key="part")
    train_ds, test_ds = data.load_splits(
        config.dataset,
        config.data_dir,
        PREPROCESSING,
        config.train_examples,
        config.eval_examples,
        config.seed,
    )
    common.check_batch_sizes("batch_size", [config.batch_size], train_ds)
    common.check_batch_sizes("b_end", [config.b_end], train_ds)
    model = MiniGoogLeNet(num_classes=data.NUM_CLASSES[config.dataset], width=config.width)
    updates_per_epoch = data.num_batches(len(train_ds.labels), config.batch_size)
    augment_fn = (
        augment.make("shift_flip", height_range=0.1, width_range=0.1, fill="nearest")
        if config.augment
        else None
    )
    found: dict[str, Any] = {}

    def sgd(lr: Any) -> Any:
        return optimizers.make("sgd", lr, momentum=config.momentum)

    def bounds() -> dict[str, Any]:
        if "bounds" not in found:
            found["bounds"] = _bounds(config, found.get("lr_find") or done.get("lr_find"))
        return found["bounds"]

    def fit(description: str, lr: Any, **kwargs: Any) -> results.History:
        _, history = loop.fit(
            model,
            sgd(lr),
            train_ds,
            epochs=kwargs.pop("epochs"),
            seed=config.seed,
            eval_data=test_ds,
            augment=augment_fn,
            max_loss=config.divergence_loss,
            devices=devices,
            quiet=quiet,
            description=description,
            **kwargs,
        )
        return history

    def train_one(part: str) -> dict[str, Any]:
        if part == "lr_find":
            found["lr_find"] = _lr_find(config, model, sgd, train_ds, devices, quiet)
            return found["lr_find"]
        lr = bounds()
        if part == "clr":
            schedule = schedules.cyclic_lr(
                lr["lr_min"],
                lr["lr_max"],
                step_size_up=max(1, round(config.step_epochs * updates_per_epoch)),
                mode="exp_range",
                gamma=config.gamma,
            )
            history = fit("clr", schedule, epochs=config.epochs, batch_size=config.batch_size)
            return {"part": part, "final": _final(history), "history": history.to_dict()}
        sizes = config.batch_sizes()
        boundaries = [config.epochs_per_size * i for i in range(1, len(sizes))]
        history = fit(
            "batch_growth",
            lr["lr_max"],
            epochs=config.epochs_per_size * len(sizes),
            batch_size=batch_schedules.batch_size_steps(
                config.b_start, boundaries, num_examples=len(train_ds.labels)
            ),
            batch_size_unit="epoch",
            max_device_batch=config.max_device_batch,
        )
        final = {**_final(history), "by_batch_size": _by_batch_size(history.to_dict())}
        return {"part": part, "final": final, "history": history.to_dict()}

    runs = common.run_each(config.parts(), done, recorder, train_one, _row, {})
    summary = _summary(runs, bounds(), config, updates_per_epoch)
    doc = recorder.write(runs, summary, results.DONE)
    _figures(doc["runs"], recorder.workdir)
    return doc


def _lr_find(config: Config, model, sgd, train_ds, devices, quiet) -> dict[str, Any]:
    """Part 1: the one-run sweep (`find.sweep_history`) read as `find.lr_find` reads it."""
    num_steps = config.sweep_num_steps()
    history = find.sweep_history(
        model,
        sgd,
        train_ds,
        lr_start=config.sweep_start,
        lr_end=config.sweep_end,
        num_steps=num_steps,
        factor=config.sweep_factor,
        batch_size=config.batch_size,
        seed=config.seed,
        max_loss=config.divergence_loss,
        devices=devices,
        quiet=quiet,
    )
    rates, losses = history.steps["learning_rate"], history.steps["loss"]
    try:
        summary = range_test.suggest_from_sweep(
            rates, losses, beta=range_test.sweep_beta(num_steps), factor=config.sweep_factor
        )
    except ValueError as error:
        summary = {"lr_min": None, "lr_max": None, "error": str(error)}
        message = f"no suggestion: {error}"
    else:
        message = (
            f"lr_min={summary['lr_min']:.3g}, lr_max={summary['lr_max']:.3g} from "
            f"{summary['used_steps']} usable updates of {len(losses)}"
        )
    final = {
        "status": history.status,
        "lr_min": summary["lr_min"],
        "lr_max": summary["lr_max"],
        "message": message,
        "updates": len(losses),
        "planned_updates": num_steps,
        "wall_time_s": history.wall_time_s,
    }
    return {"part": "lr_find", "final": final, "summary": summary, "history": history.to_dict()}


def _bounds(config: Config, lr_run: dict[str, Any] | None) -> dict[str, Any]:
    """{"lr_min", "lr_max", "source"}: the config's when given, else the sweep's; a sweep
    without a suggestion stops the study with a usage error naming --lr-min / --lr-max."""
    if config.lr_min is not None:
        return {"lr_min": config.lr_min, "lr_max": config.lr_max, "source": "config"}
    final = lr_run["final"]
    lr_min, lr_max = final["lr_min"], final["lr_max"]
    if not (lr_min and lr_max and 0 < lr_min < lr_max):
        raise validation.ConfigError(
            ("lr_min", "lr_max"),
            f"must be given: the LR sweep (recorded in results.json) gave {final['message']}. "
            "Set them (with --fresh or another --out), or change the sweep's settings",
        )
    return {"lr_min": lr_min, "lr_max": lr_max, "source": "lr_find"}


def _final(history: results.History) -> dict[str, Any]:
    val = history.epochs["val_accuracy"]
    times = history.epochs["train_time_s"]
    return {
        "status": history.status,
        "epochs": len(history.epochs["epoch"]),
        "updates": len(history.steps["loss"]),
        "final_train_loss": history.final("train_loss"),
        "final_val_accuracy": history.final("val_accuracy"),
        "best_val_accuracy": max(val) if val else None,
        # The first epoch includes compilation; later ones are steady state.
        "seconds_per_epoch": float(np.mean(times[1:] or times or [math.nan])),
        "compile_time_s": history.compile_time_s,
        "wall_time_s": history.wall_time_s,
    }


def _by_batch_size(history: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean training loss over the updates made at each batch size of the growing batch."""
    steps = history["steps"]
    sizes = np.asarray(steps["batch_size"])
    loss = np.asarray([math.nan if v is None else v for v in steps["loss"]], float)
    table = []
    for size in np.unique(sizes):
        at = loss[sizes == size]
        finite = at[np.isfinite(at)]
        table.append(
            {
                "batch_size": int(size),
                "updates": int(len(at)),
                "mean_train_loss": float(finite.mean()) if len(finite) else None,
            }
        )
    return table


def _summary(
    runs: list[dict[str, Any]], bounds: dict[str, Any], config: Config, updates_per_epoch: int
) -> dict[str, Any]:
    by_part = {r["part"]: r["final"] for r in runs}
    keys = ("final_val_accuracy", "best_val_accuracy", "seconds_per_epoch", "epochs", "status")
    clr, growth = by_part["clr"], by_part["batch_growth"]
    return {
        "lr_min": bounds["lr_min"],
        "lr_max": bounds["lr_max"],
        "lr_source": bounds["source"],
        "lr_find_message": by_part.get("lr_find", {}).get("message"),
        "updates_per_epoch": updates_per_epoch,
        "sweep_updates": config.sweep_num_steps() if "lr_find" in by_part else None,
        "clr": {k: clr[k] for k in keys},
        "batch_growth": {
            "learning_rate": bounds["lr_max"],
            **{k: growth[k] for k in keys},
            "table": growth["by_batch_size"],
        },
    }


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    if run["part"] == "lr_find":
        return f"lr_find        {f['status']:<9} {f['updates']} updates  {f['message']}"
    text = (
        f"{run['part']:<14} {f['status']:<9} {f['epochs']:>3} epochs  train loss "
        f"{common.fmt(f['final_train_loss'])}  test acc {common.fmt(f['final_val_accuracy'])}"
        f" (best {common.fmt(f['best_val_accuracy'])})  {common.fmt(f['seconds_per_epoch'], '.1f')}"
        " s/epoch"
    )
    if run["part"] == "batch_growth":
        text += "\n" + "\n".join(
            f"  batch {r['batch_size']:<6} {r['updates']:>5} updates  mean train loss "
            f"{common.fmt(r['mean_train_loss'])}"
            for r in f["by_batch_size"]
        )
    return text


def _figures(runs: list[dict[str, Any]], workdir: Path) -> None:
    by_part = {r["part"]: r for r in runs}
    if "lr_find" in by_part:
        plots.save(
            plots.lr_sweep(by_part["lr_find"], by_part["lr_find"]["summary"]),
            workdir / "lr_sweep.png",
        )
    labelled = [{**by_part[p], "label": p} for p in ("clr", "batch_growth")]
    plots.save(plots.epoch_curves(labelled, eval_name="test"), workdir / "epochs.png")
    plots.save(plots.loss_by_batch_size(by_part["batch_growth"]), workdir / "loss_vs_batch.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-examples", type=int, help="training subset (default: all)")
    parser.add_argument("--eval-examples", type=int, help="test subset (default: all)")
    parser.add_argument("--width", type=float, help="filter-count multiplier (1.0: the book's)")
    parser.add_argument("--batch-size", type=int, help="batch of the LR sweep and the CLR run")
    parser.add_argument("--lr-min", type=float, help="lower rate bound (with --lr-max: no sweep)")
    parser.add_argument("--lr-max", type=float, help="upper rate bound (with --lr-min: no sweep)")
    parser.add_argument("--sweep-epochs", type=int, help="epochs' worth of sweep updates")
    parser.add_argument("--sweep-steps", type=int, help="sweep updates (replaces --sweep-epochs)")
    parser.add_argument("--epochs", type=int, help="epochs of the CLR run")
    parser.add_argument("--step-epochs", type=float, help="CLR half cycle, in epochs")
    parser.add_argument("--gamma", type=float, help="exp_range amplitude decay per update")
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="shift-and-flip augmentation in parts 2 and 3",
    )
    parser.add_argument("--b-start", type=int, help="first batch size of the growing batch")
    parser.add_argument("--b-end", type=int, help="last batch size of the growing batch")
    parser.add_argument("--epochs-per-size", type=int, help="epochs at each batch size")
    parser.add_argument(
        "--max-device-batch", type=int, help="larger updates are accumulated over micro-batches"
    )


def report(doc: dict[str, Any], workdir: Path) -> None:
    s = doc["summary"]
    clr, growth = s["clr"], s["batch_growth"]
    print(
        f"\nlr_min = {s['lr_min']:.3g}, lr_max = {s['lr_max']:.3g} (from {s['lr_source']})\n"
        f"clr:          final test acc {common.fmt(clr['final_val_accuracy'])}, best "
        f"{common.fmt(clr['best_val_accuracy'])}\n"
        f"batch_growth: final test acc {common.fmt(growth['final_val_accuracy'])} "
        f"(batch {growth['table'][0]['batch_size']} -> {growth['table'][-1]['batch_size']} "
        f"at lr {growth['learning_rate']:.3g})\n"
        f"wrote {workdir}/results.json and figures"
    )


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
    )


if __name__ == "__main__":
    common.exit_with(main())
