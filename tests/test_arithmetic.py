"""jaxsched.arithmetic on small models: tracing, counts, padding taps, XLA flops, Markdown."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxsched import arithmetic
from jaxsched.models.classic import ConvStack, InceptionNaive, MaxPool


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3), strides=2, padding="SAME", name="conv")(x)
        x = MaxPool(2, 2, name="pool")(x)
        x = ConvStack(2, 1, 6, name="stack")(x)
        x = nn.Dropout(0.5, deterministic=True)(x)
        return nn.Dense(3, name="fc")(x.reshape((x.shape[0], -1)))


def test_trace_layers_records_shapes_in_call_order():
    layers = arithmetic.trace_layers(Tiny(), (9, 9, 2))
    assert [(layer.name, layer.input_shape, layer.output_shape) for layer in layers] == [
        ("conv", (9, 9, 2), (5, 5, 4)),
        ("pool", (5, 5, 4), (2, 2, 4)),
        ("stack/conv1", (2, 2, 4), (2, 2, 6)),
        ("stack/conv2", (2, 2, 6), (2, 2, 6)),
        ("fc", (24,), (3,)),
    ]
    assert arithmetic.output_shape(Tiny(), (9, 9, 2)) == (3,)


def test_layer_table_counts_weights_biases_and_macs():
    rows = {r["name"]: r for r in arithmetic.layer_table(Tiny(), (9, 9, 2), xla=True)}
    assert (rows["conv"]["weights"], rows["conv"]["biases"]) == (3 * 3 * 2 * 4, 4)
    assert rows["conv"]["macs"] == 5 * 5 * 3 * 3 * 2 * 4
    assert rows["pool"]["weights"] == rows["pool"]["macs"] == 0 and rows["pool"]["xla_flops"] == 0
    assert rows["stack/conv2"]["macs"] == 2 * 2 * 6 * 6
    assert rows["fc"]["macs"] == rows["fc"]["weights"] == 24 * 3
    for r in rows.values():
        assert r["xla_flops"] == 2 * r["effective_macs"]


@pytest.mark.parametrize(
    "size, kernel, stride, padding",
    [
        (32, 3, 1, "SAME"),
        (32, 5, 1, "SAME"),
        (9, 3, 2, "SAME"),
        (27, 5, 1, 2),
        (227, 11, 4, "VALID"),
    ],
)
def test_effective_macs_are_what_xla_counts(size, kernel, stride, padding):
    conv = nn.Conv(3, (kernel, kernel), strides=stride, padding=padding, use_bias=False)
    (layer,) = arithmetic.trace_layers(conv, (size, size, 2))
    flops = arithmetic.layer_xla_flops(layer)
    assert flops == 2 * arithmetic.effective_macs(layer)
    if padding == "VALID":
        assert arithmetic.effective_macs(layer) == arithmetic.macs(layer)


def test_in_bounds_taps_closed_forms():
    # 'SAME' stride 1 with F = 2p + 1: each axis loses p(p+1) taps to the zero padding.
    for size, f in ((32, 3), (32, 5), (7, 7)):
        p = f // 2
        assert arithmetic.in_bounds_taps(size, size, f, 1, p) == f * size - p * (p + 1)
    assert arithmetic.in_bounds_taps(10, 8, 3, 1, 0) == 8 * 3  # 'VALID'


def test_param_shapes_allocate_nothing_and_layer_params_split_biases():
    params = arithmetic.param_shapes(InceptionNaive(4, 8, 2), (8, 8, 16))
    assert isinstance(jax.tree_util.tree_leaves(params)[0], jax.ShapeDtypeStruct)
    assert arithmetic.layer_params(params, ("5x5",)) == (5 * 5 * 16 * 2, 2)
    assert arithmetic.layer_params(params, ("pool",)) == (0, 0)
    assert arithmetic.output_shape(InceptionNaive(4, 8, 2), (8, 8, 16)) == (8, 8, 4 + 8 + 2 + 16)


def test_xla_flops_of_a_matmul():
    a = jax.ShapeDtypeStruct((4, 5), jnp.float32)
    b = jax.ShapeDtypeStruct((5, 6), jnp.float32)
    assert arithmetic.xla_flops(jnp.matmul, a, b) == 2 * 4 * 5 * 6


def test_stacked_and_equivalent_kernel():
    assert [arithmetic.equivalent_kernel(n, 3) for n in (1, 2, 3)] == [3, 5, 7]
    assert arithmetic.stacked_output_size(32, 3, 3) == 32 - 7 + 1


def test_markdown_table():
    rows = [{"a": "x", "n": 1234567, "f": 0.5, "s": [2, 3], "b": True}, {"a": "y", "n": None}]
    assert arithmetic.markdown_table(
        rows, {"a": "name", "n": "N", "f": "f", "s": "s", "b": "b"}
    ) == (
        "| name | N | f | s | b |\n"
        "|---|---:|---:|---|---|\n"
        "| x | 1,234,567 | 0.5 | 2x3 | yes |\n"
        "| y | - | - | - | - |"
    )
    assert arithmetic.markdown_table([{"a": 1}], ["a"]).splitlines()[0] == "| a |"
