"""Depth vs width: the course's 143 MLPs fitted to the noisy eggholder function, trained together.

    python -m experiments.depth_vs_width                    # 143 nets, capped at 100 epochs
    python -m experiments.depth_vs_width --epochs 2000      # the notebook's own cap (hours)
    python -m experiments.depth_vs_width --strategy depth   # choose how the nets are grouped
    python -m experiments.depth_vs_width --smoke            # 5 tiny nets, seconds

Every net of 1-3 hidden layers with widths in {16, ..., 512} summing to at most 512
(models.DepthWidthNet, Nadam at Keras's defaults, MSE, batch 1000, early stopping on the
validation RMSE with patience 20 and the best weights restored) is trained on 80,000 noisy
eggholder points and validated on 20,000 (jaxsched.eggholder). The nets train in groups
(jaxsched.shape_grid: padded and vmapped, or one by one; "auto" measures which is faster
here). Writes <out>/results.json (one row per net: widths, layers, units, parameters, epochs
trained, stop epoch, best validation RMSE, seconds; the per-depth fits) and figures
rmse_vs_units.png, rmse_vs_params.png and time_vs_params.png. Finished groups are kept: an
interrupted run resumes where it stopped. Synthetic data: no dataset is needed.
"""

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from experiments import common
from experiments.configs.depth_vs_width import DEFAULT, SMOKE, Config
from jaxsched import eggholder, optimizers, plots, results, shape_grid, stats
from jaxsched.models import DepthWidthNet

NAME = "depth_vs_width"
FIGURES = {  # file -> (x field, x label, y field, y label, log y)
    "rmse_vs_units.png": (
        "units",
        "total hidden units",
        "best_val_rmse",
        "best validation RMSE",
        False,
    ),
    "rmse_vs_params.png": (
        "params",
        "trainable parameters",
        "best_val_rmse",
        "best validation RMSE",
        False,
    ),
    "time_vs_params.png": (
        "params",
        "trainable parameters",
        "seconds",
        "training seconds (share of its group's wall time)",
        True,
    ),
}


def member_key(widths: Any, seed: int) -> str:
    """A net's key in results.json: its widths joined by '-', and its seed."""
    return "-".join(str(w) for w in widths) + f"/seed{seed}"


def run(
    config: Config, workdir: str | Path, *, quiet: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Trains every net of `config` (resuming finished groups); returns the results document."""
    del quiet
    recorder = common.Recorder(NAME, config, Path(workdir))
    finished = recorder.begin(fresh=fresh, key="key")
    if recorder.finished_document is not None:
        print(f"reusing the complete {recorder.results_path} of this config (--fresh redoes it)")
        return recorder.finished_document
    train, test = eggholder.make_splits(
        config.num_examples,
        noise_std=config.noise_std,
        limit=config.limit,
        test_fraction=config.test_fraction,
        seed=config.data_seed,
    )
    nets = config.nets
    rows = [finished[k] for k in _keys(nets, config.seeds) if k in finished]
    if rows:
        print(f"resuming: {len(rows)} nets finished earlier are kept", flush=True)

    def on_group(new_rows: list[dict[str, Any]]) -> None:
        finished_now = [_row(grid_row, train.images.shape[1]) for grid_row in new_rows]
        rows.extend(finished_now)
        recorder.write(_ordered(rows, nets, config.seeds), {}, "running")  # before saying so
        for row in finished_now:
            print(_line(row), flush=True)

    grid = shape_grid.fit_shapes(
        DepthWidthNet,
        nets,
        optimizers.make(config.optimizer, config.learning_rate, preset=config.preset),
        train,
        test,
        epochs=config.epochs,
        batch_size=config.batch_size,
        patience=config.patience,
        seeds=list(config.seeds),
        data_seed=config.data_seed,
        strategy=config.strategy,
        eval_batch_size=config.eval_batch_size,
        on_group=on_group,
        skip=lambda widths, seed: member_key(widths, seed) in finished,
    )
    rows = _ordered(rows, nets, config.seeds)
    summary = _summary(rows, grid)
    doc = recorder.write(rows, summary, results.DONE)
    _figures(doc, recorder.workdir)
    return doc


def _keys(nets: list, seeds: tuple[int, ...]) -> list[str]:
    return [member_key(w, s) for w in nets for s in seeds]


def _ordered(rows: list[dict[str, Any]], nets: list, seeds: tuple[int, ...]) -> list:
    by_key = {r["key"]: r for r in rows}
    return [by_key[k] for k in _keys(nets, seeds) if k in by_key]


def _row(grid_row: dict[str, Any], num_features: int) -> dict[str, Any]:
    """shape_grid's row as results.json stores it: identity and counts first, the per-epoch
    curves under "history" (with the status the Recorder resumes by)."""
    widths = grid_row["widths"]
    counts = shape_grid.num_params(widths, num_features)
    return {
        "key": member_key(widths, grid_row["seed"]),
        "widths": widths,
        "seed": grid_row["seed"],
        "layers": len(widths),
        "units": sum(widths),
        "params": counts["trainable"],
        "keras_params": counts["keras"],
        "status": grid_row["status"],
        "best_val_rmse": grid_row["best_val_rmse"],
        "best_epoch": grid_row["best_epoch"],
        "epochs_trained": grid_row["epochs_trained"],
        "stop_epoch": grid_row["stop_epoch"],
        "seconds": grid_row["seconds"],
        "history": {
            "status": grid_row["status"],
            "val_rmse": grid_row["val_rmse"],
            "train_loss": grid_row["train_loss"],
        },
    }


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['key']:<18} {row['params']:>7} params  {row['status']:<8} "
        f"epochs {row['epochs_trained']:>4}  best val RMSE "
        f"{common.fmt(row['best_val_rmse'], '.2f')} (epoch {row['best_epoch'] or '-'})"
    )


def _summary(rows: list[dict[str, Any]], grid: shape_grid.GridRun) -> dict[str, Any]:
    """Per depth: the best net and its RMSE; per figure and depth: the fitted line with its 95%
    band (RMSE against log10 of units or parameters, as the notebook's lmplot; log10 seconds
    against log10 parameters)."""
    by_depth: dict[int, list] = {}
    for row in rows:
        if row["best_val_rmse"] is not None:
            by_depth.setdefault(row["layers"], []).append(row)
    best = {
        str(depth): min(group, key=lambda r: r["best_val_rmse"])
        for depth, group in sorted(by_depth.items())
    }
    fits = {}
    for figure, (x_field, _, y_field, _, logy) in FIGURES.items():
        fits[figure] = {}
        for depth, group in sorted(by_depth.items()):
            x = np.log10([r[x_field] for r in group])
            y = np.array([r[y_field] for r in group], dtype=float)
            if len(group) < 3 or np.ptp(x) == 0 or (logy and np.any(y <= 0)):
                continue
            at = np.linspace(x.min(), x.max(), 50)
            fits[figure][str(depth)] = stats.linear_fit(x, np.log10(y) if logy else y, at)
    return {
        "best_per_depth": {
            depth: {"key": r["key"], "best_val_rmse": r["best_val_rmse"], "params": r["params"]}
            for depth, r in best.items()
        },
        "strategy": grid.strategy,
        "strategy_timings_s_per_epoch": grid.timings,
        "groups": grid.groups,
        "fits": fits,
    }


def _figures(doc: dict[str, Any], workdir: Path) -> None:
    for figure, (x_field, x_label, y_field, y_label, logy) in FIGURES.items():
        points = {}
        for row in doc["runs"]:
            if row[y_field] is None:
                continue
            label = f"{row['layers']} hidden layer" + ("s" if row["layers"] > 1 else "")
            xs, ys = points.setdefault(label, ([], []))
            xs.append(row[x_field])
            ys.append(row[y_field])
        fits = {
            f"{d} hidden layer" + ("s" if int(d) > 1 else ""): fit
            for d, fit in doc["summary"]["fits"][figure].items()
        }
        plots.save(
            plots.scatter_fits(
                points,
                fits,
                x_label,
                y_label,
                logx=True,
                logy=logy,
                title=f"{len(doc['runs'])} nets, eggholder; lines: least squares on log10(x)"
                + (" and log10(y)" if logy else "")
                + ", 95% bands",
            ),
            workdir / figure,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--widths", type=int, nargs="+", help="hidden widths to combine")
    parser.add_argument("--max-depth", type=int, help="most hidden layers")
    parser.add_argument("--max-units", type=int, help="most hidden units in all")
    parser.add_argument("--epochs", type=int, help="epoch cap (the notebook: 2000)")
    parser.add_argument("--patience", type=int, help="early-stopping patience (epochs)")
    parser.add_argument("--batch-size", type=int, help="examples per update")
    parser.add_argument("--learning-rate", type=float, help="Nadam's learning rate")
    parser.add_argument("--seeds", type=int, nargs="+", help="init seeds per net")
    parser.add_argument("--num-examples", type=int, help="points drawn (80%% train)")
    parser.add_argument("--strategy", choices=shape_grid.STRATEGIES, help="how nets train together")


def report(doc: dict[str, Any], workdir: Path) -> None:
    summary = doc["summary"]
    print(f"\nstrategy {summary['strategy']}; best validation RMSE per depth:")
    if not summary["best_per_depth"]:
        print("  none: every net diverged")
    for depth, best in summary["best_per_depth"].items():
        print(
            f"  {depth} layer(s): {best['best_val_rmse']:.2f}  ({best['key']}, "
            f"{best['params']} params)"
        )
    print(f"wrote {workdir}/results.json and figures")


SINGLE_DEVICE = "its nets train in vmapped groups on one device, not with loop.fit"


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
        single_device=SINGLE_DEVICE,
    )


if __name__ == "__main__":
    common.exit_with(main())
