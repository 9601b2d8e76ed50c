"""BatchNorm vs dropout on LeNet-5: four variants, SGD 0.01, batch 128, 10 epochs.

    python -m experiments.bn_dropout                  # MNIST if available, else Fashion-MNIST
    python -m experiments.bn_dropout --dataset fashion_mnist --epochs 5
    python -m experiments.bn_dropout --smoke          # seconds

Every variant trains from its own seeded initialization (the architectures differ). Reports
train and test loss and accuracy per variant, both as Keras's `fit` logs them (the last epoch's
running means, dropout active) and as `evaluate` measures them afterwards (inference mode), and
the learned BatchNorm parameters (gamma, beta, moving mean, moving variance) per layer. Writes
<out>/results.json (after each variant: an interrupted run resumes), accuracy.png (train/test
accuracy per epoch) and batchnorm_parameters.png (violins by layer).
"""

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from experiments import common
from experiments.configs.bn_dropout import DEFAULT, PROTOCOLS, SMOKE, VARIANTS, Config
from jaxsched import data, loop, optimizers, plots, results, train
from jaxsched.models import LeNet5

NAME = "bn_dropout"
BN_FIELDS = {"gamma": "scale", "beta": "bias", "moving_mean": "mean", "moving_variance": "var"}


def batchnorm_parameters(state: train.TrainState) -> dict[str, dict[str, list[float]]]:
    """{layer: {"gamma", "beta", "moving_mean", "moving_variance": per-channel values}} of every
    BatchNorm layer, in the order the model applies them (BatchNorm_0 first)."""
    names = sorted((n for n in state.batch_stats), key=lambda n: int(n.rsplit("_", 1)[1]))
    return {
        name: {
            field: np.asarray(
                (state.params if key in ("scale", "bias") else state.batch_stats)[name][key]
            ).tolist()
            for field, key in BN_FIELDS.items()
        }
        for name in names
    }


def layer_labels(input_batchnorm: bool, num_layers: int) -> list[str]:
    """Readable names of LeNet-5's BatchNorm layers: input, conv1..3, dense."""
    hidden = ["conv1", "conv2", "conv3", "dense84"]
    return (["input"] if input_batchnorm else []) + hidden[: num_layers - int(input_batchnorm)]


def run(
    config: Config,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Trains every variant and returns the results document."""
    recorder = common.Recorder(NAME, config, Path(workdir), devices)
    dataset = data.resolve_dataset(config.dataset, config.data_dir, preferred="mnist")
    done = recorder.begin(datasets=[dataset], fresh=fresh, key="variant")
    splits: dict[str, tuple[data.Dataset, data.Dataset]] = {}

    def load(preprocessing: str) -> tuple[data.Dataset, data.Dataset]:
        if preprocessing not in splits:
            splits[preprocessing] = data.load_splits(
                dataset,
                config.data_dir,
                preprocessing,
                config.train_examples,
                config.test_examples,
                config.seed,
            )
        return splits[preprocessing]

    for variant in config.variants:  # load (and check) every split before training
        common.check_batch_sizes("batch_size", [config.batch_size], load(VARIANTS[variant][0])[0])

    def train_one(variant: str) -> dict[str, Any]:
        preprocessing, input_norm, hidden_bn, dropout = VARIANTS[variant]
        train_ds, test_ds = load(preprocessing)
        model = LeNet5(
            num_classes=data.NUM_CLASSES[dataset],
            input_norm=input_norm,
            hidden_batchnorm=hidden_bn,
            input_dropout=config.input_dropout if dropout else 0.0,
            hidden_dropout=config.hidden_dropout if dropout else 0.0,
            dropout_first=config.dropout_first,
        )
        tx = optimizers.make("sgd", config.learning_rate)
        state, history = loop.fit(
            model,
            tx,
            train_ds,
            eval_data=test_ds,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            max_loss=config.divergence_loss,
            devices=devices,
            quiet=quiet,
            description=variant,
        )
        eval_step = train.CompiledStep(train.make_eval_step(model))
        mesh = common.mesh(devices)
        evaluated = {
            split: loop.evaluate(eval_step, state, ds.images, ds.labels, mesh=mesh)
            for split, ds in (("train", train_ds), ("test", test_ds))
        }
        final = {
            "status": history.status,
            "preprocessing": preprocessing,
            "fit_train_loss": history.final("train_loss"),
            "fit_train_accuracy": history.final("train_accuracy"),
            "train_loss": evaluated["train"]["loss"],
            "train_accuracy": evaluated["train"]["accuracy"],
            "test_loss": evaluated["test"]["loss"],
            "test_accuracy": evaluated["test"]["accuracy"],
            "train_time_s": sum(history.epochs["train_time_s"]),
        }
        return {
            "variant": variant,
            "final": final,
            "batchnorm": batchnorm_parameters(state),
            "history": history.to_dict(),
        }

    runs = common.run_each(config.variants, done, recorder, train_one, _row, {"dataset": dataset})
    table = markdown_table(runs)
    summary = {"dataset": dataset, "table": table}
    doc = recorder.write(runs, summary, results.DONE)
    if not quiet:
        print(f"\nLeNet-5 on {dataset}, {config.epochs} epochs\n{table}")
    labelled = [{**r, "label": r["variant"]} for r in doc["runs"]]
    plots.save(plots.epoch_curves(labelled, eval_name="test"), recorder.workdir / "accuracy.png")
    bn_runs = [r for r in doc["runs"] if r["batchnorm"]]
    if bn_runs:
        plots.save(
            batchnorm_figure(bn_runs, dataset), recorder.workdir / "batchnorm_parameters.png"
        )
    return doc


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """Train (fit log and evaluate) / test loss and accuracy per variant, as Markdown."""
    header = (
        "| variant | train acc (fit) | train acc | test acc | train loss (fit) | train loss "
        "| test loss | status |\n|---|---|---|---|---|---|---|---|"
    )
    rows = [
        "| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["variant"],
            *(
                common.fmt(r["final"][k])
                for k in (
                    "fit_train_accuracy",
                    "train_accuracy",
                    "test_accuracy",
                    "fit_train_loss",
                    "train_loss",
                    "test_loss",
                )
            ),
            r["final"]["status"],
        )
        for r in runs
    ]
    return "\n".join([header, *rows])


def batchnorm_figure(runs: list[dict[str, Any]], dataset: str):
    """One row of four violin panels (gamma, beta, moving mean, moving variance) per variant,
    one violin per BatchNorm layer."""
    panels = {}
    for run in runs:
        layers = run["batchnorm"]
        labels = layer_labels(VARIANTS[run["variant"]][1] == "batchnorm", len(layers))
        for field in BN_FIELDS:
            panels[f"{run['variant']}: {field}"] = {
                label: values[field] for label, values in zip(labels, layers.values(), strict=True)
            }
    return plots.violins(
        panels,
        ncols=len(BN_FIELDS),
        title=f"LeNet-5 BatchNorm parameters after training ({dataset})",
    )


def _row(run: dict[str, Any]) -> str:
    f = run["final"]
    return (
        f"{run['variant']:<15} {f['status']:<8} train acc {common.fmt(f['train_accuracy'])}  "
        f"test acc {common.fmt(f['test_accuracy'])}  test loss {common.fmt(f['test_loss'])}  "
        f"{f['train_time_s']:.0f} s"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("auto", *data.DATASETS))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS))
    parser.add_argument("--train-examples", type=int, help="a seeded subset of the training set")
    parser.add_argument("--test-examples", type=int, help="a seeded subset of the test set")


def report(doc: dict[str, Any], workdir: Path) -> None:
    del doc
    print(f"wrote {workdir}/results.json, accuracy.png and batchnorm_parameters.png")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=DEFAULT,
        smoke=SMOKE,
        protocols=PROTOCOLS,
        add_arguments=add_arguments,
        report=report,
    )


if __name__ == "__main__":
    common.exit_with(main())
