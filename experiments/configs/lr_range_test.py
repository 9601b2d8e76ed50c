"""LR range test (grid form) configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import data, optimizers, validation

METHODS = ("grid", "sweep")
# "loop": one loop.fit per rate (resumable rate by rate, any --devices); the others train the
# rates still missing with jaxsched.sweep.fit_grid and that strategy, `grid_chunk` rates per
# call (one device).
GRID_STRATEGIES = ("auto", "vmap", "map", "sequential", "loop")


@dataclasses.dataclass(frozen=True)
class Config:
    """LR range test of LeNet-5 with plain SGD.

    method: "grid" (one fresh model per learning rate, final loss against log10(lr)) or
      "sweep" (one run, the rate growing exponentially per update).

    learning_rates: the grid; the seeds used 10^1, 10^0, ..., 10^-9.
    grid_strategy: how the grid trains, one of GRID_STRATEGIES: "auto" (default), "vmap", "map"
      or "sequential" train the missing rates with jaxsched.sweep.fit_grid (the same
      numbers as one loop.fit per rate); "loop" runs loop.fit per rate. With more than one
      device the grid always runs "loop".
    grid_chunk: rates per fit_grid call (the fit_grid strategies); each chunk is recorded in
      results.json when it finishes, so an interrupt loses at most one chunk's work.
    epochs: epochs per learning rate.
    batch_size: examples per update.
    train_examples / eval_examples: None for the whole split, else a seeded random subset.
    preprocessing: "scale" ([0, 1]), "pixel_mean" ([0, 1] minus the per-pixel train mean),
      "standardize" (per-channel train mean 0, std 1) or "pixel_mean_resize32" (pixel_mean,
      then resized 28 -> 32 bilinear as cv2.resize: the MiniGoogLeNet notebook's).
    input_norm / hidden_batchnorm / first_pool_stride / pool_batchnorm: the LeNet-5 variant
      (see jaxsched.models.LeNet5).
    sweep_start / sweep_end / sweep_steps: the sweep's first and last rate and its length in
      updates; sweep_factor: it stops once the smoothed loss exceeds this multiple of its best.
    divergence_loss: a batch loss above this (nats; chance level is ln 10 = 2.3) or NaN/inf ends
      the run as "diverged". BatchNorm keeps the loss finite at absurd rates (1e25 at lr=100),
      so NaN alone would call such runs "done".
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    learning_rates: tuple[float, ...] = tuple(10.0**k for k in range(1, -10, -1))
    epochs: int = 5
    batch_size: int = 64
    seed: int = 0
    optimizer: str = "sgd"
    input_norm: str = "batchnorm"
    hidden_batchnorm: bool = True
    first_pool_stride: int = 2
    pool_batchnorm: bool = False
    preprocessing: str = "scale"
    train_examples: int | None = None
    eval_examples: int | None = None
    eval_batch_size: int = 1000
    divergence_loss: float = 100.0
    method: str = "grid"
    grid_strategy: str = "auto"
    grid_chunk: int = 4
    sweep_start: float = 1e-9
    sweep_end: float = 10.0
    sweep_steps: int = 2000
    sweep_factor: float = 4.0

    def __post_init__(self) -> None:
        validation.choice("dataset", self.dataset, data.DATASETS)
        common.path("data_dir", self.data_dir, optional=True)
        common.numbers("learning_rates", self.learning_rates)
        validation.integer("epochs", self.epochs, minimum=1)
        validation.integer("batch_size", self.batch_size, minimum=1)
        common.seed(self.seed)
        validation.choice("optimizer", self.optimizer, optimizers.available())
        validation.choice("input_norm", self.input_norm, common.INPUT_NORMS)
        common.flag("hidden_batchnorm", self.hidden_batchnorm)
        common.lenet_variant(self)
        validation.choice("preprocessing", self.preprocessing, data.PREPROCESSING)
        validation.integer("train_examples", self.train_examples, minimum=1, optional=True)
        validation.integer("eval_examples", self.eval_examples, minimum=1, optional=True)
        validation.integer("eval_batch_size", self.eval_batch_size, minimum=1)
        common.positive("divergence_loss", self.divergence_loss)
        validation.choice("method", self.method, METHODS)
        validation.choice("grid_strategy", self.grid_strategy, GRID_STRATEGIES)
        validation.integer("grid_chunk", self.grid_chunk, minimum=1)
        common.positive("sweep_start", self.sweep_start)
        common.positive("sweep_end", self.sweep_end)
        validation.ordered("sweep_start", self.sweep_start, "sweep_end", self.sweep_end)
        validation.integer("sweep_steps", self.sweep_steps, minimum=common.SWEEP_MIN_STEPS)
        validation.number("sweep_factor", self.sweep_factor, minimum=1, exclusive_minimum=True)
        common.fits(
            "batch_size", self.batch_size, common.train_pool(self.dataset, self.train_examples)
        )


DEFAULT = Config()
# Seconds on a laptop CPU: three rates (one of them far too large), 512 images, one epoch.
SMOKE = dataclasses.replace(
    DEFAULT,
    learning_rates=(100.0, 0.1, 1e-4),
    epochs=1,
    train_examples=512,
    eval_examples=256,
    eval_batch_size=256,
    sweep_steps=100,
)
