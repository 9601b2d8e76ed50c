"""Hidden-layer outputs of untrained MLPs per activation and initializer: configurations."""

import dataclasses

from experiments.configs import common
from jaxsched import data, validation
from jaxsched.validation import ConfigError

ACTIVATIONS = ("tanh", "sigmoid", "relu")
# Initializers by name (jaxsched.initializers); "normal" ones come from `stddevs`.
NAMED_INITIALIZERS = ("glorot_normal", "he_normal", "glorot_uniform", "he_uniform", "lecun_normal")


@dataclasses.dataclass(frozen=True)
class Config:
    """MLP 784 -> Dense width (linear) -> depth x [Dense width + activation] -> Dense 10 softmax,
    untrained: kernels from each initializer, zero biases; the test images forwarded once.

    dataset: "auto" uses MNIST (the course's) where it can be loaded and Fashion-MNIST (real
      data) otherwise, and records which; "mnist" / "fashion_mnist" insist.
    activations: from ACTIVATIONS; one figure each.
    stddevs: sigma of the N(0, sigma^2) kernels (Keras's RandomNormal), one panel each.
    initializers: further panels, from NAMED_INITIALIZERS ("glorot_normal" is Keras's
      Xavier normal: truncated normal with variance 2 / (fan_in + fan_out); "he_normal": 2 /
      fan_in).
    width / depth: units per hidden layer; activated hidden layers after the linear one.
    seed: every net is initialized from the same key, so the N(0, sigma) nets are one draw
      scaled by sigma and the nets of different activations share their weights.
    test_examples: None for the whole test split (10,000 images), else a seeded subset.
    density_points / density_samples: each violin is a Gaussian KDE on density_points coords,
      fitted to at most density_samples outputs of the layer (a seeded subsample); the
      summary's mean, std and zero fraction use every output.
    """

    dataset: str = "auto"
    data_dir: str | None = None
    activations: tuple[str, ...] = ACTIVATIONS
    stddevs: tuple[float, ...] = (0.05, 0.10, 0.20)
    initializers: tuple[str, ...] = ("glorot_normal", "he_normal")
    width: int = 100
    depth: int = 5
    seed: int = 0
    preprocessing: str = "scale"
    test_examples: int | None = None
    density_points: int = 100
    density_samples: int = 20_000

    def __post_init__(self) -> None:
        validation.choice("dataset", self.dataset, ("auto", *data.DATASETS))
        common.path("data_dir", self.data_dir, optional=True)
        common.names("activations", self.activations, ACTIVATIONS)
        common.numbers("stddevs", self.stddevs, min_length=0)
        common.names("initializers", self.initializers, NAMED_INITIALIZERS, min_length=0)
        if not self.stddevs and not self.initializers:
            raise ConfigError(
                ("stddevs", "initializers"), "must not both be empty (no panel to draw)"
            )
        validation.integer("width", self.width, minimum=1)
        validation.integer("depth", self.depth, minimum=1)
        common.seed(self.seed)
        validation.choice("preprocessing", self.preprocessing, data.PREPROCESSING)
        validation.integer("test_examples", self.test_examples, minimum=1, optional=True)
        validation.integer("density_points", self.density_points, minimum=2)
        validation.integer("density_samples", self.density_samples, minimum=2)


DEFAULT = Config()
SMOKE = dataclasses.replace(DEFAULT, test_examples=256, density_points=40, density_samples=2_000)
