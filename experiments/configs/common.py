"""Settings shared by the LeNet-5 / Fashion-MNIST experiments."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class LeNetExperiment:
    """Data, model and learning-rate-bounds settings every LeNet-5 experiment shares.

    dataset / data_dir: what `jaxsched.data.load` reads.
    seed: initialization, shuffling, subsets and the validation split.
    train_examples / test_examples: None for the whole split, else a seeded random subset.
    preprocessing: "scale" ([0, 1]), "pixel_mean" or "standardize" (train statistics).
    input_norm / hidden_batchnorm: the LeNet-5 variant (jaxsched.models.LeNet5).
    divergence_loss: a batch loss above this (nats; chance is ln 10 = 2.3) or NaN/inf ends a run
      as "diverged": BatchNorm keeps the loss finite at absurd learning rates.
    bounds_from / lr_min / lr_max / sweep_steps: where lr_min / lr_max come from
      (`experiments.common.lr_bounds`): both given, or the summary of an lr_range_test
      results.json, or ("sweep") a one-run range test of `sweep_steps` updates run first.
    batch_size: examples per update (of the range test, and of fixed-batch training).
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    seed: int = 0
    train_examples: int | None = None
    test_examples: int | None = None
    preprocessing: str = "scale"
    input_norm: str = "batchnorm"
    hidden_batchnorm: bool = True
    divergence_loss: float = 100.0
    bounds_from: str = "sweep"
    lr_min: float | None = None
    lr_max: float | None = None
    sweep_steps: int = 2000
    batch_size: int = 64
