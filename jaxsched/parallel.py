"""Data parallelism with `jax.sharding`: a 1-D device mesh, sharded batches, replicated state.

The jitted train step is used unchanged: its inputs carry shardings (the batch split along the
mesh's "data" axis, parameters and optimizer state replicated) and XLA inserts the gradient
all-reduce. BatchNorm statistics are then computed over the whole global batch (synchronised
BatchNorm); `make_train_step(..., batchnorm_groups=N)` computes them per device instead, as
`tf.distribute` does without SyncBatchNormalization.

Many hosts: `initialize()` starts `jax.distributed` (from arguments, the JAX_COORDINATOR_ADDRESS
/ JAX_NUM_PROCESSES / JAX_PROCESS_ID environment variables, or JAX's cluster auto-detection,
e.g. SLURM); the mesh then spans every process's devices, each process builds only its own rows
of every global batch (`local_rows`), and only process 0 writes results (`is_writer`).

One CPU: `simulate_cpu_devices` splits XLA's CPU backend into several devices (sharing its
cores) to run the data-parallel programs. `hlo_allreduce_bytes` / `stablehlo_allreduce_bytes`
read the communication volume of a compiled / lowered program from its text.
"""

import math
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
# Bytes per element of XLA's HLO element types, and MLIR's integer type names for them.
DTYPE_BYTES = {
    "pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2,
    "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8,
}  # fmt: skip
MLIR_DTYPE = {"i1": "pred", "i8": "s8", "i16": "s16", "i32": "s32", "i64": "s64"}


def make_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh with one axis "data" over `devices`: the first N of `jax.devices()` for an int N,
    all of them for None, or the given devices."""
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, int):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices must be in [1, {len(available)}] (the {available[0].platform} devices "
                f"JAX sees; on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N simulates "
                f"N), got {devices}"
            )
        chosen = available[:devices]
    else:
        chosen = list(devices)
        if not chosen:
            raise ValueError("devices must not be empty")
    return Mesh(np.asarray(chosen), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh's devices, the other axes whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def local_rows(global_batch: int) -> slice:
    """The rows of a global batch of `global_batch` this process supplies (all of them in a
    single-process run): equal consecutive blocks, in process order."""
    count, index = jax.process_count(), jax.process_index()
    if global_batch % count:
        raise ValueError(
            f"the global batch of {global_batch} does not split over {count} processes"
        )
    share = global_batch // count
    return slice(index * share, (index + 1) * share)


def shard_batch(mesh: Mesh, *arrays: Any, global_batch: int | None = None) -> tuple[jax.Array, ...]:
    """Arrays placed with their batch axis split over the mesh (B % devices == 0).

    Single process: each array is the whole batch [B, ...]. Several processes: each array is
    this process's rows [B / processes, ...] (`local_rows(global_batch)`) of the global batch.
    """
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        return tuple(jax.device_put(a, sharding) for a in arrays)
    if global_batch is None:
        global_batch = len(arrays[0]) * jax.process_count()
    return tuple(
        jax.make_array_from_process_local_data(
            sharding, np.asarray(a), (global_batch, *a.shape[1:])
        )
        for a in arrays
    )


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Every leaf of `tree` replicated over the mesh (parameters, optimizer state, step, key).

    Several processes: every process holds the same values (same seed) and contributes its
    own devices' copies.
    """
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(x: Any) -> jax.Array:
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            impl = jax.random.key_impl(x)
            return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=impl)
        value = np.asarray(x)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(one, tree)


def check_divisible(sizes: Iterable[int], num_devices: int, what: str = "batch size") -> None:
    """Raises ValueError naming the sizes that `num_devices` does not divide, and valid ones."""
    bad = sorted({int(s) for s in sizes if s % num_devices})
    if bad:
        nearby = sorted({max(num_devices, s - s % num_devices) for s in bad})
        raise ValueError(
            f"every {what} must be a multiple of the {num_devices} devices (each gets an equal "
            f"share of the global batch); got {bad}: valid nearby sizes are {nearby}"
        )


def round_up(size: int, num_devices: int) -> int:
    """The smallest multiple of `num_devices` that is >= size."""
    return -(-size // num_devices) * num_devices


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Starts `jax.distributed` for a multi-process (multi-host) run; call before anything
    else touches JAX's devices.

    Each argument falls back to the environment variable JAX_COORDINATOR_ADDRESS ("host:port"
    of process 0), JAX_NUM_PROCESSES, JAX_PROCESS_ID; with none of them set, JAX detects the
    cluster itself (SLURM, Open MPI, Kubernetes, Cloud TPU). CPU processes use gloo collectives.
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None and "JAX_NUM_PROCESSES" in env:
        num_processes = int(env["JAX_NUM_PROCESSES"])
    if process_id is None and "JAX_PROCESS_ID" in env:
        process_id = int(env["JAX_PROCESS_ID"])
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes - 1}], got {process_id}")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def is_writer() -> bool:
    """True in the process that writes results and logs (process 0; the only one when alone)."""
    return jax.process_index() == 0


def simulate_cpu_devices(count: int) -> bool:
    """Asks JAX for `count` CPU devices: XLA's CPU backend split into `count` devices that share
    the machine's cores (`jax_num_cpu_devices`), so data-parallel programs run on one CPU;
    other platforms (GPU, TPU) are unaffected. Call before the first JAX computation.

    Returns True when it set the count; False, changing nothing, when XLA_FLAGS
    (--xla_force_host_platform_device_count) or jax_num_cpu_devices already sets one, or when
    JAX's backends are already initialized (the devices are fixed then).
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return False
    if jax.config.jax_num_cpu_devices >= 0:
        return False
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backends are initialized: too late
        return False
    return True


def _shape_bytes(dtype: str, dims: Sequence[str]) -> int:
    return DTYPE_BYTES[MLIR_DTYPE.get(dtype, dtype)] * math.prod(int(d) for d in dims if d)


def hlo_allreduce_bytes(hlo_text: str) -> tuple[int, int]:
    """(bytes, ops): the summed result sizes of every all-reduce (sync or async start) in an
    XLA HLO module's text (`compiled.as_text()`); an all-reduce's result has its operands'
    shapes, a tuple for a combined one."""
    total = ops = 0
    for match in re.finditer(r"=\s*(\S.*?)\s+all-reduce(?:-start)?\(", hlo_text):
        ops += 1
        for dtype, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", match.group(1)):
            total += _shape_bytes(dtype, dims.split(","))
    return total, ops


def stablehlo_allreduce_bytes(mlir_text: str) -> tuple[int, int]:
    """(bytes, ops) of every `stablehlo.all_reduce` in a lowered module's text
    (`lowered.as_text()`, before XLA's optimizations), from its operand types."""
    total = ops = 0
    pattern = r'"stablehlo\.all_reduce"\(.*?\}\) : \((.*?)\) ->'
    for match in re.finditer(pattern, mlir_text, flags=re.DOTALL):
        ops += 1
        for dims, dtype in re.findall(r"tensor<((?:\d+x)*)(\w+)>", match.group(1)):
            total += _shape_bytes(dtype, dims.split("x"))
    return total, ops
