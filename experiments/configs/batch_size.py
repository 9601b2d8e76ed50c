"""Batch-size experiments (sweep, cyclic policies, batch instead of decay): configurations.

All three train LeNet-5 (input + hidden BatchNorm) on Fashion-MNIST with plain SGD; the
learning rate comes from an LR range test (`bounds_from`: "sweep" runs the one-run test first,
or the path of an lr_range_test results.json), or is given (`lr_min` / `lr_max`).
"""

import dataclasses

from experiments.configs import common
from experiments.configs.common import LeNetExperiment
from jaxsched import batching, range_test, validation
from jaxsched.validation import ConfigError

CYCLIC_POLICIES = ("fixed", "cyclic", "growing_cyclic", "epoch_cycle", "increase", "clr")
# The policies that double the batch from b_min to b_max (jaxsched.batch_schedules'
# cyclic_batch_size, growing_cyclic_batch_size and epoch_batch_cycle take powers of two only).
DOUBLING_POLICIES = ("cyclic", "growing_cyclic", "epoch_cycle")


@dataclasses.dataclass(frozen=True)
class SweepConfig(LeNetExperiment):
    """batch_size_sweep: `epochs` at each of `batch_sizes` at the fixed rate lr_min (or `lr`).

    Batches larger than `max_device_batch` are accumulated over micro-batches of that size.
    bound_rule: how b_min / b_max are read from the final training accuracies:
      "plateau"        jaxsched.range_test.suggest_batch_bounds: the run of sizes around the
                       best running-median-of-3 accuracy within `tolerance` (absolute) of it
      "relative_drop"  range_test.relative_drop_batch_bounds: the course notebooks' rule, the
                       sizes around the best raw accuracy within `relative_drop` (relative) of it
    """

    batch_sizes: tuple[int, ...] = tuple(2**k for k in range(4, 14))  # 16 ... 8192
    epochs: int = 5
    lr: float | None = None
    bound_rule: str = "plateau"
    tolerance: float = 0.02
    relative_drop: float = 0.035
    max_device_batch: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        common.counts("batch_sizes", self.batch_sizes)
        validation.integer("epochs", self.epochs, minimum=1)
        common.positive("lr", self.lr, optional=True)
        validation.choice("bound_rule", self.bound_rule, range_test.BATCH_BOUND_RULES)
        validation.number(
            "relative_drop",
            self.relative_drop,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        validation.number(
            "tolerance",
            self.tolerance,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        validation.integer("max_device_batch", self.max_device_batch, minimum=1, optional=True)
        # Each size trains alone (validation=False: the whole training subset).
        common.fits("batch_sizes", self.batch_sizes, self.train_pool())
        common.splittable(
            self.batch_sizes, self.max_device_batch, ("batch_sizes", "max_device_batch")
        )


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
    momentum: SGD's momentum (0: plain SGD).
    validation_examples: held out of the training split for the per-epoch validation metrics;
      0 holds out nothing and validates on the test split (the course notebooks' protocol).
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
    momentum: float = 0.0
    validation_examples: int = 10_000

    def __post_init__(self) -> None:
        super().__post_init__()
        common.below_one("momentum", self.momentum)
        validation.integer("b_min", self.b_min, minimum=1, optional=True)
        validation.integer("b_max", self.b_max, minimum=1, optional=True)
        validation.together(("b_min", "b_max"), (self.b_min, self.b_max))
        validation.ordered("b_min", self.b_min, "b_max", self.b_max, strict=False)
        common.path("batch_bounds_from", self.batch_bounds_from, optional=True)
        if self.b_min is not None and self.batch_bounds_from is not None:
            raise ConfigError(
                ("b_min", "b_max", "batch_bounds_from"),
                "must not all be given: {b_min} / {b_max} are the bounds, {batch_bounds_from} "
                "a batch_size_sweep results.json to read them from",
            )
        common.names("policies", self.policies, CYCLIC_POLICIES)
        validation.integer("epochs", self.epochs, minimum=1)
        common.positive("step_size_epochs", self.step_size_epochs)
        validation.integer("increase_every_epochs", self.increase_every_epochs, minimum=1)
        validation.choice("strategy", self.strategy, batching.STRATEGIES)
        validation.integer("max_device_batch", self.max_device_batch, minimum=1, optional=True)
        common.positive("lr", self.lr, optional=True)
        pool = common.hold_out(
            self.train_pool(), "validation_examples", self.validation_examples, allow_zero=True
        )
        if self.b_min is None:
            if self.batch_bounds_from is None:
                self._check_sweep()
            return  # the bounds come from a file or from the sweep, at run time
        doubling = [p for p in self.policies if p in DOUBLING_POLICIES]
        for name in ("b_min", "b_max") if doubling else ():
            value = getattr(self, name)
            if value & (value - 1):
                raise ConfigError(
                    (name, "policies"),
                    f"must agree: the policies {', '.join(doubling)} double the batch in "
                    f"powers of two, so {{{name}}} must be one (1, 2, 4, ...)",
                    str(value),
                )
        common.fits("b_max", self.b_max, pool)
        fields = ("b_min", "b_max", "max_device_batch")
        common.splittable(
            self.policy_batch_sizes(pool.size),
            self.max_device_batch,
            fields + (("strategy",) if self.strategy == "accumulate" else ()),
            strategy=self.strategy,
        )

    def policy_batch_sizes(self, num_examples: int) -> set[int]:
        """Every batch size the policies can plan from the given b_min / b_max on
        `num_examples` training examples (as experiments.cyclic_batch_size.policy_settings
        makes them; a growing cycle counted up to its cap, whether reached or not)."""
        b_min, b_max = self.b_min, self.b_max
        cap = 1 << (num_examples.bit_length() - 1)  # the largest power of two <= num_examples
        top = b_min
        if "cyclic" in self.policies or "epoch_cycle" in self.policies:
            top = max(top, b_min << ((b_max // b_min).bit_length() - 1))
        if "growing_cyclic" in self.policies:
            top = max(top, min(8 * b_max, cap))
        if "increase" in self.policies:
            every = self.increase_every_epochs
            reached = [e for e in range(every, self.epochs, every)]  # boundaries < epochs
            doublings = sum(1 for i in range(1, len(reached) + 1) if b_min << i <= cap)
            top = max(top, b_min << doublings)
        return {b_min << j for j in range((top // b_min).bit_length())}

    def _check_sweep(self) -> None:
        """Neither b_min / b_max nor batch_bounds_from: the runner first runs batch_size_sweep
        with SWEEP's batch sizes and this config's shared fields (whole training subset)."""
        pool = self.train_pool()
        largest = max(SWEEP.batch_sizes)
        if largest > pool.size:
            raise ConfigError(
                ("b_min", "b_max", *pool.fields),
                f"must be given (or batch_bounds_from): the batch-size sweep that would find "
                f"them trains batches up to {largest}, more than the {pool.size} training "
                f"examples ({pool.text})",
            )
        try:
            common.splittable(SWEEP.batch_sizes, self.max_device_batch, ("max_device_batch",))
        except ConfigError as error:
            raise ConfigError(
                ("max_device_batch", "b_min", "b_max"),
                f"must split the batch sizes {SWEEP.batch_sizes} of the batch-size sweep that "
                "finds {b_min} / {b_max} when they are not given: "
                + error.requirement.removeprefix("must give batch sizes that "),
                error.got,
            ) from None


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

    def __post_init__(self) -> None:
        super().__post_init__()
        validation.integer("b_start", self.b_start, minimum=1)
        validation.integer("b_end", self.b_end, minimum=1)
        validation.ordered("b_start", self.b_start, "b_end", self.b_end, strict=False)
        ratio, rest = divmod(self.b_end, self.b_start)
        if rest or ratio & (ratio - 1):
            raise ConfigError(
                ("b_start", "b_end"),
                "must satisfy {b_end} = {b_start} * 2**k: the batch doubles from {b_start} and "
                "would stop short of {b_end}",
                f"{self.b_start} and {self.b_end}",
            )
        validation.integer("double_every_epochs", self.double_every_epochs, minimum=1)
        validation.integer("epochs", self.epochs, minimum=1)
        validation.integer("max_device_batch", self.max_device_batch, minimum=1, optional=True)
        common.positive("step_size_epochs", self.step_size_epochs)
        common.positive("lr", self.lr, optional=True)
        pool = common.hold_out(self.train_pool(), "validation_examples", self.validation_examples)
        # batch_size_steps(num_examples=...) checks the last size, b_end, reached or not.
        common.fits("b_end", self.b_end, pool)
        common.splittable(
            [self.b_start << j for j in range(ratio.bit_length())],
            self.max_device_batch,
            ("b_start", "b_end", "max_device_batch"),
        )


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

# The course notebooks' protocols (`--protocol NAME`; docs/course.md). Their LeNet-5 for the
# batch-size runs is the 546,542-parameter variant (first pool stride 1, BatchNorm after the
# pools too); they train on all 60,000 images and validate on the test split
# (validation_examples=0), with plain SGD at a fixed rate, no early stopping.
_COURSE_NET = {"first_pool_stride": 1, "pool_batchnorm": True}
_COURSE_SMOKE = {"train_examples": 768, "test_examples": 256, "max_device_batch": 32}
# The third notebook's sweep: 64 ... 8192 at lr 0.1 for 5 epochs, its 62,614-parameter
# LeNet-5, and the relative-drop rule (3.5 % below the best final training accuracy).
SWEEP_COURSE = dataclasses.replace(
    SWEEP,
    batch_sizes=tuple(2**k for k in range(6, 14)),
    lr=0.1,
    epochs=5,
    bound_rule="relative_drop",
)
SWEEP_COURSE_SMOKE = dataclasses.replace(SWEEP_SMOKE, lr=0.1, bound_rule="relative_drop")
SWEEP_PROTOCOLS = {"course": (SWEEP_COURSE, SWEEP_COURSE_SMOKE)}
# Two notebooks: the batch cycled per epoch from 16 up to 256 at lr 0.01 for 20 epochs. Their
# loop picks the size with `i % 3`, so only 16, 32 and 64 ran: "course" is the loop as it ran
# (the notebooks' ~0.911 validation accuracy), "course_intended" the cycle up to 256.
CYCLIC_COURSE = dataclasses.replace(
    CYCLIC,
    **_COURSE_NET,
    policies=("fixed", "epoch_cycle"),
    b_min=16,
    b_max=64,
    lr=0.01,
    epochs=20,
    validation_examples=0,
)
CYCLIC_COURSE_SMOKE = dataclasses.replace(
    CYCLIC_COURSE, **_COURSE_SMOKE, b_min=16, b_max=64, epochs=3
)
CYCLIC_COURSE_INTENDED = dataclasses.replace(CYCLIC_COURSE, b_max=256)
CYCLIC_COURSE_INTENDED_SMOKE = dataclasses.replace(CYCLIC_COURSE_SMOKE, b_max=128, epochs=4)
# The third notebook: a growing cycle (its top doubling each cycle) at lr 0.1 for 5 epochs,
# between the relative-drop rule's 16 and 256, on its 62,614-parameter LeNet-5.
CYCLIC_COURSE_GROWING = dataclasses.replace(
    CYCLIC,
    policies=("growing_cyclic",),
    b_min=16,
    b_max=256,
    lr=0.1,
    epochs=5,
    step_size_epochs=1.0,
    validation_examples=0,
)
CYCLIC_COURSE_GROWING_SMOKE = dataclasses.replace(
    CYCLIC_COURSE_GROWING, **_COURSE_SMOKE, b_max=32, epochs=2, step_size_epochs=0.5
)
# Two notebooks: an effective batch of 4096 as 16 accumulated micro-batches of 256
# (optax.MultiSteps), SGD lr 1e-4 with momentum 0.9, 20 epochs.
CYCLIC_COURSE_EFFECTIVE = dataclasses.replace(
    CYCLIC_COURSE,
    policies=("fixed",),
    b_min=4096,
    b_max=4096,
    max_device_batch=256,
    lr=1e-4,
    momentum=0.9,
)
CYCLIC_COURSE_EFFECTIVE_SMOKE = dataclasses.replace(
    CYCLIC_COURSE_SMOKE,
    policies=("fixed",),
    b_min=256,
    b_max=256,
    max_device_batch=16,
    lr=1e-4,
    momentum=0.9,
    epochs=2,
)
CYCLIC_PROTOCOLS = {
    "course": (CYCLIC_COURSE, CYCLIC_COURSE_SMOKE),
    "course_intended": (CYCLIC_COURSE_INTENDED, CYCLIC_COURSE_INTENDED_SMOKE),
    "course_growing": (CYCLIC_COURSE_GROWING, CYCLIC_COURSE_GROWING_SMOKE),
    "course_effective_batch": (CYCLIC_COURSE_EFFECTIVE, CYCLIC_COURSE_EFFECTIVE_SMOKE),
}
