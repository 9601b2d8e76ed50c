"""Strong and weak scaling of data-parallel training, measured and predicted.

    python -m experiments.scaling            # LeNet-5 + ResNet-44 on 1, 2, 4, 8 devices (~10 min)
    python -m experiments.scaling --smoke    # seconds
    python -m experiments.scaling --devices 4    # measure on 1, 2, 4 devices

Measured: LeNet-5 on real Fashion-MNIST and ResNet-44 on CIFAR-shaped random input
[B, 32, 32, 3] (a timing workload, not an accuracy result), strong scaling (global batch fixed)
and weak scaling (per-device batch fixed). Each configuration is one data-parallel training step
(`jax.shard_map` over a one-axis mesh: per-device forward/backward, SGD with momentum) compiled
twice, with and without `jax.lax.pmean` of the gradients: the median warm step time of the
synchronised step is the step time, the unsynchronised one the compute, their difference the
communication. Compile time is reported apart. The all-reduced bytes per step are read from
the compiled HLO (all-reduce operand sizes) and checked against 4 x parameters, as are those of
the step `loop.fit(devices=N)` runs (XLA-inserted all-reduce).

On a CPU, JAX sees one device: `python -m experiments.scaling` first asks JAX for 8 CPU devices
(`jaxsched.parallel.simulate_cpu_devices`, before any JAX computation), unless XLA_FLAGS
(--xla_force_host_platform_device_count=N) or JAX_NUM_CPU_DEVICES already sets a count; more
than 8 needs it set by hand. `run` called from Python uses the devices JAX has. The 8 simulated
devices share the machine's cores, so measured times show no real speedup: they validate the
data-parallel step and its communication volume. On a machine with several GPUs the setting
changes nothing and the real devices are measured.

Predicted (jaxsched.scaling): a ring all-reduce of 4 x parameters bytes over PCIe 4.0, NVLink 3
and 100 Gb Ethernet, efficiency on 1-64 devices for LeNet-5, ResNet-44, AlexNet and VGG19, the
compute time from training FLOPs over the rate measured here ("this_cpu") or an assumed
A100-class rate ("gpu_assumed"). Writes <out>/results.json, speedup.png and efficiency.png.
"""

import argparse
import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec

from experiments import common
from experiments.configs.scaling import DEFAULT, SMOKE, Config
from jaxsched import arithmetic, data, losses, optimizers, parallel, plots, results, scaling, train
from jaxsched.models import LeNet5, ResNetV1
from jaxsched.models.classic import VGG19, AlexNet

SIMULATED_DEVICES = 8  # CPU devices `python -m experiments.scaling` asks for
NAME = "scaling"
BYTES_PER_PARAM = 4  # float32 gradients
TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (about twice the forward)
NOTE = (
    "The measured devices are simulated: XLA's CPU backend split into several devices that "
    "share this machine's CPU cores, so the measured step times show no real speedup (more "
    "devices only divide the same cores; the all-reduce is a memory copy). Read the model's "
    "predictions for real interconnects first; the measurements validate the data-parallel "
    "step (it runs, synchronises the gradients) and its communication volume (all-reduced "
    "bytes per step read from the compiled HLO = 4 bytes x parameters). ResNet input is "
    "CIFAR-shaped random data: a timing workload, not an accuracy result."
)
MEASURED_COLORS = ("tab:blue", "tab:orange", "tab:olive", "tab:cyan", "tab:gray", "black")
LINK_COLORS = ("tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")


def grad_all_reduce(axis: str = parallel.DATA_AXIS) -> optax.GradientTransformation:
    """An optax stage that averages the gradients over the mesh axis `axis` (inside shard_map):
    the data-parallel all-reduce, the only collective of the step."""
    return optax.GradientTransformation(
        lambda params: optax.EmptyState(),
        lambda updates, state, params=None: (jax.lax.pmean(updates, axis), state),
    )


def models(config: Config) -> dict[str, tuple[Any, tuple[int, int, int]]]:
    """name -> (Flax model, one image's shape) for the measured and the predicted models."""
    return {
        "lenet5": (LeNet5(), (28, 28, 1)),
        f"resnet{config.resnet_depth}": (ResNetV1(depth=config.resnet_depth), (32, 32, 3)),
        "alexnet": (AlexNet(num_classes=1000), (227, 227, 3)),
        "vgg19": (VGG19(num_classes=1000), (224, 224, 3)),
    }


def model_facts(model: Any, image_shape: Sequence[int]) -> dict[str, float]:
    """Parameters and FLOPs per image (XLA's cost analysis of the forward pass, inference
    mode, times TRAIN_FLOPS_PER_FORWARD for a training step), from shapes only."""
    x = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)
    params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))
    forward = arithmetic.xla_flops(functools.partial(model.apply, train=False), variables, x)
    return {
        "params": params,
        "gradient_bytes": BYTES_PER_PARAM * params,
        "forward_flops_per_image": forward,
        "train_flops_per_image": TRAIN_FLOPS_PER_FORWARD * forward,
    }


def _optimizer(config: Config) -> optax.GradientTransformation:
    return optimizers.make("sgd", config.learning_rate, momentum=config.momentum)


def time_step(
    model: Any,
    config: Config,
    images: np.ndarray,
    labels: np.ndarray,
    devices: int,
    sync: bool,
    steps: int,
) -> dict[str, Any]:
    """One data-parallel training step of `model` on the global batch (images [B, H, W, C],
    labels [B]) split over the first `devices` devices, compiled once, run once to warm up and
    `steps` times timed (each waited for). With `sync` the gradients are all-reduced (pmean)
    before the update; without, every device updates from its own share (compute only).

    Returns {"compile_s", "step_s" (median), "step_times_s", "allreduce_bytes" and
    "allreduce_ops" (compiled HLO), "lowered_allreduce_bytes" (the program before XLA's
    optimizations)}.
    """
    mesh = parallel.make_mesh(devices)
    tx = optax.chain(grad_all_reduce(), _optimizer(config)) if sync else _optimizer(config)
    state = train.init_train_state(model, tx, jax.random.key(config.seed), images[:1])
    rows = PartitionSpec(parallel.DATA_AXIS)  # the batch, split along the mesh
    step = jax.jit(
        jax.shard_map(
            train.make_train_step(model, tx),
            mesh=mesh,
            in_specs=(PartitionSpec(), rows, rows),
            out_specs=(PartitionSpec(), PartitionSpec()),
            check_vma=False,  # without sync the per-device states differ: timing only
        ),
        donate_argnums=0,
    )
    state = parallel.replicate(mesh, state)
    batch = parallel.shard_batch(mesh, images, labels)
    start = time.perf_counter()
    lowered = step.lower(state, *batch)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    hlo_bytes, hlo_ops = parallel.hlo_allreduce_bytes(compiled.as_text())
    state, metrics = compiled(state, *batch)
    jax.block_until_ready((state, metrics))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = compiled(state, *batch)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
    return {
        "compile_s": compile_s,
        "step_s": float(np.median(times)),
        "step_times_s": times,
        "allreduce_bytes": hlo_bytes,
        "allreduce_ops": hlo_ops,
        "lowered_allreduce_bytes": parallel.stablehlo_allreduce_bytes(lowered.as_text())[0],
    }


def fit_step_allreduce_bytes(
    model: Any, config: Config, images: np.ndarray, labels: np.ndarray, devices: int
) -> dict[str, int]:
    """All-reduce bytes of the step `loop.fit(devices=N)` runs: jaxsched's jitted train step
    with the batch sharded and the state replicated (XLA inserts the collectives: gradients,
    synchronised BatchNorm statistics, the batch's loss and accuracy)."""
    mesh = parallel.make_mesh(devices)
    tx = _optimizer(config)
    state = train.init_train_state(model, tx, jax.random.key(config.seed), images[:1])
    state = parallel.replicate(mesh, state)
    batch = parallel.shard_batch(mesh, images, labels)
    compiled = jax.jit(train.make_train_step(model, tx)).lower(state, *batch).compile()
    total, ops = parallel.hlo_allreduce_bytes(compiled.as_text())
    return {"devices": devices, "allreduce_bytes": total, "allreduce_ops": ops}


def identical_gradients(
    model: Any, config: Config, images: np.ndarray, labels: np.ndarray
) -> list[list[str]]:
    """Groups (paths) of parameters whose gradients on this batch are bit-identical arrays,
    e.g. a projection's bias and the BatchNorm shift added to the same sum in ResNet's
    downsampling blocks. XLA merges the all-reduces of such provably equal values (CSE), so
    the compiled step sends (group size - 1) fewer copies of each."""
    tx = _optimizer(config)
    state = train.init_train_state(model, tx, jax.random.key(config.seed), images[:1])

    def loss(params: Any) -> jax.Array:
        variables = {"params": params, "batch_stats": state.batch_stats}
        logits, _ = model.apply(variables, images, train=True, mutable=["batch_stats"])
        return losses.cross_entropy(logits, labels)

    grads = jax.jit(jax.grad(loss))(state.params)
    groups: dict[tuple, list[str]] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(grads):
        value = np.asarray(leaf)
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        groups.setdefault((value.shape, value.tobytes()), []).append(name)
    return [sorted(names) for names in groups.values() if len(names) > 1]


def measured_configs(
    strong: Sequence[int], weak: Sequence[int], device_counts: Sequence[int]
) -> list[dict[str, int | str]]:
    """Every (mode, batch, devices) to measure, with its global and per-device batch. Strong
    batch B on N devices is the same step as weak batch B / N: it is measured once."""
    rows = []
    for mode, batches in (("strong", strong), ("weak", weak)):
        for batch in batches:
            for n in device_counts:
                global_batch = batch if mode == "strong" else batch * n
                rows.append(
                    {
                        "mode": mode,
                        "batch": batch,
                        "devices": n,
                        "global_batch": global_batch,
                        "per_device_batch": global_batch // n,
                    }
                )
    return rows


def _inputs(name: str, config: Config, global_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """LeNet-5: the first `global_batch` real Fashion-MNIST training images, scaled to [0, 1];
    ResNet: CIFAR-shaped random normal images with random labels (seeded)."""
    if name == "lenet5":
        train_ds, _ = data.load_splits(
            config.dataset, config.data_dir, "scale", global_batch, 1, config.seed
        )
        return train_ds.images[:global_batch], train_ds.labels[:global_batch]
    rng = np.random.default_rng(config.seed)
    images = rng.standard_normal((global_batch, 32, 32, 3), dtype=np.float32)
    return images, rng.integers(0, 10, global_batch).astype(np.int32)


def measure_model(
    name: str, model: Any, config: Config, recorder: common.Recorder, runs: list, quiet: bool
) -> dict[str, Any]:
    """Measures every configuration of `name` into `runs` (results.json rewritten after each
    configuration); returns its communication-volume check."""
    prefix = "lenet" if name == "lenet5" else "resnet"
    rows = measured_configs(
        getattr(config, f"{prefix}_strong_batches"),
        getattr(config, f"{prefix}_weak_batches"),
        config.device_counts,
    )
    steps = getattr(config, f"{prefix}_steps")
    images, labels = _inputs(name, config, max(r["global_batch"] for r in rows))
    cache: dict[tuple[int, int], dict[str, Any]] = {}
    earlier: dict[tuple[int, int], str] = {}
    for row in rows:
        key = (row["global_batch"], row["devices"])
        if key not in cache:
            gb = row["global_batch"]
            # One device exchanges nothing: its pmean is a local copy, so the step without
            # it is not compiled and the communication is 0.
            variants = (("sync", True), ("no_sync", False))[: 1 if row["devices"] == 1 else 2]
            cache[key] = {
                variant: time_step(
                    model, config, images[:gb], labels[:gb], row["devices"], sync, steps
                )
                for variant, sync in variants
            }
            cache[key].setdefault(
                "no_sync", {**cache[key]["sync"], "compile_s": 0.0, "allreduce_bytes": None}
            )
            cache[key]["new"] = True
        sync, no_sync = cache[key]["sync"], cache[key]["no_sync"]
        comm = sync["step_s"] - no_sync["step_s"]
        compile_s = {"sync": sync["compile_s"], "no_sync": no_sync["compile_s"]}
        if not cache[key].pop("new", False):  # the same step as an earlier configuration
            compile_s = {"sync": 0.0, "no_sync": 0.0, "same_step_as": earlier[key]}
        earlier.setdefault(key, f"{name}/{row['mode']}/{row['batch']}/{row['devices']}")
        runs.append(
            {
                "key": f"{name}/{row['mode']}/{row['batch']}/{row['devices']}",
                "model": name,
                **row,
                "step_s": sync["step_s"],
                "compute_s": no_sync["step_s"],
                "comm_s": max(comm, 0.0),
                "comm_s_raw": comm,
                "throughput_img_s": row["global_batch"] / sync["step_s"],
                "compile_s": compile_s,
                "allreduce_bytes": sync["allreduce_bytes"],
                "allreduce_ops": sync["allreduce_ops"],
                "lowered_allreduce_bytes": sync["lowered_allreduce_bytes"],
                "no_sync_allreduce_bytes": no_sync["allreduce_bytes"],
                "step_times_s": {"sync": sync["step_times_s"], "no_sync": no_sync["step_times_s"]},
            }
        )
        if not quiet:
            print(_row(runs[-1]), flush=True)
        recorder.write(runs, {"note": NOTE}, "running")
    _speedups([r for r in runs if r["model"] == name])
    top = max(config.device_counts)
    fit_devices = top if top > 1 else 1
    gb = parallel.round_up(max(fit_devices, 8), fit_devices)
    fit_step = fit_step_allreduce_bytes(model, config, images[:gb], labels[:gb], fit_devices)
    return fit_step, identical_gradients(model, config, images[:gb], labels[:gb])


def _speedups(runs: list[dict[str, Any]]) -> None:
    """Adds speedup over one device and parallel efficiency (speedup / N) to every run:
    strong t(1) / t(N); weak (throughput ratio) N t(1) / t(N)."""
    for run in runs:
        base = next(
            r
            for r in runs
            if r["mode"] == run["mode"] and r["batch"] == run["batch"] and r["devices"] == 1
        )
        n = run["devices"]
        ratio = base["step_s"] / run["step_s"]
        run["speedup"] = ratio if run["mode"] == "strong" else n * ratio
        run["efficiency"] = run["speedup"] / n


def predictions(
    config: Config, facts: dict[str, dict[str, float]], cpu_rates: dict[str, float]
) -> dict[str, Any]:
    """{basis: {model: {mode: {link: Prediction as lists}}}} for the bases "gpu_assumed"
    (config.gpu_flops_per_s) and "this_cpu" (the measured rate of the model, or of ResNet for
    the models not measured), plus each basis's single-device compute seconds."""
    resnet = f"resnet{config.resnet_depth}"
    out: dict[str, Any] = {}
    for basis in ("gpu_assumed", "this_cpu"):
        out[basis] = {}
        for model, f in facts.items():
            rate = (
                config.gpu_flops_per_s
                if basis == "gpu_assumed"
                else cpu_rates.get(model, cpu_rates[resnet])
            )
            per_mode = {}
            for mode, batch in (
                ("strong", config.predict_strong_batch),
                ("weak", config.predict_weak_batch),
            ):
                compute = f["train_flops_per_image"] * batch / rate
                per_mode[mode] = {"batch": batch, "compute_s_single": compute}
                for link in config.interconnects:
                    p = scaling.predict(
                        compute, f["gradient_bytes"], list(config.predict_devices), link, mode
                    )
                    per_mode[mode][link] = {
                        k: np.asarray(v).tolist() for k, v in p._asdict().items()
                    }
            out[basis][model] = {"flops_per_s": rate, **per_mode}
    return out


def run(
    config: Config,
    workdir: str | Path,
    *,
    quiet: bool = False,
    fresh: bool = False,
) -> dict[str, Any]:
    """Measures and predicts; returns the results document (also in workdir/results.json).
    Not resumable: speedups compare timings from one session; a complete results.json of the
    same config is reused, `fresh` sets it aside and measures again."""
    recorder = common.Recorder(NAME, config, Path(workdir), max(config.device_counts))
    recorder.begin(datasets=[config.dataset], fresh=fresh)
    if recorder.finished_document is not None:
        print(f"reusing the complete {recorder.results_path} of this config (--fresh redoes it)")
        return recorder.finished_document
    nets = models(config)
    facts = {name: model_facts(model, shape) for name, (model, shape) in nets.items()}
    runs: list[dict[str, Any]] = []
    comm_check = {}
    for name in ("lenet5", f"resnet{config.resnet_depth}"):
        fit_step, identical = measure_model(name, nets[name][0], config, recorder, runs, quiet)
        mine = [r for r in runs if r["model"] == name]
        multi = [r for r in mine if r["devices"] > 1] or mine
        expected = facts[name]["gradient_bytes"]
        params = {
            "/".join(str(getattr(k, "key", k)) for k in path): math.prod(leaf.shape)
            for path, leaf in jax.tree_util.tree_leaves_with_path(
                jax.eval_shape(
                    functools.partial(nets[name][0].init, train=False),
                    jax.random.key(0),
                    jax.ShapeDtypeStruct((1, *nets[name][1]), jnp.float32),
                )["params"]
            )
        }
        merged = BYTES_PER_PARAM * sum(params[g[0]] * (len(g) - 1) for g in identical)
        comm_check[name] = {
            "params": facts[name]["params"],
            "expected_bytes": expected,
            "hlo_allreduce_bytes": sorted({r["allreduce_bytes"] for r in multi}),
            "lowered_allreduce_bytes": sorted({r["lowered_allreduce_bytes"] for r in multi}),
            "lowered_matches_4x_params": all(
                r["lowered_allreduce_bytes"] == expected for r in mine
            ),
            "hlo_matches_4x_params": all(r["allreduce_bytes"] == expected for r in multi),
            "identical_gradients": identical,
            "merged_bytes": merged,
            "hlo_matches_4x_params_less_merged": all(
                r["allreduce_bytes"] == expected - merged for r in multi
            ),
            "no_sync_allreduce_bytes": max(
                (r["no_sync_allreduce_bytes"] or 0 for r in multi), default=0
            ),
            "fit_step": fit_step,
        }
    cpu_rates = {}
    for name in comm_check:
        base = max(
            (r for r in runs if r["model"] == name and r["devices"] == 1 and r["mode"] == "strong"),
            key=lambda r: r["global_batch"],
        )
        cpu_rates[name] = (
            facts[name]["train_flops_per_image"] * base["global_batch"] / base["compute_s"]
        )
    predicted = predictions(config, facts, cpu_rates)
    summary = {
        "note": NOTE,
        "simulated_cpu_devices": jax.default_backend() == "cpu",
        "device_kind": jax.devices()[0].device_kind,
        "models": facts,
        "communication": comm_check,
        "cpu_flops_per_s": cpu_rates,
        "measured_table": measured_table(runs),
        "predicted_table": predicted_table(predicted, config),
        "predictions": predicted,
        "compile_s_total": sum(r["compile_s"]["sync"] + r["compile_s"]["no_sync"] for r in runs),
    }
    doc = recorder.write(runs, summary, results.DONE)
    for metric in ("speedup", "efficiency"):
        plots.save(figure(doc, metric), recorder.workdir / f"{metric}.png")
    return doc


def measured_table(runs: list[dict[str, Any]]) -> str:
    """Markdown: per model, mode and batch, the step time, throughput and efficiency per N."""
    counts = sorted({r["devices"] for r in runs})
    header = (
        "| model | mode | batch | "
        + " | ".join(f"N={n}: ms, img/s, eff" for n in counts)
        + " | all-reduce bytes |\n|---|---|---|"
        + "---|" * (len(counts) + 1)
    )
    lines = [header]
    groups = sorted({(r["model"], r["mode"], r["batch"]) for r in runs})
    for model, mode, batch in groups:
        cells = []
        mine = {
            r["devices"]: r
            for r in runs
            if (r["model"], r["mode"], r["batch"]) == (model, mode, batch)
        }
        for n in counts:
            r = mine.get(n)
            cells.append(
                "-"
                if r is None
                else f"{1e3 * r['step_s']:.1f}, {r['throughput_img_s']:.0f}, {r['efficiency']:.2f}"
            )
        nbytes = max(r["allreduce_bytes"] for r in mine.values())
        unit = "global" if mode == "strong" else "per device"
        lines.append(
            f"| {model} | {mode} | {batch} ({unit}) | " + " | ".join(cells) + f" | {nbytes:,} |"
        )
    return "\n".join(lines)


def predicted_table(predicted: dict[str, Any], config: Config) -> str:
    """Markdown: predicted parallel efficiency per model, link and mode for every N > 1."""
    counts = [n for n in config.predict_devices if n > 1]
    lines = []
    for basis, models_ in predicted.items():
        lines.append(
            f"\n{basis}\n\n| model | link | mode | "
            + " | ".join(f"N={n}" for n in counts)
            + " |\n|---|---|---|"
            + "---|" * len(counts)
        )
        for model, per_mode in models_.items():
            for link in config.interconnects:
                for mode in scaling.MODES:
                    p = per_mode[mode][link]
                    effs = dict(zip(p["devices"], p["efficiency"], strict=True))
                    lines.append(
                        f"| {model} | {link} | {mode} | "
                        + " | ".join(f"{effs[n]:.2f}" for n in counts)
                        + " |"
                    )
    return "\n".join(lines).strip()


def figure(doc: dict[str, Any], metric: str):
    """Per model: measured `metric` (solid, simulated devices) per mode and batch, and the
    model's prediction (dashed, "gpu_assumed" compute) per link and mode."""
    predicted = doc["summary"]["predictions"]["gpu_assumed"]
    links = list(doc["config"]["interconnects"])
    panels = {}
    for model, per_mode in predicted.items():
        lines = {}
        for mode, batch in sorted(
            {(r["mode"], r["batch"]) for r in doc["runs"] if r["model"] == model}
        ):
            mine = sorted(
                (
                    r
                    for r in doc["runs"]
                    if (r["model"], r["mode"], r["batch"]) == (model, mode, batch)
                ),
                key=lambda r: r["devices"],
            )
            lines[f"measured {mode} {batch}"] = {
                "devices": [r["devices"] for r in mine],
                "values": [r[metric] for r in mine],
                "measured": True,
                "style": {"color": MEASURED_COLORS[len(lines) % len(MEASURED_COLORS)]},
            }
        for mode in scaling.MODES:
            for link in doc["config"]["interconnects"]:
                p = per_mode[mode][link]
                lines[f"model {mode} {per_mode[mode]['batch']}, {link}"] = {
                    "devices": p["devices"],
                    "values": p[metric],
                    "measured": False,
                    "style": {
                        "color": LINK_COLORS[links.index(link) % len(LINK_COLORS)],
                        "ls": "--" if mode == "strong" else "-.",
                    },
                }
        panels[model] = lines
    return plots.scaling(
        panels,
        metric=metric,
        ncols=2,
        title="measured: simulated CPU devices sharing 2 cores (solid, no real speedup possible)\n"
        "model: A100-class compute + ring all-reduce (dashed: strong, dash-dot: weak)",
    )


def _row(run: dict[str, Any]) -> str:
    return (
        f"{run['model']:<9} {run['mode']:<6} batch {run['batch']:<5} N={run['devices']:<2} "
        f"step {1e3 * run['step_s']:8.1f} ms (compute {1e3 * run['compute_s']:8.1f}, comm "
        f"{1e3 * run['comm_s_raw']:+7.1f})  {run['throughput_img_s']:7.0f} img/s  "
        f"all-reduce {run['allreduce_bytes']:,} B  compile "
        f"{run['compile_s']['sync'] + run['compile_s']['no_sync']:.1f} s"
    )


def powers_of_two_up_to(n: int) -> tuple[int, ...]:
    """1, 2, 4, ... <= n, and n itself."""
    counts = [2**k for k in range(n.bit_length()) if 2**k <= n]
    return tuple(counts + ([n] if counts[-1] != n else []))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device-counts", type=int, nargs="+", help="device counts to measure")
    parser.add_argument("--lenet-strong-batches", type=int, nargs="+")
    parser.add_argument("--lenet-weak-batches", type=int, nargs="+")
    parser.add_argument("--resnet-strong-batches", type=int, nargs="+")
    parser.add_argument("--resnet-weak-batches", type=int, nargs="+")
    parser.add_argument("--gpu-flops-per-s", type=float, help="assumed GPU training FLOP rate")


def _device_counts_from_devices(args: argparse.Namespace) -> None:
    """--devices N alone measures 1, 2, 4, ... up to N devices."""
    if args.devices is not None and args.device_counts is None:
        args.device_counts = list(powers_of_two_up_to(args.devices))


def report(doc: dict[str, Any], workdir: Path) -> None:
    s = doc["summary"]
    print(f"\n{NOTE}\n\nmeasured\n{s['measured_table']}\n\npredicted efficiency\n")
    print(s["predicted_table"])
    for name, c in s["communication"].items():
        print(
            f"{name}: {c['params']:,} parameters, all-reduce {c['hlo_allreduce_bytes']} bytes per "
            f"step (4 x params = {c['expected_bytes']:,}); loop.fit's step "
            f"{c['fit_step']['allreduce_bytes']:,}"
        )
    print(f"wrote {workdir}/results.json, speedup.png and efficiency.png")


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
        adjust_args=_device_counts_from_devices,
    )


if __name__ == "__main__":
    # The command line measures on simulated CPU devices where there is one CPU device: set up
    # before anything touches JAX's devices (argument parsing checks --devices against them).
    parallel.simulate_cpu_devices(SIMULATED_DEVICES)
    common.exit_with(main())
