"""JAX's persistent compilation cache for the runners (jaxsched.compile_cache)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxsched import compile_cache

pytestmark = pytest.mark.slow  # subprocesses and a runner

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import jax, jax.numpy as jnp
import pytest

from jaxsched import compile_cache

pytestmark = pytest.mark.slow  # subprocesses and a runner
print(compile_cache.enable())
jax.jit(lambda x: jnp.sin(x) * 3)(jnp.ones(5)).block_until_ready()
"""


def _run(env_cache: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env[compile_cache.ENV] = env_cache
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True, timeout=300,
    )  # fmt: skip
    return proc.stdout.strip()


def test_a_compiled_program_lands_in_the_cache_folder(tmp_path):
    folder = tmp_path / "xla"
    assert _run(str(folder)) == str(folder)
    entries = list(folder.iterdir())
    assert entries  # the jitted program (and nothing when disabled, below)
    assert _run("off") == "None"


def test_runners_enable_it_unless_told_not_to(monkeypatch, tmp_path):
    from experiments import cnn_arithmetic

    calls = []
    monkeypatch.setattr(compile_cache, "enable", lambda *args: calls.append(args))
    assert cnn_arithmetic.main(["--smoke", "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert calls == [()]
    flag = ["--no-compile-cache", "--fresh"]
    assert cnn_arithmetic.main(["--smoke", "--quiet", "--out", str(tmp_path / "a"), *flag]) == 0
    assert calls == [()]


def test_prune_leaves_a_folder_under_the_limit_alone_and_trims_one_over_it(tmp_path):
    for i in range(10):
        path = tmp_path / f"e{i}-cache"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1000 + i, 1000 + i))
    assert compile_cache.prune(tmp_path, max_bytes=10_000) == 0
    assert len(list(tmp_path.iterdir())) == 10
    assert compile_cache.prune(tmp_path, max_bytes=9_999, keep_fraction=0.5) == 6000
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"e{i}-cache" for i in range(6, 10)]
