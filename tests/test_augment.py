"""augment: crop+flip and cutout against closed forms and DeVries' NumPy reference; batch ops.

References transcribed here:

* DeVries & Taylor, uoguelph-mlrg/Cutout `util/cutout.py`, `Cutout.__call__`: for a centre
  (y, x), the hole is rows `np.clip(y - length // 2, 0, h)` to `np.clip(y + length // 2, 0, h)`
  and the same for columns.
* He et al. (2016) crop: `np.pad` by `pad` zeros, window at offsets in {0, ..., 2 * pad}, then
  `[:, ::-1]` for a flip.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxsched import augment

H = W = 32


def devries_mask(center_y: int, center_x: int, h: int, w: int, length: int) -> np.ndarray:
    """bool[h, w]: DeVries' `Cutout.__call__` hole for a given centre (mask == 0 there)."""
    mask = np.zeros((h, w), bool)
    y1, y2 = np.clip(center_y - length // 2, 0, h), np.clip(center_y + length // 2, 0, h)
    x1, x2 = np.clip(center_x - length // 2, 0, w), np.clip(center_x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = True
    return mask


def clipped_length(center: np.ndarray, side: int, size: int) -> np.ndarray:
    """Rows (or columns) of a size-long hole starting at center - size // 2, inside [0, side)."""
    top = center - size // 2
    return np.clip(top + size, 0, side) - np.clip(top, 0, side)


def coordinate_image(h: int, w: int) -> np.ndarray:
    """float32[h, w, 2]: channel 0 holds row + 1, channel 1 column + 1 (0 only in padding)."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([rows + 1, cols + 1], -1).astype(np.float32)


def keys(n: int, seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.key(seed), n)


# ------------------------------------------------------------------------------------------------
# Cutout masks.


class SquareMaskTest(parameterized.TestCase):
    @parameterized.parameters(16, 8, 2)
    def test_matches_devries_for_every_centre(self, size):
        cy, cx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
        cy, cx = cy.ravel(), cx.ravel()
        masks = jax.vmap(lambda y, x: augment._square_mask(y, x, H, W, size))(cy, cx)
        expected = np.stack([devries_mask(y, x, H, W, size) for y, x in zip(cy, cx, strict=True)])
        np.testing.assert_array_equal(masks, expected)

    def test_areas_inside_and_at_the_borders(self):
        def area(y, x, size, h=H, w=W):
            return int(augment._square_mask(jnp.int32(y), jnp.int32(x), h, w, size).sum())

        assert area(16, 16, 16) == 16**2
        assert area(8, 24, 16) == 16**2  # touches the top and right borders, not clipped
        assert area(0, 0, 16) == (16 // 2) ** 2  # centred on the top-left corner
        assert area(0, W - 1, 16) == 8 * 9  # top-right: 8 rows, columns 23..31
        assert area(H - 1, W - 1, 16) == 9 * 9  # bottom-right
        assert area(0, 16, 16) == 8 * 16  # top edge
        assert area(10, 10, 5) == 5**2  # odd sizes keep size rows: rows 8..12
        assert area(0, 0, 5) == 3 * 3
        assert area(4, 5, 8, h=8, w=12) == 8 * 8  # non-square image, rows 0..7
        assert area(3, 5, 8, h=8, w=12) == 7 * 8


class CutoutMaskTest(chex.TestCase):
    N = 4096
    SIZE = 8

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ks = keys(cls.N)
        masks = jax.jit(jax.vmap(lambda k: augment.cutout_mask(k, H, W, cls.SIZE)))(ks)
        cy, cx = jax.vmap(lambda k: augment._hole_centers(k, H, W, 1))(ks)
        cls.masks = np.asarray(masks)  # [N, H, W]
        cls.cy, cls.cx = np.asarray(cy)[:, 0], np.asarray(cx)[:, 0]

    def test_mask_is_the_square_at_the_drawn_centre(self):
        expected = np.stack(
            [devries_mask(y, x, H, W, self.SIZE) for y, x in zip(self.cy, self.cx, strict=True)]
        )
        np.testing.assert_array_equal(self.masks, expected)

    def test_holes_inside_the_image_have_size_squared_pixels(self):
        half = self.SIZE // 2
        inside = (
            (self.cy >= half) & (self.cy <= H - half) & (self.cx >= half) & (self.cx <= W - half)
        )
        assert 0.5 < inside.mean() < 1  # both kinds occur
        areas = self.masks.sum((1, 2))
        np.testing.assert_array_equal(areas[inside], self.SIZE**2)
        assert np.all(areas[~inside] < self.SIZE**2) and np.all(areas >= half**2)
        expected = clipped_length(self.cy, H, self.SIZE) * clipped_length(self.cx, W, self.SIZE)
        np.testing.assert_array_equal(areas, expected)

    def test_centres_are_uniform_over_all_pixels(self):
        for centre, side in ((self.cy, H), (self.cx, W)):
            assert centre.min() == 0 and centre.max() == side - 1
            counts = np.bincount(centre, minlength=side)
            assert np.all(counts > 0)  # every row / column is a centre
            expected = self.N / side
            chi2 = np.sum((counts - expected) ** 2 / expected)
            assert chi2 < 70, chi2  # 31 degrees of freedom: P(chi2 > 70) ~ 1e-4
            np.testing.assert_allclose(centre.mean(), (side - 1) / 2, atol=0.6)  # SE 0.14
        assert abs(np.corrcoef(self.cy, self.cx)[0, 1]) < 0.06  # drawn independently

    def test_pixel_coverage_and_mean_area_match_the_closed_form(self):
        # P(pixel i, j covered) = P(row i covered) * P(column j covered) for uniform centres.
        centres = np.arange(H)
        top = centres - self.SIZE // 2
        row_p = np.mean(
            (np.arange(H)[:, None] >= top) & (np.arange(H)[:, None] < top + self.SIZE), 1
        )
        expected = np.outer(row_p, row_p)
        np.testing.assert_allclose(self.masks.mean(0), expected, atol=0.02)  # SE <= 0.004
        mean_area = np.mean(clipped_length(centres, H, self.SIZE)) ** 2
        np.testing.assert_allclose(self.masks.sum((1, 2)).mean(), mean_area, rtol=0.02)

    def test_several_holes_are_the_union_of_squares(self):
        ks = keys(64, seed=1)
        masks = jax.vmap(lambda k: augment.cutout_mask(k, H, W, 8, num_holes=3))(ks)
        cy, cx = jax.vmap(lambda k: augment._hole_centers(k, H, W, 3))(ks)
        for mask, ys, xs in zip(masks, cy, cx, strict=True):
            expected = np.any([devries_mask(y, x, H, W, 8) for y, x in zip(ys, xs, strict=True)], 0)
            np.testing.assert_array_equal(mask, expected)
        assert np.all(np.asarray(masks).sum((1, 2)) <= 3 * 64)


# ------------------------------------------------------------------------------------------------
# Cutout and crop+flip on images.


class CutoutTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_zeroes_exactly_the_masked_pixels(self):
        image = jax.random.uniform(jax.random.key(1), (H, W, 3), minval=0.5, maxval=2.0)
        fn = self.variant(lambda k, x: augment.cutout(k, x, size=16, num_holes=2))
        for key in keys(8):
            out = fn(key, image)
            mask = np.asarray(augment.cutout_mask(key, H, W, 16, num_holes=2))
            chex.assert_shape(out, (H, W, 3))
            assert out.dtype == image.dtype
            assert mask.any()
            np.testing.assert_array_equal(np.asarray(out)[mask], 0.0)
            np.testing.assert_array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])

    @chex.variants(with_jit=True, without_jit=True)
    def test_equal_keys_equal_holes_different_keys_different_holes(self):
        image = jnp.ones((H, W, 1))
        fn = self.variant(jax.vmap(lambda k: augment.cutout(k, image, size=8)))
        ks = keys(16)
        outs = np.asarray(fn(ks))
        np.testing.assert_array_equal(outs, np.asarray(fn(ks)))
        assert len({o.tobytes() for o in outs}) >= 14


class RandomCropFlipTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters((32, 32, 4, 1000), (8, 12, 2, 300))
    def test_every_output_is_a_window_of_the_padded_image(self, h, w, pad, n):
        image = coordinate_image(h, w)
        fn = self.variant(jax.vmap(lambda k: augment.random_crop_flip(k, image, pad)))
        outs = np.asarray(fn(keys(n)))
        chex.assert_shape(outs, (n, h, w, 2))
        # Read the crop from the centre pixel, which every window contains.
        ci, cj = h // 2, w // 2
        flip = outs[:, ci, cj + 1, 1] < outs[:, ci, cj, 1]
        dy = outs[:, ci, cj, 0].astype(int) - 1 - ci + pad
        dx = np.where(flip, outs[:, ci, cj, 1] - w + cj, outs[:, ci, cj, 1] - 1 - cj) + pad
        dx = dx.astype(int)
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
        for out, y, x, f in zip(outs, dy, dx, flip, strict=True):
            window = padded[y : y + h, x : x + w]
            np.testing.assert_array_equal(out, window[:, ::-1] if f else window)
        # Offsets cover {0, ..., 2 pad} roughly uniformly; flips happen about half the time.
        for offsets in (dy, dx):
            counts = np.bincount(offsets, minlength=2 * pad + 1)
            assert len(counts) == 2 * pad + 1 and np.all(counts > 0.5 * n / (2 * pad + 1))
        assert abs(flip.mean() - 0.5) < 0.06  # SE 0.016 for n = 1000
        assert abs(np.corrcoef(dy, flip)[0, 1]) < 0.15

    @chex.variants(with_jit=True, without_jit=True)
    def test_no_padding_only_flips(self):
        image = np.asarray(jax.random.normal(jax.random.key(2), (H, W, 3)))
        fn = self.variant(jax.vmap(lambda k: augment.random_crop_flip(k, image, pad=0)))
        outs = np.asarray(fn(keys(64)))
        unchanged = np.all(outs == image, axis=(1, 2, 3))
        flipped = np.all(outs == image[:, ::-1], axis=(1, 2, 3))
        assert np.all(unchanged ^ flipped)  # unchanged unless flipped
        assert 16 < unchanged.sum() < 48


# ------------------------------------------------------------------------------------------------
# Batch versions.


class BatchTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_each_example_has_its_own_key(self):
        b = 64
        images = jnp.broadcast_to(jnp.asarray(coordinate_image(H, W)), (b, H, W, 2))
        key = jax.random.key(3)
        row_keys = jax.random.split(key, b)
        for batch_fn, one_fn in (
            (augment.he_augment, augment.random_crop_flip),
            (
                lambda k, x: augment.cutout_batch(k, x, 8, 2),
                lambda k, x: augment.cutout(k, x, 8, 2),
            ),
        ):
            outs = np.asarray(self.variant(batch_fn)(key, images))
            chex.assert_shape(outs, (b, H, W, 2))
            for j in (0, 1, b - 1):
                np.testing.assert_array_equal(outs[j], one_fn(row_keys[j], images[j]))
            assert len({o.tobytes() for o in outs}) >= 40  # ~53 expected of 162 crops; 1 if shared

    @chex.variants(with_jit=True, without_jit=True)
    def test_make_composes_crop_flip_then_cutout(self):
        images = jax.random.normal(jax.random.key(4), (4, H, W, 3))
        key = jax.random.key(5)
        fn = self.variant(augment.make("he+cutout", pad=4, cutout_size=8, num_holes=1))
        out = fn(key, images)
        for j, row_key in enumerate(jax.random.split(key, 4)):
            crop_key, cutout_key = jax.random.split(row_key)
            expected = augment.cutout(cutout_key, augment.random_crop_flip(crop_key, images[j]), 8)
            chex.assert_trees_all_equal(out[j], expected)
        chex.assert_trees_all_equal(
            augment.make("he")(key, images), augment.he_augment(key, images)
        )
        chex.assert_trees_all_equal(
            augment.make("cutout", cutout_size=8, num_holes=2)(key, images),
            augment.cutout_batch(key, images, 8, 2),
        )
        assert augment.make(None) is None and augment.make("none") is None

    def test_raw_uint32_keys_work_too(self):
        images = jnp.ones((2, H, W, 1))
        out = jax.jit(augment.make("he+cutout"))(jax.random.PRNGKey(0), images)
        chex.assert_shape(out, (2, H, W, 1))


class BatchAugmentTest(chex.TestCase):
    B, M = 5, 3

    def images_and_labels(self):
        # Sample j is constant j + 1, so every non-zero pixel of a row names its sample.
        labels = jnp.arange(self.B, dtype=jnp.int32)
        images = jnp.broadcast_to((labels + 1.0)[:, None, None, None], (self.B, H, W, 3))
        return images, labels

    @chex.variants(with_jit=True, without_jit=True)
    def test_copies_are_copy_major_and_labels_follow_their_images(self):
        images, labels = self.images_and_labels()
        fn = self.variant(augment.make_batch_augment(self.M, "he+cutout", cutout_size=16))
        out_images, out_labels = fn(jax.random.key(6), images, labels)
        chex.assert_shape(out_images, (self.M * self.B, H, W, 3))
        chex.assert_shape(out_labels, (self.M * self.B,))
        assert out_labels.dtype == labels.dtype
        np.testing.assert_array_equal(out_labels, np.tile(np.arange(self.B), self.M))
        out_images = np.asarray(out_images)
        for row, label in enumerate(np.asarray(out_labels)):
            values = np.unique(out_images[row])
            np.testing.assert_array_equal(values, [0.0, label + 1.0])  # holes/padding + sample
        # The M copies of a sample are augmented differently.
        by_copy = out_images.reshape(self.M, self.B, H, W, 3)
        for j in range(self.B):
            assert len({by_copy[c, j].tobytes() for c in range(self.M)}) == self.M

    @chex.variants(with_jit=True, without_jit=True)
    def test_identity_augmentation_repeats_the_batch(self):
        images = jax.random.normal(jax.random.key(7), (self.B, 4, 4, 1))
        labels = jax.nn.one_hot(jnp.arange(self.B) % 3, 3)  # [B, K] labels tile the same way
        fn = self.variant(lambda k, x, y: augment.batch_augment(k, x, y, self.M, lambda _, z: z))
        out_images, out_labels = fn(jax.random.key(0), images, labels)
        for c in range(self.M):
            rows = slice(c * self.B, (c + 1) * self.B)
            chex.assert_trees_all_equal(out_images[rows], images)
            chex.assert_trees_all_equal(out_labels[rows], labels)
        plain = augment.make_batch_augment(2, None)(jax.random.key(0), images, labels)
        chex.assert_trees_all_equal(plain[0], jnp.concatenate([images, images]))

    @chex.variants(with_jit=True, without_jit=True)
    def test_one_copy_is_a_plain_augmentation(self):
        images, labels = self.images_and_labels()
        key = jax.random.key(8)
        fn = self.variant(augment.make_batch_augment(1, "he+cutout"))
        out_images, out_labels = fn(key, images, labels)
        chex.assert_trees_all_equal(out_images, augment.make("he+cutout")(key, images))
        chex.assert_trees_all_equal(out_labels, labels)
        out_images, _ = augment.batch_augment(key, images, labels, 1, augment.he_augment)
        chex.assert_trees_all_equal(out_images, augment.he_augment(key, images))


# ------------------------------------------------------------------------------------------------
# Under jit: one compilation, no host round trips.


CALLBACK_PRIMITIVES = ("callback", "pure_callback", "io_callback", "debug_callback")


def primitive_names(jaxpr) -> set[str]:
    """Names of all primitives in a (closed) jaxpr, including nested jit / scan / cond bodies."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, list | tuple) else (value,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    names |= primitive_names(sub)
    return names


def test_jitted_augmentation_compiles_once_for_all_keys():
    chex.clear_trace_counter()
    he_cutout = augment.make("he+cutout")
    batch_fn = augment.make_batch_augment(2, "he")

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(rng, images, labels):
        return he_cutout(rng, images), batch_fn(rng, images, labels)

    images, labels = jnp.ones((4, H, W, 3)), jnp.arange(4)
    outs = [step(key, images, labels)[0] for key in keys(6)]  # traced key, new value each call
    assert len({np.asarray(o).tobytes() for o in outs}) == 6


def test_everything_stays_on_the_device():
    fn = jax.jit(augment.make_batch_augment(2, "he+cutout"))
    key, images, labels = jax.random.key(9), jnp.ones((4, H, W, 3)), jnp.arange(4)

    names = primitive_names(jax.make_jaxpr(fn)(key, images, labels))
    assert {"random_bits", "select_n"} <= names  # the randomness is drawn in the graph
    assert not any("callback" in name for name in names), names
    # The walker does find host callbacks, also when nested in a jit.
    leaky = jax.jit(lambda x: jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x))
    assert "pure_callback" in primitive_names(jax.make_jaxpr(lambda x: leaky(x) + 1)(images))

    # Called on device-resident inputs, nothing is transferred to or from the host.
    device = jax.devices()[0]
    key, images, labels = jax.device_put((key, images, labels), device)
    with jax.transfer_guard("disallow"):
        out_images, out_labels = fn(key, images, labels)
    for out in (out_images, out_labels):
        assert isinstance(out, jax.Array) and out.devices() == {device}
    with pytest.raises(Exception, match="Disallowed host-to-device"):  # the guard is active
        with jax.transfer_guard("disallow"):
            fn(key, np.ones((4, H, W, 3), np.float32), labels)


# ------------------------------------------------------------------------------------------------
# Bad arguments.


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: augment.cutout_mask(jax.random.key(0), H, W, size=0), "size"),
        (lambda: augment.cutout_mask(jax.random.key(0), H, W, size=33), "size"),
        (lambda: augment.cutout_mask(jax.random.key(0), 8, 12, size=9), "size"),
        (lambda: augment.cutout_mask(jax.random.key(0), H, W, num_holes=0), "num_holes"),
        (lambda: augment.cutout(jax.random.key(0), jnp.ones((H, W, 1)), size=-1), "size"),
        (lambda: augment.cutout_batch(jax.random.key(0), jnp.ones((2, 8, 8, 1)), 16), "size"),
        (lambda: augment.random_crop_flip(jax.random.key(0), jnp.ones((H, W, 1)), -1), "pad"),
        (lambda: augment.he_augment(jax.random.key(0), jnp.ones((H, W, 1))), "images"),
        (lambda: augment.make("mixup"), "name"),
        (lambda: augment.make("cutout", cutout_size=0), "cutout_size"),
        (lambda: augment.make("he", num_holes=0), "num_holes"),
        (lambda: augment.make("he", pad=-2), "pad"),
        (lambda: augment.make_batch_augment(0), "copies"),
        (
            lambda: augment.batch_augment(
                jax.random.key(0), jnp.ones((2, 4, 4, 1)), jnp.arange(2), 0, augment.he_augment
            ),
            "copies",
        ),
        (
            lambda: augment.batch_augment(
                jax.random.key(0), jnp.ones((2, 4, 4, 1)), jnp.arange(3), 2, augment.he_augment
            ),
            "labels",
        ),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        call()
