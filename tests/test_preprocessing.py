"""OpenCV-style bilinear resize (`data.resize(..., "linear")`) and the MiniGoogLeNet notebook's
Fashion-MNIST preprocessing ("pixel_mean_resize32": per-pixel train mean off, 28 -> 32)."""

import numpy as np
import pytest

from jaxsched import data, validation

NAME = "pixel_mean_resize32"


def reference_resize(images: np.ndarray, size: int) -> np.ndarray:
    """cv2 INTER_LINEAR written out from its formula, one output pixel at a time, in float64:
    src = (dst + 0.5) * in / out - 0.5, neighbours floor(src) and floor(src) + 1, both clamped
    to the image (an edge pixel takes the whole weight)."""
    x = np.asarray(images, np.float64)
    n, h, w, c = x.shape

    def taps(in_size, d):
        src = (d + 0.5) * in_size / size - 0.5
        lo = int(np.floor(src))
        frac = src - lo
        if lo < 0:
            lo, frac = 0, 0.0
        if lo >= in_size - 1:
            lo, frac = in_size - 1, 0.0
        return lo, min(lo + 1, in_size - 1), frac

    out = np.empty((n, size, size, c))
    for dy in range(size):
        y0, y1, fy = taps(h, dy)
        for dx in range(size):
            x0, x1, fx = taps(w, dx)
            top = (1 - fx) * x[:, y0, x0] + fx * x[:, y0, x1]
            bottom = (1 - fx) * x[:, y1, x0] + fx * x[:, y1, x1]
            out[:, dy, dx] = (1 - fy) * top + fy * bottom
    return out


@pytest.fixture(scope="module")
def raw_fashion():
    """300 training and 100 test images of the real Fashion-MNIST, uint8 [N, 28, 28, 1]."""
    train = data.load("fashion_mnist", "train")
    test = data.load("fashion_mnist", "test")
    return train.images[:300], test.images[:100]


# ---------------------------------------------------------------- resize "linear"


@pytest.mark.parametrize("size", [32, 56, 13, 28])
def test_resize_linear_matches_formula(size):
    x = np.random.default_rng(0).normal(size=(3, 28, 28, 2)).astype(np.float32)
    out = data.resize(x, size, "linear")
    assert out.shape == (3, size, size, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference_resize(x, size), atol=1e-6)


def test_resize_linear_non_square_input():
    x = np.random.default_rng(1).uniform(size=(2, 20, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(data.resize(x, 32, "linear"), reference_resize(x, 32), atol=1e-6)


def test_resize_linear_corners_and_edges():
    x = np.random.default_rng(2).uniform(size=(4, 28, 28, 1)).astype(np.float32)
    out = data.resize(x, 32, "linear")
    # 28 -> 32: the corner outputs' sources (-0.0625 and 27.0625) clamp onto the corner pixels.
    for oy, ox, iy, ix in [(0, 0, 0, 0), (0, -1, 0, -1), (-1, 0, -1, 0), (-1, -1, -1, -1)]:
        np.testing.assert_array_equal(out[:, oy, ox], x[:, iy, ix])
    # The first output row is the first input row resized in 1-D (rows clamp to row 0).
    first_row = reference_resize(np.repeat(x[:, :1], 28, axis=1), 32)[:, 0]
    np.testing.assert_allclose(out[:, 0], first_row, atol=1e-6)


def test_resize_linear_constant_stays_constant():
    out = data.resize(np.full((2, 28, 28, 3), 0.37, np.float32), 32, "linear")
    np.testing.assert_allclose(out, 0.37, rtol=1e-6)
    ones = data.resize(np.full((1, 28, 28, 1), 255, np.uint8), 32, "linear")
    np.testing.assert_allclose(ones, 1.0, rtol=1e-6)  # uint8 goes through to_float: [0, 1]


def test_resize_linear_ramp_stays_linear_in_the_interior():
    i, j = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    x = (0.5 * i + 0.25 * j + 1.0).astype(np.float32)[None, :, :, None]
    out = data.resize(x, 32, "linear")[0, :, :, 0]
    src = (np.arange(32) + 0.5) * 28 / 32 - 0.5
    inside = (src >= 0) & (src <= 27)
    expected = 0.5 * src[:, None] + 0.25 * src[None, :] + 1.0
    np.testing.assert_allclose(
        out[np.ix_(inside, inside)], expected[np.ix_(inside, inside)], atol=1e-5
    )
    assert inside.sum() == 30  # only the outermost rows / columns clamp
    # The clamped first row is input row 0 (i = 0), still linear along the columns.
    np.testing.assert_allclose(out[0, 1:-1], 0.25 * src[1:-1] + 1.0, atol=1e-5)


def test_resize_linear_same_size_is_identity():
    x = np.random.default_rng(3).uniform(size=(2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(data.resize(x, 28, "linear"), x)


def test_resize_linear_equals_jax_bilinear_when_upscaling():
    x = np.random.default_rng(4).uniform(size=(3, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(
        data.resize(x, 32, "linear"), data.resize(x, 32, "bilinear"), atol=1e-6
    )


def test_resize_linear_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    x = np.random.default_rng(5).uniform(-1, 1, size=(3, 28, 28, 1)).astype(np.float32)
    out = data.resize(x, 32, "linear")
    for k in range(3):
        expected = cv2.resize(x[k, :, :, 0], (32, 32), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(out[k, :, :, 0], expected, atol=1e-5)


def test_resize_linear_errors():
    with pytest.raises(ValueError, match="size"):
        data.resize(np.zeros((1, 28, 28, 1), np.float32), 0, "linear")
    with pytest.raises(ValueError, match="images"):
        data.resize(np.zeros((28, 28, 1), np.float32), 32, "linear")


# ---------------------------------------------------------------- pixel_mean_resize


def test_pixel_mean_resize_matches_notebook_order(raw_fashion):
    train, test = raw_fashion
    out_train, out_test = data.pixel_mean_resize(train, test, size=32)
    assert out_train.shape == (300, 32, 32, 1) and out_test.shape == (100, 32, 32, 1)
    assert out_train.dtype == out_test.dtype == np.float32
    # The notebook's order, in float64: train mean off on the 0..255 scale, resize, / 255.
    mean = train.astype(np.float64).mean(axis=0)
    for images, out in [(train, out_train), (test, out_test)]:
        expected = reference_resize(images.astype(np.float64) - mean, 32) / 255
        np.testing.assert_allclose(out, expected, atol=2e-6)
    assert -1.0 <= out_test.min() and out_test.max() <= 1.0


def test_pixel_mean_resize_test_split_uses_the_train_mean(raw_fashion):
    train, test = raw_fashion
    out_train, out_test = data.pixel_mean_resize(train, test)
    np.testing.assert_allclose(out_train.mean(axis=0), 0.0, atol=1e-6)  # centred on train
    assert abs(out_test.mean(axis=0)).max() > 1e-3  # ... not on the test split itself
    (own,) = data.pixel_mean_resize(test)
    assert not np.allclose(out_test, own, atol=1e-4)
    train_mean = data.resize(data.to_float(train).mean(axis=0, keepdims=True), 32, "linear")
    np.testing.assert_allclose(out_test, data.resize(test, 32, "linear") - train_mean, atol=2e-6)


def test_pixel_mean_resize_float_input(fashion_small, raw_fashion):
    """[0, 1] floats (the `fashion_small` fixture) give what the same uint8 images give."""
    train, test = fashion_small
    raw_train = data.load("fashion_mnist", "train").images[:512]
    got = data.pixel_mean_resize(train.images, test.images[:100])
    want = data.pixel_mean_resize(raw_train, raw_fashion[1])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- load_splits


def test_name_is_registered_and_accepted_by_config_validation():
    assert NAME in data.PREPROCESSING
    assert validation.choice("preprocessing", NAME, data.PREPROCESSING) == NAME


def test_load_splits_end_to_end():
    train, test = data.load_splits("fashion_mnist", None, NAME, 256, 128, 0)
    assert train.images.shape == (256, 32, 32, 1) and test.images.shape == (128, 32, 32, 1)
    assert train.images.dtype == test.images.dtype == np.float32
    assert train.labels.dtype == test.labels.dtype == np.int32
    assert np.isfinite(train.images).all() and np.isfinite(test.images).all()
    # The statistics are those of the 256 training examples used.
    raw_train = data.subset(data.load("fashion_mnist", "train"), 256, 0)
    raw_test = data.subset(data.load("fashion_mnist", "test"), 128, 1)
    np.testing.assert_array_equal(train.labels, raw_train.labels)
    np.testing.assert_array_equal(test.labels, raw_test.labels)
    want_train, want_test = data.pixel_mean_resize(raw_train.images, raw_test.images)
    np.testing.assert_array_equal(train.images, want_train)
    np.testing.assert_array_equal(test.images, want_test)
    np.testing.assert_allclose(train.images.mean(axis=0), 0.0, atol=1e-6)
    # image_size=32 means the same (resized, not zero-padded); another size is refused.
    again, _ = data.load_splits("fashion_mnist", None, NAME, 256, 128, 0, image_size=32)
    np.testing.assert_array_equal(again.images, train.images)
    with pytest.raises(ValueError, match="image_size"):
        data.load_splits("fashion_mnist", None, NAME, 256, 128, 0, image_size=28)
