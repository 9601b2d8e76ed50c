"""LR range test, grid form: LeNet-5 on Fashion-MNIST with plain SGD.

    python -m experiments.lr_range_test            # the seeds' 11 rates x 5 epochs
    python -m experiments.lr_range_test --smoke    # seconds

Trains a fresh model (same initialization) at each learning rate, plots the final training loss
and accuracy against log10(lr), and picks lr_min / lr_max with the rule documented in
`jaxsched.range_test`. Writes <out>/results.json after every learning rate (atomically, so an
interrupted run resumes where it stopped) and <out>/lr_range_test.png, <out>/loss_per_iteration.png.
"""

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments import common
from experiments.configs.lr_range_test import DEFAULT, SMOKE, Config
from jaxsched import loop, optimizers, plots, range_test, results
from jaxsched.models import LeNet5

NAME = "lr_range_test"


def run(
    config: Config, workdir: str | Path, *, quiet: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Runs the grid and returns the results document (also written to workdir/results.json)."""
    workdir = Path(workdir)
    started_at, start = results.now_iso(), time.perf_counter()
    train, test = common.load_splits(
        config.dataset,
        config.data_dir,
        config.preprocessing,
        config.train_examples,
        config.eval_examples,
        config.seed,
    )
    model = LeNet5(
        num_classes=int(train.labels.max()) + 1,
        input_norm=config.input_norm,
        hidden_batchnorm=config.hidden_batchnorm,
    )
    done = {} if fresh else common.completed_runs(workdir, config, "learning_rate")
    runs: list[dict[str, Any]] = []

    def write(status: str, summary: dict[str, Any]) -> dict[str, Any]:
        doc = results.results_document(
            NAME,
            config,
            runs,
            summary,
            status=status,
            wall_time_s=time.perf_counter() - start,
            started_at=started_at,
        )
        results.write_json_atomic(workdir / "results.json", doc)
        return doc

    for lr in config.learning_rates:
        if lr in done:
            runs.append(dict(done[lr]))
            print(f"lr={lr:g}: reusing the completed run in {workdir / 'results.json'}")
            continue
        tx = optimizers.make(config.optimizer, lr)
        _, history = loop.fit(
            model,
            tx,
            train,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            eval_data=test,
            eval_batch_size=config.eval_batch_size,
            max_loss=config.divergence_loss,
            quiet=quiet,
            description=f"lr={lr:g}",
        )
        runs.append({"learning_rate": lr, "final": _final(history), "history": history.to_dict()})
        print(_row(runs[-1]), flush=True)
        write("running", {})

    summary = _summarize(runs)
    doc = write(results.DONE, summary)
    plots.save(plots.lr_range_grid(doc["runs"], summary), workdir / "lr_range_test.png")
    plots.save(plots.loss_per_iteration(doc["runs"]), workdir / "loss_per_iteration.png")
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


def _summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    lrs = [r["learning_rate"] for r in runs]
    losses = [r["final"]["train_loss"] for r in runs]
    losses = [math.nan if v is None else v for v in losses]
    try:
        bounds = range_test.suggest_from_grid(lrs, losses)
    except ValueError as e:  # every rate diverged: a result too
        bounds = {"lr_min": None, "lr_max": None, "error": str(e)}
    epoch_times = [r["final"]["epoch_time_s"] for r in runs]
    epoch_times = [t for t in epoch_times if t is not None and math.isfinite(t)]
    return {
        **bounds,
        "diverged": [r["learning_rate"] for r in runs if r["final"]["status"] == results.DIVERGED],
        "table": [
            {
                "learning_rate": r["learning_rate"],
                **{
                    k: r["final"][k]
                    for k in ("status", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
                },
            }
            for r in runs
        ],
        "mean_epoch_time_s": float(np.mean(epoch_times)) if epoch_times else None,
    }


def _fmt(value: Any, spec: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and not math.isfinite(value))
        else format(value, spec)
    )


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    return (
        f"lr={run['learning_rate']:<8g} {f['status']:<9} "
        f"train loss {_fmt(f['train_loss'], '.4f')}  acc {_fmt(f['train_accuracy'], '.4f')}"
        f"  val acc {_fmt(f['val_accuracy'], '.4f')}"
        f"  {_fmt(f['epoch_time_s'], '.1f')} s/epoch"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{NAME}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common.add_common_args(parser, f"runs/{NAME}")
    parser.add_argument("--epochs", type=int, help="epochs per learning rate")
    parser.add_argument("--lrs", type=float, nargs="+", help="learning rates to try")
    parser.add_argument("--batch-size", type=int, help="examples per update")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = common.config_overrides(
        args,
        {"epochs": "epochs", "batch_size": "batch_size", "seed": "seed", "data_dir": "data_dir"},
    )
    if args.lrs:
        overrides["learning_rates"] = tuple(args.lrs)
    config = common.replace(SMOKE if args.smoke else DEFAULT, **overrides)
    workdir = common.output_dir(args, f"runs/{NAME}")
    doc = run(config, workdir, quiet=args.quiet, fresh=args.fresh)
    s = doc["summary"]
    print(f"\nlr_min = {s['lr_min']}  lr_max = {s['lr_max']}")
    print(f"rule: {s.get('rule', s.get('error'))}")
    print(f"diverged: {s['diverged']}; mean time per epoch {_fmt(s['mean_epoch_time_s'], '.1f')} s")
    print(
        f"wrote {workdir / 'results.json'}, {workdir / 'lr_range_test.png'}, "
        f"{workdir / 'loss_per_iteration.png'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
