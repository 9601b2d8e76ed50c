"""Adaptive optimizers with L2 regularization and with dropout, on the course's MLP.

    python -m experiments.adaptive_optimizers                 # 8 optimizers x 2, 200 epochs
    python -m experiments.adaptive_optimizers --epochs 10 --dataset fashion_mnist
    python -m experiments.adaptive_optimizers --smoke         # seconds

Each optimizer (Keras's defaults, as the seeds ran) trains the same initialization twice: with
L2 on the kernels, then with dropout. Writes <out>/results.json (after every run: an interrupted
run resumes) and figures: training loss per epoch for each regularization, training time per
optimizer; prints the test-accuracy table.
"""

import argparse
import functools
from pathlib import Path
from typing import Any

from experiments import common
from experiments.configs.adaptive_optimizers import (
    DEFAULT,
    OPTIMIZERS,
    REGULARIZATIONS,
    SMOKE,
    Config,
)
from jaxsched import data, loop, losses, optimizers, plots, results
from jaxsched.models import MLP

NAME = "adaptive_optimizers"


def run(
    config: Config,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Trains every (regularization, optimizer) pair; returns the results document."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    dataset = data.resolve_dataset(config.dataset, config.data_dir)
    done = recorder.begin(datasets=[dataset], fresh=fresh, key="key")
    train_ds, test_ds = data.load_splits(
        dataset,
        config.data_dir,
        config.preprocessing,
        config.train_examples,
        config.test_examples,
        config.seed,
    )
    common.check_batch_sizes("batch_size", [config.batch_size], train_ds)
    num_classes = data.NUM_CLASSES[dataset]

    def train_one(key: str) -> dict[str, Any]:
        regularization, label = key.split("/")
        dropout = regularization == "dropout"
        model = MLP(
            hidden=config.hidden,
            num_classes=num_classes,
            input_dropout=config.input_dropout if dropout else 0.0,
            hidden_dropout=config.hidden_dropout if dropout else 0.0,
        )
        regularizer = (
            None
            if dropout
            else functools.partial(losses.l2_penalty, coefficient=config.l2_coefficient)
        )
        name, options = OPTIMIZERS[label]
        lr = optimizers.KERAS_LEARNING_RATES[name]
        _, history = loop.fit(
            model,
            optimizers.make(name, lr, preset=config.preset, **options),
            train_ds,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            eval_data=test_ds,
            regularizer=regularizer,
            max_loss=config.divergence_loss,
            devices=devices,
            quiet=quiet,
            description=key,
        )
        return {
            "key": key,
            "regularization": regularization,
            "optimizer": label,
            "learning_rate": lr,
            "final": _final(history),
            "history": history.to_dict(),
        }

    keys = [f"{r}/{o}" for r in config.regularizations for o in config.optimizers]
    runs = common.run_each(keys, done, recorder, train_one, _row, {"dataset": dataset})
    summary = {
        "dataset": dataset,
        "table": [
            {"regularization": r["regularization"], "optimizer": r["optimizer"], **r["final"]}
            for r in runs
        ],
    }
    doc = recorder.write(runs, summary, results.DONE)
    _figures(doc, recorder.workdir)
    return doc


def _final(history: results.History) -> dict[str, Any]:
    return {
        "status": history.status,
        "epochs": len(history.epochs["epoch"]),
        "train_loss": history.final("train_loss"),
        "test_accuracy": history.final("val_accuracy"),
        "test_loss": history.final("val_loss"),
        "train_time_s": float(sum(history.epochs["train_time_s"])),
        "compile_time_s": history.compile_time_s,
    }


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    acc = "-" if f["test_accuracy"] is None else f"{f['test_accuracy']:.4f}"
    return (
        f"{run['key']:<26} {f['status']:<9} test acc {acc}  "
        f"train {f['train_time_s']:.1f} s ({f['epochs']} epochs)"
    )


def _figures(doc: dict[str, Any], workdir: Path) -> None:
    for regularization in doc["config"]["regularizations"]:
        runs = [
            {**r, "label": r["optimizer"]}
            for r in doc["runs"]
            if r["regularization"] == regularization
        ]
        fig = plots.epoch_metric(
            runs,
            "train_loss",
            logy=True,
            title=f"training loss per epoch, {regularization} ({doc['summary']['dataset']})",
        )
        plots.save(fig, workdir / f"train_loss_{regularization}.png")
    plots.save(
        plots.bars(
            {
                f"{r['optimizer']} ({r['regularization']})": r["final"]["train_time_s"]
                for r in doc["runs"]
            },
            "training time (s)",
        ),
        workdir / "train_time.png",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("auto", *data.DATASETS), help="default auto")
    parser.add_argument("--epochs", type=int, help="epochs per run")
    parser.add_argument("--batch-size", type=int, help="examples per update")
    parser.add_argument("--optimizers", nargs="+", choices=tuple(OPTIMIZERS))
    parser.add_argument("--regularizations", nargs="+", choices=REGULARIZATIONS)


def report(doc: dict[str, Any], workdir: Path) -> None:
    print(f"\n{'':26} test accuracy on {doc['summary']['dataset']}")
    for row in doc["summary"]["table"]:
        acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        print(f"{row['regularization'] + '/' + row['optimizer']:<26} {acc}")
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
    )


if __name__ == "__main__":
    common.exit_with(main())
