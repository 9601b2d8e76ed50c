"""LR range test: LeNet-5 on Fashion-MNIST with plain SGD, in two forms.

    python -m experiments.lr_range_test                   # grid: 11 rates x 5 epochs (seeds)
    python -m experiments.lr_range_test --method sweep    # one run, lr growing per update
    python -m experiments.lr_range_test --smoke           # seconds

grid: trains a fresh model (same initialization) at each learning rate, plots the final training
loss and accuracy against log10(lr). sweep (Smith 2017, fastai's lr_find): one run whose rate
grows exponentially from --sweep-start to --sweep-end, stopped when the smoothed loss exceeds 4x
its best. Both pick lr_min / lr_max with the rules documented in `jaxsched.range_test`, and
write <out>/results.json (atomically, after every run: an interrupted grid resumes where it
stopped) and PNG figures.
"""

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from experiments import common
from experiments.configs.lr_range_test import DEFAULT, GRID_STRATEGIES, METHODS, SMOKE, Config
from jaxsched import data, loop, optimizers, plots, range_test, results, sweep
from jaxsched.models import LeNet5

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
    train, test = common.load_splits(
        config.dataset,
        config.data_dir,
        config.preprocessing,
        config.train_examples,
        config.eval_examples,
        config.seed,
    )
    common.check_batch_sizes("batch_size", [config.batch_size], train)
    model = LeNet5(
        num_classes=data.NUM_CLASSES[config.dataset],
        input_norm=config.input_norm,
        hidden_batchnorm=config.hidden_batchnorm,
    )
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
            f"fit_grid trained {len(rates)} rates with strategy {grid.strategy!r}"
            + (f" (probe per grid step: {timings})" if timings else ""),
            flush=True,
        )
    return {
        lr: {
            "learning_rate": lr,
            "final": _final(history),
            "history": history.to_dict(),
            "grid_strategy": grid.strategy,
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
        schedule = range_test.sweep_schedule(
            config.sweep_start, config.sweep_end, config.sweep_steps
        )
        steps_per_epoch = data.num_batches(len(train.labels), config.batch_size)
        _, history = loop.fit(
            model,
            optimizers.make(config.optimizer, schedule),
            train,
            epochs=math.ceil(config.sweep_steps / steps_per_epoch),
            batch_size=config.batch_size,
            seed=config.seed,
            max_steps=config.sweep_steps,
            stop_when=range_test.explosion_rule(config.sweep_factor),
            sync_every=10,
            devices=recorder.devices,
            quiet=quiet,
            description="sweep",
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


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    return (
        f"lr={run['learning_rate']:<8g} {f['status']:<9} "
        f"train loss {_fmt(f['train_loss'], '.4f')}  acc {_fmt(f['train_accuracy'], '.4f')}"
        f"  val acc {_fmt(f['val_accuracy'], '.4f')}  {_fmt(f['epoch_time_s'], '.1f')} s/epoch"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, help="grid (default) or sweep")
    parser.add_argument("--epochs", type=int, help="grid: epochs per learning rate")
    parser.add_argument("--lrs", type=float, nargs="+", help="grid: learning rates to try")
    parser.add_argument(
        "--grid-strategy",
        choices=GRID_STRATEGIES,
        help="grid: fit_grid 'auto' (default), 'vmap', 'sequential', or 'loop' (loop.fit per rate)",
    )
    parser.add_argument(
        "--grid-chunk",
        type=int,
        help="grid: rates per fit_grid call, each chunk saved on finishing",
    )
    parser.add_argument("--batch-size", type=int, help="examples per update")
    parser.add_argument("--sweep-start", type=float, help="sweep: first learning rate")
    parser.add_argument("--sweep-end", type=float, help="sweep: last learning rate")
    parser.add_argument("--sweep-steps", type=int, help="sweep: updates from start to end")


def report(doc: dict[str, Any], workdir: Path) -> None:
    s = doc["summary"]
    print(f"\nlr_min = {s['lr_min']}  lr_max = {s['lr_max']}")
    print(f"rule: {s.get('rule', s.get('error'))}")
    if "diverged" in s:  # the grid's summary
        print(
            f"diverged: {s['diverged']}; mean time per epoch "
            f"{_fmt(s['mean_epoch_time_s'], '.1f')} s"
        )
    else:
        print(f"{s['updates']} updates ({s['status']}), {s['wall_time_s']:.1f} s")
    print(f"wrote {workdir}/results.json and figures")


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
        renames={"learning_rates": "lrs"},
        default_out=lambda config: f"runs/{NAME}" + ("_sweep" if config.method == "sweep" else ""),
    )


if __name__ == "__main__":
    common.exit_with(main())
