"""ResNet-44 train step with on-device cutout batch augmentation (Hoffer et al.) for M = 1, 2,
4, 8, 16 copies of a batch of B = 64: seconds per step, images/s (M * B images per step),
compile seconds and the step's memory by XLA's memory analysis.

    python -m benchmarks.resnet_step [--smoke]

A throughput figure, not an accuracy result: the input is random CIFAR-shaped data
(float32 [64, 32, 32, 3], 10 classes). The step is `train.make_train_step` with
`augment.make_batch_augment(M, "he+cutout", cutout_size=16)` (crop + flip + cutout of every copy
inside the jitted step) and Adam at Keras's defaults, through `train.CompiledStep` with the
state donated. Memory is `CompiledStep.memory_bytes` (arguments + outputs + temporaries less
donated buffers), a per-executable figure: the process's peak RSS cannot be split per M. The
step row's `extra["profile_us"]` is where one step's time goes: a `jax.profiler` trace of one
more step, the device microseconds per image of each kind of XLA operation
(`common.op_profile`). jaxsched only.

The model is `ResNetV1(depth)` as users get it: on CPU its convolutions compute a batch above
64 images in slices of 64 (`conv_batch_block="auto"`, benchmarks/conv_block.py). The variants
"M=k, unsliced" (`conv_batch_block=None`) are the same step with whole-batch convolutions, the
before of that change, measured in the same run.
"""

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from benchmarks import common
from jaxsched import augment, optimizers, train
from jaxsched.models import ResNetV1

NAME = "resnet_step"


@dataclasses.dataclass(frozen=True)
class Size:
    depth: int
    batch_size: int
    copies: tuple[int, ...]
    cutout_size: int
    steps_per_repetition: int
    conv_batch_block: int | str = "auto"  # ResNetV1's (the smoke size slices at 4 images)
    unsliced_copies: tuple[int, ...] = ()  # the M also measured with conv_batch_block=None


FULL = Size(
    depth=44,
    batch_size=64,
    copies=(1, 2, 4, 8, 16),
    cutout_size=16,
    steps_per_repetition=2,
    unsliced_copies=(4, 16),
)
SMOKE = Size(
    depth=8,
    batch_size=8,
    copies=(1, 2),
    cutout_size=8,
    steps_per_repetition=1,
    conv_batch_block=4,
    unsliced_copies=(2,),
)


def cifar_like(batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images [B, 32, 32, 3] (standard normal) and int32 labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, 32, 32, 3), dtype=np.float32)
    return images, rng.integers(0, 10, batch_size).astype(np.int32)


def make_step(
    depth: int,
    copies: int,
    cutout_size: int,
    sample: np.ndarray,
    conv_batch_block: int | str | None = "auto",
):
    """(CompiledStep, initial TrainState) of ResNet-depth with M = copies cutout batch
    augmentation, Adam (Keras defaults)."""
    model = ResNetV1(depth=depth, conv_batch_block=conv_batch_block)
    tx = optimizers.make("adam", 1e-3, preset="keras")
    batch_aug = augment.make_batch_augment(copies, "he+cutout", cutout_size=cutout_size)
    step = train.CompiledStep(
        train.make_train_step(model, tx, batch_augment=batch_aug), donate_state=True
    )
    return step, train.init_train_state(model, tx, jax.random.key(0), sample[:1])


def measure(size: Size, copies: int, repetitions: int, sliced: bool = True) -> list[dict[str, Any]]:
    """Rows of one M: step time (images/s), compile seconds, XLA memory."""
    images, labels = cifar_like(size.batch_size)
    images, labels = jax.device_put(images), jax.device_put(labels)
    block = size.conv_batch_block if sliced else None
    step, state = make_step(size.depth, copies, size.cutout_size, images, block)
    box = {"state": state}

    def call():
        box["state"], metrics = step(box["state"], images, labels)
        return metrics

    stats = common.repeat(call, repetitions, warmup=1, number=size.steps_per_repetition)
    profile = common.op_profile(call, copies * size.batch_size)
    case = f"ResNet-{size.depth}, B={size.batch_size}"
    variant = f"M={copies}" + ("" if sliced else ", unsliced")
    base = copies == size.copies[0] and sliced
    per_step = copies * size.batch_size
    return [
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            "train step",
            stats,
            items=per_step,
            baseline=base,
            note=f"{per_step} images per step (random data: throughput); "
            "profile_us: µs/image per XLA op kind",
            extra={"profile_us": profile},
        ),
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            "compile",
            [step.compile_time_s],
            baseline=base,
            note="first call, once per M",
        ),
        common.row(
            NAME,
            case,
            "jaxsched",
            variant,
            "step memory (XLA)",
            [step.memory_bytes / 2**20],
            "MiB",
            note="CompiledStep.memory_bytes",
        ),
    ]


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """Every M in turn (jaxsched only)."""
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    rows = []
    cases = [(m, True) for m in size.copies] + [(m, False) for m in size.unsliced_copies]
    for copies, sliced in cases:
        rows += common.peer_rows(
            NAME,
            "jaxsched",
            f"M={copies}" + ("" if sliced else ", unsliced"),
            peers,
            lambda copies=copies, sliced=sliced: measure(size, copies, repetitions, sliced),
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
