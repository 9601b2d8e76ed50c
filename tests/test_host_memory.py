"""jaxsched.host_memory: huge pages for the buffers glibc maps anew on every XLA execution.

The page-fault case runs in fresh Python processes: glibc reads GLIBC_TUNABLES at start-up.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxsched import host_memory, results

ROOT = Path(__file__).resolve().parents[1]
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
HUGE_PAGES_POSSIBLE = (
    (host_memory.glibc_version() or (0, 0)) >= (2, 35)
    and THP.exists()
    and "[never]" not in THP.read_text()
)

# A LeNet-5 SGD step at batch 512 dispatched per batch: its temporary buffer (~129 MB) is above
# what a worker thread's malloc arena holds, so without the settings each call maps fresh pages.
STEP_FAULTS = """
import json, resource, sys
import jax, jax.numpy as jnp
from jaxsched import host_memory
from jaxsched import optimizers, train
from jaxsched.models import LeNet5
model, tx = LeNet5(), optimizers.make("sgd", 0.01)
images = jax.random.normal(jax.random.key(0), (512, 28, 28, 1))
labels = jnp.arange(512) % 10
state = train.init_train_state(model, tx, jax.random.key(1), images[:1])
step = jax.jit(train.make_train_step(model, tx), donate_argnums=0)
for _ in range(2):
    state, metrics = step(state, images, labels)
jax.block_until_ready(metrics)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    state, metrics = step(state, images, labels)
    loss = float(metrics["loss"])
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4
print(json.dumps({"status": host_memory.status(), "faults": faults, "loss": loss}))
"""


def _run(tunables: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", STEP_FAULTS],
        cwd=ROOT,
        env={**env, "GLIBC_TUNABLES": tunables} if tunables else env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HUGE_PAGES_POSSIBLE, reason="needs glibc 2.35+ and transparent huge pages")
def test_huge_pages_remove_most_page_faults_of_each_step_and_keep_the_numbers():
    default = _run("")
    huge = _run(host_memory.RECOMMENDED)
    assert (default["status"], huge["status"]) == ("default", "huge pages")
    # 129 MB of fresh 4 KiB pages per step (~31,500 faults) by default; 2 MiB pages: far fewer
    assert default["faults"] > 10_000, default
    assert huge["faults"] * 10 < default["faults"], (huge, default)
    assert huge["loss"] == default["loss"]  # where buffers live changes nothing computed


@pytest.mark.parametrize(
    "value, version, expected",
    [
        ("glibc.malloc.hugetlb=1", (2, 36), "huge pages"),
        ("glibc.malloc.hugetlb=2", (2, 39), "huge pages"),
        ("glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1", (2, 36), "huge pages"),
        ("glibc.malloc.hugetlb=0", (2, 36), "default"),
        ("glibc.malloc.hugetlb=1", (2, 34), "default"),  # the tunable came in 2.35
        ("glibc.malloc.hugetlb=1", None, "default"),  # not glibc
        ("", (2, 36), "default"),
    ],
)
def test_status_reads_the_tunable_and_the_glibc_version(monkeypatch, value, version, expected):
    monkeypatch.setattr(host_memory, "glibc_version", lambda: version)
    assert host_memory.status({"GLIBC_TUNABLES": value}) == expected


def test_results_record_the_host_memory_setting(monkeypatch):
    assert results.environment()["host_memory"] == host_memory.status()
    monkeypatch.setattr(host_memory, "status", lambda environ=None: "huge pages")
    # environment() is computed once per process (lru_cache); its function reads the setting
    assert results.environment.__wrapped__()["host_memory"] == "huge pages"
