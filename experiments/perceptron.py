"""Perceptron criterion vs hinge loss: a linear model without bias on separable 2-D points.

    python -m experiments.perceptron                  # seed 0: 20 train / 1000 test, 10 epochs
    python -m experiments.perceptron --seeds 100      # also mean +- std over seeds 0..99
    python -m experiments.perceptron --lr 0.1 --epochs 20 --no-shuffle
    python -m experiments.perceptron --smoke          # seconds

Points uniform in [0, 1]^2, labelled -1 where x0 <= x1 and +1 otherwise. For each seed, both
losses train w . x (no bias) from the same glorot-uniform weights with plain SGD, one sample
per update in the same shuffled order (jaxsched.linear). Writes <out>/results.json and figures:
the decision boundaries w . x = 0 over the points (decision_boundaries.png), training loss and
train/test accuracy per epoch (epoch_curves.png) and, with --seeds N > 1, the distribution of
test accuracies over the seeds (test_accuracy_seeds.png); prints the test-accuracy table.
Everything takes a second, so a rerun always recomputes (--fresh changes nothing).
"""

import argparse
import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments import common
from experiments.configs.perceptron import DEFAULT, PROTOCOLS, SMOKE, Config
from jaxsched import linear, plots, results

NAME = "perceptron"
TRUE_NORMAL = (1.0, -1.0)  # w . x > 0 <=> x0 > x1 <=> label +1
CLI_RENAMES = {"learning_rate": "lr", "repeats": "seeds"}  # config field -> CLI option


def seed_outcome(key: jax.Array, config: Config) -> dict[str, Any]:
    """Data, initial weights and each loss's training trace for one seed's `key`.

    Returns {"x_train" [N, 2], "y_train" [N], "x_test" [M, 2], "y_test" [M], "w0" [2],
    "initial_test_accuracy", loss name: {"weights" [E, 2], "train_loss" [E],
    "train_accuracy" [E], "test_accuracy" [E]}}; accuracies are fractions in [0, 1].
    """
    k_train, k_test, k_init, k_order = jax.random.split(key, 4)
    x, y = linear.linearly_separable_2d(k_train, config.train_examples)
    x_test, y_test = linear.linearly_separable_2d(k_test, config.test_examples)
    w0 = linear.INITIALIZERS[config.init](k_init, 2)
    out: dict[str, Any] = {
        "x_train": x,
        "y_train": y,
        "x_test": x_test,
        "y_test": y_test,
        "w0": w0,
        "initial_test_accuracy": linear.accuracy(w0, x_test, y_test),
    }
    for name in config.losses:
        trace = linear.sgd_per_sample(
            linear.LOSSES[name],
            w0,
            x,
            y,
            k_order,
            learning_rate=config.learning_rate,
            epochs=config.epochs,
            shuffle=config.shuffle,
        )
        out[name] = {
            "weights": trace.weights,
            "train_loss": trace.loss,
            "train_accuracy": trace.accuracy,
            "test_accuracy": jax.vmap(linear.accuracy, (0, None, None))(
                trace.weights, x_test, y_test
            ),
        }
    return out


@functools.partial(jax.jit, static_argnames="config")
def seed_outcomes(seeds: jax.Array, config: Config) -> dict[str, Any]:
    """`seed_outcome` of jax.random.key(s) for each s in int[S], stacked on a leading axis."""
    return jax.vmap(lambda s: seed_outcome(jax.random.key(s), config))(seeds)


def boundary_angle_deg(w: np.ndarray) -> float:
    """Angle (degrees, 0..180) between w and the true normal (1, -1); 180 = labels flipped."""
    norm = float(np.linalg.norm(w))
    if norm == 0:
        return math.nan
    cos = float(np.dot(w, TRUE_NORMAL)) / (norm * math.sqrt(2))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def run(
    config: Config, workdir: str | Path, *, quiet: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Trains every loss on seed `config.seed` (and `repeats` seeds); returns the results doc."""
    del quiet  # nothing to show progress for
    recorder = common.Recorder(NAME, config, Path(workdir))
    recorder.begin(fresh=fresh)
    if recorder.finished_document is not None:
        print(f"reusing the complete {recorder.results_path} of this config (--fresh redoes it)")
        return recorder.finished_document
    seeds = np.arange(config.seed, config.seed + config.repeats)
    start = time.perf_counter()
    # Only shapes, losses and hyperparameters are static: seeds enter as data (no recompiling).
    static = dataclasses.replace(config, seed=0, repeats=1)
    batch = jax.tree.map(np.asarray, seed_outcomes(jnp.asarray(seeds), static))
    train_time_s = time.perf_counter() - start
    first = jax.tree.map(lambda a: a[0], batch)
    runs = [_run_record(name, first, config) for name in config.losses]
    summary: dict[str, Any] = {
        "seed": config.seed,
        "test_accuracy": {r["loss"]: r["final"]["test_accuracy"] for r in runs},
        "initial_weights": first["w0"],
        "initial_test_accuracy": float(
            _fraction(first["initial_test_accuracy"], config.test_examples)
        ),
        "train_time_s": train_time_s,  # all seeds, compilation included
        "data": {k: first[k] for k in ("x_train", "y_train", "x_test", "y_test")},
    }
    if config.repeats > 1:
        summary["seeds"] = {"seeds": seeds, **_seed_stats(batch, config)}
    doc = recorder.write(runs, summary, results.DONE)
    _figures(doc, recorder.workdir)
    return doc


def _fraction(accuracy: np.ndarray, n: int) -> np.ndarray:
    """A float32 accuracy over n samples as the exact float64 fraction k / n."""
    return np.round(np.asarray(accuracy, np.float64) * n) / n


def _run_record(name: str, outcome: dict[str, Any], config: Config) -> dict[str, Any]:
    trace = {
        **outcome[name],
        "train_accuracy": _fraction(outcome[name]["train_accuracy"], config.train_examples),
        "test_accuracy": _fraction(outcome[name]["test_accuracy"], config.test_examples),
    }
    final_w = trace["weights"][-1]
    epochs = {
        "epoch": list(range(1, config.epochs + 1)),
        "train_loss": trace["train_loss"],
        "train_accuracy": trace["train_accuracy"],
        "test_accuracy": trace["test_accuracy"],
        "weights": trace["weights"],
    }
    return {
        "key": name,
        "loss": name,
        "seed": config.seed,
        "initial_weights": outcome["w0"],
        "final_weights": final_w,
        "boundary_angle_deg": boundary_angle_deg(final_w),
        "final": {
            "status": results.DONE,
            "epochs": config.epochs,
            "train_loss": float(trace["train_loss"][-1]),
            "train_accuracy": float(trace["train_accuracy"][-1]),
            "test_accuracy": float(trace["test_accuracy"][-1]),
        },
        "history": {"status": results.DONE, "epochs": epochs},
    }


def _seed_stats(batch: dict[str, Any], config: Config) -> dict[str, Any]:
    """Per loss: final test accuracy of each seed, its mean, sample std (ddof=1), min, max."""
    stats = {}
    for name in config.losses:
        acc = _fraction(batch[name]["test_accuracy"][:, -1], config.test_examples)
        angles = [boundary_angle_deg(w) for w in batch[name]["weights"][:, -1]]
        stats[name] = {
            "mean": float(acc.mean()),
            "std": float(acc.std(ddof=1)),
            "min": float(acc.min()),
            "max": float(acc.max()),
            "mean_boundary_angle_deg": float(np.mean(angles)),
            "test_accuracy": acc,
        }
    return stats


def _line(ax: plt.Axes, w: Any, **kwargs: Any) -> None:
    """Draws the line w . x = 0 (through the origin, perpendicular to w)."""
    w = np.asarray(w, dtype=float)
    if not np.any(w):
        return
    d = np.array([-w[1], w[0]]) / np.linalg.norm(w)
    t = np.array([-2.0, 2.0])
    ax.plot(t * d[0], t * d[1], **kwargs)


def boundaries_figure(doc: dict[str, Any]) -> plt.Figure:
    """Training (large) and test (small) points coloured by label, the true boundary x0 = x1,
    the initial weights' boundary and each trained model's w . x = 0."""
    data = doc["summary"]["data"]
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    for label, color in ((-1.0, "tab:blue"), (1.0, "tab:red")):
        test = np.array(data["x_test"])[np.array(data["y_test"]) == label]
        train = np.array(data["x_train"])[np.array(data["y_train"]) == label]
        ax.scatter(test[:, 0], test[:, 1], s=6, color=color, alpha=0.25, lw=0)
        ax.scatter(
            train[:, 0],
            train[:, 1],
            s=55,
            color=color,
            edgecolor="k",
            label=f"train, y = {label:+.0f}",
        )
    ax.plot([0, 1], [0, 1], "k--", lw=1.5, label="true boundary x0 = x1")
    w0 = doc["summary"]["initial_weights"]
    _line(
        ax,
        w0,
        color="0.5",
        ls=":",
        lw=1.5,
        label=f"initial w = ({w0[0]:.2f}, {w0[1]:.2f}), test acc "
        f"{doc['summary']['initial_test_accuracy']:.3f}",
    )
    for run, color in zip(doc["runs"], ("tab:green", "tab:purple", "tab:orange"), strict=False):
        w = run["final_weights"]
        _line(
            ax,
            w,
            color=color,
            lw=2,
            label=f"{run['loss']}: w = ({w[0]:.2f}, {w[1]:.2f}), "
            f"test acc {run['final']['test_accuracy']:.3f}",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_title(
        f"decision boundaries w . x = 0 after {doc['config']['epochs']} epochs "
        f"(seed {doc['summary']['seed']}; faint: test points)",
        fontsize=9,
    )
    # Below the axes: inside, it would hide points. A line missing the square (w0 with both
    # components of one sign) puts every point in one class.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2)
    fig.tight_layout()
    return fig


def epoch_figure(doc: dict[str, Any]) -> plt.Figure:
    """Per-epoch training loss (left) and train / test accuracy (right) of each loss."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for run, color in zip(doc["runs"], ("tab:green", "tab:purple", "tab:orange"), strict=False):
        epochs = run["history"]["epochs"]
        ax_loss.plot(epochs["epoch"], epochs["train_loss"], "o-", color=color, label=run["loss"])
        ax_acc.plot(
            epochs["epoch"],
            epochs["train_accuracy"],
            "o-",
            color=color,
            label=f"{run['loss']}, train",
        )
        ax_acc.plot(
            [0, *epochs["epoch"]],
            [doc["summary"]["initial_test_accuracy"], *epochs["test_accuracy"]],
            "s--",
            color=color,
            ms=4,
            label=f"{run['loss']}, test",
        )
    ax_loss.set_ylabel("training loss")
    ax_acc.set_ylabel("accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"one sample per update, lr {doc['config']['learning_rate']:g} "
        f"(seed {doc['summary']['seed']}); train: mean over the epoch, each sample before its "
        "update; test: after the epoch (epoch 0: initial weights)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def seeds_figure(doc: dict[str, Any]) -> plt.Figure:
    """Histogram of the final test accuracy over the seeds, one per loss, mean marked."""
    stats = doc["summary"]["seeds"]
    names = [r["loss"] for r in doc["runs"]]
    values = np.concatenate([stats[n]["test_accuracy"] for n in names])
    bins = np.linspace(values.min(), 1.0, 26) if values.min() < 1 else 10
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, color in zip(names, ("tab:green", "tab:purple", "tab:orange"), strict=False):
        s = stats[name]
        ax.hist(
            s["test_accuracy"],
            bins=bins,
            alpha=0.5,
            color=color,
            label=f"{name}: {s['mean']:.4f} +- {s['std']:.4f}",
        )
        ax.axvline(s["mean"], color=color, ls="--")
    ax.set_xlabel("test accuracy after the last epoch")
    ax.set_ylabel("seeds")
    ax.set_title(f"{len(stats['seeds'])} seeds (data, initial weights, order)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _figures(doc: dict[str, Any], workdir: Path) -> None:
    plots.save(boundaries_figure(doc), workdir / "decision_boundaries.png")
    plots.save(epoch_figure(doc), workdir / "epoch_curves.png")
    if "seeds" in doc["summary"]:
        plots.save(seeds_figure(doc), workdir / "test_accuracy_seeds.png")


SINGLE_DEVICE = "its linear models train by per-sample SGD in one lax.scan, not loop.fit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--losses", nargs="+", choices=tuple(linear.LOSSES))
    parser.add_argument("--epochs", type=int, help="passes over the training points")
    parser.add_argument(
        "--init", choices=tuple(linear.INITIALIZERS), help="initial weights (glorot_uniform)"
    )
    parser.add_argument("--lr", type=float, help="SGD learning rate (default 0.025)")
    parser.add_argument("--train-examples", type=int, help="training points (default 20)")
    parser.add_argument("--test-examples", type=int, help="test points (default 1000)")
    parser.add_argument(
        "--no-shuffle",
        dest="shuffle",
        action="store_const",
        const=False,
        help="visit the training points in index order every epoch",
    )
    parser.add_argument(
        "--seeds", type=int, help="also run seeds seed .. seed+N-1 and report mean +- std"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = common.experiment_parser(NAME, __doc__, single_device=SINGLE_DEVICE)
    add_arguments(parser)
    return parser.parse_args(argv)


def report(doc: dict[str, Any], workdir: Path) -> None:
    summary = doc["summary"]
    seeds = summary.get("seeds")
    header = f"{'loss':<12} test acc (seed {doc['config']['seed']})"
    if seeds:
        header += f"   mean +- std over {len(seeds['seeds'])} seeds"
    print(header)
    for run_ in doc["runs"]:
        row = f"{run_['loss']:<12} {common.fmt(run_['final']['test_accuracy']):<18}"
        if seeds:
            s = seeds[run_["loss"]]
            row += f"   {s['mean']:.4f} +- {s['std']:.4f}"
        print(row.rstrip())
    print(f"wrote {workdir}/results.json and figures")


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
        single_device=SINGLE_DEVICE,
        renames=CLI_RENAMES,
    )


if __name__ == "__main__":
    common.exit_with(main())
