"""augment: crop+flip and cutout against NumPy references and closed forms; batch ops; jit.

References transcribed here:

* DeVries & Taylor, uoguelph-mlrg/Cutout `util/cutout.py`, `Cutout.__call__`: for a centre
  (y, x), the hole is rows `np.clip(y - length // 2, 0, h)` to `np.clip(y + length // 2, 0, h)`
  and the same for columns; the image is multiplied by the mask (0 in the hole).
* He et al. (2016) crop: `np.pad` by `pad` zeros, the window at offsets (dy, dx) in
  {0, ..., 2 pad}, then `[:, ::-1]` for a flip.

Shapes are kept few ([32, 32, 3] images, batches of 8) so that the eager (without_jit) variants
reuse each other's compiled primitives and the file runs in seconds.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxsched import augment
from jaxsched.train import primitive_names

H = W = 32
B = 8


def coordinate_image(h: int = H, w: int = W) -> np.ndarray:
    """float32[h, w, 3]: row + 1, column + 1, and a pixel id; 0 appears only in the padding."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([rows + 1, cols + 1, rows * w + cols + 1], -1).astype(np.float32)


IMAGE = coordinate_image()
IMAGES = np.broadcast_to(IMAGE, (B, H, W, 3))
BATCH_AUGMENT = augment.make_batch_augment(2, "he+cutout", num_holes=2)  # B // 2 -> B rows


def keys(n: int, seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.key(seed), n)


def devries_mask(center_y: int, center_x: int, h: int, w: int, length: int) -> np.ndarray:
    """bool[h, w]: DeVries' `Cutout.__call__` hole (where its mask is 0) for a given centre."""
    mask = np.zeros((h, w), bool)
    y1, y2 = np.clip(center_y - length // 2, 0, h), np.clip(center_y + length // 2, 0, h)
    x1, x2 = np.clip(center_x - length // 2, 0, w), np.clip(center_x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = True
    return mask


def square_mask(center_y: int, center_x: int, h: int, w: int, size: int) -> np.ndarray:
    """bool[h, w]: rows and columns [c - size // 2, c - size // 2 + size) inside the image.

    DeVries' hole for even sizes; size (not size - 1) rows for odd sizes.
    """
    mask = np.zeros((h, w), bool)
    top, left = center_y - size // 2, center_x - size // 2
    mask[max(top, 0) : max(top + size, 0), max(left, 0) : max(left + size, 0)] = True
    return mask


def clipped_length(center: np.ndarray, side: int, size: int) -> np.ndarray:
    """Rows (or columns) of a size-long hole starting at center - size // 2, inside [0, side)."""
    top = center - size // 2
    return np.clip(top + size, 0, side) - np.clip(top, 0, side)


def recover_crop(outs: np.ndarray, pad: int, image: np.ndarray) -> tuple[np.ndarray, ...]:
    """(dy, dx, flip) of crops of the coordinate `image`; asserts each is that padded window."""
    h, w = image.shape[:2]
    ci, cj = h // 2, w // 2  # every window contains this pixel of the image
    flip = outs[:, ci, cj + 1, 1] < outs[:, ci, cj, 1]
    dy = outs[:, ci, cj, 0].astype(int) - 1 - ci + pad
    dx = np.where(flip, outs[:, ci, cj, 1] - w + cj, outs[:, ci, cj, 1] - 1 - cj).astype(int) + pad
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    for out, y, x, f in zip(outs, dy, dx, flip, strict=True):
        assert 0 <= y <= 2 * pad and 0 <= x <= 2 * pad, (y, x)
        window = padded[y : y + h, x : x + w]
        np.testing.assert_array_equal(out, window[:, ::-1] if f else window)
    return dy, dx, flip


def hole_masks(row_keys: jax.Array, h: int, w: int, size: int, num_holes: int) -> np.ndarray:
    """bool[N, h, w]: DeVries' masks at the centres `cutout_mask` draws from each key."""
    cy, cx = jax.vmap(lambda k: augment._hole_centers(k, h, w, num_holes))(row_keys)
    return np.stack(
        [
            np.any([devries_mask(y, x, h, w, size) for y, x in zip(ys, xs, strict=True)], 0)
            for ys, xs in zip(np.asarray(cy), np.asarray(cx), strict=True)
        ]
    )


# ------------------------------------------------------------------------------------------------
# Cutout masks.


class SquareMaskTest(parameterized.TestCase):
    @parameterized.parameters((32, 32, 16), (32, 32, 8), (32, 32, 5), (8, 12, 8))
    def test_every_centre_against_the_reference(self, h, w, size):
        cy, cx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        cy, cx = cy.ravel(), cx.ravel()
        masks = np.asarray(
            jax.vmap(lambda y, x: augment._square_mask(y, x, h, w, size))(cy, cx)
        ).reshape(h, w, h, w)
        expected = [square_mask(y, x, h, w, size) for y, x in zip(cy, cx, strict=True)]
        np.testing.assert_array_equal(masks.reshape(h * w, h, w), np.stack(expected))
        if size % 2 == 0:  # DeVries' code, exactly
            for y, x in [(0, 0), (h - 1, w - 1), (h // 2, 1), (3, w - 2)]:
                np.testing.assert_array_equal(masks[y, x], devries_mask(y, x, h, w, size))
        areas = masks.sum((2, 3))
        half = size // 2
        assert areas[h // 2, w // 2] == size**2  # fully inside
        assert areas[half, w - size + half] == size**2  # touching the top and right borders
        rest = size - half  # rows 0 .. c - half + size - 1 of a hole centred on row c = 0
        assert areas[0, 0] == rest**2  # top-left corner: (size / 2)^2 for even sizes
        assert areas[h - 1, w - 1] == (half + 1) ** 2  # bottom-right: rows h - 1 - half .. h - 1
        assert areas[0, w // 2] == rest * size  # centred on the top edge
        assert np.all(areas <= size**2) and areas.min() == rest**2


class CutoutMaskTest(chex.TestCase):
    N, SIZE = 4096, 8

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        @jax.jit
        def draw(ks):
            masks = jax.vmap(lambda k: augment.cutout_mask(k, H, W, cls.SIZE))(ks)
            return masks, jax.vmap(lambda k: augment._hole_centers(k, H, W, 1))(ks)

        masks, (cy, cx) = draw(keys(cls.N))
        cls.masks = np.asarray(masks)
        cls.cy, cls.cx = np.asarray(cy)[:, 0], np.asarray(cx)[:, 0]

    def test_mask_is_the_devries_square_at_the_drawn_centre(self):
        expected = [
            devries_mask(y, x, H, W, self.SIZE) for y, x in zip(self.cy, self.cx, strict=True)
        ]
        np.testing.assert_array_equal(self.masks, np.stack(expected))

    def test_holes_inside_the_image_have_size_squared_pixels(self):
        half = self.SIZE // 2
        inside = (self.cy >= half) & (self.cy <= H - half)
        inside &= (self.cx >= half) & (self.cx <= W - half)
        assert 0.5 < inside.mean() < 1  # both kinds occur
        areas = self.masks.sum((1, 2))
        np.testing.assert_array_equal(areas[inside], self.SIZE**2)
        assert np.all(areas[~inside] < self.SIZE**2) and np.all(areas >= half**2)
        expected = clipped_length(self.cy, H, self.SIZE) * clipped_length(self.cx, W, self.SIZE)
        np.testing.assert_array_equal(areas, expected)

    def test_centres_are_uniform_over_all_pixels(self):
        for centre, side in ((self.cy, H), (self.cx, W)):
            counts = np.bincount(centre, minlength=side)
            assert len(counts) == side and np.all(counts > 0)  # every row / column is hit
            expected = self.N / side
            chi2 = np.sum((counts - expected) ** 2 / expected)
            assert chi2 < 70, chi2  # 31 degrees of freedom: P(chi2 > 70) ~ 1e-4
            np.testing.assert_allclose(centre.mean(), (side - 1) / 2, atol=0.6)  # SE 0.14
        assert abs(np.corrcoef(self.cy, self.cx)[0, 1]) < 0.06  # drawn independently

    def test_pixel_coverage_and_mean_area_match_the_closed_form(self):
        # Uniform centres: P(pixel i, j covered) = P(row i covered) * P(column j covered).
        top = np.arange(H) - self.SIZE // 2  # one hole top per centre
        rows = np.arange(H)[:, None]
        row_p = np.mean((rows >= top) & (rows < top + self.SIZE), 1)
        np.testing.assert_allclose(self.masks.mean(0), np.outer(row_p, row_p), atol=0.02)
        mean_area = np.mean(clipped_length(np.arange(H), H, self.SIZE)) ** 2
        np.testing.assert_allclose(self.masks.sum((1, 2)).mean(), mean_area, rtol=0.02)

    def test_different_keys_different_holes(self):
        assert len({m.tobytes() for m in self.masks[:64]}) >= 60


# ------------------------------------------------------------------------------------------------
# Cutout and crop+flip on one image.


class CutoutTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_zeroes_exactly_the_masked_pixels_equal_keys_equal_outputs(self):
        ks = keys(B, seed=1)
        fn = self.variant(jax.vmap(lambda k: augment.cutout(k, IMAGE, size=16, num_holes=2)))
        outs = np.asarray(fn(ks))
        chex.assert_shape(outs, (B, H, W, 3))
        assert outs.dtype == np.float32
        masks = hole_masks(ks, H, W, 16, 2)
        areas = masks.sum((1, 2))  # the union of two holes
        assert np.all(areas > 0) and np.all(areas <= 2 * 16**2) and np.any(areas > 16**2)
        np.testing.assert_array_equal(outs, np.where(masks[..., None], 0.0, IMAGE))
        np.testing.assert_array_equal(np.asarray(fn(ks)), outs)  # same keys, same holes
        assert len({o.tobytes() for o in outs}) == B  # different keys, different holes


class RandomCropFlipTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_every_output_is_a_window_of_the_padded_image(self):
        n, pad = 1024, 4
        fn = self.variant(jax.vmap(lambda k: augment.random_crop_flip(k, IMAGE, pad)))
        outs = np.asarray(fn(keys(n)))
        chex.assert_shape(outs, (n, H, W, 3))
        dy, dx, flip = recover_crop(outs, pad, IMAGE)
        # Offsets cover {0, ..., 2 pad} uniformly; flips happen half the time; independently.
        for offsets in (dy, dx):
            counts = np.bincount(offsets, minlength=2 * pad + 1)
            assert len(counts) == 2 * pad + 1 and np.all(counts > 0.6 * n / (2 * pad + 1))
        assert abs(flip.mean() - 0.5) < 0.05  # SE 0.016
        assert abs(np.corrcoef(dy, flip)[0, 1]) < 0.1 and abs(np.corrcoef(dy, dx)[0, 1]) < 0.1
        np.testing.assert_array_equal(np.asarray(fn(keys(n))), outs)  # same keys, same crops

    def test_non_square_images_and_no_padding(self):
        image = coordinate_image(8, 12)

        @jax.jit
        def crops(ks):
            crop = augment.random_crop_flip
            return [jax.vmap(functools.partial(crop, image=image, pad=p))(ks) for p in (0, 2)]

        for pad, outs in zip((0, 2), crops(keys(128)), strict=True):
            outs = np.asarray(outs)
            dy, dx, flip = recover_crop(outs, pad, image)
            assert set(dy) == set(dx) == set(range(2 * pad + 1))
            assert 32 < flip.sum() < 96
            if pad == 0:  # unchanged unless flipped
                np.testing.assert_array_equal(outs[~flip], np.stack([image] * (~flip).sum()))


# ------------------------------------------------------------------------------------------------
# Batch versions.


class BatchTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_each_example_has_its_own_key(self):
        key = jax.random.key(3)
        row_keys = jax.random.split(key, B)  # the documented scheme: row j gets split(key, B)[j]

        outs = np.asarray(self.variant(augment.he_augment)(key, IMAGES))
        chex.assert_shape(outs, (B, H, W, 3))
        expected = jax.vmap(augment.random_crop_flip)(row_keys, IMAGES)
        np.testing.assert_array_equal(outs, expected)
        dy, dx, flip = recover_crop(outs, 4, IMAGE)
        assert len(set(zip(dy, dx, flip, strict=True))) >= B - 2  # 162 crops: not one for all

        fn = self.variant(lambda k, x: augment.cutout_batch(k, x, 16, 2))
        outs = np.asarray(fn(key, IMAGES))
        masks = hole_masks(row_keys, H, W, 16, 2)
        np.testing.assert_array_equal(outs, np.where(masks[..., None], 0.0, IMAGES))
        assert len({m.tobytes() for m in masks}) == B  # not the same hole for every example

    @chex.variants(with_jit=True, without_jit=True)
    def test_make_composes_crop_flip_then_cutout(self):
        key = jax.random.key(5)
        out = self.variant(augment.make("he+cutout", pad=4, cutout_size=16, num_holes=2))(
            key, IMAGES
        )
        crop_keys, cutout_keys = jax.vmap(jax.random.split, out_axes=1)(jax.random.split(key, B))
        crops = jax.vmap(augment.random_crop_flip)(crop_keys, IMAGES)
        masks = hole_masks(cutout_keys, H, W, 16, 2)
        np.testing.assert_array_equal(out, np.where(masks[..., None], 0.0, crops))
        chex.assert_trees_all_equal(
            augment.make("he")(key, IMAGES), augment.he_augment(key, IMAGES)
        )
        chex.assert_trees_all_equal(
            augment.make("cutout", cutout_size=16, num_holes=2)(key, IMAGES),
            augment.cutout_batch(key, IMAGES, 16, 2),
        )
        assert augment.make(None) is None and augment.make("none") is None


class BatchAugmentTest(chex.TestCase):
    M = 2
    N = B // M  # samples per batch, so that M * N == B rows

    def constant_images(self):
        # Sample j is the constant j + 1, so every non-zero pixel of a row names its sample.
        labels = jnp.arange(self.N, dtype=jnp.int32)
        return jnp.broadcast_to((labels + 1.0)[:, None, None, None], (self.N, H, W, 3)), labels

    @chex.variants(with_jit=True, without_jit=True)
    def test_copies_are_copy_major_and_labels_follow_their_images(self):
        images, labels = self.constant_images()
        fn = self.variant(BATCH_AUGMENT)
        out_images, out_labels = fn(jax.random.key(6), images, labels)
        chex.assert_shape(out_images, (self.M * self.N, H, W, 3))
        chex.assert_shape(out_labels, (self.M * self.N,))
        assert out_labels.dtype == labels.dtype
        np.testing.assert_array_equal(out_labels, np.tile(np.arange(self.N), self.M))
        out_images = np.asarray(out_images)
        for row, label in enumerate(np.asarray(out_labels)):
            values = np.unique(out_images[row])  # holes/padding, and the sample's value
            np.testing.assert_array_equal(values, [0.0, label + 1.0])
        copies = out_images.reshape(self.M, self.N, H, W, 3)
        for j in range(self.N):  # the M copies of a sample are augmented differently
            assert len({copies[c, j].tobytes() for c in range(self.M)}) == self.M

    @chex.variants(with_jit=True, without_jit=True)
    def test_identity_augmentation_repeats_the_batch(self):
        images = IMAGES[: self.N] * np.arange(1, self.N + 1)[:, None, None, None]
        labels = jax.nn.one_hot(jnp.arange(self.N) % 3, 3)  # [N, K] labels tile the same way
        fn = self.variant(lambda k, x, y: augment.batch_augment(k, x, y, self.M, lambda _, z: z))
        out_images, out_labels = fn(jax.random.key(0), images, labels)
        for c in range(self.M):  # row c * N + j is copy c of sample j
            rows = slice(c * self.N, (c + 1) * self.N)
            chex.assert_trees_all_equal(out_images[rows], images)
            chex.assert_trees_all_equal(out_labels[rows], labels)
        plain = augment.make_batch_augment(self.M, None)(jax.random.key(0), images, labels)
        chex.assert_trees_all_equal(plain, (out_images, out_labels))

    def test_one_copy_is_a_plain_augmentation(self):
        key, labels = jax.random.key(8), jnp.arange(B)
        fn = augment.make_batch_augment(1, "he+cutout", num_holes=2)
        out_images, out_labels = fn(key, IMAGES, labels)
        expected = augment.make("he+cutout", num_holes=2)(key, IMAGES)
        chex.assert_trees_all_equal(out_images, expected)
        chex.assert_trees_all_equal(out_labels, labels)
        out_images, _ = augment.batch_augment(key, IMAGES, labels, 1, augment.he_augment)
        chex.assert_trees_all_equal(out_images, augment.he_augment(key, IMAGES))


# ------------------------------------------------------------------------------------------------
# Under jit: one compilation, nothing sent to or from the host.


def test_jitted_batch_augmentation_compiles_once_and_stays_on_the_device():
    chex.clear_trace_counter()
    fn = jax.jit(chex.assert_max_traces(BATCH_AUGMENT, n=1))
    device = jax.devices()[0]
    images, labels = jax.device_put((IMAGES[:4], jnp.arange(4)), device)

    # A traced key: new values, one trace; device-resident inputs: no host transfer at all.
    key_list = list(jax.device_put(keys(5), device))  # (indexing transfers the index)
    outs = []
    with jax.transfer_guard("disallow"):
        for key in key_list:
            out_images, out_labels = fn(key, images, labels)
            outs.append(out_images)
    for out in (out_images, out_labels):
        assert isinstance(out, jax.Array) and out.devices() == {device}
    assert len({np.asarray(o).tobytes() for o in outs}) == 5
    with pytest.raises(Exception, match="Disallowed host-to-device"):  # the guard is active
        with jax.transfer_guard("disallow"):
            jax.jit(lambda x: x + 1)(np.ones(3, np.float32))

    # The randomness is drawn in the graph, and no host callback is traced into it.
    names = primitive_names(jax.make_jaxpr(fn)(key_list[0], images, labels))
    assert {"random_bits", "pad", "select_n"} <= names, names
    assert not any("callback" in name for name in names), names
    # The walker does find a host callback, also nested in a jit.
    leaky = jax.jit(lambda x: jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x))
    assert "pure_callback" in primitive_names(jax.make_jaxpr(lambda x: leaky(x) + 1)(images))


# ------------------------------------------------------------------------------------------------
# Bad arguments.


def _key():
    return jax.random.key(0)


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: augment.cutout_mask(_key(), H, W, size=0), "size"),
        (lambda: augment.cutout_mask(_key(), H, W, size=33), "size"),
        (lambda: augment.cutout_mask(_key(), 8, 12, size=9), "size"),
        (lambda: augment.cutout_mask(_key(), H, W, num_holes=0), "num_holes"),
        (lambda: augment.cutout(_key(), IMAGE, size=-1), "size"),
        (lambda: augment.cutout_batch(_key(), IMAGES[:, :8, :8], 16), "size"),
        (lambda: augment.random_crop_flip(_key(), IMAGE, -1), "pad"),
        (lambda: augment.he_augment(_key(), IMAGE), "images"),
        (lambda: augment.make("mixup"), "name"),
        (lambda: augment.make("cutout", cutout_size=0), "cutout_size"),
        (lambda: augment.make("he", num_holes=0), "num_holes"),
        (lambda: augment.make("he", pad=-2), "pad"),
        (lambda: augment.make_batch_augment(0), "copies"),
        (lambda: augment.batch_augment(_key(), IMAGES, jnp.arange(B), 0, None), "copies"),
        (lambda: augment.batch_augment(_key(), IMAGES, jnp.arange(3), 2, None), "labels"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        call()
