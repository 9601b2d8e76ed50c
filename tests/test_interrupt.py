"""A run killed by SIGTERM mid-training resumes from its checkpoints to the numbers of an
uninterrupted run (real signal, real subprocess: experiments.batch_augmentation, ResNet-8)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--smoke",
    "--quiet",
    "--dataset",
    "fashion_mnist",
    "--copies",
    "1",
    "--epochs",
    "4",
    "--train-examples",
    "160",
    "--validation-examples",
    "32",
    "--test-examples",
    "32",
]


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "experiments.batch_augmentation", *ARGS, "--out", str(out)]


def _losses(out: Path) -> dict[str, list[float]]:
    doc = json.loads((out / "results.json").read_text())
    return {r["key"]: r["history"]["steps"]["loss"] for r in doc["runs"]}


@pytest.mark.slow
def test_sigterm_then_rerun_reaches_the_uninterrupted_numbers(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(_command(whole), cwd=ROOT, env=env, check=True, capture_output=True)

    process = subprocess.Popen(
        _command(cut), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first_checkpoint = cut / "checkpoints" / "baseline" / "2"
    deadline = time.monotonic() + 300
    while not first_checkpoint.is_dir() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0, "the run finished before it could be interrupted"
    assert not (cut / "results.json").exists() or "M=1" not in _losses(cut)

    subprocess.run(_command(cut), cwd=ROOT, env=env, check=True, capture_output=True)
    expected, resumed = _losses(whole), _losses(cut)
    assert resumed.keys() == expected.keys() == {"baseline", "M=1"}
    for key in expected:
        np.testing.assert_allclose(resumed[key], expected[key], rtol=1e-6)
