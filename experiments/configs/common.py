"""Settings shared by the LeNet-5 / Fashion-MNIST experiments, and the checks every config's
`__post_init__` shares (each raises `jaxsched.validation.ConfigError` naming config fields)."""

import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from jaxsched import data, validation
from jaxsched.validation import ConfigError

INPUT_NORMS = ("batchnorm", "none")  # jaxsched.models.LeNet5
# Training-split sizes of the datasets (every test split has 10,000 images).
TRAIN_SPLIT_SIZES = {"fashion_mnist": 60_000, "mnist": 60_000, "cifar10": 50_000}
# What "auto" resolves to (jaxsched.data.resolve_dataset): the preferred dataset, else
# Fashion-MNIST; the checks assume the smaller training split of the two.
AUTO_CIFAR10 = ("cifar10", "fashion_mnist")
AUTO_MNIST = ("mnist", "fashion_mnist")
SEED_MAX = 2**31 - 1  # seeds also enter JAX as int32 arrays (perceptron's vmapped seeds)
# The one-run LR sweep's rule (range_test.suggest_from_sweep, skip_start=10) needs at least
# skip_start + 2 updates: a shorter sweep never gives lr_min / lr_max.
SWEEP_MIN_STEPS = 12


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def seed(value: Any, name: str = "seed") -> None:
    validation.integer(name, value, minimum=0, maximum=SEED_MAX)


def flag(name: str, value: Any) -> None:
    """`value` must be a bool."""
    if not isinstance(value, bool):
        raise ConfigError(name, "must be True or False", _show(value))


def path(name: str, value: Any, *, optional: bool = False) -> None:
    """`value` must be a non-empty path (str or os.PathLike), or None when `optional`."""
    if value is None and optional:
        return
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigError(name, "must be a non-empty path", _show(value))


def positive(name: str, value: Any, *, optional: bool = False) -> None:
    """A finite number > 0 (learning rates, loss thresholds, step sizes)."""
    validation.number(name, value, minimum=0, exclusive_minimum=True, optional=optional)


def below_one(name: str, value: Any) -> None:
    """A finite number in [0, 1) (dropout rates, momenta, BatchNorm decays)."""
    validation.number(name, value, minimum=0, maximum=1, exclusive_maximum=True)


def fraction(name: str, value: Any) -> None:
    """A finite number in [0, 1] (accuracies)."""
    validation.number(name, value, minimum=0, maximum=1)


def names(name: str, values: Any, allowed: Iterable[str], *, min_length: int = 1) -> None:
    """A tuple of distinct names from `allowed`."""
    allowed = tuple(allowed)
    validation.sequence(
        name,
        values,
        lambda n, v: validation.choice(n, v, allowed),
        unique=True,
        min_length=min_length,
    )


def counts(name: str, values: Any, *, minimum: int = 1, unique: bool = True) -> None:
    """A non-empty tuple of integers >= minimum (distinct when `unique`)."""
    validation.sequence(
        name, values, lambda n, v: validation.integer(n, v, minimum=minimum), unique=unique
    )


def numbers(name: str, values: Any, *, min_length: int = 1) -> None:
    """A tuple of distinct finite numbers > 0."""
    validation.sequence(name, values, positive, unique=True, min_length=min_length)


def shape(name: str, values: Any, length: int, *, minimum: int = 1) -> None:
    """A tuple of exactly `length` integers >= minimum (an image's (H, W, C), filters)."""
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) != length:
        raise ConfigError(name, f"must hold exactly {length} values", _show(values))
    validation.sequence(name, values, lambda n, v: validation.integer(n, v, minimum=minimum))


def resnet_depth(name: str, value: Any) -> None:
    """A ResNet v1 depth 6n + 2 with n >= 1 (jaxsched.models.ResNetV1)."""
    validation.integer(name, value, minimum=8)
    if (value - 2) % 6:
        raise ConfigError(
            name, "must be 6n + 2 with n >= 1 (8, 20, 32, 44, 56, 110, ...)", str(value)
        )


def lenet_variant(config: Any) -> None:
    """first_pool_stride (1 or 2) and pool_batchnorm (a bool) of a LeNet-5 config."""
    validation.integer("first_pool_stride", config.first_pool_stride, minimum=1, maximum=2)
    flag("pool_batchnorm", config.pool_batchnorm)


class Pool(NamedTuple):
    """The training examples a run can draw batches from: `size`, the config `fields` that set
    it and `text`, how (mentioning the fields as {field})."""

    size: int
    fields: tuple[str, ...]
    text: str


def train_pool(
    dataset: str,
    train_examples: int | None,
    *,
    auto: Sequence[str] = AUTO_CIFAR10,
    dataset_field: str = "dataset",
    examples_field: str = "train_examples",
) -> Pool:
    """The training examples of `dataset` (checked before) limited to `train_examples` (a
    seeded subset; None or more than the split: the whole split). "auto" counts the smaller
    training split of the datasets in `auto`."""
    if dataset == "auto":
        split = min(TRAIN_SPLIT_SIZES[d] for d in auto)
        text = f"the {split} of {{{dataset_field}}} 'auto' ({' or '.join(auto)})"
    else:
        split = TRAIN_SPLIT_SIZES[dataset]
        text = f"the {split} of {{{dataset_field}}} {dataset!r}"
    if train_examples is not None and train_examples < split:
        return Pool(train_examples, (examples_field,), f"{{{examples_field}}} = {train_examples}")
    return Pool(split, (dataset_field,), text)


def hold_out(pool: Pool, name: str, value: Any, *, allow_zero: bool = False) -> Pool:
    """Checks that `value` examples (field `name`) can be held out of `pool` for validation,
    leaving at least one to train on; returns the pool that is left. `allow_zero`: 0 (no
    hold-out; the runner validates on the test split) is allowed."""
    validation.integer(name, value, minimum=0 if allow_zero else 1)
    if value == 0:
        return pool
    if value >= pool.size:
        raise ConfigError(
            (name, *pool.fields),
            f"must leave training examples: {{{name}}} < {pool.size}, the training examples "
            f"({pool.text})",
            _show(value),
        )
    return Pool(pool.size - value, (*pool.fields, name), f"{pool.text} minus {{{name}}} = {value}")


def fits(name: str, value: Any, pool: Pool) -> None:
    """`value` (a batch size, or a tuple of them) must be <= pool.size: a batch larger than the
    training examples never fits in an epoch."""
    largest = max(value) if isinstance(value, Sequence) else value
    if largest > pool.size:
        label = f"max({{{name}}})" if isinstance(value, Sequence) else f"{{{name}}}"
        raise ConfigError(
            (name, *pool.fields),
            f"must satisfy {label} <= {pool.size}, the training examples ({pool.text})",
            _show(largest),
        )


def splittable(
    sizes: Iterable[int],
    max_device_batch: int | None,
    fields: Sequence[str],
    *,
    strategy: str = "shapes",
) -> None:
    """The batch sizes a run plans must split the way jaxsched.batching splits them: under
    "shapes" a size s above max_device_batch into k = ceil(s / max_device_batch) equal
    micro-batches (k divides s); under "accumulate" every size into micro-batches of
    m = min(smallest size, max_device_batch) (m divides every size). `fields`: the config
    fields that set the sizes, max_device_batch and the strategy."""
    sizes = sorted(set(sizes))
    if not sizes:
        return
    cap = max_device_batch or sizes[-1]
    if strategy == "accumulate":
        micro = min(sizes[0], cap)
        bad = [s for s in sizes if s % micro]
        requirement = f"must give batch sizes that are all multiples of the micro-batch {micro}"
    else:
        bad = [s for s in sizes if s % -(-s // cap)]
        requirement = (
            f"must give batch sizes that split into equal micro-batches of at most {cap} "
            f"(a size s above it must be divisible by ceil(s / {cap}))"
        )
    if bad:
        raise ConfigError(tuple(fields), requirement, " ".join(map(str, bad)))


@dataclasses.dataclass(frozen=True)
class LeNetExperiment:
    """Data, model and learning-rate-bounds settings every LeNet-5 experiment shares.

    dataset / data_dir: what `jaxsched.data.load` reads.
    seed: initialization, shuffling, subsets and the validation split.
    train_examples / test_examples: None for the whole split, else a seeded random subset.
    preprocessing: "scale" ([0, 1]), "pixel_mean", "standardize" (train statistics) or
      "pixel_mean_resize32" (pixel_mean, then bilinear 28 -> 32: the MiniGoogLeNet notebook's).
    input_norm / hidden_batchnorm / first_pool_stride / pool_batchnorm: the LeNet-5 variant
      (jaxsched.models.LeNet5; stride 1 with pool_batchnorm: the course's 546,542-parameter net).
    divergence_loss: a batch loss above this (nats; chance is ln 10 = 2.3) or NaN/inf ends a run
      as "diverged": BatchNorm keeps the loss finite at absurd learning rates.
    bounds_from / lr_min / lr_max / sweep_steps: where lr_min / lr_max come from
      (`experiments._lr_range.lr_bounds`): both given, or the summary of an lr_range_test
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
    first_pool_stride: int = 2
    pool_batchnorm: bool = False
    divergence_loss: float = 100.0
    bounds_from: str = "sweep"
    lr_min: float | None = None
    lr_max: float | None = None
    sweep_steps: int = 2000
    batch_size: int = 64

    def __post_init__(self) -> None:
        validation.choice("dataset", self.dataset, data.DATASETS)
        path("data_dir", self.data_dir, optional=True)
        seed(self.seed)
        validation.integer("train_examples", self.train_examples, minimum=1, optional=True)
        validation.integer("test_examples", self.test_examples, minimum=1, optional=True)
        validation.choice("preprocessing", self.preprocessing, data.PREPROCESSING)
        validation.choice("input_norm", self.input_norm, INPUT_NORMS)
        flag("hidden_batchnorm", self.hidden_batchnorm)
        lenet_variant(self)
        positive("divergence_loss", self.divergence_loss)
        path("bounds_from", self.bounds_from)  # "sweep" or a results.json
        positive("lr_min", self.lr_min, optional=True)
        positive("lr_max", self.lr_max, optional=True)
        validation.together(("lr_min", "lr_max"), (self.lr_min, self.lr_max))
        validation.ordered("lr_min", self.lr_min, "lr_max", self.lr_max)
        validation.integer("sweep_steps", self.sweep_steps, minimum=SWEEP_MIN_STEPS)
        validation.integer("batch_size", self.batch_size, minimum=1)
        # The LR sweep trains at batch_size on the whole training subset.
        fits("batch_size", self.batch_size, self.train_pool())

    def train_pool(self) -> Pool:
        """The training examples before any validation hold-out."""
        return train_pool(self.dataset, self.train_examples)
