"""Batch-size sweep: LeNet-5 on Fashion-MNIST at a fixed learning rate, one batch size at a time.

    python -m experiments.batch_size_sweep            # 16, 32, ..., 8192; 5 epochs each
    python -m experiments.batch_size_sweep --smoke    # seconds

The rate is lr_min from an LR range test (or --lr). Batches above --max-device-batch are
accumulated over micro-batches (optax.MultiSteps). Plots final training loss and accuracy
against log2(batch size) and detects b_min / b_max with `jaxsched.range_test
.suggest_batch_bounds`. Writes <out>/results.json (after every batch size: resumable) and
<out>/batch_size_sweep.png.
"""

import argparse
from pathlib import Path
from typing import Any

from experiments import _batch, _lr_range, common
from experiments.configs.batch_size import SWEEP, SWEEP_PROTOCOLS, SWEEP_SMOKE

# The sweep itself is shared runner code: cyclic_batch_size runs it for its b_min / b_max.
NAME = _batch.SWEEP_NAME
run = _batch.run_sweep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="batch sizes to try")
    parser.add_argument("--epochs", type=int, help="epochs per batch size")
    parser.add_argument("--lr", type=float, help="fixed learning rate (default: lr_min)")
    _lr_range.add_bounds_arguments(parser)
    parser.add_argument("--max-device-batch", type=int, help="accumulate above this size")
    parser.add_argument(
        "--bound-rule",
        choices=("plateau", "relative_drop"),
        help="how b_min / b_max are read (default plateau; the notebooks': relative_drop)",
    )
    parser.add_argument("--tolerance", type=float, help="the plateau rule's absolute band")
    parser.add_argument("--relative-drop", type=float, help="relative_drop's band (0.035)")


def report(doc: dict[str, Any], workdir: Path) -> None:
    s = doc["summary"]
    print(f"\nb_min = {s['b_min']}  b_max = {s['b_max']}  (lr {s['learning_rate']:.3g})")
    if not s.get("bracketed", True):
        print(f"note: {s['message']}")
    print(f"wrote {workdir}/results.json and {workdir}/{NAME}.png")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=SWEEP,
        smoke=SWEEP_SMOKE,
        add_arguments=add_arguments,
        report=report,
        protocols=SWEEP_PROTOCOLS,
    )


if __name__ == "__main__":
    common.exit_with(main())
