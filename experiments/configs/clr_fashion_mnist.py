"""Cyclical learning rates on Fashion-MNIST: configurations."""

import dataclasses
from collections.abc import Sequence

from experiments.configs import common
from experiments.configs.common import LeNetExperiment
from jaxsched import optimizers, validation

POLICIES = ("constant_max", "constant_keras", "triangular", "triangular2", "exp_range", "clr_paper")


@dataclasses.dataclass(frozen=True)
class Config(LeNetExperiment):
    """LeNet-5 + plain SGD (or `optimizer`) at batch 64 under several learning-rate policies.

    bounds_from: where lr_min / lr_max come from: "sweep" runs the one-run LR range test first
      (seconds to a minute), or the path of a previous lr_range_test results.json; `lr_min` /
      `lr_max` given explicitly override both.
    policies: which of POLICIES to train, each from the same initialization:
      constant_max   constant lr_max
      constant_keras constant 0.01 (Keras's SGD default)
      triangular / triangular2 / exp_range   cyclic_lr between lr_min and lr_max
      clr_paper      triangular between the CLR paper's bounds, 0.001 and 0.006
    step_size_epochs: half a cycle, in epochs' worth of updates (Smith: 2-10).
    gamma: exp_range's decay per update.
    max_epochs / patience: training stops when the validation loss has not improved for
      `patience` epochs (more than a cycle, so a rising half-cycle does not end it), or after
      `max_epochs`.
    validation_examples: held out of the training split for early stopping; the test split is
      evaluated once, at the end. 0 holds out nothing and validates on the test split (the
      course notebooks' protocol; then leave restore_best off and patience >= max_epochs).
    optimizer / preset: the optimizer under the schedule (jaxsched.optimizers.make) and its
      hyper-parameter preset ("keras": Keras's defaults, e.g. RMSprop rho 0.9, eps 1e-7).
    restore_best: test the weights of the epoch with the lowest validation loss (else the last
      epoch's, which for a cyclical rate may sit at the top of a cycle).
    target_accuracy: the summary reports the updates (and seconds) each policy needed to first
      reach this validation accuracy.
    """

    policies: tuple[str, ...] = POLICIES
    step_size_epochs: float = 2.0
    gamma: float = 0.99994
    clr_paper_bounds: tuple[float, float] = (0.001, 0.006)
    max_epochs: int = 30
    patience: int = 6
    target_accuracy: float = 0.89
    restore_best: bool = True
    validation_examples: int = 10_000
    optimizer: str = "sgd"
    preset: str = "keras"

    def __post_init__(self) -> None:
        super().__post_init__()
        common.names("policies", self.policies, POLICIES)
        common.positive("step_size_epochs", self.step_size_epochs)
        validation.number("gamma", self.gamma, minimum=0, maximum=1, exclusive_minimum=True)
        bounds = self.clr_paper_bounds
        if isinstance(bounds, str) or not isinstance(bounds, Sequence) or len(bounds) != 2:
            raise validation.ConfigError(
                "clr_paper_bounds", "must hold exactly 2 values (lower, upper)", repr(bounds)
            )
        validation.sequence("clr_paper_bounds", bounds, common.positive)
        low, high = bounds
        if low >= high:
            raise validation.ConfigError(
                "clr_paper_bounds", "must be (lower, upper) with lower < upper", f"{low}, {high}"
            )
        validation.integer("max_epochs", self.max_epochs, minimum=1)
        validation.integer("patience", self.patience, minimum=1)
        common.fraction("target_accuracy", self.target_accuracy)
        common.flag("restore_best", self.restore_best)
        validation.choice("optimizer", self.optimizer, optimizers.available())
        validation.choice("preset", self.preset, optimizers.PRESETS)
        pool = common.hold_out(
            self.train_pool(), "validation_examples", self.validation_examples, allow_zero=True
        )
        if self.validation_examples == 0 and (self.restore_best or self.patience < self.max_epochs):
            raise validation.ConfigError(
                ("validation_examples", "restore_best", "patience"),
                "must not select on the test split: with {validation_examples} 0 the test split "
                "is the validation data, so test the last epoch's weights (restore_best off, "
                f"--no-restore-best) and set {{patience}} >= max_epochs ({self.max_epochs})",
                f"restore_best={self.restore_best}, patience={self.patience}",
            )
        common.fits("batch_size", self.batch_size, pool)  # every policy trains at batch_size


DEFAULT = Config()
SMOKE = dataclasses.replace(
    DEFAULT,
    policies=("constant_max", "triangular", "exp_range"),
    max_epochs=3,
    patience=2,
    train_examples=768,
    validation_examples=256,
    test_examples=256,
    step_size_epochs=0.5,
    sweep_steps=60,
    target_accuracy=0.5,
)

# Two course notebooks compile the CLR model without an optimizer, so Keras trained it with its
# default RMSprop (lr 0.001, rho 0.9, eps 1e-7) under the cyclical rate: exp_range between 1e-4
# and 1e-3 for 20 epochs, on their 546,542-parameter LeNet-5 (first pool stride 1, BatchNorm
# after the pools too), all 60,000 training images, the test split as validation data, no
# early stopping. The step size (2 epochs ~ 1,875 updates at batch 64) and gamma are the
# Keras CLR callback's usual 2,000 updates and 0.99994.
COURSE = dataclasses.replace(
    DEFAULT,
    policies=("exp_range",),
    optimizer="rmsprop",
    preset="keras",
    lr_min=1e-4,
    lr_max=1e-3,
    max_epochs=20,
    patience=20,
    restore_best=False,
    validation_examples=0,
    first_pool_stride=1,
    pool_batchnorm=True,
)
COURSE_SMOKE = dataclasses.replace(
    COURSE,
    max_epochs=2,
    patience=2,
    train_examples=768,
    test_examples=256,
    step_size_epochs=0.5,
    target_accuracy=0.5,
)
PROTOCOLS = {"course": (COURSE, COURSE_SMOKE)}
