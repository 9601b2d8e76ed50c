"""MiniGoogLeNet train step (SGD with momentum 0.9) at batch 64 and 512: seconds per warm step,
images/s, first-step and compile seconds, against the same network in Keras and PyTorch; for
jaxsched also XLA's FLOP count of the step and the rate it reaches as a fraction of the
machine's dense float32 matmul rate.

    python -m benchmarks.minigooglenet_step [--smoke] [--peers jaxsched keras torch]

A throughput figure, not an accuracy result: the input is random data shaped like the course's
Fashion-MNIST resized to 32x32 (float32 [B, 32, 32, 1], standard normal; int32 labels in
[0, 10)), the same batch at every step. The optimizer is the notebook's, SGD with momentum 0.9
(rate 0.01: the value does not change the work). Smoke size: batch 8 with a width-0.125
network (every filter count an eighth of the book's).

Peers, one fixed batch each, "train step" = seconds per step over `steps` steps per
repetition after an untimed warm-up:
  jaxsched  `train.make_train_step(MiniGoogLeNet(), sgd)` through `train.CompiledStep` with the
            state donated (the baseline); "compile" is CompiledStep.compile_time_s, "step
            memory (XLA)" its memory analysis.
  keras     the same network in Keras 3 (TensorFlow backend; `peers.keras_tf.minigooglenet`),
            compiled as the course compiles its models (SGD, sparse categorical cross-entropy,
            accuracy; with and without jit_compile, as in `lenet_epoch`) and trained by
            `model.fit(x, y, batch_size=B, epochs=1 + repetitions, shuffle=False)` on `steps`
            copies of the batch: the first epoch is the cold step(s), each later epoch one
            repetition (seconds per step = epoch seconds / steps, fit's per-epoch overhead
            included).
  torch     the same network in PyTorch (`peers.pytorch.minigooglenet`), the plain
            zero_grad / forward / cross-entropy / backward / step loop, eager and under
            `torch.compile` (as in `lenet_epoch`).

FLOPs: XLA's cost analysis of the lowered jaxsched step (`jaxsched.arithmetic.xla_flops`, as
`benchmarks.roofline` counts its steps; the same count is used for no other peer). The matmul
rate is `benchmarks.roofline.matmul_rows` (NumPy's BLAS and `jit(jnp.matmul)`, float32, at
roofline's size), whose rows are repeated here; "fraction of matmul rate" divides the step's
achieved FLOP/s by the faster of the two medians.
"""

import dataclasses
import functools
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from benchmarks import common, roofline
from benchmarks.peers import keras_tf, pytorch
from jaxsched import arithmetic, optimizers, train
from jaxsched.models import MiniGoogLeNet

NAME = "minigooglenet_step"
STEP, COLD, COMPILE = "train step", "first step (compile incl.)", "compile"
MEMORY, RATE, FRACTION = "step memory (XLA)", "achieved FLOP/s", roofline.FRACTION
BASELINE = "CompiledStep"
LEARNING_RATE, MOMENTUM = 0.01, 0.9


@dataclasses.dataclass(frozen=True)
class Size:
    batch_sizes: tuple[int, ...]
    width: float
    steps_per_repetition: int
    matmul: roofline.Size  # the matmul rate's size (its matmul_n, matmul_number)


FULL = Size((64, 512), width=1.0, steps_per_repetition=2, matmul=roofline.FULL)
SMOKE = Size((8,), width=0.125, steps_per_repetition=1, matmul=roofline.SMOKE)


def fashion_like(batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images [B, 32, 32, 1] (standard normal) and int32 labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, 32, 32, 1), dtype=np.float32)
    return images, rng.integers(0, 10, batch_size).astype(np.int32)


def case_name(size: Size, batch_size: int) -> str:
    net = "MiniGoogLeNet" if size.width == 1.0 else f"MiniGoogLeNet width={size.width:g}"
    return f"{net}, B={batch_size}"


def _median(values: Sequence[float]) -> float:
    return common.Stats(tuple(values)).median


def jaxsched_rows(size: Size, batch_size: int, peak: float, repetitions: int) -> list[dict]:
    """The baseline: step time, first step, compile, XLA memory, XLA FLOPs and their rate."""
    images, labels = fashion_like(batch_size)
    images, labels = jax.device_put(images), jax.device_put(labels)
    model = MiniGoogLeNet(width=size.width)
    tx = optimizers.make("sgd", LEARNING_RATE, momentum=MOMENTUM)
    fn = train.make_train_step(model, tx)
    state = train.init_train_state(model, tx, jax.random.key(0), images[:1])
    flops = arithmetic.xla_flops(fn, state, images, labels)
    step = train.CompiledStep(fn, donate_state=True)
    box = {"state": state}

    def call():
        box["state"], metrics = step(box["state"], images, labels)
        return metrics

    cold = common.repeat(call, 1, warmup=0)  # the first call: compilation + one step
    stats = common.repeat(call, repetitions, warmup=1, number=size.steps_per_repetition)
    case = case_name(size, batch_size)
    note = f"{batch_size} images per step (random data: throughput); {flops:.4g} FLOP per step"
    extra = {"xla_flops": flops, "matmul_peak_flops": peak, "width": size.width}
    rate = [flops / t for t in stats.values]

    def row(metric, values, unit="s", **kw):
        return common.row(NAME, case, "jaxsched", BASELINE, metric, values, unit, **kw)

    return [
        row(STEP, stats, items=batch_size, baseline=True, note=note, extra=extra),
        row(COLD, cold, baseline=True, note="compilation + one step"),
        row(COMPILE, [step.compile_time_s], baseline=True, note="CompiledStep.compile_time_s"),
        row(MEMORY, [step.memory_bytes / 2**20], "MiB", note="CompiledStep.memory_bytes"),
        row(
            RATE,
            [r / 1e9 for r in rate],
            "GFLOP/s",
            note="XLA cost analysis of the step (arithmetic.xla_flops) / step time",
            extra=extra,
        ),
        row(
            FRACTION,
            [100 * r / peak for r in rate],
            "%",
            note=f"of {peak / 1e9:.3g} GFLOP/s (the faster matmul above)",
            extra=extra,
        ),
    ]


def peer_step_rows(
    peer: str, variant: str, case: str, out: dict[str, Any], batch_size: int, note: str
) -> list[dict[str, Any]]:
    """Rows of a Keras / torch run: out has "step_s" (seconds per warm step, one per
    repetition), "first_s" (the cold step), "params", "final_loss" and thread settings."""
    extra = {
        k: out[k]
        for k in ("params", "final_loss", "jit_compile", "num_threads", "num_interop_threads")
        if k in out
    }
    overhead = _median(out["first_s"]) - _median(out["step_s"])
    return [
        common.row(
            NAME, case, peer, variant, STEP, out["step_s"], items=batch_size, note=note,
            extra=extra,
        ),
        common.row(
            NAME, case, peer, variant, COLD, out["first_s"],
            note=f"first - warm = {common.format_value(overhead, 's')}", extra=extra,
        ),
    ]  # fmt: skip


def keras_rows(size, batch_size, jit_compile, variant, repetitions):
    images, labels = fashion_like(batch_size)
    steps = size.steps_per_repetition
    out = keras_tf.minigooglenet_steps(
        images,
        labels,
        steps=steps,
        repetitions=repetitions,
        jit_compile=jit_compile,
        width=size.width,
        learning_rate=LEARNING_RATE,
        momentum=MOMENTUM,
    )
    note = (
        f"compile(SGD(0.01, momentum=0.9), jit_compile={jit_compile}); fit, {steps} step(s) "
        "of the batch per epoch, shuffle=False; TF threads default"
    )
    return peer_step_rows("keras", variant, case_name(size, batch_size), out, batch_size, note)


def torch_rows(size, batch_size, compile, variant, repetitions):
    images, labels = fashion_like(batch_size)
    out = pytorch.minigooglenet_steps(
        images,
        labels,
        steps=size.steps_per_repetition,
        repetitions=repetitions,
        compile=compile,
        width=size.width,
        learning_rate=LEARNING_RATE,
        momentum=MOMENTUM,
    )
    note = (
        "torch.compile(model), Inductor, caches off; " if compile else ""
    ) + "plain loop, SGD 0.01 momentum 0.9, set_num_threads(cpu_count)"
    return peer_step_rows("torch", variant, case_name(size, batch_size), out, batch_size, note)


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """The matmul rate first (jaxsched selected), then every peer at every batch size."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    rows: list[dict[str, Any]] = []
    peak = None
    if "jaxsched" in peers:
        matmul = roofline.matmul_rows(size.matmul.matmul_n, repetitions, size.matmul.matmul_number)
        rows += [{**r, "benchmark": NAME} for r in matmul]
        peak = max(r["throughput"] for r in matmul)
    for batch_size in size.batch_sizes:
        case = case_name(size, batch_size)
        runs = [("jaxsched", BASELINE, functools.partial(jaxsched_rows, size, batch_size, peak))]
        runs += [
            ("keras", variant, functools.partial(keras_rows, size, batch_size, jit, variant))
            for variant, jit in keras_tf.VARIANTS.items()
        ]
        runs += [
            ("torch", variant, functools.partial(torch_rows, size, batch_size, comp, variant))
            for variant, comp in pytorch.VARIANTS.items()
        ]
        for peer, variant, measure in runs:
            rows += common.peer_rows(
                NAME,
                peer,
                variant,
                peers,
                functools.partial(measure, repetitions=repetitions),
                case=case,
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
