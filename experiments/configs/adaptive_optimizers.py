"""Adaptive optimizers on the course's MLP: configurations."""

import dataclasses

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


DEFAULT = Config()
SMOKE = dataclasses.replace(
    DEFAULT,
    optimizers=("sgd", "adam"),
    hidden=(64, 64),
    epochs=2,
    train_examples=512,
    test_examples=256,
)
