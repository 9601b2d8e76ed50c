"""Parameter, activation and multiply-accumulate counts of Flax models, from shapes only.

Models are traced under `jax.eval_shape` and costed with `jax.jit(...).lower(...)`: no parameter
is allocated and nothing runs, so VGG19's 144M parameters cost nothing. Shapes are per example
(H, W, C), without the batch dimension; every count is for one example. The course's
conventions:

  activations of a layer: the size of its output, H * W * C;
  weights: kernel entries, F * F * C_in * C_out for a convolution (biases counted apart);
  MACs (multiply-accumulates) of a convolution: H_out * W_out * F * F * C_in * C_out, taps on
  zero padding included; a dense layer is the 1 x 1 case, C_in * C_out.

XLA's cost analysis counts 2 flops per multiply-accumulate but skips the taps that fall on zero
padding; `effective_macs` is that count, so a layer's XLA flops are 2 * effective_macs exactly
(= 2 * macs for 'VALID' convolutions and dense layers).
"""

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsched.models.classic import MaxPool

Shape = tuple[int, ...]
LAYER_TYPES = (nn.Conv, nn.Dense, MaxPool)


@dataclasses.dataclass(frozen=True)
class Layer:
    """One call of a layer module traced through a model.

    path: the module's path in the model, e.g. ("conv1",).
    module: an unbound copy of the layer (kernel size, strides, padding, ...).
    input_shape / output_shape: one example's shapes, e.g. (227, 227, 3) -> (55, 55, 96).
    """

    path: tuple[str, ...]
    module: nn.Module
    input_shape: Shape
    output_shape: Shape

    @property
    def name(self) -> str:
        return "/".join(self.path)


def _example(input_shape: Sequence[int]) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)


def variable_shapes(model: nn.Module, input_shape: Sequence[int]) -> Any:
    """`model.init`'s variables as a pytree of ShapeDtypeStruct (nothing allocated)."""
    return jax.eval_shape(model.init, jax.random.key(0), _example(input_shape))


def param_shapes(model: nn.Module, input_shape: Sequence[int]) -> Any:
    """The "params" collection of `model` on inputs of `input_shape`, as ShapeDtypeStructs."""
    return variable_shapes(model, input_shape)["params"]


def output_shape(model: nn.Module, input_shape: Sequence[int]) -> Shape:
    """One example's output shape of `model` on inputs of `input_shape`."""
    x = _example(input_shape)
    return tuple(jax.eval_shape(model.apply, variable_shapes(model, input_shape), x).shape[1:])


def trace_layers(
    model: nn.Module, input_shape: Sequence[int], layer_types: tuple[type, ...] = LAYER_TYPES
) -> list[Layer]:
    """Every call of a `layer_types` submodule in `model`'s forward pass, in call order."""
    x = _example(input_shape)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    layers: list[Layer] = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, layer_types):
            layers.append(
                Layer(
                    tuple(module.path),
                    module.clone(parent=None),
                    tuple(args[0].shape[1:]),
                    tuple(out.shape[1:]),
                )
            )
        return out

    with nn.intercept_methods(record):
        jax.eval_shape(model.apply, variables, x)
    return layers


def layer_params(params: Mapping[str, Any], path: Sequence[str]) -> tuple[int, int]:
    """(weights, biases): scalars in the params subtree at `path`; biases are leaves named
    "bias", weights all the others. (0, 0) for a parameter-free layer."""
    tree: Any = params
    for key in path:
        if key not in tree:
            return 0, 0
        tree = tree[key]
    weights = biases = 0
    for keypath, leaf in jax.tree_util.tree_leaves_with_path(tree):
        size = math.prod(leaf.shape)
        if getattr(keypath[-1], "key", None) == "bias":
            biases += size
        else:
            weights += size
    return weights, biases


def conv_macs(output_shape: Sequence[int], kernel_size: Sequence[int], in_channels: int) -> int:
    """H_out * W_out * F * F * C_in * C_out for output (H_out, W_out, C_out) and kernel (F, F);
    output (C_out,) and kernel () give a dense layer's C_in * C_out."""
    return math.prod(output_shape) * math.prod(kernel_size) * in_channels


def _conv_geometry(module: nn.Conv) -> tuple[Shape, Shape]:
    """(kernel_size, strides) of a Conv as tuples; dilated or grouped convolutions raise."""
    kernel = tuple(module.kernel_size)
    strides = module.strides or 1
    strides = (strides,) * len(kernel) if isinstance(strides, int) else tuple(strides)
    if module.feature_group_count != 1 or module.input_dilation not in (1, None):
        raise ValueError(f"only plain convolutions are counted, got {module}")
    if module.kernel_dilation not in (1, None):
        raise ValueError(f"only plain convolutions are counted, got {module}")
    return kernel, strides


def macs(layer: Layer) -> int:
    """The course's multiply-accumulates of a Conv or Dense layer (0 for other layers)."""
    if isinstance(layer.module, nn.Conv):
        kernel, _ = _conv_geometry(layer.module)
        return conv_macs(layer.output_shape, kernel, layer.input_shape[-1])
    if isinstance(layer.module, nn.Dense):
        return conv_macs(layer.output_shape, (), layer.input_shape[-1])
    return 0


def in_bounds_taps(in_size: int, out_size: int, kernel: int, stride: int, pad_lo: int) -> int:
    """Along one axis: sum over output positions o of the kernel taps k that read the input,
    0 <= o * stride - pad_lo + k < in_size (taps on zero padding left out)."""
    return sum(
        max(0, min(kernel, in_size + pad_lo - o * stride) - max(0, pad_lo - o * stride))
        for o in range(out_size)
    )


def _pad_lo(padding: Any, axis: int, in_size: int, out_size: int, kernel: int, stride: int) -> int:
    """Zero padding before the input along `axis` for flax's `padding` attribute."""
    if padding == "VALID":
        return 0
    if padding == "SAME":
        return max((out_size - 1) * stride + kernel - in_size, 0) // 2
    if isinstance(padding, int):
        return padding
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        pad = padding[axis]
        return pad if isinstance(pad, int) else pad[0]
    raise ValueError(f"padding {padding!r} is not counted")


def effective_macs(layer: Layer) -> int:
    """Multiply-accumulates that read the input (zero-padding taps excluded), what XLA counts."""
    if not isinstance(layer.module, nn.Conv):
        return macs(layer)
    kernel, strides = _conv_geometry(layer.module)
    spatial = 1
    for axis, (k, s) in enumerate(zip(kernel, strides, strict=True)):
        n_in, n_out = layer.input_shape[axis], layer.output_shape[axis]
        pad = _pad_lo(layer.module.padding, axis, n_in, n_out, k, s)
        spatial *= in_bounds_taps(n_in, n_out, k, s, pad)
    return spatial * layer.input_shape[-1] * layer.output_shape[-1]


def xla_flops(fn: Callable[..., Any], *args: Any) -> float:
    """XLA's cost-analysis flop count of `jax.jit(fn)(*args)`; args may be ShapeDtypeStructs
    (the function is lowered, never run)."""
    cost = jax.jit(fn).lower(*args).cost_analysis()
    if isinstance(cost, list | tuple):  # older jax: one dict per device program
        cost = cost[0]
    return float(cost["flops"])


def layer_xla_flops(layer: Layer) -> float:
    """XLA's flops for `layer` alone on one example, its bias (if any) switched off."""
    module = layer.module
    if hasattr(module, "use_bias"):
        module = module.clone(use_bias=False)
    x = _example(layer.input_shape)
    return xla_flops(module.apply, jax.eval_shape(module.init, jax.random.key(0), x), x)


def model_xla_flops(model: nn.Module, input_shape: Sequence[int]) -> float:
    """XLA's flops for the whole forward pass of one example (biases, ReLUs, pools included)."""
    x = _example(input_shape)
    return xla_flops(model.apply, variable_shapes(model, input_shape), x)


def layer_table(
    model: nn.Module, input_shape: Sequence[int], *, xla: bool = False
) -> list[dict[str, Any]]:
    """One row per traced layer: name, kind, output (shape), activations (output size),
    weights, biases, macs, effective_macs, and with `xla` xla_flops (the layer alone)."""
    params = param_shapes(model, input_shape)
    rows = []
    for layer in trace_layers(model, input_shape):
        weights, biases = layer_params(params, layer.path)
        row = {
            "name": layer.name,
            "kind": type(layer.module).__name__,
            "output": list(layer.output_shape),
            "activations": math.prod(layer.output_shape),
            "weights": weights,
            "biases": biases,
            "macs": macs(layer),
            "effective_macs": effective_macs(layer),
        }
        if xla:
            row["xla_flops"] = layer_xla_flops(layer) if row["macs"] else 0.0
        rows.append(row)
    return rows


def stacked_output_size(size: int, depth: int, kernel: int) -> int:
    """Side of the output of `depth` stacked kernel x kernel 'VALID' stride-1 convolutions."""
    return size - depth * (kernel - 1)


def equivalent_kernel(depth: int, kernel: int) -> int:
    """Side N F - N + 1 of the one convolution with the receptive field of `depth` stacked
    F x F ones (stride 1)."""
    return depth * kernel - depth + 1


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | Mapping[str, str]
) -> str:
    """A GitHub Markdown table of `rows` (dicts): `columns` lists their keys, or maps each key
    to its header. Ints get thousands separators, lists become 2x2x3, None "-"; columns of
    numbers are right-aligned."""
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    keys = list(headers)

    def numeric(key: str) -> bool:
        values = [r.get(key) for r in rows if r.get(key) is not None]
        return bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )

    lines = [
        "| " + " | ".join(headers[k] for k in keys) + " |",
        "|" + "|".join("---:" if numeric(k) else "---" for k in keys) + "|",
    ]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
