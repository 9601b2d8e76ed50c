"""Depth vs width: many MLPs fitted to the noisy eggholder function: configurations."""

import dataclasses
import functools

from experiments.configs import common
from jaxsched import optimizers, shape_grid, validation


@dataclasses.dataclass(frozen=True)
class Config:
    """Every net of 1..max_depth hidden layers with widths from `widths` summing to at most
    `max_units` (models.DepthWidthNet: Dense + ReLU, BatchNorm before every hidden Dense after
    the first, a linear output), fitted to the noisy eggholder function by MSE, as the course
    notebook.

    Data (jaxsched.eggholder.make_splits): num_examples integer points uniform in
      [-limit, limit]^2, targets f(x) + N(0, noise_std^2); the last test_fraction is the
      validation split (the notebook's 80/20), raw inputs as the notebook feeds them.
    optimizer / preset / learning_rate: Nadam at Keras's defaults.
    batch_size: examples per update; epochs: at most this many (the notebook: 2000; the default
      is a shorter cap, see the README); patience: Keras's EarlyStopping on the validation RMSE
      with the best weights restored.
    seeds: init seeds per net (the notebook: one); data_seed: the data draw and the shuffling.
    strategy: how the nets train together (jaxsched.shape_grid): "auto" measures.
    eval_batch_size: validation examples per evaluation chunk.
    """

    widths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    max_depth: int = 3
    max_units: int = 512
    num_examples: int = 100_000
    noise_std: float = 0.3
    limit: int = 512
    test_fraction: float = 0.2
    optimizer: str = "nadam"
    preset: str = "keras"
    learning_rate: float = 0.001
    batch_size: int = 1000
    epochs: int = 100
    patience: int = 20
    seeds: tuple[int, ...] = (0,)
    data_seed: int = 0
    strategy: str = "auto"
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        validation.sequence(
            "widths", self.widths, functools.partial(validation.integer, minimum=1), unique=True
        )
        validation.integer("max_depth", self.max_depth, minimum=1, maximum=8)
        validation.integer("max_units", self.max_units, minimum=min(self.widths))
        validation.integer("num_examples", self.num_examples, minimum=10)
        validation.number("noise_std", self.noise_std, minimum=0)
        validation.integer("limit", self.limit, minimum=1)
        validation.number(
            "test_fraction",
            self.test_fraction,
            minimum=0,
            maximum=0.5,
            exclusive_minimum=True,
        )
        validation.choice("optimizer", self.optimizer, optimizers.available())
        validation.choice("preset", self.preset, optimizers.PRESETS)
        common.positive("learning_rate", self.learning_rate)
        train_size = self.num_examples - round(self.num_examples * self.test_fraction)
        validation.integer("batch_size", self.batch_size, minimum=1, maximum=train_size)
        validation.integer("epochs", self.epochs, minimum=1)
        validation.integer("patience", self.patience, minimum=1)
        validation.sequence("seeds", self.seeds, lambda n, s: common.seed(s, n), unique=True)
        common.seed(self.data_seed, "data_seed")
        validation.choice("strategy", self.strategy, shape_grid.STRATEGIES)
        validation.integer("eval_batch_size", self.eval_batch_size, minimum=1)

    @property
    def nets(self) -> list[tuple[int, ...]]:
        return shape_grid.depth_width_nets(self.widths, self.max_depth, self.max_units)


DEFAULT = Config()
# The notebook's own cap (2000 epochs): hours here, see the README.
NOTEBOOK_EPOCHS = 2000
SMOKE = dataclasses.replace(
    DEFAULT,
    widths=(4, 8),
    max_depth=2,
    max_units=12,
    num_examples=1000,
    batch_size=200,
    epochs=4,
    patience=2,
    eval_batch_size=100,
)
