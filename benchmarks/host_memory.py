"""Train steps under glibc's default allocator, with huge pages, and with one reusing heap.

    python -m benchmarks.host_memory [--smoke]

The hypothesis (`jaxsched.host_memory`): XLA's CPU runtime allocates each execution's temporary
buffer afresh, and glibc maps a buffer above 64 MB anew on every call (a worker thread's arena
cannot hold it), so a step dispatched per batch first-touches all its activations' pages every
update; a `lax.scan` chunk of updates pays it once per chunk. Settings, each in its own Python
process (`--child`: glibc reads them at start-up): "default"; "huge pages",
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (transparent huge pages for what malloc maps); "one heap",
`mallopt` at start-up (one arena, no mmap, no trimming: freed memory kept and reused; the
rejected alternative, measured for its peak memory). Per setting: the median time per update
over the repetitions, page faults per update, the process's peak resident memory. Workloads:
LeNet-5 (SGD, real Fashion-MNIST) dispatched per batch and as one `lax.scan` chunk; ResNet-44
with M cutout copies (Adam, random images), dispatched as `loop.fit` runs it (XLA
convolutions); with the torch peer, PyTorch's eager LeNet-5 step (same C library).
"""

import ctypes
import dataclasses
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import common
from jaxsched import host_memory

NAME = "host_memory"
SETTINGS = ("default", "huge pages", "one heap")  # the first is each case's baseline


@dataclasses.dataclass(frozen=True)
class Size:
    lenet_batch: int
    lenet_updates: int  # per timed call (and the scan chunk's length)
    resnet_depth: int
    resnet_batch: int
    resnet_copies: int
    resnet_cutout: int
    resnet_updates: int
    workloads: tuple[str, ...]  # of WORKLOADS
    settings: tuple[str, ...]  # of SETTINGS


WORKLOADS = ("lenet_dispatched", "lenet_scanned", "resnet_dispatched", "torch_lenet_eager")
FULL = Size(512, 8, 44, 64, 4, 16, 2, WORKLOADS, SETTINGS)
SMOKE = Size(16, 2, 8, 4, 2, 8, 1, ("lenet_dispatched",), SETTINGS[:2])  # CI: two processes


# ------------------------------------------------------------------------------------------------
# The child process: one workload, one setting.


def _lenet(size: Size, smoke: bool, scanned: bool) -> tuple[Callable[[], Any], int]:
    import jax
    import jax.numpy as jnp

    from benchmarks import batch_throughput, fixtures
    from jaxsched import optimizers, train
    from jaxsched.models import LeNet5

    c = size.lenet_updates
    images, labels = batch_throughput._chunk(size.lenet_batch, c, smoke)  # [c, B, ...]
    model, tx = LeNet5(), optimizers.make("sgd", fixtures.KERAS_SGD_RATE, preset="keras")
    step_fn = train.make_train_step(model, tx)
    box = {"state": train.init_train_state(model, tx, jax.random.key(0), images[0][:1])}
    if scanned:
        chunk = train.CompiledStep(train.make_chunk_step(step_fn), donate_state=True)
        valid = jnp.ones((c,), bool)

        def call():
            box["state"], metrics = chunk(box["state"], images, labels, valid)
            return metrics

    else:
        step = train.CompiledStep(step_fn, donate_state=True)

        def call():
            for i in range(c):
                box["state"], metrics = step(box["state"], images[i], labels[i])
            return metrics

    return call, c


def _resnet(size: Size) -> tuple[Callable[[], Any], int]:
    import jax

    from benchmarks import resnet_step

    images, labels = resnet_step.cifar_like(size.resnet_batch)
    images, labels = jax.device_put(images), jax.device_put(labels)
    step, state = resnet_step.make_step(
        size.resnet_depth, size.resnet_copies, size.resnet_cutout, images
    )
    box = {"state": state}

    def call():
        for _ in range(size.resnet_updates):
            box["state"], metrics = step(box["state"], images, labels)
        return metrics

    return call, size.resnet_updates


def _torch_lenet(size: Size, smoke: bool) -> tuple[Callable[[], Any], int]:
    import numpy as np

    from benchmarks import fixtures
    from benchmarks.peers import pytorch

    t = pytorch.torch()
    ds = fixtures.fashion_mnist(smoke)
    b = size.lenet_batch
    x = t.from_numpy(np.ascontiguousarray(ds.images[:b].transpose(0, 3, 1, 2), np.float32))
    y = t.from_numpy(ds.labels[:b].astype(np.int64))
    model = pytorch.lenet5()
    model.train()
    opt = t.optim.SGD(model.parameters(), lr=fixtures.KERAS_SGD_RATE)

    def call():
        for _ in range(size.lenet_updates):
            opt.zero_grad(set_to_none=True)
            loss = t.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return loss.detach()

    return call, size.lenet_updates


def _one_heap() -> bool:
    """glibc: one malloc arena, no mmap, no trimming (before JAX starts its threads)."""
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    m_arena_max, m_mmap_max, m_trim_threshold = -8, -4, -1  # malloc.h
    return all(
        mallopt(p, v) == 1 for p, v in ((m_arena_max, 1), (m_mmap_max, 0), (m_trim_threshold, -1))
    )


def child(workload: str, smoke: bool, repetitions: int, one_heap: bool) -> dict[str, Any]:
    """Runs one workload in this (fresh) process under the environment's allocator settings,
    plus `_one_heap` when asked."""
    if one_heap and not _one_heap():
        raise RuntimeError("mallopt refused the one-heap settings")
    size = SMOKE if smoke else FULL
    if workload == "lenet_dispatched":
        call, updates = _lenet(size, smoke, scanned=False)
    elif workload == "lenet_scanned":
        call, updates = _lenet(size, smoke, scanned=True)
    elif workload == "resnet_dispatched":
        call, updates = _resnet(size)
    elif workload == "torch_lenet_eager":
        call, updates = _torch_lenet(size, smoke)
    else:
        raise ValueError(f"workload must be one of {WORKLOADS}, got {workload!r}")
    common.block(call())  # compile / warm
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    stats = common.repeat(call, repetitions, warmup=1)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {
        "setting": "one heap" if one_heap else host_memory.status(),
        "seconds_per_update": [v / updates for v in stats.values],
        "faults_per_update": faults / ((repetitions + 1) * updates),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ------------------------------------------------------------------------------------------------
# The parent: every workload under each setting, each in a fresh process.


_DESCRIPTION = {
    "default": "glibc defaults",
    "huge pages": f"GLIBC_TUNABLES={host_memory.RECOMMENDED}",
    "one heap": "mallopt: one arena, no mmap, no trim",
}


def _environ(setting: str) -> dict[str, str]:
    """This process's environment with GLIBC_TUNABLES set for `setting`."""
    tunables = host_memory.tunables()
    tunables.pop(host_memory.TUNABLE, None)
    if setting == "huge pages":
        tunables[host_memory.TUNABLE] = "1"
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables:
        env["GLIBC_TUNABLES"] = ":".join(f"{k}={v}" for k, v in tunables.items())
    return env


def _spawn(workload: str, setting: str, smoke: bool, repetitions: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.host_memory", "--child", workload]
    argv += ["--repetitions", str(repetitions)] + (["--smoke"] if smoke else [])
    argv += ["--one-heap"] if setting == "one heap" else []
    out = subprocess.run(argv, env=_environ(setting), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{workload} ({setting}) exited {out.returncode}: {out.stderr[-500:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["setting"] != setting:
        raise RuntimeError(
            f"{workload}: asked for {setting!r}, the child ran {result['setting']!r}"
        )
    return result


def _cases(size: Size) -> list[tuple[str, str, str]]:
    lenet = f"LeNet-5, batch {size.lenet_batch}"
    resnet = f"ResNet-{size.resnet_depth}, B={size.resnet_batch}, M={size.resnet_copies}"
    return [  # (workload, peer, case): each case's baseline is its "default" row
        ("lenet_dispatched", "jaxsched", f"{lenet}, step dispatched per batch"),
        ("lenet_scanned", "jaxsched", f"{lenet}, lax.scan chunk of {size.lenet_updates}"),
        ("resnet_dispatched", "jaxsched", f"{resnet}, step dispatched per batch"),
        ("torch_lenet_eager", "torch", f"{lenet}, PyTorch eager step"),
    ]


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    common.check_repetitions(repetitions)
    size = SMOKE if smoke else FULL
    rows = []
    for workload, peer, case in _cases(size):
        if peer not in peers or workload not in size.workloads:
            continue
        if (reason := common.unavailable(peer)) is not None:
            rows.append(common.skipped(NAME, peer, "eager step", reason, case=case))
            continue
        items = size.lenet_batch if "lenet" in workload else size.resnet_batch * size.resnet_copies
        for setting in size.settings:
            if setting != "default" and host_memory.glibc_version() is None:
                rows.append(common.skipped(NAME, peer, setting, "glibc only", case=case))
                continue
            if setting == "huge pages" and host_memory.glibc_version() < (2, 35):
                rows.append(common.skipped(NAME, peer, setting, "needs glibc 2.35+", case=case))
                continue
            result = _spawn(workload, setting, smoke, repetitions)
            rows.append(
                common.row(
                    NAME,
                    case,
                    peer,
                    setting,
                    "update",
                    result["seconds_per_update"],
                    items=items,
                    baseline=setting == SETTINGS[0],
                    note=f"{result['faults_per_update']:,.0f} page faults per update, peak "
                    f"resident {result['peak_rss_mib']:,.0f} MiB; own process "
                    f"({_DESCRIPTION[setting]})",
                    extra={k: result[k] for k in ("faults_per_update", "peak_rss_mib")},
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--child" in argv:  # internal: one workload in this process, JSON on stdout
        import argparse

        child_parser = argparse.ArgumentParser(prog="python -m benchmarks.host_memory --child")
        child_parser.add_argument("--child", required=True, choices=WORKLOADS)
        child_parser.add_argument("--repetitions", type=common._positive_int, default=3)
        child_parser.add_argument("--smoke", action="store_true")
        child_parser.add_argument("--one-heap", action="store_true")
        args = child_parser.parse_args(argv)
        print(json.dumps(child(args.child, args.smoke, args.repetitions, args.one_heap)))
        return 0
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
