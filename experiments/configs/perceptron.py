"""Perceptron criterion vs hinge loss on a linearly separable 2-D problem: configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import linear, validation

LOSSES = ("perceptron", "hinge")


@dataclasses.dataclass(frozen=True)
class Config:
    """A linear model without bias, w . x, on points uniform in [0, 1]^2 labelled -1 where
    x0 <= x1, else +1; plain SGD one sample at a time (batch 1).

    losses: names in jaxsched.linear.LOSSES, each trained from the same initial weights
      (Keras's glorot-uniform Dense kernel, uniform in +-sqrt(2)) in the same sample order.
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

    def __post_init__(self) -> None:
        common.names("losses", self.losses, linear.LOSSES)
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
