"""A 2-D convolution that picks its lowering: XLA's convolution, im2col and one matmul, or
banded matrices and one matmul.

XLA's CPU backend runs the small convolutions of LeNet-5 and the CIFAR ResNets far below its
matmul rate, and a `jax.vmap` over per-member kernels (a grid of models trained at once) turns
them into grouped convolutions, which it runs slower still. Two lowerings to a matmul:

- im2col: the kh*kw shifted (strided) views of the padded input concatenated on the channel
  axis, then one [B*oh*ow, kh*kw*C] x [kh*kw*C, F] matmul. With few input channels the copy
  interleaves kh*kw pieces of C floats each (LeNet-5's first layer: 25 single floats per output
  pixel, a 78 KB buffer per image) and dominates the step.
- banded: output columns in tiles of `tile`; a tile's inputs are kh rows of (tile-1)*sw + kw
  contiguous pixels, and the kernel becomes one banded [kh*((tile-1)*sw+kw)*C, tile*F] matrix
  (zero where a pixel is outside an output's window), shared by every tile. The copy moves
  runs of whole pixels (10 floats per output pixel for LeNet-5's first layer instead of 25)
  for (tile-1)*sw/kw + 1 times im2col's multiply-adds. tile = 1 is im2col; tile = ow is one
  Toeplitz matrix per kernel row.

benchmarks/ measures all three (`benchmarks.conv_lowering`); `impl="auto"` uses the banded
lowering on CPU for inputs of at most BANDED_MAX_CHANNELS channels (LeNet-5: 1.3-1.6x faster
steps than im2col), im2col above it, and XLA's convolution (cuDNN, tensor cores) on GPU and TPU.

Every lowering can also compute a large batch in slices (`batch_block`): a convolution acts on
each example alone, so computing it on B / k examples at a time and interleaving the outputs
gives the same result, while each slice's activations stay in the CPU's cache. XLA's CPU
convolutions (forward and backward) cost 1.9-3.5x more per image at 1024 images than at 64,
and in 16 slices of 64 about what they cost at 64 (benchmarks/conv_block.py); BatchNorm and
everything else in the model still see the whole batch. The slices are unrolled in the program
(XLA's CPU backend runs a convolution inside a loop ~30x slower), so their number is capped at
MAX_BATCH_BLOCKS to bound the compile time.

`Conv` subclasses `flax.linen.Conv`: same attributes, parameter names, shapes and
initializers, so parameters and checkpoints move freely between the lowerings.
"""

import numbers
from collections.abc import Callable
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

ConvImpl = Literal["auto", "xla", "im2col", "banded"]
CONV_IMPLS = ("auto", "xla", "im2col", "banded")
BatchBlock = int | Literal["auto"] | None

# The slice size `batch_block="auto"` uses on CPU: the fastest of 16-1024 images per slice for
# ResNet-sized 3x3 convolutions on a 2-core EPYC (32 MiB L3), benchmarks/conv_block.py.
CPU_BATCH_BLOCK = 64
# At most this many slices per convolution: each is its own convolution in the program.
MAX_BATCH_BLOCKS = 16
# The banded lowering's output columns per tile: the fastest of 2-6 and whole rows for LeNet-5's
# train step at batch 512 (12,200 images/s against 10,000-10,700 for 2, 3 and whole rows, and
# 7,600 with im2col; README "Performance"), and of 2, 4, 8 and whole rows for its first
# convolution alone (benchmarks.conv_lowering).
BANDED_TILE = 4
# `impl="auto"` on CPU lowers convolutions of at most this many input channels as banded
# matrices, wider ones as im2col. Forward + backward per image against im2col
# (benchmarks.conv_lowering, batch 64 / 512): LeNet-5's 1, 6 and 16 channels 0.37-0.86x,
# ResNet's 3x3 at 16 channels 0.90 / 0.71x, 32 channels 1.12 / 0.82x, 64 channels 1.56 / 1.06x.
BANDED_MAX_CHANNELS = 32


def resolve_impl(impl: ConvImpl, in_channels: int = 1) -> str:
    """ "xla", "im2col" or "banded": `auto` is banded on the CPU backend for at most
    BANDED_MAX_CHANNELS input channels, im2col for more, XLA's convolution elsewhere."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        if jax.default_backend() != "cpu":
            return "xla"
        return "banded" if in_channels <= BANDED_MAX_CHANNELS else "im2col"
    return impl


def resolve_batch_block(block: BatchBlock, name: str = "batch_block") -> int | None:
    """Examples per slice: `auto` is CPU_BATCH_BLOCK on the CPU backend, no slicing elsewhere
    (GPUs and TPUs want the whole batch); an int >= 1 as given; None for no slicing."""
    if block is None:
        return None
    if block == "auto":
        return CPU_BATCH_BLOCK if jax.default_backend() == "cpu" else None
    if not isinstance(block, numbers.Integral) or isinstance(block, bool) or block < 1:
        raise ValueError(f"{name} must be an int >= 1, 'auto' or None, got {block!r}")
    return int(block)


def batch_block_count(batch: int, block: int | None) -> int:
    """How many equal slices a batch of `batch` examples is computed in, for slices of at most
    `block`: the smallest divisor of `batch` that is >= ceil(batch / block), at most
    MAX_BATCH_BLOCKS (then the largest divisor <= MAX_BATCH_BLOCKS); 1 when the batch fits in
    one block, or is prime."""
    if block is None or batch <= block:
        return 1
    wanted = -(-batch // block)
    for count in range(wanted, MAX_BATCH_BLOCKS + 1):
        if batch % count == 0:
            return count
    for count in range(min(wanted, MAX_BATCH_BLOCKS), 1, -1):
        if batch % count == 0:
            return count
    return 1


def in_batch_slices(fn: Callable[[jax.Array], jax.Array], x: jax.Array, count: int) -> jax.Array:
    """fn(x) for a per-example fn, computed on `count` interleaved slices of x's leading axis.

    Slice i holds examples i, i + count, i + 2 * count, ...: under a data-parallel sharding of
    the batch axis every slice spans all devices equally, so no slice moves between devices.
    x: [B, ...] with B divisible by count. Returns fn(x), [B, ...].
    """
    if count == 1:
        return fn(x)
    batch, rest = x.shape[0], x.shape[1:]
    if batch % count:
        raise ValueError(f"batch {batch} is not divisible into {count} slices")
    grouped = x.reshape(batch // count, count, *rest)
    outputs = [
        fn(part.reshape(batch // count, *rest)) for part in lax.split(grouped, [1] * count, axis=1)
    ]
    out = jnp.stack(outputs, axis=1)
    return out.reshape(batch, *out.shape[2:])


def im2col_conv(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, int] = (1, 1),
    padding: str | tuple[tuple[int, int], tuple[int, int]] = "VALID",
    precision: lax.PrecisionLike = None,
) -> jax.Array:
    """The convolution of x float[B, H, W, C] with kernel [kh, kw, C, F] as im2col + matmul.

    padding: "SAME", "VALID" or ((top, bottom), (left, right)), as `lax.conv_general_dilated`
    takes it; precision: the matmul's (`jnp.matmul`), as the convolution's would be. Returns
    float[B, oh, ow, F], equal to `lax.conv_general_dilated` in NHWC/HWIO.
    """
    kh, kw, c, f = kernel.shape
    sh, sw = strides
    x, oh, ow = _pad_and_shape(x, kernel, strides, padding)
    views = [
        x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
    return jnp.matmul(patches, kernel.reshape(kh * kw * c, f), precision=precision)


def _pad_and_shape(x, kernel, strides, padding):
    """x padded as `padding` says ("SAME", "VALID" or explicit pairs), and the output size."""
    kh, kw, c, _ = kernel.shape
    if x.shape[-1] != c:
        raise ValueError(f"input has {x.shape[-1]} channels, the kernel expects {c}")
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, padding)
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    oh = (x.shape[1] - kh) // strides[0] + 1
    ow = (x.shape[2] - kw) // strides[1] + 1
    return x, oh, ow


def banded_matrix(kernel: jax.Array, tile: int, stride: int = 1) -> jax.Array:
    """The kernel [kh, kw, C, F] as the banded matrix [kh * wt * C, tile * F] of one tile of
    `tile` output columns, wt = (tile - 1) * stride + kw input columns: row (i, p, c), column
    (j, f) holds kernel[i, p - j * stride, c, f] where 0 <= p - j * stride < kw, else 0."""
    kh, kw, c, f = kernel.shape
    wt = (tile - 1) * stride + kw
    offset = np.arange(wt)[:, None] - np.arange(tile)[None, :] * stride  # [wt, tile]
    inside = (offset >= 0) & (offset < kw)
    taps = kernel[:, np.clip(offset, 0, kw - 1)]  # [kh, wt, tile, C, F]
    taps = jnp.where(inside[None, :, :, None, None], taps, jnp.zeros((), kernel.dtype))
    return taps.transpose(0, 1, 3, 2, 4).reshape(kh * wt * c, tile * f)


def banded_conv(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, int] = (1, 1),
    padding: str | tuple[tuple[int, int], tuple[int, int]] = "VALID",
    tile: int = BANDED_TILE,
    precision: lax.PrecisionLike = None,
) -> jax.Array:
    """The convolution of x float[B, H, W, C] with kernel [kh, kw, C, F] as banded matmuls.

    Output columns go in tiles of `tile` (at most ow; the last tile is padded and cropped); one
    tile's input is kh rows of wt = (tile - 1) * sw + kw pixels, flattened to kh * wt * C
    values, times `banded_matrix(kernel, tile, sw)`: one [B*oh*tiles, kh*wt*C] x
    [kh*wt*C, tile*F] matmul. padding and precision as `im2col_conv` takes them. Returns
    float[B, oh, ow, F], equal to `lax.conv_general_dilated` in NHWC/HWIO up to float round-off.
    """
    if not isinstance(tile, numbers.Integral) or isinstance(tile, bool) or tile < 1:
        raise ValueError(f"tile must be an int >= 1, got {tile!r}")
    kh, kw, c, f = kernel.shape
    sh, sw = strides
    x, oh, ow = _pad_and_shape(x, kernel, strides, padding)
    tile = min(int(tile), ow)
    tiles = -(-ow // tile)
    wt = (tile - 1) * sw + kw
    short = (tiles * tile - 1) * sw + kw - x.shape[2]  # the last tile's missing columns
    if short > 0:
        x = jnp.pad(x, ((0, 0), (0, 0), (0, short), (0, 0)))
    batch = x.shape[0]
    windows = []
    for i in range(kh):
        rows = x[:, i : i + sh * (oh - 1) + 1 : sh]  # [B, oh, W, C]
        parts = [rows[:, :, t * tile * sw : t * tile * sw + wt] for t in range(tiles)]
        windows.append(jnp.stack(parts, axis=2).reshape(batch, oh, tiles, wt * c))
    patches = windows[0] if kh == 1 else jnp.concatenate(windows, axis=-1)
    out = jnp.matmul(patches, banded_matrix(kernel, tile, sw), precision=precision)
    out = out.reshape(batch, oh, tiles * tile, f)
    return out[:, :, :ow] if tiles * tile != ow else out


class Conv(nn.Conv):
    """`flax.linen.Conv` with a choice of lowering for plain 2-D convolutions.

    impl: "auto" (on CPU banded for at most BANDED_MAX_CHANNELS input channels, else im2col; XLA's
      convolution elsewhere), "xla", "im2col" or "banded". Convolutions the matmul lowerings do
      not cover (dilation, feature groups, masks, circular or causal padding, other
    than 2 spatial dimensions) always use XLA's, unsliced.
    batch_block: compute a batch larger than this many examples in interleaved slices of at
      most this many (`batch_block_count`); "auto" is CPU_BATCH_BLOCK on CPU and no slicing
      elsewhere; None (the default) never slices. Same result up to float round-off.
    """

    impl: ConvImpl = "auto"
    batch_block: BatchBlock = None

    def _matmul_padding(self):
        """The padding in a form the matmul lowerings take, or None when they do not apply."""
        padding = self.padding
        if isinstance(padding, str):
            return padding if padding in ("SAME", "VALID") else None
        if isinstance(padding, int):
            return ((padding, padding),) * 2
        pads = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
        return pads if len(pads) == 2 else None

    def _is_plain_2d(self, x: jax.Array) -> bool:
        """A plain 2-D convolution (the matmul lowerings and batch slicing apply to it)."""
        plain = (
            x.ndim == 4
            and len(self.kernel_size) == 2
            and self.feature_group_count == 1
            and self.mask is None
            and all(d == 1 for d in _pair(self.input_dilation))
            and all(d == 1 for d in _pair(self.kernel_dilation))
        )
        return plain and self._matmul_padding() is not None

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        """inputs float[B, H, W, C] -> float[B, oh, ow, features]."""
        impl = resolve_impl(self.impl, inputs.shape[-1])
        block = resolve_batch_block(self.batch_block)
        plain = self._is_plain_2d(inputs)
        count = batch_block_count(inputs.shape[0], block) if plain else 1
        if not plain or (impl == "xla" and count == 1):
            return super().__call__(inputs)
        kernel = self.param(
            "kernel",
            self.kernel_init,
            (*self.kernel_size, inputs.shape[-1], self.features),
            self.param_dtype,
        )
        bias = (
            self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        inputs, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        strides, padding = _pair(self.strides), self._matmul_padding()
        if impl == "im2col":
            conv = lambda x: im2col_conv(x, kernel, strides, padding, self.precision)  # noqa: E731
        elif impl == "banded":
            conv = lambda x: banded_conv(  # noqa: E731
                x, kernel, strides, padding, precision=self.precision
            )
        else:
            conv = lambda x: lax.conv_general_dilated(  # noqa: E731
                x,
                kernel,
                strides,
                padding,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                precision=self.precision,
            )
        y = in_batch_slices(conv, inputs, count)
        return y if bias is None else y + bias


def _pair(value) -> tuple[int, int]:
    if value is None:
        return (1, 1)
    if isinstance(value, int):
        return (value, value)
    return tuple(value)
