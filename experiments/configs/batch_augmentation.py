"""ResNet-44 with cutout batch augmentation: configurations and training recipes."""

import dataclasses

from experiments.configs import common
from jaxsched import data, validation

RECIPES = ("keras", "he")
SHORTCUTS = ("A", "B")  # jaxsched.models.ResNetV1
IMAGE_SIDE = 32  # every dataset is padded to 32x32


@dataclasses.dataclass(frozen=True)
class Config:
    """Hoffer et al.'s batch augmentation with cutout, on the course's ResNet-44.

    dataset: "auto" (CIFAR-10 where it can be loaded, else Fashion-MNIST padded to 32x32, which
      is recorded), or a name.
    copies: the M values; every sample of a batch of `batch_size` becomes M copies, each with
      its own He crop+flip and cutout (`cutout_size`), so a step sees M * batch_size images.
      A "baseline" run (He augmentation only, no cutout, M = 1) comes first.
    recipe: "keras" (the seeds': Adam 1e-3 with the Keras ResNet example's epoch step decay,
      L2 1e-4 on the kernels) or "he" (He et al.: SGD momentum 0.9, lr 0.1 / 10 at 32k and 48k
      updates, weight decay 1e-4 as an L2 gradient, stop at 64k updates).
    epochs / target_accuracy / stop_at_target: train until validation accuracy reaches the
      target (time-to-accuracy) or `epochs` (the cap), reporting the best accuracy otherwise.
    validation_examples: held out of the training split for the time-to-accuracy measurement.
    bn_momentum: BatchNorm running-average decay; Keras's 0.99 by default. Short runs (a few
      hundred updates) need a faster one (0.9) for their evaluation-mode statistics.
    """

    dataset: str = "auto"
    data_dir: str | None = None
    depth: int = 44
    shortcut: str = "B"
    bn_momentum: float = 0.99
    batch_size: int = 64
    copies: tuple[int, ...] = (1, 2, 4, 8, 16)
    cutout_size: int = 16
    recipe: str = "keras"
    epochs: int = 100
    max_updates: int | None = None
    target_accuracy: float = 0.92
    stop_at_target: bool = True
    validation_examples: int = 5000
    train_examples: int | None = None
    test_examples: int | None = None
    preprocessing: str = "pixel_mean"
    seed: int = 0
    divergence_loss: float = 100.0

    def __post_init__(self) -> None:
        validation.choice("dataset", self.dataset, ("auto", *data.DATASETS))
        common.path("data_dir", self.data_dir, optional=True)
        common.resnet_depth("depth", self.depth)
        validation.choice("shortcut", self.shortcut, SHORTCUTS)
        common.below_one("bn_momentum", self.bn_momentum)
        validation.integer("batch_size", self.batch_size, minimum=1)
        common.counts("copies", self.copies)
        validation.integer("cutout_size", self.cutout_size, minimum=1, maximum=IMAGE_SIDE)
        validation.choice("recipe", self.recipe, RECIPES)
        validation.integer("epochs", self.epochs, minimum=1)
        validation.integer("max_updates", self.max_updates, minimum=1, optional=True)
        common.fraction("target_accuracy", self.target_accuracy)
        common.flag("stop_at_target", self.stop_at_target)
        validation.integer("train_examples", self.train_examples, minimum=1, optional=True)
        validation.integer("test_examples", self.test_examples, minimum=1, optional=True)
        validation.choice("preprocessing", self.preprocessing, data.PREPROCESSING)
        common.seed(self.seed)
        common.positive("divergence_loss", self.divergence_loss)
        pool = common.train_pool(self.dataset, self.train_examples, auto=common.AUTO_CIFAR10)
        pool = common.hold_out(pool, "validation_examples", self.validation_examples)
        common.fits("batch_size", self.batch_size, pool)


DEFAULT = Config()
HE_RECIPE = dataclasses.replace(
    DEFAULT, recipe="he", batch_size=128, max_updates=64_000, epochs=200
)
SMOKE = dataclasses.replace(
    DEFAULT,
    depth=8,
    copies=(1, 2),
    epochs=1,
    cutout_size=8,
    train_examples=256,
    bn_momentum=0.9,
    validation_examples=64,
    test_examples=64,
)
