"""Cutout batch augmentation (Hoffer et al. 2019) on ResNet-44: validation error per M.

    python -m experiments.batch_augmentation                    # CIFAR-10 (where available)
    python -m experiments.batch_augmentation --dataset fashion_mnist --epochs 3
    python -m experiments.batch_augmentation --smoke            # ResNet-8, seconds

Each run trains the same initialization: "baseline" (He crop+flip, batch B), then M = 1, 2, 4,
8, 16 cutout copies of every sample per step (M*B images a step), augmented on the device inside
the jitted step, so host memory does not grow with M. Every run is checkpointed after each epoch
(orbax) and a rerun resumes it. Writes <out>/results.json and validation_error.png (validation
error per epoch, one line per M); the summary tabulates epochs, updates and seconds to the target
accuracy (or the best accuracy within the cap), seconds per epoch and peak memory per M.
"""

import argparse
import functools
import math
import resource
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments import common
from experiments.configs.batch_augmentation import DEFAULT, RECIPES, SMOKE, Config
from jaxsched import augment, data, loop, losses, optimizers, plots, results, schedules
from jaxsched.models import ResNetV1

NAME = "batch_augmentation"


def recipe(config: Config, steps_per_epoch: int) -> tuple[Any, Any]:
    """(optimizer, regularizer) of `config.recipe`."""
    if config.recipe == "keras":
        tx = optimizers.make("adam", schedules.keras_resnet_decay(steps_per_epoch), preset="keras")
        return tx, functools.partial(losses.l2_penalty, coefficient=1e-4)
    tx = optimizers.make("sgd", schedules.he_et_al_decay(), momentum=0.9)
    # Weight decay 1e-4 added to the gradient (Caffe / PyTorch) = an L2 penalty of 0.5e-4.
    return tx, functools.partial(losses.l2_penalty, coefficient=0.5e-4)


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS counter of this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory(since_reset: bool) -> dict[str, float | None]:
    """Peak host RSS (MiB) since `reset_peak_rss()` (else of the whole process so far) and,
    where the backend reports it (GPU), the device's peak bytes in use."""
    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if since_reset:
        status = Path("/proc/self/status").read_text()
        host = next(int(line.split()[1]) for line in status.splitlines() if "VmHWM" in line) / 1024
    stats = jax.devices()[0].memory_stats() or {}
    device = stats.get("peak_bytes_in_use")
    return {
        "host_rss_mib": host,
        "host_rss_since_run_start": since_reset,
        "device_peak_mib": None if device is None else device / 2**20,
    }


def run(
    config: Config,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
    devices: int | None = None,
) -> dict[str, Any]:
    """Trains the baseline and every M; returns the results document."""
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
        image_size=32,
    )
    train_ds, val_ds = data.split_validation(train_ds, config.validation_examples, config.seed)
    common.check_batch_sizes("batch_size", [config.batch_size], train_ds)
    model = ResNetV1(
        depth=config.depth,
        num_classes=data.NUM_CLASSES[dataset],
        shortcut=config.shortcut,
        bn_momentum=config.bn_momentum,
    )
    steps_per_epoch = data.num_batches(len(train_ds.labels), config.batch_size)
    tx, regularizer = recipe(config, steps_per_epoch)
    _cutout_figure(train_ds, config, recorder.workdir / "cutout_examples.png")

    def train_one(key: str) -> dict[str, Any]:
        copies = 1 if key == "baseline" else int(key.removeprefix("M="))
        since_reset = reset_peak_rss()
        batch_aug = (
            None
            if key == "baseline"
            else augment.make_batch_augment(copies, "he+cutout", cutout_size=config.cutout_size)
        )
        history, test = common.train_and_test(
            model,
            tx,
            train_ds,
            val_ds,
            test_ds,
            epochs=config.epochs,
            batch_size=config.batch_size,
            max_steps=config.max_updates,
            seed=config.seed,
            augment=augment.make("he") if key == "baseline" else None,
            batch_augment=batch_aug,
            regularizer=regularizer,
            max_loss=config.divergence_loss,
            stop_when=loop.target_reached(config.target_accuracy)
            if config.stop_at_target
            else None,
            checkpoint_dir=recorder.checkpoint_root / key.replace("=", "_"),
            checkpoint_identity=recorder.checkpoint_identity(key),
            resume=True,
            devices=devices,
            quiet=quiet,
            description=key,
        )
        epoch_times = history.epochs["train_time_s"]
        final = {
            "status": history.status,
            "copies": copies,
            "epochs": len(epoch_times),
            "test_accuracy": test["accuracy"],
            "time_to_target": loop.time_to_accuracy(history, config.target_accuracy),
            "epoch_time_s": sum(epoch_times[1:]) / (len(epoch_times) - 1)
            if len(epoch_times) > 1
            else (epoch_times or [math.nan])[0],
            "compile_time_s": history.compile_time_s,
            "step_memory_mib": history.step_memory_mib,
            **peak_memory(since_reset),
        }
        return {"key": key, "final": final, "history": history.to_dict()}

    keys = ["baseline"] + [f"M={m}" for m in config.copies]
    runs = common.run_each(keys, done, recorder, train_one, _row, {"dataset": dataset})
    summary = {
        "dataset": dataset,
        "steps_per_epoch": steps_per_epoch,
        "table": [{"run": r["key"], **r["final"]} for r in runs],
    }
    doc = recorder.write(runs, summary, results.DONE)
    labelled = [{**r, "label": r["key"]} for r in doc["runs"]]
    plots.save(
        plots.epoch_metric(
            labelled,
            "val_accuracy",
            error=True,
            title=f"ResNet-{config.depth} on {dataset}: batch augmentation",
        ),
        recorder.workdir / "validation_error.png",
    )
    return doc


def _cutout_figure(train_ds: data.Dataset, config: Config, path: Path) -> None:
    """Two training images before and after cutout, rescaled to [0, 1] for display: a hole is
    zero after normalization, i.e. the dataset mean (grey), as in DeVries & Taylor."""
    images = train_ds.images[:2]
    shift = images.min()  # cutout zeroes the normalized image: show that zero as grey
    after = augment.cutout_batch(jax.random.key(config.seed), images, size=config.cutout_size)
    scale = float(images.max() - shift) or 1.0
    plots.save(
        plots.before_after(
            (images - shift) / scale,
            (np.asarray(after) - shift) / scale,
            f"cutout, side {config.cutout_size}",
        ),
        path,
    )


def _row(run: dict[str, Any]) -> str:
    f, t = run["final"], run["final"]["time_to_target"]
    reached = (
        f"target at epoch {t['epoch']} ({t['seconds']:.0f} s)"
        if t["reached"]
        else f"best val acc {common.fmt(t['best_accuracy'])}"
    )
    return (
        f"{run['key']:<9} {f['status']:<8} {f['epochs']:>3} epochs  {reached}  test acc "
        f"{common.fmt(f['test_accuracy'])}  {f['epoch_time_s']:.1f} s/epoch  "
        f"step {f['step_memory_mib']:.0f} MiB  peak RSS {f['host_rss_mib']:.0f} MiB"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("auto", *data.DATASETS))
    parser.add_argument("--epochs", type=int, help="cap on epochs per run")
    parser.add_argument("--copies", type=int, nargs="+", help="the M values")
    parser.add_argument("--depth", type=int, help="ResNet depth, 6n+2")
    parser.add_argument("--recipe", choices=RECIPES)
    parser.add_argument("--bn-momentum", type=float, help="BatchNorm running-average decay")
    parser.add_argument(
        "--cutout-size", type=int, help="side of the cutout hole in pixels (default 16)"
    )
    parser.add_argument("--train-examples", type=int, help="a seeded subset of the training set")
    parser.add_argument("--validation-examples", type=int, help="held out of the training set")
    parser.add_argument("--test-examples", type=int, help="a seeded subset of the test set")


def report(doc: dict[str, Any], workdir: Path) -> None:
    del doc
    print(f"wrote {workdir}/results.json and {workdir}/validation_error.png")


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
