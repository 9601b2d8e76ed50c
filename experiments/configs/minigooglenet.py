"""MiniGoogLeNet on Fashion-MNIST (the course notebook's study): configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import data, validation
from jaxsched.validation import ConfigError

PARTS = ("lr_find", "clr", "batch_growth")
# MiniGoogLeNet's input is 32x32: the notebook's preprocessing resizes the 28x28 digits and
# clothes (pixel mean subtracted, then bilinear 28 -> 32).
DATASETS = ("fashion_mnist", "mnist")
PREPROCESSING = "pixel_mean_resize32"


def _power_of_two(name: str, value: int) -> None:
    if value & (value - 1):
        raise ConfigError(name, "must be a power of two (1, 2, 4, ..., 32, 64, ...)", str(value))


@dataclasses.dataclass(frozen=True)
class Config:
    """MiniGoogLeNet (`jaxsched.models.MiniGoogLeNet`) + SGD with momentum, in three parts.

    dataset / data_dir: what `jaxsched.data.load` reads (28x28 images, resized to 32x32).
    seed: initialization, shuffling and the data subsets.
    train_examples / eval_examples: None for the whole split, else a seeded random subset of
      the training / test split (the test split is evaluated after every epoch).
    width: the network's filter-count multiplier (1.0 is the book's network).
    batch_size: examples per update of the LR sweep and of the CLR run (the notebook's 64).
    momentum: SGD momentum of every part.
    sweep_start / sweep_end / sweep_epochs / sweep_steps / sweep_factor: part 1, the one-run LR
      range test (`find.sweep_history`): the rate grows exponentially from sweep_start to
      sweep_end over `sweep_epochs` epochs' worth of updates at batch_size (or exactly
      `sweep_steps` updates when set), stopped once the smoothed loss exceeds sweep_factor
      times its best.
    lr_min / lr_max: give both to skip part 1 and use them as the bounds.
    epochs / step_epochs / gamma: part 2, `cyclic_lr(lr_min, lr_max, mode="exp_range")` for
      `epochs` epochs, half a cycle being `step_epochs` epochs' worth of updates, the amplitude
      multiplied by gamma every update (0.99994, the Keras CLR examples' value).
    augment: random width / height shifts of up to 10% (nearest fill) and horizontal flips
      (Keras's ImageDataGenerator of the notebook) in the training of parts 2 and 3.
    b_start / b_end / epochs_per_size / max_device_batch: part 3, the rate fixed at lr_max
      while the batch doubles from b_start to b_end (powers of two), each size for
      `epochs_per_size` epochs; updates larger than max_device_batch are accumulated over
      equal micro-batches.
    divergence_loss: a batch loss above it (or NaN/inf) ends a part's training as "diverged".
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    seed: int = 0
    train_examples: int | None = None
    eval_examples: int | None = None
    width: float = 1.0
    batch_size: int = 64
    momentum: float = 0.9
    sweep_start: float = 1e-9
    sweep_end: float = 10.0
    sweep_epochs: int = 5
    sweep_steps: int | None = None
    sweep_factor: float = 4.0
    lr_min: float | None = None
    lr_max: float | None = None
    epochs: int = 60
    step_epochs: float = 8.0
    gamma: float = 0.99994
    augment: bool = True
    b_start: int = 32
    b_end: int = 16384
    epochs_per_size: int = 1
    max_device_batch: int | None = 1024
    divergence_loss: float = 100.0

    def __post_init__(self) -> None:
        validation.choice("dataset", self.dataset, DATASETS)
        common.path("data_dir", self.data_dir, optional=True)
        common.seed(self.seed)
        validation.integer("train_examples", self.train_examples, minimum=1, optional=True)
        validation.integer("eval_examples", self.eval_examples, minimum=1, optional=True)
        common.positive("width", self.width)
        validation.integer("batch_size", self.batch_size, minimum=1)
        common.below_one("momentum", self.momentum)
        common.positive("sweep_start", self.sweep_start)
        common.positive("sweep_end", self.sweep_end)
        validation.ordered("sweep_start", self.sweep_start, "sweep_end", self.sweep_end)
        validation.integer("sweep_epochs", self.sweep_epochs, minimum=1)
        validation.integer(
            "sweep_steps", self.sweep_steps, minimum=common.SWEEP_MIN_STEPS, optional=True
        )
        validation.number("sweep_factor", self.sweep_factor, minimum=1, exclusive_minimum=True)
        common.positive("lr_min", self.lr_min, optional=True)
        common.positive("lr_max", self.lr_max, optional=True)
        validation.together(("lr_min", "lr_max"), (self.lr_min, self.lr_max))
        validation.ordered("lr_min", self.lr_min, "lr_max", self.lr_max)
        validation.integer("epochs", self.epochs, minimum=1)
        common.positive("step_epochs", self.step_epochs)
        validation.number("gamma", self.gamma, minimum=0, maximum=1, exclusive_minimum=True)
        common.flag("augment", self.augment)
        validation.integer("b_start", self.b_start, minimum=1)
        validation.integer("b_end", self.b_end, minimum=1)
        _power_of_two("b_start", self.b_start)
        _power_of_two("b_end", self.b_end)
        validation.ordered("b_start", self.b_start, "b_end", self.b_end, strict=False)
        validation.integer("epochs_per_size", self.epochs_per_size, minimum=1)
        validation.integer("max_device_batch", self.max_device_batch, minimum=1, optional=True)
        common.positive("divergence_loss", self.divergence_loss)
        pool = self.train_pool()
        common.fits("batch_size", self.batch_size, pool)  # the sweep and the CLR run
        common.fits("b_end", self.b_end, pool)  # every size of the growing batch
        common.splittable(
            self.batch_sizes(), self.max_device_batch, ("b_start", "b_end", "max_device_batch")
        )
        if self.sweep_steps is None and self.sweep_num_steps() < common.SWEEP_MIN_STEPS:
            raise ConfigError(
                ("sweep_epochs", *pool.fields),
                f"must give a sweep of at least {common.SWEEP_MIN_STEPS} updates: {{sweep_epochs}}"
                f" x {data.num_batches(pool.size, self.batch_size)} updates per epoch "
                f"({pool.text}, batch {self.batch_size}); raise it or set the sweep's updates",
                str(self.sweep_epochs),
            )

    def train_pool(self) -> common.Pool:
        """The training examples (the whole split or `train_examples` of it)."""
        return common.train_pool(self.dataset, self.train_examples)

    def sweep_num_steps(self) -> int:
        """Updates of the LR sweep: `sweep_steps`, else `sweep_epochs` epochs at batch_size."""
        if self.sweep_steps is not None:
            return self.sweep_steps
        return self.sweep_epochs * data.num_batches(self.train_pool().size, self.batch_size)

    def batch_sizes(self) -> list[int]:
        """The growing batch's sizes, b_start, 2 b_start, ..., b_end."""
        return [self.b_start << j for j in range((self.b_end // self.b_start).bit_length())]

    def parts(self) -> tuple[str, ...]:
        """The parts to run: the LR sweep only when lr_min / lr_max are not given."""
        return PARTS if self.lr_min is None else PARTS[1:]


DEFAULT = Config()
# Seconds on a CPU: a narrow network, 256 / 128 images, 40 sweep updates and 2 CLR epochs at
# batch 32, and the batch growing 32 -> 64 (one epoch each; 64 accumulated over two 32s). Every
# batch shape is one more compilation of the network, so the smoke keeps to one: 32.
SMOKE = dataclasses.replace(
    DEFAULT,
    width=0.125,
    train_examples=256,
    eval_examples=128,
    sweep_steps=40,
    batch_size=32,
    epochs=2,
    step_epochs=1.0,
    b_start=32,
    b_end=64,
    epochs_per_size=1,
    max_device_batch=32,
)
