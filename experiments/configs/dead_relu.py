"""Collapse of deep narrow ReLU nets fitted to y = |x|: configurations."""

import dataclasses
import math

from experiments.configs import common
from jaxsched import collapse, optimizers, validation

ACTIVATIONS = ("relu", "leaky_relu")
# Kernel initializers by Keras's names (jaxsched.initializers); biases always start at zero.
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform")


@dataclasses.dataclass(frozen=True)
class Config:
    """`simulations` nets 1 -> depth x [Dense width + activation] -> Dense 1, each fitted to
    y = |x| with x ~ U(-x_limit, x_limit) by MSE and Adam, for every (activation, initializer).

    activations: from ACTIVATIONS; "leaky_relu" has slope leaky_slope for x < 0.
    initializers: from INITIALIZERS: "glorot_uniform" is Keras's Dense default; "he_normal"
      Keras's He normal (truncated, variance 2 / fan_in).
    simulations: independent simulations per variant, all trained in one jitted vmap.
    Data: simulation i has its own key, fold_in(key(seed), i), from which it draws its own
      initial weights, its own train_points training and test_points test points and its
      own shuffling each epoch (Keras's fit(shuffle=True)); the simulations are independent
      Bernoulli trials. The variants reuse the same keys, so simulation i of every variant
      sees the same data (and ReLU / LeakyReLU with one initializer the same initial weights).
    epochs / batch_size: Keras's fit: the last batch of an epoch is partial (3000 = 46 x 64 + 56)
      and its loss is the mean over its examples.
    optimizer: Adam at Keras's defaults (preset "keras": b1 0.9, b2 0.999, eps 1e-7).
    collapse_variance: a simulation "collapsed" when the variance of its predictions on its
      test points is <= this (the net became constant: it predicts about mean |x| = x_limit / 2).
    confidence: of the Wilson score interval of the collapsed fraction.
    one_by_one: the first this many simulations of each variant are also run one at a time
      (one jitted simulation per call) to time that and check them against the vmapped run.
    """

    activations: tuple[str, ...] = ACTIVATIONS
    initializers: tuple[str, ...] = ("glorot_uniform", "he_normal")
    leaky_slope: float = 0.01
    simulations: int = 1000
    train_points: int = 3000
    test_points: int = 1000
    x_limit: float = math.sqrt(7.0)
    width: int = 2
    depth: int = 10
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    preset: str = "keras"
    collapse_variance: float = 1e-3
    confidence: float = 0.95
    seed: int = 0
    one_by_one: int = 10

    def __post_init__(self) -> None:
        common.names("activations", self.activations, ACTIVATIONS)
        common.names("initializers", self.initializers, INITIALIZERS)
        common.below_one("leaky_slope", self.leaky_slope)
        validation.integer("simulations", self.simulations, minimum=1)
        validation.integer("train_points", self.train_points, minimum=1)
        validation.integer("test_points", self.test_points, minimum=2)  # a variance
        common.positive("x_limit", self.x_limit)
        validation.integer("width", self.width, minimum=1)
        validation.integer("depth", self.depth, minimum=1)
        validation.integer("epochs", self.epochs, minimum=1)
        validation.integer("batch_size", self.batch_size, minimum=1)
        validation.ordered(
            "batch_size", self.batch_size, "train_points", self.train_points, strict=False
        )
        common.positive("learning_rate", self.learning_rate)
        validation.choice("optimizer", self.optimizer, optimizers.available())
        validation.choice("preset", self.preset, optimizers.PRESETS)
        validation.number("collapse_variance", self.collapse_variance, minimum=0)
        validation.number(
            "confidence",
            self.confidence,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            exclusive_maximum=True,
        )
        common.seed(self.seed)
        validation.integer("one_by_one", self.one_by_one, minimum=0)
        validation.ordered(
            "one_by_one", self.one_by_one, "simulations", self.simulations, strict=False
        )


DEFAULT = Config()
SMOKE = dataclasses.replace(
    DEFAULT, simulations=32, train_points=256, test_points=128, one_by_one=2
)


def simulation(config: Config, activation: str, initializer: str) -> collapse.Simulation:
    """`collapse.make_simulation` of one (activation, initializer) variant with `config`'s net,
    optimizer and data: what the study (experiments.dead_relu) and its benchmark run."""
    model = collapse.make_model(
        config.depth, config.width, activation, initializer, leaky_slope=config.leaky_slope
    )
    return collapse.make_simulation(
        model,
        optimizers.make(config.optimizer, config.learning_rate, preset=config.preset),
        train_points=config.train_points,
        test_points=config.test_points,
        batch_size=config.batch_size,
        epochs=config.epochs,
        x_limit=config.x_limit,
    )
