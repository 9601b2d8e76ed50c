"""Data parallelism with `jax.sharding`: a 1-D device mesh, sharded batches, replicated state.

The jitted train step is used unchanged: its inputs carry shardings (the batch split along the
mesh's "data" axis, parameters and optimizer state replicated) and XLA inserts the gradient
all-reduce. BatchNorm statistics are then computed over the whole global batch (synchronised
BatchNorm); `make_train_step(..., batchnorm_groups=N)` computes them per device instead, as
`tf.distribute` does without SyncBatchNormalization.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


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


def shard_batch(mesh: Mesh, *arrays: Any) -> tuple[jax.Array, ...]:
    """Each array [B, ...] placed with its batch axis split over the mesh (B % devices == 0)."""
    sharding = batch_sharding(mesh)
    return tuple(jax.device_put(a, sharding) for a in arrays)


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Every leaf of `tree` replicated over the mesh (parameters, optimizer state, step, key)."""
    return jax.device_put(tree, replicated(mesh))


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
