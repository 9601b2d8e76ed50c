"""Shared fixtures: small slices of the real Fashion-MNIST (installed by .ci/run)."""

import pytest

from jaxsched import data


@pytest.fixture(scope="session")
def fashion_small() -> tuple[data.Dataset, data.Dataset]:
    """512 training and 256 test images of the real Fashion-MNIST, float32 in [0, 1]."""
    train = data.load("fashion_mnist", "train")
    test = data.load("fashion_mnist", "test")
    return (
        data.Dataset(data.to_float(train.images[:512]), train.labels[:512]),
        data.Dataset(data.to_float(test.images[:256]), test.labels[:256]),
    )
