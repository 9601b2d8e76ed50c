"""The eggholder function and the depth-vs-width study's regression data drawn from it."""

import numpy as np

from jaxsched import data, validation


def eggholder(x: np.ndarray) -> np.ndarray:
    """f(x1, x2) = -(x2 + 47) sin(sqrt|x1 / 2 + x2 + 47|) - x1 sin(sqrt|x1 - (x2 + 47)|).

    x: [..., 2] (x1, x2); returns [...], in x's float dtype (float64 for integer inputs).
    Its global minimum on [-512, 512]^2 is f(512, 404.2319) = -959.6407.

    Examples:
      >>> from jaxsched.eggholder import eggholder
      >>> round(float(eggholder(np.array([512.0, 404.2319]))), 4)
      -959.6407
      >>> float(eggholder(np.array([0.0, -47.0])))
      -0.0
    """
    x = np.asarray(x)
    x = x.astype(np.float64) if not np.issubdtype(x.dtype, np.floating) else x
    x1, x2 = x[..., 0], x[..., 1]
    return -(x2 + 47) * np.sin(np.sqrt(np.abs(x1 / 2 + x2 + 47))) - x1 * np.sin(
        np.sqrt(np.abs(x1 - (x2 + 47)))
    )


def make_splits(
    num_examples: int = 100_000,
    *,
    noise_std: float = 0.3,
    limit: int = 512,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[data.Dataset, data.Dataset]:
    """The course notebook's data: inputs drawn as integers uniform in [-limit, limit]^2,
    targets f(x) + N(0, noise_std^2), split into train and test (the last test_fraction).

    Returns (train, test) Datasets of inputs float32[N, 2] (raw, unscaled, as the notebook feeds
    them) and targets float32[N]. The same seed gives the same draws.

    Examples:
      >>> from jaxsched.eggholder import make_splits
      >>> train, test = make_splits(1000, seed=1)
      >>> train.images.shape, test.images.shape, train.labels.dtype
      ((800, 2), (200, 2), dtype('float32'))
    """
    validation.integer("num_examples", num_examples, minimum=2)
    validation.number("noise_std", noise_std, minimum=0)
    validation.integer("limit", limit, minimum=1)
    validation.number(
        "test_fraction",
        test_fraction,
        minimum=0,
        maximum=1,
        exclusive_minimum=True,
        exclusive_maximum=True,
    )
    validation.integer("seed", seed, minimum=0)
    num_test = int(round(num_examples * test_fraction))
    if not 0 < num_test < num_examples:
        raise ValueError(
            f"test_fraction: {test_fraction} of num_examples={num_examples} leaves an empty "
            f"split; need 1..{num_examples - 1} test examples, got {num_test}"
        )
    rng = np.random.default_rng(seed)
    x = rng.integers(-limit, limit, size=(num_examples, 2), endpoint=True)
    y = eggholder(x) + rng.normal(0.0, noise_std, size=num_examples)
    x, y = x.astype(np.float32), y.astype(np.float32)
    cut = num_examples - num_test
    return data.Dataset(x[:cut], y[:cut]), data.Dataset(x[cut:], y[cut:])
