"""Host memory for XLA's CPU buffers: what the C library's allocator costs a train step.

XLA's CPU runtime allocates every execution's temporary buffer (all of a train step's
intermediate activations: 129 MB for LeNet-5 at batch 512, ~1.3 GB for ResNet-44 with 4 cutout
copies of 64 images) with `posix_memalign` on one of its worker threads. glibc serves a request
that large from a fresh `mmap` (a worker thread's malloc arena cannot hold more than 64 MB) and
unmaps it when the step ends, so every step first-touches its buffer's pages again: 31,500 page
faults per LeNet-5 update at batch 512 and 326,000 per ResNet-44 update with M = 4, a fifth to
a third of the step (`benchmarks/host_memory.py`). A `lax.scan` over many updates pays it once
per call, a step dispatched per batch (models with XLA convolutions, `accumulate`, meshes) on
every update.

The remedy is glibc's tunable `glibc.malloc.hugetlb=1` (glibc 2.35 or later): it asks the
kernel for transparent huge pages (2 MiB) for the memory malloc maps, so a step faults ~100x
less and memory use is unchanged. glibc reads tunables only when a process starts, so it is set
in the environment that launches Python:

    export GLIBC_TUNABLES=glibc.malloc.hugetlb=1
    python -m experiments.batch_augmentation ...

Measured and rejected (same benchmark): keeping freed memory in one heap instead
(`mallopt` M_ARENA_MAX = 1, M_MMAP_MAX = 0, no trimming: settable at run time) also removed
most faults, but glibc 2.36's aligned allocations do not reuse an exactly-sized freed block, and
ResNet-44's peak resident memory grew from 2.4 to 6.0 GiB (7.2 in a first run).

`status()` says which applies to this process; results and benchmark files record it.
"""

import os
import platform

TUNABLE = "glibc.malloc.hugetlb"
RECOMMENDED = f"{TUNABLE}=1"  # the GLIBC_TUNABLES entry this module recommends


def glibc_version() -> tuple[int, int] | None:
    """(major, minor) of the C library when it is glibc, else None."""
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return None
    try:
        major, minor = version.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def tunables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The glibc tunables set in GLIBC_TUNABLES ("name=value:name=value"), as a dict.

    Examples:
      >>> from jaxsched import host_memory
      >>> host_memory.tunables({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1:glibc.pthread.x=2"})
      {'glibc.malloc.hugetlb': '1', 'glibc.pthread.x': '2'}
      >>> host_memory.tunables({})
      {}
    """
    text = (os.environ if environ is None else environ).get("GLIBC_TUNABLES", "")
    pairs = (item.split("=", 1) for item in text.split(":") if "=" in item)
    return {name.strip(): value.strip() for name, value in pairs}


def status(environ: dict[str, str] | None = None) -> str:
    """Returns "huge pages" when this process's malloc maps large buffers with transparent
    huge pages (GLIBC_TUNABLES has glibc.malloc.hugetlb=1 or 2, glibc 2.35 or later), else
    "default".

    Examples:
      >>> from jaxsched import host_memory
      >>> env = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
      >>> host_memory.status(env) in ("huge pages", "default")  # "default" on glibc < 2.35
      True
      >>> host_memory.status({})
      'default'
    """
    version = glibc_version()
    if version is None or version < (2, 35):
        return "default"
    return "huge pages" if tunables(environ).get(TUNABLE) in ("1", "2") else "default"
