"""An analytical model of data-parallel step time: compute plus a ring all-reduce.

One data-parallel step on N devices = the per-device compute, then an all-reduce of the
gradients (`param_bytes`, float32: 4 bytes per parameter) over a ring:

    t_comm(N) = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency,   t_comm(1) = 0.

The ring all-reduce (Patarasuk & Yuan 2009; NCCL's ring, Horovod) is a reduce-scatter then an
all-gather, each N - 1 steps in which every device sends 1/N of the buffer to its neighbour:
2 (N - 1) messages of bytes / N. The bandwidth term is therefore 2 (N - 1) / N * bytes /
bandwidth, and every message pays the link's latency once, hence 2 (N - 1) * latency (the
issue's "+ latency" is this per-message latency times the number of messages; the alpha-beta
model of Thakur, Rabenseifner & Gropp 2005). Compute and communication are assumed not to
overlap (no gradient bucketing overlapped with the backward pass), so the model is pessimistic
for frameworks that overlap them.

Strong scaling (global batch fixed): t(N) = t_compute(1) / N + t_comm(N); speedup = t(1) /
t(N); efficiency = speedup / N. Weak scaling (per-device batch fixed): t(N) = t_compute(1) +
t_comm(N); N times the images per step, so speedup (throughput ratio) = N t(1) / t(N) and
efficiency = t_compute / (t_compute + t_comm) = speedup / N.

References:
  P. Patarasuk, X. Yuan, "Bandwidth optimal all-reduce algorithms for clusters of
    workstations", JPDC 69 (2), 2009.
  R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of collective communication operations
    in MPICH", IJHPCA 19 (1), 2005.
"""

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

MODES = ("strong", "weak")


class Interconnect(NamedTuple):
    """A link between neighbouring devices of the ring: bandwidth (bytes/s, one direction, per
    device) and per-message latency (s)."""

    bandwidth_bytes_per_s: float
    latency_s: float


# Nominal figures (vendor specifications), not measurements; see each comment.
INTERCONNECTS: Mapping[str, Interconnect] = {
    # PCIe 4.0 x16: 16 GT/s x 16 lanes, 128b/130b = 31.5 GB/s per direction nominal; 25 GB/s
    # is the effective rate after packet overheads (~80 %, what host-device copies reach);
    # ~5 us per message through the PCIe switch / host bridge.
    "pcie4_x16": Interconnect(25e9, 5e-6),
    # NVLink 3 (A100 SXM): 12 links x 25 GB/s = 300 GB/s per direction per GPU (600 GB/s
    # bidirectional) nominal; ~2 us per message.
    "nvlink3": Interconnect(300e9, 2e-6),
    # 100 Gb Ethernet: 100 Gbit/s = 12.5 GB/s line rate; ~15 us per message (RoCE / kernel
    # TCP lie between ~5 and ~30 us).
    "ethernet_100g": Interconnect(12.5e9, 15e-6),
}


class Prediction(NamedTuple):
    """Per device count (arrays shaped like `devices`): seconds per step, its compute and
    communication parts, speedup over one device and parallel efficiency (speedup / N)."""

    devices: np.ndarray
    step_s: np.ndarray
    compute_s: np.ndarray
    comm_s: np.ndarray
    speedup: np.ndarray
    efficiency: np.ndarray


def _device_counts(devices: int | np.ndarray | list[int]) -> np.ndarray:
    counts = np.asarray(devices)
    if counts.size == 0 or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 1):
        raise ValueError(f"devices must be integers >= 1, got {devices!r}")
    return counts.astype(np.int64)


def _check_nonnegative(name: str, value: float, allow_inf: bool = False) -> None:
    ok = value >= 0 and (math.isfinite(value) or (allow_inf and value == math.inf))
    if not ok:
        bound = "in [0, inf]" if allow_inf else "finite and >= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def interconnect(link: str | Interconnect | tuple[float, float]) -> Interconnect:
    """A preset by name (a key of INTERCONNECTS) or a (bandwidth bytes/s, latency s) pair,
    validated: bandwidth in (0, inf] (inf: free bandwidth), latency finite and >= 0."""
    if isinstance(link, str):
        if link not in INTERCONNECTS:
            raise ValueError(f"interconnect must be one of {tuple(INTERCONNECTS)}, got {link!r}")
        return INTERCONNECTS[link]
    bandwidth, latency = (float(v) for v in link)
    if not bandwidth > 0:
        raise ValueError(f"bandwidth_bytes_per_s must be in (0, inf], got {bandwidth!r}")
    _check_nonnegative("latency_s", latency)
    return Interconnect(bandwidth, latency)


def ring_allreduce_seconds(
    num_bytes: float,
    devices: int | np.ndarray | list[int],
    bandwidth_bytes_per_s: float,
    latency_s: float,
) -> np.ndarray:
    """Time of a ring all-reduce of `num_bytes` over `devices` (int or array of ints >= 1):

        2 (N - 1) / N * num_bytes / bandwidth_bytes_per_s + 2 (N - 1) * latency_s

    0 for N = 1. Returns float64 seconds shaped like `devices`.
    """
    counts = _device_counts(devices)
    _check_nonnegative("num_bytes", num_bytes)
    link = interconnect((bandwidth_bytes_per_s, latency_s))
    n = counts.astype(np.float64)
    return 2 * (n - 1) / n * num_bytes / link.bandwidth_bytes_per_s + 2 * (n - 1) * link.latency_s


def predict(
    compute_s_single: float,
    param_bytes: float,
    devices: int | np.ndarray | list[int],
    link: str | Interconnect | tuple[float, float],
    mode: str = "strong",
) -> Prediction:
    """Predicted data-parallel step time, speedup and efficiency (see the module docstring).

    Args:
      compute_s_single: seconds of one training step on one device (> 0): at the global batch
        for "strong", at the per-device batch for "weak".
      param_bytes: bytes all-reduced per step (4 * parameters for float32 gradients), >= 0.
      devices: N, an int or an array of ints >= 1.
      link: an INTERCONNECTS name or a (bandwidth bytes/s, latency s) pair.
      mode: "strong" (global batch fixed: compute / N per device) or "weak" (per-device batch
        fixed: compute unchanged, N times the throughput).

    Returns:
      A Prediction with arrays shaped like `devices`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not (compute_s_single > 0 and math.isfinite(compute_s_single)):
        raise ValueError(f"compute_s_single must be finite and > 0, got {compute_s_single!r}")
    counts = _device_counts(devices)
    link = interconnect(link)
    comm = ring_allreduce_seconds(param_bytes, counts, *link)
    n = counts.astype(np.float64)
    compute = compute_s_single / n if mode == "strong" else np.full(n.shape, compute_s_single)
    step = compute + comm
    speedup = compute_s_single / step if mode == "strong" else n * compute_s_single / step
    return Prediction(counts, step, compute, comm, speedup, speedup / n)
