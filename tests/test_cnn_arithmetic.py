"""experiments.cnn_arithmetic through run(): counts against closed forms computed here."""

import dataclasses
import json

import pytest

from experiments import cnn_arithmetic
from experiments.configs.cnn_arithmetic import DEFAULT, SMOKE

# (name, F, C_in, C_out): AlexNet as the course uses it; fc6 sees the 6x6x256 pool5 output.
ALEXNET = [
    ("conv1", 11, 3, 96),
    ("conv2", 5, 96, 256),
    ("conv3", 3, 256, 384),
    ("conv4", 3, 384, 384),
    ("conv5", 3, 384, 256),
    ("fc6", 1, 6 * 6 * 256, 4096),
    ("fc7", 1, 4096, 4096),
    ("fc8", 1, 4096, 1000),
]
VGG19_CONVS = [64, 64, "M", 128, 128, "M"] + ([256] * 4 + ["M"]) + ([512] * 4 + ["M"]) * 2


def vgg19_layers():
    """(name, activations H*W*C, weights F*F*Cin*Cout, MACs) of VGG19 on 224x224x3."""
    side, c_in, stage, k, rows = 224, 3, 1, 1, [("input", 224 * 224 * 3, 0, 0)]
    for entry in VGG19_CONVS:
        if entry == "M":
            side //= 2
            rows.append((f"pool{stage}", side * side * c_in, 0, 0))
            stage, k = stage + 1, 1
        else:
            w = 3 * 3 * c_in * entry
            rows.append((f"conv{stage}_{k}", side * side * entry, w, side * side * w))
            c_in, k = entry, k + 1
    for name, n_in, n_out in (("fc6", 7 * 7 * 512, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)):
        rows.append((name, n_out, n_in * n_out, n_in * n_out))
    return rows


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cnn_arithmetic")
    return workdir, cnn_arithmetic.run(SMOKE, workdir, quiet=True)


def test_smoke_keeps_the_course_networks():
    for field in ("alexnet_input", "vgg_input", "inception_input", "naive_filters"):
        assert getattr(SMOKE, field) == getattr(DEFAULT, field)
    assert SMOKE.reduced_filters == DEFAULT.reduced_filters == (128, 64, 192, 64, 96, 64)


def test_writes_results_tables_and_figures(smoke_run):
    workdir, doc = smoke_run
    on_disk = json.loads((workdir / "results.json").read_text())
    assert on_disk["experiment"] == "cnn_arithmetic" and on_disk["status"] == "done"
    assert on_disk["summary"]["alexnet"]["params"] == 62_378_344
    tables_md = (workdir / "tables.md").read_text()
    for title, table in on_disk["summary"]["tables"].items():
        assert f"## {title}\n\n{table}" in tables_md
    assert "| **total** | - | 62,367,776 | 10,568 | 62,378,344 |" in tables_md
    for name in ("vgg19_activations_weights.png", "alexnet_params.png", "inception_macs.png"):
        assert (workdir / name).stat().st_size > 0


def test_alexnet_parameters_per_layer_with_and_without_biases(smoke_run):
    alexnet = smoke_run[1]["summary"]["alexnet"]
    layers = {r["name"]: r for r in alexnet["layers"]}
    for name, f, c_in, c_out in ALEXNET:
        assert (layers[name]["weights"], layers[name]["biases"]) == (f * f * c_in * c_out, c_out)
    assert layers["conv1"]["weights"] + layers["conv1"]["biases"] == 34_944
    assert layers["conv1"]["output"] == [55, 55, 96] and layers["pool5"]["output"] == [6, 6, 256]
    assert alexnet["params"] == 62_378_344
    assert alexnet["weights"] == 62_378_344 - sum(c_out for *_, c_out in ALEXNET) == 62_367_776


def test_vgg19_activations_weights_and_macs_per_layer(smoke_run):
    vgg = smoke_run[1]["summary"]["vgg19"]
    expected = vgg19_layers()
    got = [(r["name"], r["activations"], r["weights"], r["macs"]) for r in vgg["layers"]]
    assert got == expected
    assert vgg["params"] == 143_667_240 and vgg["weights"] == 143_652_544
    assert vgg["activations"] == sum(r[1] for r in expected)
    assert vgg["activation_mib"] == pytest.approx(vgg["activations"] * 4 / 2**20)


def test_stacked_convolutions_match_one_large_convolution(smoke_run):
    rows = smoke_run[1]["summary"]["stacked_convs"]
    h, w, c = SMOKE.stack_input
    f = SMOKE.stack_kernel_size
    assert [r["depth"] for r in rows] == list(SMOKE.stack_depths)
    for r in rows:
        n = r["depth"]
        k = n * f - n + 1
        assert r["equivalent_kernel"] == k and r["shapes_match"]
        assert r["stacked_output"] == r["single_output"] == [h - n * (f - 1), w - n * (f - 1), c]
        assert (r["stacked_weights"], r["single_weights"]) == (n * f * f * c * c, k * k * c * c)
    assert rows[2]["stacked_weights_per_c2"] == 27 and rows[2]["single_weights_per_c2"] == 49


def test_inception_shapes_macs_per_branch_and_saving(smoke_run):
    inc = smoke_run[1]["summary"]["inception"]
    hw, c = 32 * 32, 256
    assert inc["naive"]["output"] == [32, 32, 128 + 192 + 96 + c]
    assert inc["reduced"]["output"] == [32, 32, 128 + 192 + 96 + 64]
    naive = {"1x1": hw * c * 128, "3x3": hw * 9 * c * 192, "5x5": hw * 25 * c * 96, "pool": 0}
    reduced = {
        "1x1": hw * c * 128,
        "3x3": hw * (c * 64 + 9 * 64 * 192),
        "5x5": hw * (c * 64 + 25 * 64 * 96),
        "pool": hw * c * 64,
    }
    for label, macs in (("naive", naive), ("reduced", reduced)):
        assert {b["branch"]: b["macs"] for b in inc[label]["branches"]} == macs
        assert inc[label]["macs"] == sum(macs.values())
        assert sum(b["output_channels"] for b in inc[label]["branches"]) == inc[label]["output"][-1]
    assert inc["naive"]["macs"] == 1_115_684_864 and inc["reduced"]["macs"] == 354_418_688
    assert inc["mac_saving"] == pytest.approx(1 - sum(reduced.values()) / sum(naive.values()))
    assert inc["mac_saving"] == pytest.approx(0.6823, abs=1e-4)


def test_xla_counts_two_flops_per_mac_off_the_padding(smoke_run):
    summary = smoke_run[1]["summary"]
    xla = summary["xla"]
    assert xla["exact"] and xla["layers_checked"] == 8 + 19 + 3 + 6
    assert xla["flops_per_effective_mac"] == {"min": 2.0, "max": 2.0}
    assert xla["flops_per_mac"]["max"] == 2.0 and xla["flops_per_mac"]["min"] < 2.0
    layers = {r["name"]: r for r in summary["inception"]["naive"]["layers"]}
    assert layers["1x1"]["xla_flops"] == 2 * layers["1x1"]["macs"]
    # 'SAME' 3x3 on 32: per axis 3 * 32 - 2 taps read the input instead of 3 * 32.
    assert layers["3x3"]["xla_flops"] == 2 * (3 * 32 - 2) ** 2 * 256 * 192


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(stack_input=(4, 4, 8), stack_depths=(2,)), "stack_input"),
        (dict(stack_depths=(0, 1)), "stack_depths"),
        (dict(stack_depths=()), "stack_depths"),
        (dict(stack_kernel_size=0), "stack_kernel_size"),
        (dict(naive_filters=(128, 192)), "naive_filters"),
        (dict(reduced_filters=(128, 64, 192, 64, 96, 0)), "reduced_filters"),
        (dict(inception_input=(32, 32, -1)), "inception_input"),
        (dict(alexnet_input=(64, 64, 3)), "alexnet_input"),
        (dict(vgg_input=(16, 16, 3)), "vgg_input"),
        (dict(num_classes=0), "num_classes"),
    ],
)
def test_bad_config_values_raise(change, field, tmp_path):
    with pytest.raises(ValueError, match=field):
        cnn_arithmetic.run(dataclasses.replace(SMOKE, **change), tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_main_prints_the_tables(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--smoke", "--out", str(out), "--stack-depths", "1", "2"]
    argv += ["--inception-input", "8", "8", "16", "--naive-filters", "4", "8", "2"]
    assert cnn_arithmetic.main(argv) == 0
    printed = capsys.readouterr().out
    assert "## VGG19" in printed and "143,667,240 parameters" in printed
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["stack_depths"] == [1, 2] and config["inception_input"] == [8, 8, 16]
    assert "| 2 | 3 | 16x16x8 | 12x12x8 | 5 | 12x12x8 | yes |" in (out / "tables.md").read_text()
