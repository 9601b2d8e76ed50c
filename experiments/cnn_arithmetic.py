"""CNN arithmetic from the Flax definitions: parameters, activations and multiply-accumulates.

    python -m experiments.cnn_arithmetic                  # the course's networks, seconds
    python -m experiments.cnn_arithmetic --inception-input 28 28 192 --naive-filters 64 128 32
    python -m experiments.cnn_arithmetic --stack-kernel-size 5 --stack-depths 1 2 3
    python -m experiments.cnn_arithmetic --smoke          # smaller stacked-convolution check

Traces the models of jaxsched.models.classic under jax.eval_shape (no parameter is allocated)
and counts, one example at a time (jaxsched.arithmetic):
  AlexNet (227x227x3): parameters per layer and in total, with and without biases;
  VGG19 (224x224x3): activations (H*W*C of each output: memory) and weights (F*F*Cin*Cout,
    biases excluded) per layer, their totals and the MACs (compute);
  N stacked FxF 'VALID' convolutions vs one (NF-N+1)x(NF-N+1): both run on one random input,
    output shapes compared with H - N(F-1), weights N*F*F*C*C vs (NF-N+1)^2*C*C;
  the naive and the dimension-reduced Inception module (32x32x256): output shapes after the
    concatenation, MACs per layer and branch, and the saving.
Every convolution's and dense layer's MACs are cross-checked against XLA's cost analysis of
that layer alone: XLA counts 2 flops per multiply-accumulate but skips the taps on zero
padding, so its flops equal 2 * effective MACs exactly and are below 2 * MACs for 'SAME'
convolutions. Writes <out>/results.json (tables as Markdown in its summary), <out>/tables.md
and figures: VGG19 activations vs weights per layer (vgg19_activations_weights.png), AlexNet
parameters per layer (alexnet_params.png), Inception MACs per branch (inception_macs.png);
prints the tables. Nothing is trained, so a rerun always recomputes (--fresh changes nothing).
"""

import argparse
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import matplotlib.pyplot as plt
import numpy as np

from experiments import common
from experiments.configs.cnn_arithmetic import DEFAULT, PROTOCOLS, SMOKE, Config
from jaxsched import arithmetic, plots, results
from jaxsched.models.classic import VGG19, AlexNet, ConvStack, InceptionNaive, InceptionReduced

NAME = "cnn_arithmetic"
BYTES_PER_FLOAT32 = 4
# Smallest sides whose feature maps survive every layer: AlexNet's stride-4 conv and three 3/2
# pools, VGG19's five 2/2 pools.


def run(
    config: Config, workdir: str | Path, *, quiet: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Counts everything of the module docstring; returns the results document. (`quiet` and
    `fresh` are accepted for the shared CLI: nothing is trained or resumed; a complete
    results.json of the same config is reused, `fresh` sets it aside and recomputes.)"""
    recorder = common.Recorder(NAME, config, Path(workdir))
    recorder.begin(fresh=fresh)
    if recorder.finished_document is not None:
        print(f"reusing the complete {recorder.results_path} of this config (--fresh redoes it)")
        return recorder.finished_document
    summary: dict[str, Any] = {
        "alexnet": network_counts(AlexNet(num_classes=config.num_classes), config.alexnet_input),
        "vgg19": network_counts(VGG19(num_classes=config.num_classes), config.vgg_input),
        "stacked_convs": stacked_convs(config),
        "inception": inception(config),
    }
    summary["xla"] = xla_check(summary)
    summary["tables"] = tables(summary)
    doc = recorder.write([], summary, results.DONE)
    results.write_text_atomic(recorder.workdir / "tables.md", tables_markdown(summary["tables"]))
    _figures(doc, recorder.workdir)
    return doc


def network_counts(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """Per-layer rows (arithmetic.layer_table, XLA flops included, after an "input" row) and
    totals: params (weights + biases), weights, biases, activations (input and every layer's
    output; activation_mib as float32), macs, effective_macs, xla_flops (the layers alone),
    model_xla_flops (whole forward pass) and the output shape."""
    inputs = {
        "name": "input",
        "kind": "Input",
        "output": list(input_shape),
        "activations": math.prod(input_shape),
        **dict.fromkeys(("weights", "biases", "macs", "effective_macs"), 0),
        "xla_flops": 0.0,
    }
    rows = [inputs, *arithmetic.layer_table(model, input_shape, xla=True)]
    totals = {
        key: sum(r[key] for r in rows)
        for key in ("weights", "biases", "activations", "macs", "effective_macs", "xla_flops")
    }
    return {
        "input": list(input_shape),
        "output": list(arithmetic.output_shape(model, input_shape)),
        "layers": rows,
        "params": totals["weights"] + totals["biases"],
        **totals,
        "activation_mib": totals["activations"] * BYTES_PER_FLOAT32 / 2**20,
        "model_xla_flops": arithmetic.model_xla_flops(model, input_shape),
    }


def stacked_convs(config: Config) -> list[dict[str, Any]]:
    """For each N of stack_depths: N stacked FxF convolutions and one (NF-N+1)x(NF-N+1), both
    run on the same random input [1, H, W, C]; measured and predicted output shapes, weights."""
    h, w, c = config.stack_input
    f = config.stack_kernel_size
    x = np.random.default_rng(config.seed).standard_normal((1, h, w, c), np.float32)
    rows = []
    for n in config.stack_depths:
        k = arithmetic.equivalent_kernel(n, f)
        models = (ConvStack(n, f, c), ConvStack(1, k, c))
        outputs = [list(y.shape[1:]) for y in _apply_random(models, x, config.seed + 1)]
        weights = [_weights(arithmetic.param_shapes(m, (h, w, c))) for m in models]
        predicted = [
            arithmetic.stacked_output_size(h, n, f),
            arithmetic.stacked_output_size(w, n, f),
            c,
        ]
        rows.append(
            {
                "depth": n,
                "kernel": f,
                "equivalent_kernel": k,
                "input": [h, w, c],
                "stacked_output": outputs[0],
                "single_output": outputs[1],
                "predicted_output": predicted,
                "shapes_match": outputs[0] == outputs[1] == predicted,
                "stacked_weights": weights[0],
                "single_weights": weights[1],
                "stacked_weights_per_c2": n * f * f,
                "single_weights_per_c2": k * k,
                "weight_ratio": weights[0] / weights[1],
            }
        )
    return rows


def _apply_random(models: Sequence[nn.Module], x: np.ndarray, seed: int) -> tuple[jax.Array, ...]:
    """Each model run on `x` with standard-normal parameters drawn by NumPy, in one compiled
    program (flax's initializers would compile a PRNG program per model)."""
    rng = np.random.default_rng(seed)
    params = [
        jax.tree.map(
            lambda s: rng.standard_normal(s.shape, np.float32),
            arithmetic.param_shapes(m, x.shape[1:]),
        )
        for m in models
    ]

    def forward(params: list[Any], x: jax.Array) -> tuple[jax.Array, ...]:
        return tuple(m.apply({"params": p}, x) for m, p in zip(models, params, strict=True))

    return jax.jit(forward)(params, x)


def _weights(params: Any) -> int:
    """Kernel entries of a params tree (biases excluded)."""
    return sum(arithmetic.layer_params(params, (name,))[0] for name in params)


def inception(config: Config) -> dict[str, Any]:
    """network_counts of the naive and the reduced module plus per-branch sums ("branches":
    branch, layers, output_channels, weights, macs, effective_macs, xla_flops) and the saving
    in MACs: mac_saving = 1 - reduced / naive, mac_ratio = naive / reduced."""
    out: dict[str, Any] = {}
    for label, model in (
        ("naive", InceptionNaive(*config.naive_filters)),
        ("reduced", InceptionReduced(*config.reduced_filters)),
    ):
        counts = network_counts(model, config.inception_input)
        counts["filters"] = {
            f.name: getattr(model, f.name)
            for f in dataclasses.fields(model)
            if f.name not in ("parent", "name")
        }
        counts["branches"] = branches(counts["layers"][1:])
        out[label] = counts
    out["mac_saving"] = 1 - out["reduced"]["macs"] / out["naive"]["macs"]
    out["mac_ratio"] = out["naive"]["macs"] / out["reduced"]["macs"]
    return out


def branches(layers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Layer rows grouped by branch (a layer's name up to its first "_"), in order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in layers:
        grouped.setdefault(row["name"].split("_")[0], []).append(row)
    return [
        {
            "branch": name,
            "layers": [r["name"] for r in rows],
            "output_channels": rows[-1]["output"][-1],
            **{
                key: sum(r[key] for r in rows)
                for key in ("weights", "macs", "effective_macs", "xla_flops")
            },
        }
        for name, rows in grouped.items()
    ]


def xla_check(summary: dict[str, Any]) -> dict[str, Any]:
    """XLA flops per MAC over every Conv / Dense layer counted: per effective MAC (2 exactly
    when XLA counts 2 flops per multiply-accumulate that reads the input) and per course MAC
    (2 for 'VALID' / 1x1 convolutions and dense layers, below 2 with zero padding)."""
    networks = [
        summary["alexnet"],
        summary["vgg19"],
        summary["inception"]["naive"],
        summary["inception"]["reduced"],
    ]
    layers = [r for net in networks for r in net["layers"] if r["macs"]]
    per_effective = [r["xla_flops"] / r["effective_macs"] for r in layers]
    per_mac = [r["xla_flops"] / r["macs"] for r in layers]
    return {
        "layers_checked": len(layers),
        "flops_per_effective_mac": {"min": min(per_effective), "max": max(per_effective)},
        "flops_per_mac": {"min": min(per_mac), "max": max(per_mac)},
        "exact": all(r["xla_flops"] == 2 * r["effective_macs"] for r in layers),
    }


def _with_total(rows: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    return [*rows, {"name": "**total**", **{k: sum(r[k] for r in rows) for k in keys}}]


def tables(summary: dict[str, Any]) -> dict[str, str]:
    """{title: Markdown table} of everything counted."""
    md = arithmetic.markdown_table
    alexnet, vgg, inc = summary["alexnet"], summary["vgg19"], summary["inception"]
    alex_rows = [
        {**r, "params": r["weights"] + r["biases"]}
        for r in alexnet["layers"]
        if r["kind"] != "Input"
    ]
    out = {
        "AlexNet: parameters per layer": md(
            _with_total(alex_rows, ("weights", "biases", "params")),
            {
                "name": "layer",
                "output": "output",
                "weights": "weights",
                "biases": "biases",
                "params": "parameters",
            },
        ),
        "VGG19: activations (memory) and weights (biases excluded) per layer": md(
            _with_total(vgg["layers"], ("activations", "weights", "macs")),
            {
                "name": "layer",
                "output": "output",
                "activations": "activations",
                "weights": "weights",
                "macs": "MACs",
            },
        ),
        "Stacked FxF convolutions vs one (NF-N+1)x(NF-N+1)": md(
            summary["stacked_convs"],
            {
                "depth": "N",
                "kernel": "F",
                "input": "input",
                "stacked_output": "N stacked: output",
                "equivalent_kernel": "NF-N+1",
                "single_output": "one conv: output",
                "shapes_match": "= H-N(F-1)",
                "stacked_weights_per_c2": "N stacked: weights / C^2",
                "single_weights_per_c2": "one conv: weights / C^2",
                "weight_ratio": "ratio",
            },
        ),
    }
    for label in ("naive", "reduced"):
        rows = [{**r, "ratio": _ratio(r)} for r in inc[label]["layers"][1:]]
        out[f"Inception ({label}): layers"] = md(
            _with_total(rows, ("weights", "macs", "effective_macs", "xla_flops")),
            {
                "name": "layer",
                "output": "output",
                "weights": "weights",
                "macs": "MACs",
                "effective_macs": "MACs off padding",
                "xla_flops": "XLA flops",
                "ratio": "XLA flops / MAC",
            },
        )
    out["Inception: MACs per branch"] = md(_branch_rows(inc), _BRANCH_COLUMNS)
    out["Inception: naive vs reduced"] = md(
        [
            {
                "module": label,
                "input": inc[label]["input"],
                "output": inc[label]["output"],
                "params": inc[label]["params"],
                "macs": inc[label]["macs"],
                "xla_flops": inc[label]["xla_flops"],
                "model_xla_flops": inc[label]["model_xla_flops"],
            }
            for label in ("naive", "reduced")
        ],
        {
            "module": "module",
            "input": "input",
            "output": "output (concatenated)",
            "params": "parameters",
            "macs": "MACs",
            "xla_flops": "XLA flops (convs)",
            "model_xla_flops": "XLA flops (module)",
        },
    )
    return out


_BRANCH_COLUMNS = {
    "branch": "branch",
    "naive_layers": "naive layers",
    "naive_channels": "naive out channels",
    "naive_macs": "naive MACs",
    "reduced_layers": "reduced layers",
    "reduced_channels": "reduced out channels",
    "reduced_macs": "reduced MACs",
}


def _branch_rows(inc: dict[str, Any]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for label in ("naive", "reduced"):
        for b in inc[label]["branches"]:
            row = rows.setdefault(b["branch"], {"branch": b["branch"]})
            row[f"{label}_layers"] = " -> ".join(b["layers"])
            row[f"{label}_channels"] = b["output_channels"]
            row[f"{label}_macs"] = b["macs"]
    total = {"branch": "**total**"}
    for label in ("naive", "reduced"):
        total[f"{label}_channels"] = inc[label]["output"][-1]
        total[f"{label}_macs"] = inc[label]["macs"]
    return [*rows.values(), total]


def _ratio(row: dict[str, Any]) -> float | None:
    return row["xla_flops"] / row["macs"] if row["macs"] else None


def tables_markdown(tables_by_title: dict[str, str]) -> str:
    """The tables under "## title" headings, as written to tables.md."""
    return "\n\n".join(f"## {title}\n\n{table}" for title, table in tables_by_title.items()) + "\n"


def headline(summary: dict[str, Any]) -> str:
    """The totals of the summary in a few lines."""
    alexnet, vgg, inc, xla = (summary[k] for k in ("alexnet", "vgg19", "inception", "xla"))
    return "\n".join(
        [
            f"AlexNet: {alexnet['params']:,} parameters, {alexnet['weights']:,} without biases",
            f"VGG19: {vgg['activations']:,} activations ({vgg['activation_mib']:.1f} MiB float32"
            f" per image), {vgg['weights']:,} weights, {vgg['params']:,} parameters, "
            f"{vgg['macs']:,} MACs",
            f"Inception {inc['naive']['output']} -> {inc['reduced']['output']}: "
            f"{inc['naive']['macs']:,} -> {inc['reduced']['macs']:,} MACs "
            f"({inc['mac_saving']:.1%} fewer, {inc['mac_ratio']:.2f}x)",
            f"XLA flops per MAC over {xla['layers_checked']} layers: "
            f"{xla['flops_per_effective_mac']['min']:g} per MAC off padding (exact: "
            f"{xla['exact']}), {xla['flops_per_mac']['min']:.3f}..{xla['flops_per_mac']['max']:g}"
            " per MAC with padding taps",
        ]
    )


def _grouped_bars(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    ylabel: str,
    title: str,
    *,
    log: bool,
    legend_loc: str = "best",
) -> plt.Figure:
    """Side-by-side bars, one group per label and one colour per series."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(labels) * len(series) + 2), 4.5))
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, list(labels), rotation=45, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc=legend_loc, ncol=len(series))
    fig.tight_layout()
    return fig


def _figures(doc: dict[str, Any], workdir: Path) -> None:
    summary = doc["summary"]
    vgg = summary["vgg19"]["layers"]
    plots.save(
        _grouped_bars(
            [r["name"] for r in vgg],
            {
                "activations (H*W*C of the output)": [r["activations"] for r in vgg],
                "weights (F*F*Cin*Cout, no biases)": [r["weights"] or np.nan for r in vgg],
            },
            "count (log scale)",
            "VGG19 per layer: memory in early activations, weights in late layers",
            log=True,
            legend_loc="upper center",
        ),
        workdir / "vgg19_activations_weights.png",
    )
    plots.save(
        plots.bars(
            {
                r["name"]: (r["weights"] + r["biases"]) / 1e6
                for r in summary["alexnet"]["layers"]
                if r["weights"]
            },
            "AlexNet parameters (millions)",
        ),
        workdir / "alexnet_params.png",
    )
    inc = summary["inception"]
    names = [b["branch"] for b in inc["naive"]["branches"]]
    per_branch = {
        label: {b["branch"]: b["macs"] / 1e6 for b in inc[label]["branches"]}
        for label in ("naive", "reduced")
    }
    plots.save(
        _grouped_bars(
            names,
            {label: [per_branch[label].get(n, 0.0) for n in names] for label in per_branch},
            "MACs (millions)",
            f"Inception module on {'x'.join(map(str, inc['naive']['input']))}: "
            f"{inc['mac_saving']:.0%} fewer MACs with 1x1 reductions",
            log=False,
        ),
        workdir / "inception_macs.png",
    )


SINGLE_DEVICE = "nothing is trained: it counts parameters and MACs from shapes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-classes", type=int, help="AlexNet's and VGG19's outputs")
    parser.add_argument("--alexnet-input", type=int, nargs=3, metavar=("H", "W", "C"))
    parser.add_argument("--vgg-input", type=int, nargs=3, metavar=("H", "W", "C"))
    parser.add_argument("--stack-kernel-size", type=int, metavar="F")
    parser.add_argument("--stack-depths", type=int, nargs="+", metavar="N")
    parser.add_argument("--stack-input", type=int, nargs=3, metavar=("H", "W", "C"))
    parser.add_argument("--inception-input", type=int, nargs=3, metavar=("H", "W", "C"))
    parser.add_argument("--naive-filters", type=int, nargs=3, metavar=("N1X1", "N3X3", "N5X5"))
    parser.add_argument(
        "--reduced-filters",
        type=int,
        nargs=6,
        metavar=("N1X1", "R3X3", "N3X3", "R5X5", "N5X5", "POOL"),
        help="#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj",
    )


def report(doc: dict[str, Any], workdir: Path) -> None:
    print(tables_markdown(doc["summary"]["tables"]))
    print(headline(doc["summary"]))
    print(f"wrote {workdir}/results.json, {workdir}/tables.md and figures")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=DEFAULT,
        smoke=SMOKE,
        protocols=PROTOCOLS,
        add_arguments=add_arguments,
        report=report,
        single_device=SINGLE_DEVICE,
    )


if __name__ == "__main__":
    common.exit_with(main())
