"""`--devices N` on the experiment runners (experiments/common.experiment_parser)."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest
from conftest import XLA_TEST_FLAGS

from experiments import batch_size_sweep, common, dead_relu
from experiments.configs.batch_size import SWEEP_SMOKE
from jaxsched import runs

ROOT = Path(__file__).resolve().parents[1]

# Run in a subprocess that sees 4 simulated CPU devices: the smoke batch-size sweep on 2 of
# them, then on 3, which its batch sizes (32, 64) do not divide.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from experiments import batch_size_sweep

    out = sys.argv[1]
    args = ["--smoke", "--quiet", "--batch-sizes", "32", "64"]
    batch_size_sweep.main([*args, "--out", out + "/two", "--devices", "2"])
    try:
        batch_size_sweep.main([*args, "--out", out + "/three", "--devices", "3"])
        error = None
    except ValueError as e:
        error = str(e)
    print(json.dumps({"indivisible_error": error}))
    """
)


@pytest.fixture(scope="module")
def two_device_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("devices")
    env = {
        **os.environ,
        "XLA_FLAGS": f"{XLA_TEST_FLAGS} --xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_devices_flag_trains_data_parallel_and_is_recorded(two_device_run):
    out, _ = two_device_run
    doc = json.loads((out / "two" / "results.json").read_text())
    assert doc["environment"]["devices"] == 2
    assert doc["environment"]["device_count"] == 4
    assert doc["environment"]["process_count"] == 1
    assert [r["batch_size"] for r in doc["runs"]] == [32, 64]
    assert all(r["final"]["status"] == "done" for r in doc["runs"])


def test_a_batch_the_devices_do_not_divide_is_refused(two_device_run):
    _, result = two_device_run
    message = result["indivisible_error"]
    assert message is not None
    assert "multiple of the 3 devices" in message
    assert "got [32]: valid nearby sizes are [30]" in message


def test_completed_runs_are_reused_only_on_the_same_device_count(two_device_run):
    out, _ = two_device_run
    config = dataclasses.replace(SWEEP_SMOKE, batch_sizes=(32, 64))  # what main() ran
    same = common.Recorder("batch_size_sweep", config, out / "two", devices=2)
    assert set(same.begin(datasets=["fashion_mnist"], key="batch_size")) == {32, 64}
    one_device = common.Recorder("batch_size_sweep", config, out / "two", devices=None)
    with pytest.raises(runs.RunConflictError, match="devices: 2 -> 1"):
        one_device.begin(datasets=["fashion_mnist"], key="batch_size")


def test_more_devices_than_jax_sees_is_a_usage_error(capsys):
    n = len(jax.devices())
    with pytest.raises(SystemExit):
        batch_size_sweep.main(["--smoke", "--devices", str(n + 1)])
    err = capsys.readouterr().err
    assert f"argument --devices: devices must be in [1, {n}]" in err
    assert "xla_force_host_platform_device_count" in err


def test_runners_without_loop_fit_refuse_several_devices(capsys):
    with pytest.raises(SystemExit):
        dead_relu.main(["--smoke", "--devices", "2"])
    err = capsys.readouterr().err
    assert "argument --devices: must be 1 for python -m experiments.dead_relu" in err
    assert "got 2" in err
    with pytest.raises(SystemExit):
        dead_relu.main(["--smoke", "--num-processes", "2"])
    assert "--num-processes" in capsys.readouterr().err
