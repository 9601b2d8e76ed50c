"""A 2-D convolution that picks its lowering: XLA's convolution, or im2col and one matmul.

XLA's CPU backend runs the small convolutions of LeNet-5 and the CIFAR ResNets far below its
matmul rate, and a `jax.vmap` over per-member kernels (a grid of models trained at once) turns
them into grouped convolutions, which it runs slower still. Written as im2col -- the kh*kw
shifted (strided) views of the padded input concatenated on the channel axis, then one
[B*oh*ow, kh*kw*C] x [kh*kw*C, F] matmul -- the same convolution becomes a fused copy plus a
GEMM, and under vmap a batched GEMM (or, when the input is shared by every member, one wide
GEMM). benchmarks/ measures both; `impl="auto"` uses im2col on CPU and XLA's convolution
(cuDNN, tensor cores) on GPU and TPU.

`Conv` subclasses `flax.linen.Conv`: same attributes, parameter names, shapes and
initializers, so parameters and checkpoints move freely between the two lowerings.
"""

from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

ConvImpl = Literal["auto", "xla", "im2col"]
CONV_IMPLS = ("auto", "xla", "im2col")


def resolve_impl(impl: ConvImpl) -> str:
    """ "xla" or "im2col": `auto` is im2col on the CPU backend, XLA's convolution elsewhere."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "im2col" if jax.default_backend() == "cpu" else "xla"
    return impl


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
    than 2 spatial dimensions) always use XLA's.
    """

    impl: ConvImpl = "auto"

    def _im2col_padding(self):
        """The padding in a form im2col_conv takes, or None when im2col does not apply."""
        padding = self.padding
        if isinstance(padding, str):
            return padding if padding in ("SAME", "VALID") else None
        if isinstance(padding, int):
            return ((padding, padding),) * 2
        pads = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
        return pads if len(pads) == 2 else None

    def _im2col_applies(self, x: jax.Array) -> bool:
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
        if resolve_impl(self.impl) == "xla" or not self._im2col_applies(inputs):
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
        y = im2col_conv(inputs, kernel, _pair(self.strides), self._im2col_padding())
        return y if bias is None else y + bias


def _pair(value) -> tuple[int, int]:
    if value is None:
        return (1, 1)
    if isinstance(value, int):
        return (value, value)
    return tuple(value)
