"""`python -m benchmarks`: every benchmark (or `--only` some) in one process, one output."""

import importlib
import sys
from collections.abc import Sequence

from benchmarks import common

NAMES = (
    "lenet_epoch",
    "batch_throughput",
    "lr_grid",
    "lr_grid_notebook",
    "dead_relu",
    "depth_width",
    "batch_cycling",
    "resnet_step",
    "minigooglenet_step",
    "conv_block",
    "conv_lowering",
    "host_memory",
    "roofline",
    "loop_design",
    "rerun_compile",
)


def parse_args(argv: Sequence[str] | None):
    import benchmarks

    parser = common.parser("python -m benchmarks", benchmarks.__doc__, common.DEFAULT_OUT)
    parser.add_argument(
        "--only", nargs="+", choices=NAMES, metavar="NAME", help=f"a subset of {NAMES}"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in NAMES if n in (args.only or NAMES)]
    runs = {n: importlib.import_module(f"benchmarks.{n}").run for n in names}
    doc, ok = common.run_and_write(
        runs, smoke=args.smoke, peers=args.peers, repetitions=args.repetitions, out_dir=args.out
    )
    print(common.markdown_table(doc["rows"]))
    print(f"wrote {args.out}/benchmarks.json and {args.out}/benchmarks.md")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
