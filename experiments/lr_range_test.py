"""LR range test: LeNet-5 on Fashion-MNIST with plain SGD, in two forms.

    python -m experiments.lr_range_test                   # grid: 11 rates x 5 epochs (seeds)
    python -m experiments.lr_range_test --method sweep    # one run, lr growing per update
    python -m experiments.lr_range_test --smoke           # seconds

grid: trains a fresh model (same initialization) at each learning rate, plots the final training
loss and accuracy against log10(lr). sweep (Smith 2017, fastai's lr_find): one run whose rate
grows exponentially from --sweep-start to --sweep-end, stopped when the smoothed loss exceeds 4x
its best. Both pick lr_min / lr_max with the rules documented in `jaxsched.range_test`, and
write <out>/results.json (atomically, after every run: an interrupted grid resumes where it
stopped) and PNG figures.
"""

import argparse
from pathlib import Path
from typing import Any

from experiments import _lr_range, common
from experiments.configs.lr_range_test import DEFAULT, GRID_STRATEGIES, METHODS, SMOKE

# The test itself is shared runner code: the LeNet-5 experiments run its sweep for their bounds.
NAME = _lr_range.NAME
run = _lr_range.run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, help="grid (default) or sweep")
    parser.add_argument("--epochs", type=int, help="grid: epochs per learning rate")
    parser.add_argument("--lrs", type=float, nargs="+", help="grid: learning rates to try")
    parser.add_argument(
        "--grid-strategy",
        choices=GRID_STRATEGIES,
        help="grid: fit_grid 'auto' (default), 'vmap', 'map', 'sequential', or 'loop' "
        "(loop.fit per rate)",
    )
    parser.add_argument(
        "--grid-chunk",
        type=int,
        help="grid: rates per fit_grid call, each chunk saved on finishing",
    )
    parser.add_argument("--batch-size", type=int, help="examples per update")
    parser.add_argument("--sweep-start", type=float, help="sweep: first learning rate")
    parser.add_argument("--sweep-end", type=float, help="sweep: last learning rate")
    parser.add_argument("--sweep-steps", type=int, help="sweep: updates from start to end")


def report(doc: dict[str, Any], workdir: Path) -> None:
    s = doc["summary"]
    print(f"\nlr_min = {s['lr_min']}  lr_max = {s['lr_max']}")
    print(f"rule: {s.get('rule', s.get('error'))}")
    if "diverged" in s:  # the grid's summary
        print(
            f"diverged: {s['diverged']}; mean time per epoch "
            f"{common.fmt(s['mean_epoch_time_s'], '.1f')} s"
        )
    else:
        print(f"{s['updates']} updates ({s['status']}), {s['wall_time_s']:.1f} s")
    print(f"wrote {workdir}/results.json and figures")


def main(argv: list[str] | None = None) -> int:
    return common.main(
        argv,
        name=NAME,
        doc=__doc__,
        run=run,
        default=DEFAULT,
        smoke=SMOKE,
        add_arguments=add_arguments,
        report=report,
        renames={"learning_rates": "lrs"},
        default_out=lambda config: f"runs/{NAME}" + ("_sweep" if config.method == "sweep" else ""),
    )


if __name__ == "__main__":
    common.exit_with(main())
