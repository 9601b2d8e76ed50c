"""BatchNorm vs dropout on LeNet-5: configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import data, validation

# variant -> (preprocessing, LeNet5 input_norm, hidden_batchnorm, dropout on).
VARIANTS: dict[str, tuple[str, str, bool, bool]] = {
    "standardize+bn": ("standardize", "none", True, False),
    "input_bn+bn": ("scale", "batchnorm", True, False),
    "dropout": ("standardize", "none", False, True),
    "bn+dropout": ("standardize", "none", True, True),
    "input_bn+dropout": ("scale", "batchnorm", True, True),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """LeNet-5, SGD (no momentum), the course's four normalization / regularization variants.

    dataset: "auto" uses MNIST (the seeds' dataset) where it can be loaded, else Fashion-MNIST
      (real data), recorded in results.json; or a name.
    variants: keys of VARIANTS. "standardize+bn": inputs standardized with the training set's
      mean and std, BatchNorm after each hidden activation. "input_bn+bn": inputs scaled to
      [0, 1] and normalized by a BatchNorm layer, plus hidden BatchNorm. "dropout": no
      BatchNorm, standardized inputs, dropout `input_dropout` on the input and `hidden_dropout`
      after each hidden layer. "bn+dropout": hidden BatchNorm and the same dropout together.
      "input_bn+dropout": the course notebook's: [0, 1] inputs, input and hidden BatchNorm, and
      the dropout.
    dropout_first: each dropout right after its activation, before its BatchNorm and the
      pooling (input: dropout, then BatchNorm), the notebook's order; else after them (LeNet5's
      default). It also moves the dropout-only variant's dropout before the pooling.
    learning_rate / batch_size / epochs: the course's SGD 0.01, batch 128, 10 epochs.
    train_examples / test_examples: None for the whole split, else a seeded random subset.
    """

    dataset: str = "auto"
    data_dir: str | None = None
    variants: tuple[str, ...] = ("standardize+bn", "input_bn+bn", "dropout", "bn+dropout")
    learning_rate: float = 0.01
    batch_size: int = 128
    epochs: int = 10
    input_dropout: float = 0.2
    hidden_dropout: float = 0.5
    dropout_first: bool = False
    seed: int = 0
    train_examples: int | None = None
    test_examples: int | None = None
    divergence_loss: float = 100.0

    def __post_init__(self) -> None:
        validation.choice("dataset", self.dataset, ("auto", *data.DATASETS))
        common.path("data_dir", self.data_dir, optional=True)
        common.names("variants", self.variants, VARIANTS)
        common.positive("learning_rate", self.learning_rate)
        validation.integer("batch_size", self.batch_size, minimum=1)
        validation.integer("epochs", self.epochs, minimum=1)
        common.below_one("input_dropout", self.input_dropout)
        common.below_one("hidden_dropout", self.hidden_dropout)
        common.flag("dropout_first", self.dropout_first)
        common.seed(self.seed)
        validation.integer("train_examples", self.train_examples, minimum=1, optional=True)
        validation.integer("test_examples", self.test_examples, minimum=1, optional=True)
        common.positive("divergence_loss", self.divergence_loss)
        common.fits(
            "batch_size",
            self.batch_size,
            common.train_pool(self.dataset, self.train_examples, auto=common.AUTO_MNIST),
        )


DEFAULT = Config()
SMOKE = dataclasses.replace(DEFAULT, epochs=2, train_examples=512, test_examples=256)

# The course notebook's protocol: its four variants with its BatchNorm + dropout net (input
# dropout, then input BatchNorm; every dropout before its BatchNorm), SGD 0.01, batch 128,
# 10 epochs.
COURSE = dataclasses.replace(
    DEFAULT,
    variants=("standardize+bn", "input_bn+bn", "dropout", "input_bn+dropout"),
    dropout_first=True,
)
COURSE_SMOKE = dataclasses.replace(COURSE, epochs=2, train_examples=512, test_examples=256)
PROTOCOLS = {"course": (COURSE, COURSE_SMOKE)}
