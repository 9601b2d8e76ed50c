"""Hidden-layer outputs of untrained MLPs: activation x kernel initializer (why He suits ReLU).

    python -m experiments.init_activations                    # MNIST, else Fashion-MNIST
    python -m experiments.init_activations --dataset fashion_mnist --activations relu
    python -m experiments.init_activations --smoke            # seconds

The MLP 784 -> Dense 100 (linear) -> 5 x [Dense 100 + tanh / sigmoid / ReLU] -> Dense 10 is
initialized (kernels from N(0, sigma) for each sigma, Glorot normal and He normal; zero biases)
and the test images are forwarded once, untrained. Writes <out>/results.json (per layer: mean,
std, fraction of exactly-zero outputs, quartiles, a density for the violins) and figures:
activations_<activation>.png (violins of each activated layer's outputs, a panel per
initializer; ReLU's of its non-zero outputs, the zero fraction under each) and layer_std.png
(each layer's output std, the linear one included); prints the per-layer table.
"""

import argparse
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from experiments import common
from experiments.configs.init_activations import (
    ACTIVATIONS,
    DEFAULT,
    NAMED_INITIALIZERS,
    SMOKE,
    Config,
)
from jaxsched import data, initializers, plots, results, stats
from jaxsched.models.mlp import MLP

NAME = "init_activations"
ACTIVATION_FNS = {"tanh": nn.tanh, "sigmoid": nn.sigmoid, "relu": nn.relu}
LABELS = {
    "glorot_normal": "Xavier (Glorot normal)",
    "glorot_uniform": "Xavier (Glorot uniform)",
    "he_normal": "He normal",
    "he_uniform": "He uniform",
    "lecun_normal": "LeCun normal",
}


def initializer_specs(config: Config) -> list[tuple[str, str, Any]]:
    """(key, label, initializer) per panel: the N(0, sigma) ones, then the named ones."""
    specs = [
        (f"normal_{s:g}", f"N(0, {s:g})", initializers.get("normal", s)) for s in config.stddevs
    ]
    return specs + [(n, LABELS[n], initializers.get(n)) for n in config.initializers]


def make_model(config: Config, activation: str, kernel_init: Any, num_classes: int) -> MLP:
    """The linear Dense width layer, then `depth` activated ones, then the logits layer."""
    return MLP(
        hidden=(config.width,) * (config.depth + 1),
        num_classes=num_classes,
        activation=ACTIVATION_FNS[activation],
        kernel_init=kernel_init,
        input_linear=True,
    )


def hidden_outputs(model: MLP, variables: Any, images: np.ndarray) -> list[np.ndarray]:
    """Each hidden layer's outputs float32[N, width] for `images` [N, ...], first layer first."""
    # Eager (op by op): the ops' executables are cached by shape, shared by every net.
    _, state = model.apply(variables, images, train=False, mutable=["intermediates"])
    return [np.asarray(h) for h in state["intermediates"]["hidden"]]


def layer_rows(outputs: list[np.ndarray], activation: str, config: Config) -> list[dict[str, Any]]:
    """Per layer: index (0 = the linear layer), kind, stats.summarize of every output, and a
    stats.density for its violin: of every output, or for ReLU layers of the non-zero ones
    (the exact zeros, about half, would be a spike dwarfing the rest; zero_fraction has them).
    """
    rows = []
    for i, h in enumerate(outputs):
        kind = "linear" if i == 0 else activation
        nonzero = h[h != 0]
        drawn = nonzero if kind == "relu" and nonzero.size else h
        rows.append(
            {
                "layer": i,
                "kind": kind,
                **stats.summarize(h),
                "density_of": "nonzero" if drawn is nonzero else "all",
                "density": stats.density(
                    drawn,
                    points=config.density_points,
                    max_samples=config.density_samples,
                    seed=config.seed + i,
                ),
            }
        )
    return rows


def run(
    config: Config, workdir: str | Path, *, quiet: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Forwards the test images through every (activation, initializer) net; returns the
    results document. Takes seconds, so there is nothing to resume: a complete results.json of
    the same config is reused, `fresh` sets it aside and recomputes."""
    del quiet
    recorder = common.Recorder(NAME, config, Path(workdir))
    dataset = data.resolve_dataset(config.dataset, config.data_dir, preferred="mnist")
    recorder.begin(datasets=[dataset], fresh=fresh)
    if recorder.finished_document is not None:
        print(f"reusing the complete {recorder.results_path} of this config (--fresh redoes it)")
        return recorder.finished_document
    train_ds, test_ds = data.load_splits(
        dataset, config.data_dir, config.preprocessing, None, config.test_examples, config.seed
    )
    num_classes = data.NUM_CLASSES[dataset]
    images = test_ds.images.reshape(len(test_ds.images), -1)
    key = jax.random.key(config.seed)
    runs = []
    for activation in config.activations:
        for init_key, label, kernel_init in initializer_specs(config):
            model = make_model(config, activation, kernel_init, num_classes)
            variables = model.init(key, images[:1], train=False)
            layers = layer_rows(hidden_outputs(model, variables, images), activation, config)
            runs.append(
                {
                    "key": f"{activation}/{init_key}",
                    "activation": activation,
                    "initializer": init_key,
                    "label": label,
                    "layers": layers,
                }
            )
    summary = {
        "dataset": dataset,
        "test_examples": len(images),
        "table": [
            {
                "activation": r["activation"],
                "initializer": r["initializer"],
                "layer": row["layer"],
                "kind": row["kind"],
                **{k: row[k] for k in ("mean", "std", "zero_fraction")},
            }
            for r in runs
            for row in r["layers"]
        ],
        # std of the last activated layer over the first's: 1 keeps the signal's scale.
        "std_ratio_last_to_first": {
            r["key"]: _ratio(r["layers"][-1]["std"], r["layers"][1]["std"]) for r in runs
        },
    }
    doc = recorder.write(runs, summary, results.DONE)
    _figures(doc, recorder.workdir)
    return doc


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _violin_label(row: dict[str, Any]) -> str:
    name = str(row["layer"])
    return f"{name}\n{row['zero_fraction']:.0%}" if row["kind"] == "relu" else name


def _violin(row: dict[str, Any]) -> dict[str, Any]:
    """The layer's density, with its exact mean / median / extremes when it is of every output
    (else plots.violins takes them from the density)."""
    if row["density_of"] != "all":
        return row["density"]
    return {**row["density"], **{k: row[k] for k in ("mean", "median", "min", "max")}}


def _figures(doc: dict[str, Any], workdir: Path) -> None:
    dataset = doc["summary"]["dataset"]
    for activation in doc["config"]["activations"]:
        runs = [r for r in doc["runs"] if r["activation"] == activation]
        panels = {
            f"{r['label']}\nstd {r['layers'][1]['std']:.2g} -> {r['layers'][-1]['std']:.2g}": {
                _violin_label(row): _violin(row) for row in r["layers"][1:]
            }
            for r in runs
        }
        relu = activation == "relu"
        plots.save(
            plots.violins(
                panels,
                ylabel=f"{activation} layer output",
                title=f"untrained MLP, {activation}: {'non-zero ' if relu else ''}outputs of "
                f"each activated hidden layer, {dataset} test images\n"
                f"{'under each layer: % of outputs exactly 0; ' if relu else ''}"
                "mean: bar, median: dot; panel titles: std of all outputs, first -> last layer",
            ),
            workdir / f"activations_{activation}.png",
        )
    std_panels = {
        activation: {
            r["label"]: [row["std"] for row in r["layers"]]
            for r in doc["runs"]
            if r["activation"] == activation
        }
        for activation in doc["config"]["activations"]
    }
    depth = doc["config"]["depth"]
    plots.save(
        plots.line_panels(
            std_panels,
            x=list(range(depth + 1)),
            xticklabels=["lin", *map(str, range(1, depth + 1))],
            xlabel="hidden layer (lin: the linear first layer)",
            ylabel="std of the layer's outputs",
            logy=True,
        ),
        workdir / "layer_std.png",
    )


SINGLE_DEVICE = "nothing is trained: it measures the activations of untrained nets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("auto", *data.DATASETS), help="default auto")
    parser.add_argument("--activations", nargs="+", choices=ACTIVATIONS)
    parser.add_argument("--stddevs", nargs="+", type=float, help="sigma of N(0, sigma) kernels")
    parser.add_argument("--initializers", nargs="+", choices=NAMED_INITIALIZERS)
    parser.add_argument("--test-examples", type=int, help="default: the whole test split")


def report(doc: dict[str, Any], workdir: Path) -> None:
    summary = doc["summary"]
    print(
        f"hidden-layer outputs of untrained nets, {summary['test_examples']} test images of "
        f"{summary['dataset']}; layer 0 is the linear one"
    )
    print(f"{'activation/initializer':<26} {'layer':>5} {'mean':>9} {'std':>9} {'zeros':>7}")
    for row in summary["table"]:
        print(
            f"{row['activation'] + '/' + row['initializer']:<26} {row['layer']:>5} "
            f"{row['mean']:>9.4g} {row['std']:>9.4g} {row['zero_fraction']:>7.1%}"
        )
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
        single_device=SINGLE_DEVICE,
    )


if __name__ == "__main__":
    common.exit_with(main())
