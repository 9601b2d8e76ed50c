"""Shared fixtures: small slices of the real Fashion-MNIST (installed by .ci/run), and JAX's
persistent compilation cache for the whole test run."""

import os
import tempfile
from pathlib import Path

# Tests are compile-bound (about half of the suite's time is XLA compiling thousands of small,
# distinct programs), so XLA's CPU backend compiles them at LLVM optimization level 0: the same
# programs, the same operations, compiled 2-3x faster and run somewhat slower. Set before JAX
# starts its backend, and inherited by the subprocess tests (they add their own flags to
# XLA_TEST_FLAGS), the benchmark smoke run included: its timings are not measurements.
# Experiments and benchmarks run by users keep XLA's default level.
XLA_TEST_FLAGS = "--xla_backend_optimization_level=0"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_TEST_FLAGS}".strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxsched import compile_cache, data  # noqa: E402

# Many tests compile the same programs (LeNet-5's step at the same shapes, in this process and in
# the subprocess tests): JAX's persistent cache compiles each once per run, and across runs on a
# machine: the folder is outside the checkout (~/.cache/jaxsched/test-xla, beside the runners'
# cache), so a fresh clone on the same machine (CI's) compiles almost nothing again. Set through
# the environment so subprocesses share it; JAX_COMPILATION_CACHE_DIR wins, and
# JAXSCHED_COMPILE_CACHE=off keeps it in the checkout (.jax_cache/). Kept under 2 GiB by
# compile_cache.prune, oldest entries first, not by JAX's cap (it rescans the folder on every
# write: compile_cache.enable). (Results are unaffected: a cache hit is the same executable.)
_user_cache = compile_cache.default_dir()
CACHE_DIR = (
    _user_cache.parent / "test-xla"
    if _user_cache is not None
    else Path(__file__).resolve().parents[1] / ".jax_cache"
)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE_DIR))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
# fit_grid(strategy="auto")'s remembered decisions (jaxsched.decisions): one fresh store per test
# session, so a test never reuses a decision an earlier run (or the user's runs) measured.
os.environ.setdefault(
    "JAXSCHED_DECISIONS",
    str(Path(tempfile.mkdtemp(prefix="jaxsched-test-decisions-")) / "decisions.json"),
)
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
Path(os.environ["JAX_COMPILATION_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
compile_cache.prune(os.environ["JAX_COMPILATION_CACHE_DIR"], max_bytes=2 * 2**30)


@pytest.fixture(scope="session")
def fashion_small() -> tuple[data.Dataset, data.Dataset]:
    """512 training and 256 test images of the real Fashion-MNIST, float32 in [0, 1]."""
    train = data.load("fashion_mnist", "train")
    test = data.load("fashion_mnist", "test")
    return (
        data.Dataset(data.to_float(train.images[:512]), train.labels[:512]),
        data.Dataset(data.to_float(test.images[:256]), test.labels[:256]),
    )


def write_cifar10_binary(directory, examples_per_file: int = 16, seed: int = 0):
    """Writes a tiny CIFAR-10 binary distribution (5 train files + test) of random images."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, examples_per_file, dtype=np.uint8)
        planes = rng.integers(0, 256, (examples_per_file, 3 * 32 * 32), dtype=np.uint8)
        (directory / name).write_bytes(np.concatenate([labels[:, None], planes], 1).tobytes())
    return directory


@pytest.fixture
def tiny_cifar_root(tmp_path):
    """A data root holding cifar-10-batches-bin/ with 80 train and 16 test random images."""
    write_cifar10_binary(tmp_path / "cifar-10-batches-bin")
    return tmp_path
