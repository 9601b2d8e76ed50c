"""Adaptive optimizers on the course's MLP: configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import data, optimizers, validation

REGULARIZATIONS = ("l2", "dropout")
# label -> (optimizers.make name, options); every one at Keras's default learning rate.
OPTIMIZERS: dict[str, tuple[str, dict]] = {
    "sgd": ("sgd", {}),
    "sgd_momentum": ("sgd", {"momentum": 0.9}),
    "adagrad": ("adagrad", {}),
    "rmsprop": ("rmsprop", {}),
    "rmsprop_nesterov": ("rmsprop_nesterov", {}),
    "nadam": ("nadam", {}),
    "adadelta": ("adadelta", {}),
    "adam": ("adam", {}),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """MLP Flatten -> Dense 1000 ReLU -> Dense 1000 ReLU -> Dense 10 (He normal), batch 128.

    dataset: "auto" uses CIFAR-10 where it can be loaded and Fashion-MNIST (also real data)
      otherwise, and records which; "cifar10" / "fashion_mnist" / "mnist" insist.
    optimizers: labels from OPTIMIZERS, each with the "keras" preset and Keras's default
      learning rate (what the seeds ran).
    regularizations: "l2" adds l2_coefficient * sum(kernel^2) to the loss (Keras's
      kernel_regularizer='l2'); "dropout" uses input_dropout on the input and hidden_dropout
      after each hidden layer, no L2.
    """

    dataset: str = "auto"
    data_dir: str | None = None
    optimizers: tuple[str, ...] = tuple(OPTIMIZERS)
    regularizations: tuple[str, ...] = REGULARIZATIONS
    hidden: tuple[int, ...] = (1000, 1000)
    epochs: int = 200
    batch_size: int = 128
    seed: int = 0
    l2_coefficient: float = 0.01
    input_dropout: float = 0.2
    hidden_dropout: float = 0.5
    preset: str = "keras"
    preprocessing: str = "scale"
    train_examples: int | None = None
    test_examples: int | None = None
    divergence_loss: float = 1e4

    def __post_init__(self) -> None:
        validation.choice("dataset", self.dataset, ("auto", *data.DATASETS))
        common.path("data_dir", self.data_dir, optional=True)
        common.names("optimizers", self.optimizers, OPTIMIZERS)
        common.names("regularizations", self.regularizations, REGULARIZATIONS)
        common.counts("hidden", self.hidden, unique=False)
        validation.integer("epochs", self.epochs, minimum=1)
        validation.integer("batch_size", self.batch_size, minimum=1)
        common.seed(self.seed)
        validation.number("l2_coefficient", self.l2_coefficient, minimum=0)
        common.below_one("input_dropout", self.input_dropout)
        common.below_one("hidden_dropout", self.hidden_dropout)
        validation.choice("preset", self.preset, optimizers.PRESETS)
        validation.choice("preprocessing", self.preprocessing, data.PREPROCESSING)
        validation.integer("train_examples", self.train_examples, minimum=1, optional=True)
        validation.integer("test_examples", self.test_examples, minimum=1, optional=True)
        common.positive("divergence_loss", self.divergence_loss)
        common.fits(
            "batch_size",
            self.batch_size,
            common.train_pool(self.dataset, self.train_examples, auto=common.AUTO_CIFAR10),
        )


DEFAULT = Config()
SMOKE = dataclasses.replace(
    DEFAULT,
    optimizers=("sgd", "adam"),
    hidden=(64, 64),
    epochs=2,
    train_examples=512,
    test_examples=256,
)
