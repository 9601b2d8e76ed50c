"""augment: Keras-style random shift + horizontal flip against NumPy/scipy references.

References transcribed here:

* `np.pad` then a window: out[i, j] = image[i - dy, j - dx] with the image extended by
  mode "edge" (Keras/scipy 'nearest'), "symmetric" (scipy 'reflect', half-sample symmetric
  d c b a | a b c d | d c b a), "wrap" (periodic) or "constant" (cval).
* scipy.ndimage.shift(image, (dy, dx, 0), order=0, mode=...), which is exact for integer
  shifts; scipy's periodic mode is 'grid-wrap' (its legacy 'wrap' has period size - 1).

Shapes are kept few so that the file runs in seconds.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsched import augment

H, W = 7, 9  # not square, so that rows and columns cannot be confused
OFFSETS = [(0, 0), (1, 2), (-2, 3), (3, -4), (-5, -7), (6, 8), (4, -6), (10, -12), (-7, 9)]
NP_MODES = {"nearest": "edge", "reflect": "symmetric", "wrap": "wrap", "constant": "constant"}
SCIPY_MODES = {"nearest": "nearest", "reflect": "reflect", "wrap": "grid-wrap"}
CVAL = -1.5


def coordinate_image(h: int = H, w: int = W) -> np.ndarray:
    """float32[h, w, 2]: row + 1 and column + 1, so every pixel's source is readable."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([rows + 1, cols + 1], -1).astype(np.float32)


IMAGE = coordinate_image()


def numpy_shift(image: np.ndarray, dy: int, dx: int, fill: str, cval: float = 0.0) -> np.ndarray:
    """out[i, j] = image[i - dy, j - dx] on the image padded by np.pad(mode=NP_MODES[fill])."""
    h, w, _ = image.shape
    py, px = abs(dy), abs(dx)
    kwargs = {"constant_values": cval} if fill == "constant" else {}
    padded = np.pad(image, ((py, py), (px, px), (0, 0)), mode=NP_MODES[fill], **kwargs)
    return padded[py - dy : py - dy + h, px - dx : px - dx + w]


@pytest.mark.parametrize("fill", augment.FILLS)
def test_shift_image_matches_numpy_pad(fill):
    shift = jax.jit(functools.partial(augment.shift_image, fill=fill, cval=CVAL))
    for dy, dx in OFFSETS:
        expected = numpy_shift(IMAGE, dy, dx, fill, CVAL)
        np.testing.assert_array_equal(shift(IMAGE, dy, dx), expected, err_msg=f"{(dy, dx)}")
        # eager, Python ints
        np.testing.assert_array_equal(
            augment.shift_image(IMAGE, dy, dx, fill=fill, cval=CVAL), expected
        )


@pytest.mark.parametrize("fill", augment.FILLS)
def test_shift_image_matches_scipy(fill):
    ndimage = pytest.importorskip("scipy.ndimage")
    mode = SCIPY_MODES.get(fill, "constant")
    for dy, dx in OFFSETS:
        expected = ndimage.shift(IMAGE, (dy, dx, 0), order=0, mode=mode, cval=CVAL)
        out = augment.shift_image(IMAGE, dy, dx, fill=fill, cval=CVAL)
        np.testing.assert_array_equal(out, expected, err_msg=f"{(dy, dx)}")


def test_shift_image_reflect_is_half_sample_symmetric():
    row = jnp.arange(1.0, 5.0).reshape(1, 4, 1)  # a b c d
    out = augment.shift_image(row, 0, 4, fill="reflect")  # the left extension: d c b a
    assert out[0, :, 0].tolist() == [4.0, 3.0, 2.0, 1.0]
    out = augment.shift_image(row, 0, -4, fill="reflect")  # the right extension: d c b a
    assert out[0, :, 0].tolist() == [4.0, 3.0, 2.0, 1.0]


def test_shift_image_keeps_shape_and_dtype():
    image = jnp.asarray(IMAGE, jnp.bfloat16)
    out = augment.shift_image(image, 2, -3, fill="constant", cval=CVAL)
    chex.assert_shape(out, image.shape)
    chex.assert_type(out, jnp.bfloat16)


def test_shift_image_vmaps_over_offsets():
    dys, dxs = jnp.array([d[0] for d in OFFSETS]), jnp.array([d[1] for d in OFFSETS])
    out = jax.jit(jax.vmap(augment.shift_image, in_axes=(None, 0, 0)))(IMAGE, dys, dxs)
    for k, (dy, dx) in enumerate(OFFSETS):
        np.testing.assert_array_equal(out[k], numpy_shift(IMAGE, dy, dx, "nearest"))


# ------------------------------------------------------------------------------------------------
# Random draws.

S = 32
DOT = np.zeros((S, S, 1), np.float32)
DOT[S // 2, S // 2, 0] = 1.0  # one bright pixel: its position after the shift gives (dy, dx)


def recovered_offsets(images: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    flat = np.asarray(images[..., 0]).reshape(images.shape[0], -1)
    assert np.all(flat.sum(axis=1) == 1.0)  # the dot never leaves a 32 x 32 image at +-3
    rows, cols = np.divmod(flat.argmax(axis=1), S)
    return rows - S // 2, cols - S // 2


@functools.partial(jax.jit, static_argnames=("fill",))
def shift_batch(keys, images, fill="constant"):
    return jax.vmap(functools.partial(augment.random_shift, fill=fill))(keys, images)


def test_random_shift_offsets_are_uniform_within_range():
    n = 4000
    images = jnp.broadcast_to(DOT, (n, S, S, 1))
    dy, dx = recovered_offsets(shift_batch(jax.random.split(jax.random.key(0), n), images))
    m = round(0.1 * S)  # 3
    for name, d in (("dy", dy), ("dx", dx)):
        assert d.min() >= -m and d.max() <= m, name
        counts = np.bincount(d + m, minlength=2 * m + 1)
        p = 1 / (2 * m + 1)
        sigma = np.sqrt(n * p * (1 - p))
        assert np.all(np.abs(counts - n * p) < 4 * sigma), (name, counts)
    # independent directions: the joint histogram is not concentrated on the diagonal
    assert abs(np.corrcoef(dy, dx)[0, 1]) < 4 / np.sqrt(n)


@pytest.mark.parametrize(
    "size, fraction, m", [(28, 0.1, 3), (25, 0.1, 3), (32, 0.05, 2), (32, 0.0, 0)]
)
def test_draw_shift_range_rounds_half_up(size, fraction, m):
    # 28 x 28 (Fashion-MNIST): round(2.8) = 3; 0.1 x 25 = 2.5 -> 3; range 0 -> no shift.
    keys = jax.random.split(jax.random.key(1), 2000)
    draw = functools.partial(
        augment._draw_shift, height=size, width=size, height_range=fraction, width_range=fraction
    )
    dy, dx = jax.vmap(draw)(keys)
    assert set(np.unique(dy).tolist()) == set(range(-m, m + 1))
    assert set(np.unique(dx).tolist()) == set(range(-m, m + 1))


def test_random_shift_zero_range_is_identity():
    out = augment.random_shift(jax.random.key(0), IMAGE, height_range=0.0, width_range=0.0)
    np.testing.assert_array_equal(out, IMAGE)


def test_random_shift_height_range_moves_rows_only():
    keys = jax.random.split(jax.random.key(2), 200)
    out = jax.vmap(functools.partial(augment.random_shift, height_range=0.1, width_range=0.0))(
        keys, jnp.broadcast_to(DOT, (200, S, S, 1))
    )
    dy, dx = recovered_offsets(out)
    assert np.all(dx == 0) and len(np.unique(dy)) == 7


def test_random_flip_probability_and_values():
    n = 4000
    image = jnp.asarray(IMAGE)
    keys = jax.random.split(jax.random.key(3), n)
    out = jax.jit(jax.vmap(augment.random_flip, in_axes=(0, None)))(keys, image)
    flipped = np.all(np.asarray(out) == IMAGE[:, ::-1], axis=(1, 2, 3))
    kept = np.all(np.asarray(out) == IMAGE, axis=(1, 2, 3))
    assert np.all(flipped ^ kept)
    assert abs(flipped.sum() - n / 2) < 4 * np.sqrt(n / 4), flipped.sum()


def test_keras_shift_flip_is_a_shift_then_a_flip():
    n = 4000
    batch = jax.jit(augment.keras_shift_flip_batch, static_argnames="fill")
    out = np.asarray(batch(jax.random.key(4), jnp.broadcast_to(DOT, (n, S, S, 1)), fill="constant"))
    dy, dx = recovered_offsets(out)
    # A flip mirrors the dot's column: S - 1 - (S/2 + dx) = S/2 - 1 - dx, so its recovered dx is
    # -1 - dx in {-4, ..., 2}; unflipped it is dx in {-3, ..., 3}.
    assert dy.min() >= -3 and dy.max() <= 3
    assert dx.min() >= -4 and dx.max() <= 3
    assert np.sum(dx == -4) > 0 and np.sum(dx == 3) > 0  # both flipped and unflipped occur
    # per-example equality with the single-image op under the batch's key split
    single = augment.keras_shift_flip(
        jax.random.split(jax.random.key(4), n)[5], DOT, fill="constant"
    )
    np.testing.assert_array_equal(out[5], single)


def test_batch_keys_differ_and_same_key_repeats():
    images = jnp.broadcast_to(jnp.asarray(DOT), (16, S, S, 1))
    fn = jax.jit(augment.make("shift_flip", fill="constant"))
    out1, out2 = fn(jax.random.key(5), images), fn(jax.random.key(5), images)
    chex.assert_trees_all_equal(out1, out2)  # same key -> same output
    distinct = {np.asarray(x).tobytes() for x in out1}
    assert len(distinct) > 8  # per-example keys: the 16 identical inputs mostly differ
    out3 = fn(jax.random.key(6), images)
    assert not np.array_equal(out1, out3)
    chex.assert_trees_all_equal(
        out1, augment.keras_shift_flip_batch(jax.random.key(5), images, fill="constant")
    )


def test_make_batch_augment_shift_flip_repeats_labels():
    batch_fn = augment.make_batch_augment(2, "shift_flip", fill="reflect")
    images, labels = batch_fn(
        jax.random.key(0), jnp.broadcast_to(IMAGE, (3, H, W, 2)), jnp.arange(3)
    )
    chex.assert_shape(images, (6, H, W, 2))
    assert labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_nearest_fill_only_repeats_edge_values():
    images = jnp.broadcast_to(IMAGE, (64, H, W, 2))
    out = np.asarray(
        augment.make("shift_flip", height_range=0.5, width_range=0.5)(jax.random.key(7), images)
    )
    # Every output pixel is some input pixel; rows and columns stay whole (one source each).
    assert set(np.unique(out[..., 0]).tolist()) <= set(range(1, H + 1))
    assert np.all(out[..., 0] == out[:, :, :1, 0])  # a row's pixels share the row coordinate
    assert np.all(out[..., 1] == out[:, :1, :, 1])


# ------------------------------------------------------------------------------------------------
# Argument checks.


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"fill": "mirror"}, "fill"),
        ({"fill": "edge"}, "fill"),
        ({"height_range": 1.0}, "height_range"),
        ({"height_range": -0.1}, "height_range"),
        ({"width_range": 1.5}, "width_range"),
        ({"width_range": -0.01}, "width_range"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    key = jax.random.key(0)
    calls = [
        lambda: augment.random_shift(key, IMAGE, **kwargs),
        lambda: augment.keras_shift_flip(key, IMAGE, **kwargs),
        lambda: augment.keras_shift_flip_batch(key, IMAGE[None], **kwargs),
        lambda: augment.make("shift_flip", **kwargs),
        lambda: augment.make_batch_augment(2, "shift_flip", **kwargs),
    ]
    if set(kwargs) == {"fill"}:
        calls.append(lambda: augment.shift_image(IMAGE, 1, 1, **kwargs))
    for call in calls:
        with pytest.raises(ValueError, match=name):
            call()


def test_shift_image_rejects_bad_offsets_and_shapes():
    with pytest.raises(ValueError, match="dy"):
        augment.shift_image(IMAGE, 1.5, 0)
    with pytest.raises(ValueError, match="dx"):
        augment.shift_image(IMAGE, 0, jnp.array([1, 2]))
    with pytest.raises(ValueError, match="image"):
        augment.shift_image(IMAGE[None], 0, 0)
    with pytest.raises(ValueError, match="name"):
        augment.make("keras")
