"""The LR range test of LeNet-5 with plain SGD (grid or one-run sweep), and the learning-rate
bounds it gives the LeNet-5 experiments.

Shared runner code, not a runner: `experiments.lr_range_test` is the test's command line, and
`lr_bounds` runs the same test (method "sweep") into <out>/lr_range_test when an experiment
needs lr_min / lr_max and is given neither them nor an earlier results.json.
"""

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from experiments import common
from experiments.configs.lr_range_test import DEFAULT, Config
from jaxsched import data, find, loop, optimizers, plots, range_test, results, sweep, validation

NAME = "lr_range_test"


def run(
    config: Config,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Runs the range test and returns the results document (also in workdir/results.json)."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    done = recorder.begin(datasets=[config.dataset], fresh=fresh, key="learning_rate")
    train, test = data.load_splits(
        config.dataset,
        config.data_dir,
        config.preprocessing,
        config.train_examples,
        config.eval_examples,
        config.seed,
    )
    common.check_batch_sizes("batch_size", [config.batch_size], train)
    model = common.lenet_model(config)
    if config.method == "grid":
        return _grid(config, recorder, model, train, test, done, quiet)
    return _sweep(config, recorder, model, train, done, quiet)


def _grid(config, recorder, model, train, test, done, quiet) -> dict[str, Any]:
    def train_one(lr: float) -> dict[str, Any]:
        _, history = loop.fit(
            model,
            optimizers.make(config.optimizer, lr),
            train,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            eval_data=test,
            eval_batch_size=config.eval_batch_size,
            max_loss=config.divergence_loss,
            devices=recorder.devices,
            quiet=quiet,
            description=f"lr={lr:g}",
        )
        return {"learning_rate": lr, "final": _final(history), "history": history.to_dict()}

    strategy = config.grid_strategy if (recorder.devices or 1) == 1 else "loop"
    if strategy == "loop":
        runs = common.run_each(config.learning_rates, done, recorder, train_one, _row, {})
    else:
        finished = {lr: dict(run) for lr, run in done.items()}
        missing = [lr for lr in config.learning_rates if lr not in done]
        # Chunks of rates, each recorded when it finishes: an interrupt loses at most one.
        for start in range(0, len(missing), config.grid_chunk):
            trained = _fit_grid(
                config,
                model,
                train,
                test,
                missing[start : start + config.grid_chunk],
                strategy,
                quiet,
            )
            for run in trained.values():
                print(_row(run), flush=True)
            finished.update(trained)
            runs = [finished[lr] for lr in config.learning_rates if lr in finished]
            recorder.write(runs, {"grid_strategy": strategy}, "running")
        runs = [finished[lr] for lr in config.learning_rates]
    summary = {**_summarize_grid(runs), "grid_strategy": strategy}
    doc = recorder.write(runs, summary, results.DONE)
    plots.save(plots.lr_range_grid(doc["runs"], summary), recorder.workdir / "lr_range_test.png")
    labelled = [{**r, "label": f"lr={r['learning_rate']:g}"} for r in doc["runs"]]
    plots.save(
        plots.step_curves(labelled, "loss", logy=True), recorder.workdir / "loss_per_iteration.png"
    )
    return doc


def _fit_grid(config, model, train, test, rates, strategy, quiet) -> dict[float, dict[str, Any]]:
    """`rates`, trained at once by `sweep.fit_grid`: rate -> run record."""
    grid = sweep.fit_grid(
        model,
        optimizers.make(config.optimizer, rates[0]),
        train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        hyperparams={"learning_rate": list(rates)},
        seeds=config.seed,
        data_seed=config.seed,
        eval_data=test,
        eval_batch_size=config.eval_batch_size,
        max_loss=config.divergence_loss,
        strategy=strategy,
    )
    if not quiet:
        timings = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in grid.timings.items())
        print(
            f"fit_grid trained {len(rates)} rates with strategy {grid.strategy!r} "
            f"({grid.decided})" + (f" (probe per grid step: {timings})" if timings else ""),
            flush=True,
        )
    return {
        lr: {
            "learning_rate": lr,
            "final": _final(history),
            "history": history.to_dict(),
            "grid_strategy": grid.strategy,
            "grid_strategy_decided": grid.decided,
        }
        for lr, history in zip(rates, grid.histories, strict=True)
    }


def _sweep(config, recorder, model, train, done, quiet) -> dict[str, Any]:
    key = "sweep"
    beta = range_test.sweep_beta(config.sweep_steps)
    if key in done:
        print(f"reusing the completed sweep in {recorder.workdir / 'results.json'}")
        run = dict(done[key])
    else:
        history = find.sweep_history(
            model,
            config.optimizer,
            train,
            lr_start=config.sweep_start,
            lr_end=config.sweep_end,
            num_steps=config.sweep_steps,
            factor=config.sweep_factor,
            batch_size=config.batch_size,
            seed=config.seed,
            devices=recorder.devices,
            quiet=quiet,
        )
        run = {"learning_rate": key, "final": _final(history), "history": history.to_dict()}
    steps = run["history"]["steps"]
    try:
        summary = range_test.suggest_from_sweep(
            steps["learning_rate"], steps["loss"], beta=beta, factor=config.sweep_factor
        )
    except ValueError as e:
        summary = {"lr_min": None, "lr_max": None, "error": str(e)}
    summary = {
        **summary,
        "updates": len(steps["loss"]),
        "status": run["history"]["status"],
        "wall_time_s": run["history"]["wall_time_s"],
    }
    doc = recorder.write([run], summary, results.DONE)
    plots.save(plots.lr_sweep(doc["runs"][0], summary), recorder.workdir / "lr_sweep.png")
    return doc


def _final(history: results.History) -> dict[str, Any]:
    epoch_times = history.epochs["train_time_s"]
    return {
        "status": history.status,
        "train_loss": history.final("train_loss"),
        "train_accuracy": history.final("train_accuracy"),
        "val_loss": history.final("val_loss"),
        "val_accuracy": history.final("val_accuracy"),
        "epochs_completed": len(history.epochs["epoch"]),
        # The first epoch includes compilation; later ones are steady state.
        "epoch_time_s": float(np.mean(epoch_times[1:] or epoch_times or [math.nan])),
        "compile_time_s": history.compile_time_s,
        "wall_time_s": history.wall_time_s,
    }


def _summarize_grid(runs: list[dict[str, Any]]) -> dict[str, Any]:
    lrs = [r["learning_rate"] for r in runs]
    losses = [
        math.nan if r["final"]["train_loss"] is None else r["final"]["train_loss"] for r in runs
    ]
    try:
        bounds = range_test.suggest_from_grid(lrs, losses)
    except ValueError as e:  # every rate diverged: a result too
        bounds = {"lr_min": None, "lr_max": None, "error": str(e)}
    epoch_times = [r["final"]["epoch_time_s"] for r in runs]
    epoch_times = [t for t in epoch_times if t is not None and math.isfinite(t)]
    table_keys = ("status", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
    return {
        **bounds,
        "diverged": [r["learning_rate"] for r in runs if r["final"]["status"] == results.DIVERGED],
        "table": [
            {"learning_rate": r["learning_rate"], **{k: r["final"][k] for k in table_keys}}
            for r in runs
        ],
        "mean_epoch_time_s": float(np.mean(epoch_times)) if epoch_times else None,
    }


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    return (
        f"lr={run['learning_rate']:<8g} {f['status']:<9} "
        f"train loss {common.fmt(f['train_loss'])}  acc {common.fmt(f['train_accuracy'])}"
        f"  val acc {common.fmt(f['val_accuracy'])}  {common.fmt(f['epoch_time_s'], '.1f')} s/epoch"
    )


def add_bounds_arguments(parser: argparse.ArgumentParser) -> None:
    """--bounds-from / --lr-min / --lr-max / --sweep-steps: where a LeNet-5 experiment's
    learning-rate bounds come from (`lr_bounds`)."""
    parser.add_argument("--bounds-from", help="'sweep' or an lr_range_test results.json")
    parser.add_argument("--lr-min", type=float, help="lower rate bound (with --lr-max)")
    parser.add_argument("--lr-max", type=float, help="upper rate bound (with --lr-min)")
    parser.add_argument("--sweep-steps", type=int, help="updates of the one-run range test")


def lr_bounds(
    config: Any, workdir: Path, *, quiet: bool, fresh: bool = False, devices: int | None = None
) -> dict[str, Any]:
    """{"lr_min", "lr_max", "source"} for a LeNet-5 experiment's `config`.

    From `config.lr_min` / `config.lr_max` when both are set; else from the summary of the
    lr_range_test results.json at `config.bounds_from`; else (bounds_from == "sweep") by running
    the one-run range test (`run`, method "sweep") with the experiment's data and model settings
    into workdir/lr_range_test (reused when it is already there), on `devices`.
    """
    if config.lr_min is not None and config.lr_max is not None:
        bounds = {"lr_min": config.lr_min, "lr_max": config.lr_max, "source": "config"}
    elif config.bounds_from == "sweep":
        sweep_config = dataclasses.replace(
            DEFAULT,
            method="sweep",
            dataset=config.dataset,
            data_dir=config.data_dir,
            batch_size=config.batch_size,
            seed=config.seed,
            input_norm=config.input_norm,
            hidden_batchnorm=config.hidden_batchnorm,
            first_pool_stride=config.first_pool_stride,
            pool_batchnorm=config.pool_batchnorm,
            preprocessing=config.preprocessing,
            train_examples=config.train_examples,
            eval_examples=config.test_examples,
            sweep_steps=config.sweep_steps,
        )
        summary = run(sweep_config, workdir / NAME, quiet=quiet, fresh=fresh, devices=devices)[
            "summary"
        ]
        bounds = {
            "lr_min": summary["lr_min"],
            "lr_max": summary["lr_max"],
            "source": str(workdir / NAME / "results.json"),
        }
    else:
        summary = common.bounds_file_summary(
            config.bounds_from, "bounds_from", ("lr_min", "lr_max")
        )
        bounds = {
            "lr_min": summary["lr_min"],
            "lr_max": summary["lr_max"],
            "source": config.bounds_from,
        }
    if not (bounds["lr_min"] and bounds["lr_max"] and 0 < bounds["lr_min"] < bounds["lr_max"]):
        raise validation.ConfigError(
            "bounds_from",
            f"must give 0 < lr_min < lr_max ({bounds['source']})",
            f"lr_min={bounds['lr_min']}, lr_max={bounds['lr_max']}",
        )
    print(
        f"lr_min = {bounds['lr_min']:.3g}, lr_max = {bounds['lr_max']:.3g} "
        f"(from {bounds['source']})"
    )
    return bounds
