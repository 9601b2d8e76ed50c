"""LeNet-5 on the real Fashion-MNIST training split, plain SGD (lr 0.01), one epoch at batch 64,
512 and 4096 (64 and 512 at the smoke size): seconds per warm epoch, first-epoch seconds
(compilation included), images/s.

    python -m benchmarks.lenet_epoch [--smoke] [--peers jaxsched keras torch]

The XLA-conv variant (`lax.conv` inside the scan, the reason `train.scan_pays` dispatches such
steps per batch) runs at batch 64 only: it took 168 s per epoch at 4096 (2026-12-07).

Every repetition builds a fresh model and trains it two epochs: the first epoch is the cold
measurement (tracing and compilation included), the second the warm one. Before the timed
repetitions each peer trains one untimed epoch on 4 batches (the process-level warm-up); the
repetitions are interleaved across peers (repetition 1 of every peer, then 2, ...), so that a
slow moment of the machine falls on all of them. Each peer (and variant) runs in a process of
its own, kept for the whole run (`common.WorkerProcess`): in one shared process jaxsched's
epoch at batch 512 measured 5.0-5.1 s alone and 5.3-5.7 s after Keras and torch.compile had
run there (2026-12-08).
Peers: jaxsched `loop.fit` (drops each epoch's last partial batch); Keras `model.fit` as the
course wrote it and with `jit_compile=True` (Keras trains the last partial batch too); the
plain PyTorch loop, eager and under `torch.compile` (drops the partial batch). images/s counts
the images each peer actually trained on.
"""

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import common, fixtures
from benchmarks.peers import keras_tf, pytorch
from jaxsched import data

NAME = "lenet_epoch"
BATCH_SIZES = (64, 512, 4096)
SMOKE_BATCH_SIZES = (64, 512)  # the smoke split has 1,024 images
WARM, COLD, COMPILE = "epoch (warm)", "first epoch (compile incl.)", "compile"
BASELINE = "loop.fit"
XLA_SCANNED = "loop.fit, XLA conv, scanned"

# fit(images, labels, batch_size, epochs, seed) -> {"epoch_s": [...], "params", ...}
FitFn = Callable[[Any, Any, int, int, int], dict[str, Any]]


def _jaxsched_fit(conv_impl: str, **fit_options: Any) -> FitFn:
    def fit(images, labels, batch_size, epochs, seed):
        out = fixtures.lenet_fit(
            data.Dataset(images, labels),
            batch_size,
            epochs=epochs,
            seed=seed,
            conv_impl=conv_impl,
            **fit_options,
        )
        del out["history"]
        return out

    return fit


def _keras_fit(jit_compile: bool) -> FitFn:
    def fit(images, labels, batch_size, epochs, seed):
        out = keras_tf.fit_epochs(
            images, labels, batch_size, epochs=epochs, jit_compile=jit_compile, seed=seed
        )
        return {**out, "images_per_epoch": len(labels)}

    return fit


def _torch_fit(compile: bool) -> FitFn:
    def fit(images, labels, batch_size, epochs, seed):
        return pytorch.fit_epochs(
            images, labels, batch_size, epochs=epochs, compile=compile, seed=seed
        )

    return fit


def warm_up(fit: FitFn, train: data.Dataset, batch_size: int) -> None:
    """The process-level warm-up: one untimed epoch on 4 batches."""
    warm_n = min(len(train.labels), 4 * batch_size)
    fit(train.images[:warm_n], train.labels[:warm_n], batch_size, 1, 0)


def fit_for(peer: str, variant: str) -> FitFn:
    """The fit function of `peer`'s `variant`."""
    if peer == "jaxsched":
        if variant == XLA_SCANNED:
            return _jaxsched_fit("xla", scan_chunks=True)
        return _jaxsched_fit("auto")
    if peer == "keras":
        return _keras_fit(keras_tf.VARIANTS[variant])
    return _torch_fit(pytorch.VARIANTS[variant])


def in_worker(
    peer: str, variant: str, smoke: bool, batch_size: int, epochs: int | None, seed: int
) -> dict[str, Any] | None:
    """Runs in the peer's worker process: the warm-up (epochs None), else one repetition's
    `fit(images, labels, batch_size, epochs, seed)` on the training split."""
    fit = fit_for(peer, variant)
    train = fixtures.fashion_mnist(smoke)
    if epochs is None:
        warm_up(fit, train, batch_size)
        return None
    return fit(train.images, train.labels, batch_size, epochs, seed)


def rows_for(
    peer: str, variant: str, case: str, outs: Sequence[dict[str, Any]], note: str
) -> list[dict[str, Any]]:
    """The warm-epoch, first-epoch (and for jaxsched compile) rows of one peer's outputs."""
    base = (peer, variant) == ("jaxsched", BASELINE)
    images = outs[0]["images_per_epoch"]
    extra = {
        "params": outs[0]["params"],
        "final_loss": [o["final_loss"] for o in outs],
        "images_per_epoch": images,
        **{
            k: outs[0][k]
            for k in ("jit_compile", "num_threads", "num_interop_threads")
            if k in outs[0]
        },
    }
    cold = [o["epoch_s"][0] for o in outs]
    warm = [o["epoch_s"][1] for o in outs]
    overhead = f"; first - warm = {common.format_value(_median(cold) - _median(warm), 's')}"
    rows = [
        common.row(
            NAME,
            case,
            peer,
            variant,
            WARM,
            warm,
            items=images,
            baseline=base,
            note=note,
            extra=extra,
        ),
        common.row(
            NAME,
            case,
            peer,
            variant,
            COLD,
            cold,
            baseline=base,
            note=note + ("" if base else overhead),
            extra=extra,
        ),
    ]
    if "compile_s" in outs[0]:
        rows.append(
            common.row(
                NAME,
                case,
                peer,
                variant,
                COMPILE,
                [o["compile_s"] for o in outs],
                baseline=base,
                note="CompiledStep.compile_time_s (train step)",
            )
        )
    return rows


def _median(values: Sequence[float]) -> float:
    return common.Stats(tuple(values)).median


def run(smoke: bool, peers: Sequence[str], repetitions: int) -> list[dict[str, Any]]:
    """All peers at every batch size; see the module docstring."""
    common.check_repetitions(repetitions)
    peer_notes: list[tuple[str, str, str]] = [
        (
            "jaxsched",
            BASELINE,
            "loop.fit(LeNet5(), sgd 0.01); conv_impl auto (banded matmuls on CPU)",
        ),
        (
            "jaxsched",
            XLA_SCANNED,
            "loop.fit(LeNet5(conv_impl='xla'), sgd 0.01, scan_chunks=True): lax.conv inside "
            "the scan; scan_chunks='auto' dispatches per batch instead for such steps on CPU",
        ),
    ]
    peer_notes += [
        (
            "keras",
            variant,
            f"compile(SGD(0.01), jit_compile={jit}); fit(x, y, batch_size, epochs=2, verbose=0); "
            "TF threads default",
        )
        for variant, jit in keras_tf.VARIANTS.items()
    ]
    peer_notes += [
        (
            "torch",
            variant,
            ("torch.compile(model), Inductor, caches off; " if comp else "")
            + "plain loop, SGD 0.01, set_num_threads(cpu_count)",
        )
        for variant, comp in pytorch.VARIANTS.items()
    ]
    workers: dict[tuple[str, str], common.WorkerProcess] = {}
    rows = []
    try:
        for batch_size in SMOKE_BATCH_SIZES if smoke else BATCH_SIZES:
            chosen = [
                entry
                for entry in peer_notes
                if entry[0] in peers and (entry[1] != XLA_SCANNED or batch_size == BATCH_SIZES[0])
            ]  # XLA conv scanned: one batch size shows this slow path (at CI's -O0 it takes 20x)
            rows += _interleaved_rows(chosen, smoke, batch_size, repetitions, peers, workers)
    finally:
        for worker in workers.values():
            worker.close()
    return rows


def _interleaved_rows(chosen, smoke, batch_size, repetitions, peers, workers):
    """Warms every chosen peer up, then runs repetition r of every peer before repetition r + 1
    of any (a slow moment of the machine falls on all peers alike), each peer in its worker
    process (`workers`, made when first needed); a peer that is not installed or fails gets a
    'skipped' row (common.peer_rows) and leaves the rotation."""
    case, rows, outs = f"batch {batch_size}", [], {}

    def call(peer, variant, epochs, seed):
        worker = workers.setdefault((peer, variant), common.WorkerProcess())
        return worker.call(in_worker, peer, variant, smoke, batch_size, epochs, seed)

    for peer, variant, _ in chosen:
        warm = functools.partial(call, peer, variant, None, 0)
        failed = common.peer_rows(NAME, peer, variant, peers, lambda w=warm: w() or [], case=case)
        rows += failed
        if not failed:
            outs[(peer, variant)] = []
    for r in range(repetitions):
        for peer, variant, _ in chosen:
            if (peer, variant) not in outs:
                continue
            once = functools.partial(call, peer, variant, 2, r)
            got = common.peer_rows(NAME, peer, variant, peers, lambda o=once: [o()], case=case)
            if "epoch_s" in got[0]:
                outs[(peer, variant)] += got
                if common.PROGRESS:  # each repetition as it completes; rows follow the last
                    epochs = ", ".join(common.format_value(e, "s") for e in got[0]["epoch_s"])
                    print(f"  {NAME} | {case} | {peer} {variant} | repetition {r + 1}: "
                          f"epochs {epochs}", flush=True)  # fmt: skip
            else:
                rows += got
                del outs[(peer, variant)]
    for peer, variant, note in chosen:
        if (peer, variant) in outs:
            rows += rows_for(peer, variant, case, outs[(peer, variant)], note)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return common.main_for(NAME, run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
