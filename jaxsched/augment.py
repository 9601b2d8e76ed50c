r"""On-device data augmentation: pure per-example ops, vmapped over the batch.

Every op takes a PRNG key and works on one normalized image float[H, W, C]; the batch versions
split their key into one key per example (`jax.random.split(key, B)`, row j gets key j) and
`vmap` the op, so every example draws its own crop, flip and holes. All shapes are static
(masks are iota comparisons, crops are `lax.dynamic_slice`), so the ops run inside the jitted
train step, compile once per batch shape, and never send anything back to the host.

Plugging into `train.make_train_step(model, tx, augment=...)`, which calls
`augment(rng, images)` with images float32[B, H, W, C] already normalized:

    step = train.make_train_step(model, tx, augment=augment.make("he+cutout", cutout_size=16))

Keras's `ImageDataGenerator(width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True,
fill_mode="nearest")` is `make("shift_flip")` (`keras_shift_flip` per image; integer shifts, see
`random_shift` for how it differs from Keras's interpolated ones).

Batch augmentation (Hoffer et al.) also repeats the labels, which `AugmentFn` does not see;
`make_batch_augment` returns `batch_augment(rng, images, labels) -> (images, labels)` so that
the train step needs only its augmentation line changed to

    images, labels = batch_augment(aug_rng, images, labels)

(the loss and accuracy below it then see the M·B rows and their repeated labels).

References:
  He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
  https://arxiv.org/abs/1512.03385 (Sec. 4.2: 4-pixel padding, random 32x32 crop, flip).
  DeVries & Taylor, "Improved Regularization of Convolutional Neural Networks with Cutout",
  2017, https://arxiv.org/abs/1708.04552 (code: uoguelph-mlrg/Cutout, `util/cutout.py`).
  Keras 3 `keras/src/legacy/preprocessing/image.py`: `ImageDataGenerator.get_random_transform`,
  `apply_transform`, `apply_affine_transform` (scipy.ndimage.affine_transform, order=1).
  Hoffer, Ben-Nun, Hubara, Giladi, Hoefler & Soudry, "Augment your batch: better training with
  larger batches", 2019, https://arxiv.org/abs/1901.09335.
"""

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

# augment(rng, images float[B, H, W, C]) -> images float[B, H, W, C]; same as train.AugmentFn.
AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]
# batch_augment(rng, images float[B, H, W, C], labels int[B])
#   -> (images float[M*B, H, W, C], labels int[M*B])
BatchAugmentFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]

NAMES = ("he", "cutout", "he+cutout", "shift_flip")
# Fill modes of `shift_image`, named as in Keras's `fill_mode` (and scipy.ndimage's `mode`).
FILLS = ("nearest", "reflect", "wrap", "constant")


# ------------------------------------------------------------------------------------------------
# Argument checks (Python values only: they run once, at trace time).


def _check_pad(pad: int) -> None:
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")


def _check_cutout(size: int, num_holes: int, size_name: str = "size") -> None:
    if size <= 0:
        raise ValueError(f"{size_name} must be > 0, got {size}")
    if num_holes < 1:
        raise ValueError(f"num_holes must be >= 1, got {num_holes}")


def _check_size_fits(size: int, height: int, width: int) -> None:
    if size > min(height, width):
        raise ValueError(
            f"size must be <= the image side min(H, W) = {min(height, width)}, got {size}"
        )


def _check_shift(height_range: float, width_range: float, fill: str) -> None:
    for name, value in (("height_range", height_range), ("width_range", width_range)):
        if not 0 <= value < 1:
            raise ValueError(
                f"{name} must be in [0, 1) (a fraction of the image side), got {value}"
            )
    _check_fill(fill)


def _check_fill(fill: str) -> None:
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")


def _check_images(images: jax.Array) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")


# ------------------------------------------------------------------------------------------------
# Random crop and horizontal flip (He et al. 2016).


def random_crop_flip(key: jax.Array, image: jax.Array, pad: int = 4) -> jax.Array:
    """He et al.'s CIFAR augmentation of one image: pad, random crop, random horizontal flip.

    The image is zero-padded by `pad` pixels on each side (zero is the mean of a normalized
    image), an H x W window is taken at offsets (dy, dx) drawn independently and uniformly from
    {0, ..., 2 * pad}, and the window is flipped left-right with probability 1/2:

        out[i, j] = padded[i + dy, j + dx]             (no flip)
        out[i, j] = padded[i + dy, W - 1 - j + dx]     (flip)

    pad=0 gives the flip alone.

    Args:
      key: PRNG key.
      image: float[H, W, C], normalized.
      pad: int >= 0, pixels of zero padding on each side.

    Returns:
      float[H, W, C], the same shape and dtype as `image`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> image = jnp.ones((8, 8, 3))
      >>> out = augment.random_crop_flip(jax.random.PRNGKey(0), image, pad=2)
      >>> out.shape, bool(jnp.isin(out, jnp.array([0.0, 1.0])).all())  # ones, zero padding
      ((8, 8, 3), True)
    """
    _check_pad(pad)
    height, width, channels = image.shape
    # One draw of three independent integers: dy, dx uniform in {0, ..., 2 pad}, flip in {0, 1}.
    dy, dx, flip = jax.random.randint(key, (3,), 0, jnp.array([2 * pad + 1, 2 * pad + 1, 2]))
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    crop = jax.lax.dynamic_slice(padded, (dy, dx, 0), (height, width, channels))
    return jnp.where(flip == 1, crop[:, ::-1, :], crop)


def he_augment(key: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
    """`random_crop_flip` on every image of images float[B, H, W, C], one key per example.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> augment.he_augment(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3)), pad=2).shape
      (2, 8, 8, 3)
    """
    _check_images(images)
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(functools.partial(random_crop_flip, pad=pad))(keys, images)


# ------------------------------------------------------------------------------------------------
# Cutout (DeVries & Taylor 2017).


def _square_mask(
    center_y: jax.Array, center_x: jax.Array, height: int, width: int, size: int
) -> jax.Array:
    """bool[H, W]: the size x size square at (center_y, center_x), clipped at the borders.

    Rows top .. top + size - 1 with top = center_y - size // 2 (columns likewise), intersected
    with the image. For even sizes this is DeVries' `np.clip(y - size // 2, 0, h)` to
    `np.clip(y + size // 2, 0, h)`; for odd sizes it is size rows (DeVries' code gives size - 1).
    A hole centred on a corner pixel therefore keeps (size - size // 2)**2 pixels at the
    top-left ((size / 2)**2 for even sizes) and (size // 2 + 1)**2 at the bottom-right.
    """
    rows = jax.lax.broadcasted_iota(jnp.int32, (height, width), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (height, width), 1)
    top = center_y - size // 2
    left = center_x - size // 2
    return (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)


def _hole_centers(
    key: jax.Array, height: int, width: int, num_holes: int
) -> tuple[jax.Array, jax.Array]:
    """(center_y int32[num_holes], center_x int32[num_holes]), uniform over all pixels."""
    centers = jax.random.randint(key, (num_holes, 2), 0, jnp.array([height, width]))
    return centers[:, 0], centers[:, 1]


def cutout_mask(
    key: jax.Array, height: int, width: int, size: int = 16, num_holes: int = 1
) -> jax.Array:
    """bool[H, W], True on the pixels that `cutout` zeroes: the union of `num_holes` squares.

    Each hole's centre is drawn uniformly over all H x W pixels (independently of the other
    holes, which may overlap), so holes near the border hang over it and are clipped (see
    `_square_mask`): a hole entirely inside the image covers size**2 pixels, one centred on the
    top-left corner (size / 2)**2 (even sizes).

    Args:
      key: PRNG key.
      height, width: int, the image size (static).
      size: int, 0 < size <= min(height, width), the side of each square hole in pixels.
      num_holes: int >= 1.

    Returns:
      bool[height, width].

    Examples:
      >>> import jax
      >>> from jaxsched import augment
      >>> mask = augment.cutout_mask(jax.random.PRNGKey(0), 8, 8, size=4)
      >>> mask.shape, str(mask.dtype), 1 <= int(mask.sum()) <= 16  # one 4 x 4 hole, maybe clipped
      ((8, 8), 'bool', True)
    """
    _check_cutout(size, num_holes)
    _check_size_fits(size, height, width)
    center_y, center_x = _hole_centers(key, height, width, num_holes)
    holes = jax.vmap(lambda y, x: _square_mask(y, x, height, width, size))(center_y, center_x)
    return jnp.any(holes, axis=0)


def cutout(key: jax.Array, image: jax.Array, size: int = 16, num_holes: int = 1) -> jax.Array:
    """DeVries & Taylor's Cutout on one image: sets the pixels of `num_holes` square holes to 0.

    Applied after normalization, as in DeVries' code (`Cutout` follows `Normalize` in their
    transform list and multiplies the normalized tensor by the mask): the holes are 0 in
    normalized units, i.e. the dataset mean, not black. out = where(mask, 0, image) for all
    channels, with mask = `cutout_mask(key, H, W, size, num_holes)`.

    Args:
      key: PRNG key.
      image: float[H, W, C], normalized.
      size: int, 0 < size <= min(H, W), the side of each square hole in pixels (16 for
        CIFAR-10 in the paper, 8 for CIFAR-100).
      num_holes: int >= 1, holes per image (centres drawn independently; may overlap).

    Returns:
      float[H, W, C], the same shape and dtype as `image`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> out = augment.cutout(jax.random.PRNGKey(0), jnp.ones((8, 8, 3)), size=4)
      >>> out.shape, 1 <= int((out == 0).all(axis=-1).sum()) <= 16  # zeroed pixels
      ((8, 8, 3), True)
    """
    height, width, _ = image.shape
    mask = cutout_mask(key, height, width, size, num_holes)
    return jnp.where(mask[:, :, None], jnp.zeros_like(image), image)


def cutout_batch(
    key: jax.Array, images: jax.Array, size: int = 16, num_holes: int = 1
) -> jax.Array:
    """`cutout` on every image of images float[B, H, W, C], one key (own holes) per example.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> augment.cutout_batch(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3)), size=4).shape
      (2, 8, 8, 3)
    """
    _check_images(images)
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(functools.partial(cutout, size=size, num_holes=num_holes))(keys, images)


def he_cutout(
    key: jax.Array, image: jax.Array, pad: int = 4, size: int = 16, num_holes: int = 1
) -> jax.Array:
    """`random_crop_flip` then `cutout` on one image float[H, W, C] (DeVries' CIFAR setting).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> augment.he_cutout(jax.random.PRNGKey(0), jnp.ones((8, 8, 3)), pad=2, size=4).shape
      (8, 8, 3)
    """
    key_crop, key_cutout = jax.random.split(key)
    return cutout(key_cutout, random_crop_flip(key_crop, image, pad), size, num_holes)


# ------------------------------------------------------------------------------------------------
# Random shift and horizontal flip (Keras ImageDataGenerator).


def _source_index(index: jax.Array, size: int, fill: str) -> jax.Array:
    """Source indices folded into [0, size) as `fill` extends the image beyond its edges.

    "nearest": a a a a | a b c d | d d d d (clamp); "reflect" (scipy's 'reflect', Keras's
    'reflect', `np.pad(mode="symmetric")`): d c b a | a b c d | d c b a, period 2 size;
    "wrap": a b c d | a b c d | a b c d (period size; scipy's 'grid-wrap'); "constant" clamps
    too, and the caller overwrites the outside pixels with cval.
    """
    if fill == "reflect":
        folded = jnp.mod(index, 2 * size)
        return jnp.where(folded < size, folded, 2 * size - 1 - folded)
    if fill == "wrap":
        return jnp.mod(index, size)
    return jnp.clip(index, 0, size - 1)


def _offset(value, name: str) -> jax.Array:
    value = jnp.asarray(value)
    if value.shape != () or not jnp.issubdtype(value.dtype, jnp.integer):
        raise ValueError(f"{name} must be an integer scalar, got {value.dtype}{list(value.shape)}")
    return value.astype(jnp.int32)


def shift_image(image: jax.Array, dy, dx, fill: str = "nearest", cval: float = 0.0) -> jax.Array:
    """Shifts one image float[H, W, C] by (dy, dx) whole pixels, filling what comes in by `fill`.

        out[i, j] = image[i - dy, j - dx]

    where the source pixel is inside the image (so dy > 0 moves the content down, dx > 0 to the
    right); outside it, the source index is folded back as Keras's `fill_mode` (scipy.ndimage's
    `mode`) does:

      "nearest":  a a a | a b c d | d d d   (the edge pixel repeated; Keras's default)
      "reflect":  c b a | a b c d | d c b   (half-sample symmetric: scipy 'reflect',
                                             `np.pad(mode="symmetric")`)
      "wrap":     b c d | a b c d | a b c   (periodic: scipy 'grid-wrap', `np.roll`; scipy's
                                             legacy 'wrap' that Keras passes on has period
                                             size - 1 instead)
      "constant": k k k | a b c d | k k k   (k = cval, all channels)

    Integer shifts make this exact for every mode: it is scipy.ndimage.shift(image, (dy, dx, 0),
    order=0 or 1, mode=...) with 'grid-wrap' for "wrap". Offsets may be negative or exceed the
    image (|dy| >= H leaves only fill). Implemented as two gathers of precomputed row and column
    indices (`jnp.take`), so dy and dx may be traced (jit, vmap) and all shapes are static.

    Args:
      image: float[H, W, C].
      dy, dx: int scalars (Python or traced int arrays), the shift down and to the right.
      fill: one of FILLS: "nearest", "reflect", "wrap", "constant".
      cval: float, the value of the pixels shifted in when fill="constant".

    Returns:
      float[H, W, C], the same shape and dtype as `image`.

    Raises:
      ValueError: for an unknown `fill`, non-integer offsets or an image not [H, W, C].

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxsched import augment
      >>> row = jnp.arange(1.0, 5.0).reshape(1, 4, 1)  # one row: 1 2 3 4
      >>> for fill in augment.FILLS:  # two pixels to the right
      ...     print(fill, augment.shift_image(row, 0, 2, fill=fill)[0, :, 0].tolist())
      nearest [1.0, 1.0, 1.0, 2.0]
      reflect [2.0, 1.0, 1.0, 2.0]
      wrap [3.0, 4.0, 1.0, 2.0]
      constant [0.0, 0.0, 1.0, 2.0]
      >>> augment.shift_image(row, 0, -1, fill="constant", cval=-1.0)[0, :, 0].tolist()
      [2.0, 3.0, 4.0, -1.0]
    """
    _check_fill(fill)
    image = jnp.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be [H, W, C], got shape {image.shape}")
    height, width, _ = image.shape
    rows = jnp.arange(height, dtype=jnp.int32) - _offset(dy, "dy")
    cols = jnp.arange(width, dtype=jnp.int32) - _offset(dx, "dx")
    out = jnp.take(image, _source_index(rows, height, fill), axis=0, mode="clip")
    out = jnp.take(out, _source_index(cols, width, fill), axis=1, mode="clip")
    if fill == "constant":
        inside = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
        out = jnp.where(inside[:, :, None], out, jnp.asarray(cval, image.dtype))
    return out


def _max_shift(fraction: float, size: int) -> int:
    """round(fraction * size), halves rounded up: the largest shift in pixels."""
    return math.floor(fraction * size + 0.5)


def _draw_shift(
    key: jax.Array, height: int, width: int, height_range: float, width_range: float
) -> tuple[jax.Array, jax.Array]:
    """(dy, dx) int32, independent and uniform on {-m, ..., m}, m = round(range * side)."""
    max_dy, max_dx = _max_shift(height_range, height), _max_shift(width_range, width)
    low = jnp.array([-max_dy, -max_dx], jnp.int32)
    shift = jax.random.randint(key, (2,), low, -low + 1, dtype=jnp.int32)
    return shift[0], shift[1]


def random_shift(
    key: jax.Array,
    image: jax.Array,
    height_range: float = 0.1,
    width_range: float = 0.1,
    fill: str = "nearest",
    cval: float = 0.0,
) -> jax.Array:
    """Keras's `width_shift_range` / `height_shift_range` shift of one image, in whole pixels.

    Draws dy uniformly from the integers {-m_y, ..., m_y} with m_y = round(height_range * H)
    and, independently, dx from {-m_x, ..., m_x} with m_x = round(width_range * W) (halves
    round up; 0.1 on 32 x 32 CIFAR: {-3, ..., 3}, on 28 x 28 Fashion-MNIST also {-3, ..., 3}),
    and returns `shift_image(image, dy, dx, fill, cval)`.

    Keras semantics, and where this differs (Keras 3, `keras/src/legacy/preprocessing/image.py`):
    for a float range < 1, `ImageDataGenerator.get_random_transform` draws a continuous shift
    tx = uniform(-height_shift_range, height_shift_range) * H (ty likewise with the width) and
    `apply_affine_transform` applies it with scipy.ndimage.affine_transform at
    `interpolation_order=1`, i.e. bilinear: fractional shifts blend neighbouring pixels (blur
    the image slightly) and reach +-3.2 pixels for 0.1 x 32. Here the shift is a whole number of
    pixels drawn uniformly, like He et al.'s crop offsets: no blur, no interpolation cost, a
    gather instead of an affine resampling, and the same range up to rounding. Keras also
    applies tx (from height_shift_range x H) along the columns and ty along the rows (the
    known axis swap, keras-team/keras#17398); here height_range moves rows, as documented. For
    square images with equal ranges, as in the usual CIFAR setting, the swap changes nothing.
    Keras's sign (out[i] = image[i + t]) is the opposite of `shift_image`'s, which does not
    matter for a symmetric draw.

    Args:
      key: PRNG key.
      image: float[H, W, C].
      height_range, width_range: float in [0, 1), the largest shift as a fraction of H and W
        (0 disables that direction).
      fill, cval: as in `shift_image` ("nearest" is Keras's default fill_mode).

    Returns:
      float[H, W, C], the same shape and dtype as `image`.

    Raises:
      ValueError: for a range outside [0, 1) or an unknown `fill`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> dot = jnp.zeros((32, 32, 1)).at[16, 16, 0].set(1.0)  # one bright pixel
      >>> out = augment.random_shift(jax.random.PRNGKey(0), dot, fill="constant")
      >>> row, col = divmod(int(out[:, :, 0].argmax()), 32)
      >>> out.shape, abs(row - 16) <= 3 and abs(col - 16) <= 3  # moved by at most 3 pixels
      ((32, 32, 1), True)
    """
    _check_shift(height_range, width_range, fill)
    height, width, _ = jnp.shape(image)
    dy, dx = _draw_shift(key, height, width, height_range, width_range)
    return shift_image(image, dy, dx, fill, cval)


def random_flip(key: jax.Array, image: jax.Array) -> jax.Array:
    """Flips one image float[H, W, C] left-right with probability 1/2 (Keras's horizontal_flip).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> image = jnp.arange(3.0).reshape(1, 3, 1)
      >>> out = augment.random_flip(jax.random.PRNGKey(0), image)
      >>> out[0, :, 0].tolist() in ([0.0, 1.0, 2.0], [2.0, 1.0, 0.0])
      True
    """
    image = jnp.asarray(image)
    return jnp.where(jax.random.bernoulli(key), image[:, ::-1, :], image)


def keras_shift_flip(
    key: jax.Array,
    image: jax.Array,
    height_range: float = 0.1,
    width_range: float = 0.1,
    fill: str = "nearest",
    cval: float = 0.0,
) -> jax.Array:
    """`random_shift` then `random_flip` of one image float[H, W, C], independent draws.

    The on-device counterpart of Keras's `ImageDataGenerator(width_shift_range=0.1,
    height_shift_range=0.1, horizontal_flip=True, fill_mode="nearest")`, which also flips
    after the affine shift (`apply_transform`); see `random_shift` for the integer shifts.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> augment.keras_shift_flip(jax.random.PRNGKey(0), jnp.ones((8, 8, 3))).shape
      (8, 8, 3)
    """
    key_shift, key_flip = jax.random.split(key)
    shifted = random_shift(key_shift, image, height_range, width_range, fill, cval)
    return random_flip(key_flip, shifted)


def keras_shift_flip_batch(
    key: jax.Array,
    images: jax.Array,
    height_range: float = 0.1,
    width_range: float = 0.1,
    fill: str = "nearest",
    cval: float = 0.0,
) -> jax.Array:
    """`keras_shift_flip` on every image of images float[B, H, W, C], one key per example.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> augment.keras_shift_flip_batch(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3))).shape
      (2, 8, 8, 3)
    """
    _check_images(images)
    _check_shift(height_range, width_range, fill)
    keys = jax.random.split(key, images.shape[0])
    per_example = functools.partial(
        keras_shift_flip,
        height_range=height_range,
        width_range=width_range,
        fill=fill,
        cval=cval,
    )
    return jax.vmap(per_example)(keys, images)


# ------------------------------------------------------------------------------------------------
# Batch augmentation (Hoffer et al. 2019).


def batch_augment(
    key: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    copies: int,
    augment_fn: AugmentFn,
) -> tuple[jax.Array, jax.Array]:
    """Hoffer et al.'s "Augment your batch": M = `copies` augmented copies of every sample.

    Order is copy-major (`jnp.tile`), the same for images and labels: row c * B + j is copy c of
    sample j and has label labels[j], so the first B rows are one augmented copy of the batch.
    `augment_fn` is called once, on the tiled batch of M * B rows, with `key`; with a batch op
    of this module (`he_augment`, `cutout_batch`, `make(...)`) every row, hence every copy of
    every sample, gets its own key, and copies=1 is exactly `augment_fn(key, images)`.
    `augment_fn` must therefore draw per-row randomness (one crop for the whole batch would
    make the M copies identical).

    Args:
      key: PRNG key.
      images: float[B, H, W, C].
      labels: int[B] (any [B, ...] array, e.g. one-hot, is tiled the same way).
      copies: int >= 1, M.
      augment_fn: `augment_fn(key, images float[N, H, W, C]) -> float[N, H, W, C]`.

    Returns:
      (images float[M * B, H, W, C], labels [M * B]).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> key, images, labels = jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3)), jnp.array([3, 7])
      >>> images, labels = augment.batch_augment(key, images, labels, 2, augment.he_augment)
      >>> images.shape, labels.tolist()
      ((4, 8, 8, 3), [3, 7, 3, 7])
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    _check_images(images)
    if labels.shape[:1] != images.shape[:1]:
        raise ValueError(f"labels must have {images.shape[0]} rows, got shape {labels.shape}")
    tiled_images = jnp.tile(images, (copies,) + (1,) * (images.ndim - 1))
    tiled_labels = jnp.tile(labels, (copies,) + (1,) * (labels.ndim - 1))
    return augment_fn(key, tiled_images), tiled_labels


# ------------------------------------------------------------------------------------------------
# Builders from a configuration.


def make(
    name: str | None = "he",
    *,
    pad: int = 4,
    cutout_size: int = 16,
    num_holes: int = 1,
    height_range: float = 0.1,
    width_range: float = 0.1,
    fill: str = "nearest",
    cval: float = 0.0,
) -> AugmentFn | None:
    """Returns `augment(rng, images float[B, H, W, C]) -> images` for `make_train_step`.

    Args:
      name: "he" (random crop + flip), "cutout", "he+cutout" (crop + flip, then cutout),
        "shift_flip" (Keras's random width/height shift + horizontal flip, `keras_shift_flip`),
        or None / "none" for no augmentation, which returns None (what `make_train_step` takes to
        mean "no augmentation").
      pad: int >= 0, the crop padding of "he" and "he+cutout".
      cutout_size: int > 0, the hole side of "cutout" and "he+cutout" (checked against the image
        side when the function is first traced).
      num_holes: int >= 1, holes per image.
      height_range, width_range: float in [0, 1), the largest shift of "shift_flip" as a
        fraction of H and W (Keras's height_shift_range, width_shift_range).
      fill, cval: the fill of "shift_flip", one of FILLS (Keras's fill_mode), and its cval.

    Raises:
      ValueError: for an unknown `name` or an invalid `pad`, `cutout_size`, `num_holes`,
        `height_range`, `width_range` or `fill`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> augment_fn = augment.make("he+cutout", pad=2, cutout_size=4)
      >>> augment_fn(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3))).shape
      (2, 8, 8, 3)
      >>> keras_fn = augment.make("shift_flip", height_range=0.1, width_range=0.1, fill="reflect")
      >>> keras_fn(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3))).shape
      (2, 8, 8, 3)
      >>> print(augment.make(None))
      None
    """
    if name is None or name == "none":
        return None
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES} or None, got {name!r}")
    _check_pad(pad)
    _check_cutout(cutout_size, num_holes, size_name="cutout_size")
    _check_shift(height_range, width_range, fill)
    per_example = {
        "he": functools.partial(random_crop_flip, pad=pad),
        "cutout": functools.partial(cutout, size=cutout_size, num_holes=num_holes),
        "he+cutout": functools.partial(he_cutout, pad=pad, size=cutout_size, num_holes=num_holes),
        "shift_flip": functools.partial(
            keras_shift_flip,
            height_range=height_range,
            width_range=width_range,
            fill=fill,
            cval=cval,
        ),
    }[name]

    def augment(rng: jax.Array, images: jax.Array) -> jax.Array:
        _check_images(images)
        keys = jax.random.split(rng, images.shape[0])
        return jax.vmap(per_example)(keys, images)

    return augment


def _identity(rng: jax.Array, images: jax.Array) -> jax.Array:
    del rng
    return images


def make_batch_augment(
    copies: int,
    name: str | None = "he",
    *,
    pad: int = 4,
    cutout_size: int = 16,
    num_holes: int = 1,
    height_range: float = 0.1,
    width_range: float = 0.1,
    fill: str = "nearest",
    cval: float = 0.0,
) -> BatchAugmentFn:
    """Returns `batch_augment(rng, images, labels) -> (images, labels)` with M = `copies`.

    The images float[B, H, W, C] come back as float[M * B, H, W, C] and the labels int[B] as
    int[M * B], copy-major (see `batch_augment`), each row augmented by `make(name, ...)` with
    its own key (name None: the copies are plain repeats). `train.make_train_step` calls
    `augment(rng, images)` and never sees the labels, so to use this the step's augmentation
    line becomes `images, labels = batch_augment(aug_rng, images, labels)`. copies=1 gives
    `(make(name, ...)(rng, images), labels)`.

    Raises:
      ValueError: for `copies` < 1 and for the arguments `make` rejects.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxsched import augment
      >>> batch_fn = augment.make_batch_augment(3, "he", pad=2)
      >>> images, labels = batch_fn(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3)), jnp.arange(2))
      >>> images.shape, labels.tolist()
      ((6, 8, 8, 3), [0, 1, 0, 1, 0, 1])
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    augment = make(
        name,
        pad=pad,
        cutout_size=cutout_size,
        num_holes=num_holes,
        height_range=height_range,
        width_range=width_range,
        fill=fill,
        cval=cval,
    )
    if augment is None:
        augment = _identity

    def batch_augment_fn(rng: jax.Array, images: jax.Array, labels: jax.Array):
        return batch_augment(rng, images, labels, copies, augment)

    return batch_augment_fn
