"""Data parallelism (jaxsched.parallel, fit(devices=N)) on 8 simulated CPU devices."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import XLA_TEST_FLAGS

from jaxsched import parallel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def eight_devices() -> dict:
    env = {**os.environ, "XLA_FLAGS": f"{XLA_TEST_FLAGS} --xla_force_host_platform_device_count=8"}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "parallel_check.py")],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(out.stdout)


@pytest.mark.slow
def test_data_parallel_updates_equal_the_single_device_run(eight_devices):
    assert eight_devices["devices"] == 8
    for n, diff in eight_devices["max_abs_diff"].items():
        assert diff < 1e-5, f"{n} devices: parameters differ by {diff}"
    for n, diff in eight_devices["val_loss_diff"].items():
        assert diff < 1e-5, f"{n} devices: evaluation differs by {diff}"


def test_per_device_batchnorm_changes_the_updates(eight_devices):
    # Statistics over 16 images per device, not the global 32: a different (valid) run.
    assert eight_devices["per_device_bn_diff"] > 1e-4


def test_a_batch_the_devices_do_not_divide_names_the_valid_sizes(eight_devices):
    message = eight_devices["indivisible_error"]
    assert "multiple of the 8 devices" in message and "[24]" in message


def test_sliced_convolutions_keep_every_slice_on_its_devices(eight_devices):
    # jaxsched.models.conv.in_batch_slices interleaves the slices so that each one spans all 8
    # devices' shards of the batch: no collective moves a slice, and the result is unchanged.
    check = eight_devices["sliced_convolution"]
    assert check["collectives"] == []
    assert check["max_abs_diff"] < 1e-5
    assert check["output_sharded_like_input"]


def test_mesh_device_count_is_checked():
    n = len(jax.devices())
    with pytest.raises(ValueError, match=rf"devices must be in \[1, {n}\].*got {n + 1}"):
        parallel.make_mesh(n + 1)
    with pytest.raises(ValueError, match="got 0"):
        parallel.make_mesh(0)


def test_check_divisible_and_round_up():
    parallel.check_divisible([32, 64], 4)
    with pytest.raises(ValueError, match=r"got \[30, 33\]: valid nearby sizes are \[28, 32\]"):
        parallel.check_divisible([30, 33, 32], 4)
    assert [parallel.round_up(s, 4) for s in (1, 4, 5, 36)] == [4, 4, 8, 36]


def test_one_device_mesh_runs_the_step_unchanged(fashion_small):
    from jaxsched import loop, optimizers
    from jaxsched.models import MLP

    train_ds, _ = fashion_small
    small = type(train_ds)(train_ds.images[:64], train_ds.labels[:64])
    kwargs = dict(epochs=1, batch_size=16, quiet=True)
    tx = optimizers.make("sgd", 0.1)
    plain, _ = loop.fit(MLP(hidden=(16,)), tx, small, **kwargs)
    meshed, _ = loop.fit(MLP(hidden=(16,)), tx, small, devices=1, **kwargs)
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(meshed.params), strict=True):
        assert abs(a - b).max() < 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_distributed_run_equals_one_process(tmp_path):
    # Two jax.distributed processes on localhost (gloo CPU collectives), one CPU device each,
    # each gathering half of every batch; against one process on one device.
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from parallel_check import lenet_params  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    coordinator = f"127.0.0.1:{_free_port()}"
    out = tmp_path / "params.npy"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = XLA_TEST_FLAGS
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "distributed_check.py"),
                coordinator,
                "2",
                str(i),
                str(out),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(logs)[-3000:]
    np.testing.assert_allclose(np.load(out), lenet_params(), rtol=1e-5, atol=1e-6)
