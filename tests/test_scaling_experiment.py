"""experiments.scaling --smoke end to end (in a subprocess: its command line simulates CPU
devices before JAX's first computation), and jaxsched.parallel's HLO all-reduce byte counting."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import XLA_TEST_FLAGS

from experiments import scaling
from experiments.configs.scaling import SMOKE
from jaxsched import parallel
from jaxsched import scaling as model
from jaxsched.models import conv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("scaling")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = XLA_TEST_FLAGS  # the runner sets the simulated device count itself
    env.pop("JAX_NUM_CPU_DEVICES", None)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.scaling", "--smoke", "--quiet", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "doc": json.loads((out / "results.json").read_text())}


def test_every_configuration_is_measured_on_simulated_devices(smoke):
    doc = smoke["doc"]
    assert doc["status"] == "done"
    assert doc["environment"]["device_count"] == scaling.SIMULATED_DEVICES
    assert doc["environment"]["devices"] == 2
    assert doc["summary"]["simulated_cpu_devices"] is True
    assert "no real speedup" in doc["summary"]["note"]
    keys = {(r["model"], r["mode"], r["batch"], r["devices"]) for r in doc["runs"]}
    assert keys == {
        (m, mode, b, n)
        for m in ("lenet5", "resnet8")
        for mode, b in (("strong", 16), ("weak", 8))
        for n in (1, 2)
    }
    for run in doc["runs"]:
        assert run["global_batch"] == run["per_device_batch"] * run["devices"]
        assert run["step_s"] > 0 and run["compute_s"] > 0 and run["comm_s"] >= 0
        assert run["throughput_img_s"] == pytest.approx(run["global_batch"] / run["step_s"])
        assert run["efficiency"] == pytest.approx(run["speedup"] / run["devices"])
        if run["devices"] == 1:
            assert run["speedup"] == 1.0 and run["efficiency"] == 1.0 and run["comm_s"] == 0.0
        else:  # the unsynchronised step has no collective at all
            assert run["no_sync_allreduce_bytes"] == 0
    # Strong batch 16 on 2 devices is weak batch 8 on 2: one step, compiled once.
    pair = [r for r in doc["runs"] if r["devices"] == 2 and r["model"] == "lenet5"]
    assert len({r["step_s"] for r in pair}) == 1
    assert sum("same_step_as" in r["compile_s"] for r in pair) == 1


def test_allreduced_bytes_are_four_per_parameter(smoke):
    comm = smoke["doc"]["summary"]["communication"]
    lenet = comm["lenet5"]
    assert lenet["params"] == 62_160  # trainable parameters (Keras: 62,614 with moving stats)
    assert lenet["hlo_allreduce_bytes"] == [4 * 62_160] == [lenet["expected_bytes"]]
    assert lenet["lowered_allreduce_bytes"] == [4 * 62_160]
    assert lenet["hlo_matches_4x_params"] and lenet["identical_gradients"] == []
    resnet = comm["resnet8"]
    # As written, the program all-reduces every gradient; XLA then merges the all-reduces of
    # the bit-identical gradients (projection bias = BatchNorm shift in downsampling blocks).
    assert resnet["lowered_allreduce_bytes"] == [resnet["expected_bytes"]]
    assert resnet["lowered_matches_4x_params"]
    assert resnet["identical_gradients"] == [
        ["stage2_block1/bn2/bias", "stage2_block1/projection/bias"],
        ["stage3_block1/bn2/bias", "stage3_block1/projection/bias"],
    ]
    assert resnet["merged_bytes"] == 4 * (32 + 64)
    assert resnet["hlo_allreduce_bytes"] == [resnet["expected_bytes"] - resnet["merged_bytes"]]
    assert resnet["hlo_matches_4x_params_less_merged"]
    for name in ("lenet5", "resnet8"):  # loop.fit's step adds synchronised BatchNorm + metrics
        fit = comm[name]["fit_step"]
        # ... and, for LeNet-5's banded convolutions (CPU), the gradients of the banded
        # matrices: XLA sums them over the batch before folding them back onto the kernels.
        gradients = comm[name]["expected_bytes"] + (
            4 * banded_extra_values(LENET_CONVOLUTIONS) if name == "lenet5" else 0
        )
        assert fit["devices"] == 2
        assert gradients < fit["allreduce_bytes"] < 1.05 * gradients


# LeNet-5's convolutions: kernel shape, output width.
LENET_CONVOLUTIONS = (((5, 5, 1, 6), 28), ((5, 5, 6, 16), 10), ((5, 5, 16, 120), 1))


def banded_extra_values(convolutions) -> int:
    """How many more values the banded matrices of `convolutions` hold than their kernels, on
    CPU where `conv_impl="auto"` lowers them so (0 elsewhere)."""
    if conv.resolve_impl("auto") != "banded":
        return 0
    return sum(
        conv.banded_matrix(jnp.zeros(shape), min(conv.BANDED_TILE, width)).size - np.prod(shape)
        for shape, width in convolutions
    )


def test_banded_extra_values_of_lenet5():
    if conv.resolve_impl("auto") == "banded":  # 5*8*1 x 4*6 and 5*8*6 x 4*16; conv3 is 1 wide
        assert banded_extra_values(LENET_CONVOLUTIONS) == (960 - 150) + (15_360 - 2_400)


def test_predictions_follow_the_model(smoke):
    summary = smoke["doc"]["summary"]
    pred = summary["predictions"]
    assert set(pred) == {"gpu_assumed", "this_cpu"}
    for basis in pred.values():
        assert set(basis) == {"lenet5", "resnet8", "alexnet", "vgg19"}
        for name, per_mode in basis.items():
            for mode in model.MODES:
                compute = per_mode[mode]["compute_s_single"]
                for link in model.INTERCONNECTS:
                    p = per_mode[mode][link]
                    assert p["devices"] == [1, 2, 4, 8]
                    assert p["efficiency"][0] == 1.0
                    assert np.all(np.diff(p["efficiency"]) <= 1e-12)
                    expected = model.predict(
                        compute, summary["models"][name]["gradient_bytes"], [1, 2, 4, 8], link, mode
                    )
                    np.testing.assert_allclose(p["efficiency"], expected.efficiency, rtol=1e-12)
    assert summary["models"]["vgg19"]["params"] == 143_667_240
    assert summary["models"]["alexnet"]["params"] == 62_378_344
    # More parameters per FLOP: AlexNet scales worse than VGG19 on the same link.
    gpu = pred["gpu_assumed"]
    assert (
        gpu["alexnet"]["strong"]["pcie4_x16"]["efficiency"][-1]
        < (gpu["vgg19"]["strong"]["pcie4_x16"]["efficiency"][-1])
    )
    assert "| lenet5 | pcie4_x16 | strong |" in summary["predicted_table"]


def test_figures_are_written(smoke):
    for name in ("speedup.png", "efficiency.png"):
        assert (smoke["out"] / name).stat().st_size > 10_000


def test_hlo_allreduce_bytes_parses_tuples_and_async_starts():
    text = """
  %all-reduce = f32[6,5,5,1]{3,2,1,0} all-reduce(f32[6,5,5,1]{3,2,1,0} %p), channel_id=1
  %all-reduce.1 = (f32[10]{0}, bf16[84,10]{1,0}) all-reduce(f32[10]{0} %a, bf16[84,10]{1,0} %b)
  %ars = f32[3]{0} all-reduce-start(f32[3]{0} %c), channel_id=3
  %ard = f32[3]{0} all-reduce-done(f32[3]{0} %ars)
  %add = f32[10]{0} add(f32[10]{0} %a, f32[10]{0} %a)
"""
    assert parallel.hlo_allreduce_bytes(text) == (4 * 150 + 4 * 10 + 2 * 840 + 4 * 3, 3)


@pytest.mark.slow
def test_simulate_cpu_devices_only_before_the_backends_start():
    script = (
        "import jax\n"
        "from jaxsched import parallel\n"
        "first = parallel.simulate_cpu_devices(3)\n"
        "count = jax.device_count()\n"
        "print(first, count, parallel.simulate_cpu_devices(5), jax.device_count())\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = XLA_TEST_FLAGS
    env.pop("JAX_NUM_CPU_DEVICES", None)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "3", "False", "3"]
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"  # a count given: kept
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["False", "2", "False", "2"], out.stderr[-2000:]


def test_measured_configs_and_device_counts():
    rows = scaling.measured_configs([256], [32], [1, 2, 4])
    assert [(r["mode"], r["global_batch"], r["per_device_batch"]) for r in rows] == [
        ("strong", 256, 256),
        ("strong", 256, 128),
        ("strong", 256, 64),
        ("weak", 32, 32),
        ("weak", 64, 32),
        ("weak", 128, 32),
    ]
    assert scaling.powers_of_two_up_to(8) == (1, 2, 4, 8)
    assert scaling.powers_of_two_up_to(6) == (1, 2, 4, 6)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("device_counts", (2, 4), r"device_counts must include 1"),
        ("lenet_strong_batches", (15,), r"every batch of lenet_strong_batches is a multiple of 2"),
        ("resnet_steps", 0, r"resnet_steps must be an integer >= 1, got 0"),
        ("interconnects", ("token_ring",), r"interconnects must each be one of"),
        ("gpu_flops_per_s", 0.0, r"gpu_flops_per_s must be a finite number > 0"),
    ],
)
def test_bad_configs_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message) as error:
        dataclasses.replace(SMOKE, **{field: value})
    assert error.value.fields[0] == field
