"""Shared by the batch-size experiments (LeNet-5, plain SGD): the batch-size sweep, and
training and reporting one batch-size policy.

Shared runner code, not a runner: `experiments.batch_size_sweep` is the sweep's command line,
and `experiments.cyclic_batch_size` runs the same sweep into <out>/batch_size_sweep when it is
given neither b_min / b_max nor an earlier results.json; `cyclic_batch_size` and `batch_vs_lr`
train their policies with `train_policy`.
"""

from pathlib import Path
from typing import Any

from experiments import _lr_range, common
from experiments.configs.batch_size import SweepConfig
from jaxsched import loop, optimizers, plots, range_test, results

SWEEP_NAME = "batch_size_sweep"


def run_sweep(
    config: SweepConfig,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """The batch-size sweep: trains one fresh model per batch size at a fixed learning rate
    (`config.lr`, else lr_min of `_lr_range.lr_bounds`) and detects b_min / b_max
    (`config.bound_rule`: `range_test.suggest_batch_bounds` or `relative_drop_batch_bounds`);
    returns the results document (also in
    workdir/results.json, rewritten after every batch size: resumable) and draws
    workdir/batch_size_sweep.png."""
    recorder = common.Recorder(SWEEP_NAME, config, Path(workdir), devices)
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
        bounds = _lr_range.lr_bounds(
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
        config.batch_sizes, done, recorder, train_one, _sweep_row, {"learning_rate": lr}
    )
    sizes, accuracies = (
        [r["batch_size"] for r in runs],
        [r["final"]["train_accuracy"] for r in runs],
    )
    if config.bound_rule == "relative_drop":
        bounds = range_test.relative_drop_batch_bounds(sizes, accuracies, drop=config.relative_drop)
    else:
        bounds = range_test.suggest_batch_bounds(sizes, accuracies, tolerance=config.tolerance)
    summary = {
        "learning_rate": lr,
        "learning_rate_source": lr_source,
        **bounds,
        "table": [{"batch_size": r["batch_size"], **r["final"]} for r in runs],
    }
    doc = recorder.write(runs, summary, results.DONE)
    plots.save(plots.batch_size_sweep(doc["runs"], summary), recorder.workdir / f"{SWEEP_NAME}.png")
    return doc


def _sweep_row(run: dict[str, Any]) -> str:
    f = run["final"]
    return (
        f"batch {run['batch_size']:<6} {f['status']:<9} train loss "
        f"{common.fmt(f['train_loss'])}  acc {common.fmt(f['train_accuracy'])}  test acc "
        f"{common.fmt(f['val_accuracy'])}  {f['updates']} updates, "
        f"{f['train_time_s']:.1f} s"
    )


def final_metrics(history: results.History) -> dict[str, Any]:
    """A sweep run's final metrics (the last epoch's; "val_*" on the test split)."""
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


def train_policy(
    name: str,
    lr: Any,
    model: Any,
    splits: tuple,
    config: Any,
    *,
    quiet: bool,
    devices: int | None = None,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """Trains one policy (SGD at `lr`, a rate or a schedule, with `config.momentum` if it has
    one) for `config.epochs` epochs and tests the last epoch's weights; `fit_kwargs` carry the
    batch size (schedule) settings."""
    train_ds, val_ds, test_ds = splits
    momentum = getattr(config, "momentum", 0.0)
    history, test = common.train_and_test(
        model,
        optimizers.make("sgd", lr, **({"momentum": momentum} if momentum else {})),
        train_ds,
        val_ds,
        test_ds,
        epochs=config.epochs,
        max_device_batch=config.max_device_batch,
        seed=config.seed,
        max_loss=config.divergence_loss,
        devices=devices,
        quiet=quiet,
        description=name,
        **fit_kwargs,
    )
    return {"policy": name, "final": policy_summary(history, test), "history": history.to_dict()}


def policy_summary(history: results.History, test: dict[str, float]) -> dict[str, Any]:
    val = history.epochs["val_accuracy"]
    return {
        "status": history.status,
        "epochs": len(history.epochs["epoch"]),
        "updates": len(history.steps["loss"]),
        "final_train_loss": history.final("train_loss"),
        "best_val_accuracy": max(val) if val else None,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "batch_sizes": sorted(set(history.steps["batch_size"])),
        "num_compilations": history.num_compilations,
        "compile_time_s": history.compile_time_s,
        "train_time_s": float(sum(history.epochs["train_time_s"])),
    }


def policy_row(run: dict[str, Any]) -> str:
    label, f = run["policy"], run["final"]
    return (
        f"{label:<15} {f['status']:<9} {f['updates']:>6} updates  best val acc "
        f"{common.fmt(f['best_val_accuracy'])}  test acc {common.fmt(f['test_accuracy'])}  "
        f"{f['num_compilations']} compilations ({f['compile_time_s']:.1f} s)"
    )


def save_comparison_figures(runs: list[dict[str, Any]], key: str, workdir: Path) -> None:
    labelled = [{**r, "label": r[key]} for r in runs]
    plots.save(plots.epoch_curves(labelled), workdir / "epochs.png")
    plots.save(plots.epoch_curves(labelled, x="updates"), workdir / "updates.png")
    plots.save(
        plots.step_curves(labelled, "batch_size", smooth=1, logy=True), workdir / "batch_size.png"
    )
    plots.save(plots.step_curves(labelled, "loss", logy=True), workdir / "train_loss_steps.png")
