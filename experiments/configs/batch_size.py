"""Batch-size experiments (sweep, cyclic policies, batch instead of decay): configurations.

All three train LeNet-5 (input + hidden BatchNorm) on Fashion-MNIST with plain SGD; the
learning rate comes from an LR range test (`bounds_from`: "sweep" runs the one-run test first,
or the path of an lr_range_test results.json), or is given (`lr_min` / `lr_max`).
"""

import dataclasses

from experiments.configs.common import LeNetExperiment

CYCLIC_POLICIES = ("fixed", "cyclic", "growing_cyclic", "epoch_cycle", "increase", "clr")


@dataclasses.dataclass(frozen=True)
class SweepConfig(LeNetExperiment):
    """batch_size_sweep: `epochs` at each of `batch_sizes` at the fixed rate lr_min (or `lr`).

    Batches larger than `max_device_batch` are accumulated over micro-batches of that size.
    `tolerance`: the plateau rule's band below the best smoothed accuracy.
    """

    batch_sizes: tuple[int, ...] = tuple(2**k for k in range(4, 14))  # 16 ... 8192
    epochs: int = 5
    lr: float | None = None
    tolerance: float = 0.02
    max_device_batch: int = 1024


@dataclasses.dataclass(frozen=True)
class CyclicConfig(LeNetExperiment):
    """cyclic_batch_size: batch-size policies at a fixed rate vs a fixed batch and a cyclical
    learning rate, for `epochs` epochs each. The fixed rate is `lr`, else the rate of the
    batch-size sweep that gave b_min / b_max, else lr_min.

    b_min / b_max: given, or from a batch_size_sweep results.json (`batch_bounds_from`).
    policies (CYCLIC_POLICIES):
      fixed           batch b_min throughout
      cyclic          cyclic_batch_size(b_min, b_max, step_size_epochs worth of updates)
      growing_cyclic  the cycle whose top doubles each cycle (capped at 8 b_max)
      epoch_cycle     epoch i trains at b_min 2^(i mod levels)
      increase        b_min doubled every `increase_every_epochs` epochs' worth of updates
      clr             batch b_min with cyclic_lr(lr_min, lr_max), triangular
    strategy: "shapes" or "accumulate" (jaxsched.batching).
    """

    b_min: int | None = None
    b_max: int | None = None
    batch_bounds_from: str | None = None
    policies: tuple[str, ...] = CYCLIC_POLICIES
    epochs: int = 15
    step_size_epochs: float = 2.0
    increase_every_epochs: int = 4
    strategy: str = "shapes"
    max_device_batch: int = 1024
    lr: float | None = None
    validation_examples: int = 10_000


@dataclasses.dataclass(frozen=True)
class BatchVsLrConfig(LeNetExperiment):
    """batch_vs_lr: the rate fixed at lr_max (or `lr`), the batch doubling from `b_start` to
    `b_end` every `double_every_epochs` epochs (accumulated above `max_device_batch`), against
    the cyclical-learning-rate run (batch b_start, cyclic_lr(lr_min, lr_max)) for as many epochs.
    """

    b_start: int = 32
    b_end: int = 16384
    double_every_epochs: int = 2
    epochs: int = 20
    max_device_batch: int = 1024
    step_size_epochs: float = 2.0
    lr: float | None = None
    validation_examples: int = 10_000


SWEEP = SweepConfig()
SWEEP_SMOKE = dataclasses.replace(
    SWEEP,
    batch_sizes=(16, 32, 64, 128),
    epochs=1,
    lr=0.05,
    train_examples=512,
    test_examples=256,
    max_device_batch=64,
)
CYCLIC = CyclicConfig()
CYCLIC_SMOKE = dataclasses.replace(
    CYCLIC,
    b_min=16,
    b_max=64,
    epochs=2,
    lr_min=0.005,
    lr_max=0.05,
    step_size_epochs=0.5,
    increase_every_epochs=1,
    train_examples=768,
    validation_examples=256,
    test_examples=256,
    max_device_batch=32,
)
BATCH_VS_LR = BatchVsLrConfig()
BATCH_VS_LR_SMOKE = dataclasses.replace(
    BATCH_VS_LR,
    b_start=16,
    b_end=64,
    double_every_epochs=1,
    epochs=3,
    lr_min=0.005,
    lr_max=0.05,
    step_size_epochs=0.5,
    train_examples=768,
    validation_examples=256,
    test_examples=256,
    max_device_batch=64,
)
