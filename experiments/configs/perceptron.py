"""Perceptron criterion vs hinge loss on a linearly separable 2-D problem: configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import linear, validation

LOSSES = ("perceptron", "hinge")


@dataclasses.dataclass(frozen=True)
class Config:
    """A linear model without bias, w . x, on points uniform in [0, 1]^2 labelled -1 where
    x0 <= x1, else +1; plain SGD one sample at a time (batch 1).

    losses: names in jaxsched.linear.LOSSES, each trained from the same initial weights in the
      same sample order.
    init: the initial weights, jaxsched.linear.INITIALIZERS: "glorot_uniform" (Keras's Dense
      kernel, uniform in +-sqrt(2)) or "uniform01" (uniform in [0, 1), the notebook's).
    shuffle: a fresh random sample order every epoch (Keras's fit default), else index order.
    seed: the run shown in the figures; its key gives the training and test points, the
      initial weights and the sample orders.
    repeats: > 1 also runs seeds seed .. seed + repeats - 1 (vmapped) and reports the mean
      and std of each loss's test accuracy over them (data, init and order all vary).
    """

    losses: tuple[str, ...] = LOSSES
    train_examples: int = 20
    test_examples: int = 1000
    epochs: int = 10
    learning_rate: float = 0.025
    shuffle: bool = True
    seed: int = 0
    repeats: int = 1
    init: str = "glorot_uniform"

    def __post_init__(self) -> None:
        common.names("losses", self.losses, linear.LOSSES)
        validation.choice("init", self.init, linear.INITIALIZERS)
        validation.integer("train_examples", self.train_examples, minimum=1)
        validation.integer("test_examples", self.test_examples, minimum=1)
        validation.integer("epochs", self.epochs, minimum=1)
        common.positive("learning_rate", self.learning_rate)
        common.flag("shuffle", self.shuffle)
        common.seed(self.seed)
        validation.integer("repeats", self.repeats, minimum=1)
        if self.seed + self.repeats - 1 > common.SEED_MAX:  # the seeds are a JAX int32 array
            raise validation.ConfigError(
                ("seed", "repeats"),
                f"must satisfy {{seed}} + {{repeats}} - 1 <= {common.SEED_MAX}",
                f"{self.seed} and {self.repeats}",
            )


DEFAULT = Config()
SMOKE = dataclasses.replace(DEFAULT, test_examples=200, epochs=3, repeats=4)
# The course notebook's protocol: its uniform initial weights (read here as U[0, 1) per weight,
# NumPy's default), otherwise the same runs.
COURSE = dataclasses.replace(DEFAULT, init="uniform01")
COURSE_SMOKE = dataclasses.replace(SMOKE, init="uniform01")
PROTOCOLS = {"course": (COURSE, COURSE_SMOKE)}
