"""A 2-D convolution that picks its lowering: XLA's convolution, or im2col and one matmul.

XLA's CPU backend runs the small convolutions of LeNet-5 and the CIFAR ResNets far below its
matmul rate, and a `jax.vmap` over per-member kernels (a grid of models trained at once) turns
them into grouped convolutions, which it runs slower still. Written as im2col -- the kh*kw
shifted (strided) views of the padded input concatenated on the channel axis, then one
[B*oh*ow, kh*kw*C] x [kh*kw*C, F] matmul -- the same convolution becomes a fused copy plus a
GEMM, and under vmap a batched GEMM (or, when the input is shared by every member, one wide
GEMM). benchmarks/ measures both; `impl="auto"` uses im2col on CPU and XLA's convolution
(cuDNN, tensor cores) on GPU and TPU.

Either lowering can also compute a large batch in slices (`batch_block`): a convolution acts on
each example alone, so computing it on B / k examples at a time and interleaving the outputs
gives the same result, while each slice's activations stay in the CPU's cache. XLA's CPU
convolutions (forward and backward) cost 1.9-3.5x more per image at 1024 images than at 64,
and in 16 slices of 64 about what they cost at 64 (benchmarks/conv_block.py); BatchNorm and
everything else in the model still see the whole batch. The slices are unrolled in the program
(XLA's CPU backend runs a convolution inside a loop ~30x slower), so their number is capped at
MAX_BATCH_BLOCKS to bound the compile time.

`Conv` subclasses `flax.linen.Conv`: same attributes, parameter names, shapes and
initializers, so parameters and checkpoints move freely between the two lowerings.
"""

import numbers
from collections.abc import Callable
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

ConvImpl = Literal["auto", "xla", "im2col"]
CONV_IMPLS = ("auto", "xla", "im2col")
BatchBlock = int | Literal["auto"] | None

# The slice size `batch_block="auto"` uses on CPU: the fastest of 16-1024 images per slice for
# ResNet-sized 3x3 convolutions on a 2-core EPYC (32 MiB L3), benchmarks/conv_block.py.
CPU_BATCH_BLOCK = 64
# At most this many slices per convolution: each is its own convolution in the program.
MAX_BATCH_BLOCKS = 16


def resolve_impl(impl: ConvImpl) -> str:
    """ "xla" or "im2col": `auto` is im2col on the CPU backend, XLA's convolution elsewhere."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "im2col" if jax.default_backend() == "cpu" else "xla"
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
) -> jax.Array:
    """The convolution of x float[B, H, W, C] with kernel [kh, kw, C, F] as im2col + matmul.

    padding: "SAME", "VALID" or ((top, bottom), (left, right)), as `lax.conv_general_dilated`
    takes it. Returns float[B, oh, ow, F], equal to `lax.conv_general_dilated` in NHWC/HWIO.
    """
    kh, kw, c, f = kernel.shape
    if x.shape[-1] != c:
        raise ValueError(f"input has {x.shape[-1]} channels, the kernel expects {c}")
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, padding)
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    sh, sw = strides
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    views = [
        x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
    return patches @ kernel.reshape(kh * kw * c, f)


class Conv(nn.Conv):
    """`flax.linen.Conv` with a choice of lowering for plain 2-D convolutions.

    impl: "auto" (im2col on CPU, XLA's convolution elsewhere), "xla" or "im2col". Convolutions
    im2col does not cover (dilation, feature groups, masks, circular or causal padding, other
    than 2 spatial dimensions) always use XLA's, unsliced.
    batch_block: compute a batch larger than this many examples in interleaved slices of at
      most this many (`batch_block_count`); "auto" is CPU_BATCH_BLOCK on CPU and no slicing
      elsewhere; None (the default) never slices. Same result up to float round-off.
    """

    impl: ConvImpl = "auto"
    batch_block: BatchBlock = None

    def _im2col_padding(self):
        """The padding in a form im2col_conv takes, or None when im2col does not apply."""
        padding = self.padding
        if isinstance(padding, str):
            return padding if padding in ("SAME", "VALID") else None
        if isinstance(padding, int):
            return ((padding, padding),) * 2
        pads = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
        return pads if len(pads) == 2 else None

    def _is_plain_2d(self, x: jax.Array) -> bool:
        """A plain 2-D convolution (both lowerings and batch slicing apply to it)."""
        plain = (
            x.ndim == 4
            and len(self.kernel_size) == 2
            and self.feature_group_count == 1
            and self.mask is None
            and all(d == 1 for d in _pair(self.input_dilation))
            and all(d == 1 for d in _pair(self.kernel_dilation))
        )
        return plain and self._im2col_padding() is not None

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        """inputs float[B, H, W, C] -> float[B, oh, ow, features]."""
        impl = resolve_impl(self.impl)
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
        strides, padding = _pair(self.strides), self._im2col_padding()
        if impl == "im2col":
            conv = lambda x: im2col_conv(x, kernel, strides, padding)  # noqa: E731
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
