"""One process of the two-process jax.distributed run of tests/test_parallel.py.

    python tests/distributed_check.py COORDINATOR NUM_PROCESSES PROCESS_ID OUT.npy

Every process trains the same LeNet-5 data-parallel over all processes' devices (each gathers
only its rows of every batch); process 0 saves the final parameters and statistics.
"""

import sys

import numpy as np

from jaxsched import parallel


def main() -> None:
    coordinator, num_processes, process_id, out = sys.argv[1:]
    parallel.initialize(coordinator, int(num_processes), int(process_id))

    import jax  # noqa: PLC0415 (after initialize)
    from parallel_check import lenet_params  # noqa: PLC0415 (beside this script)

    params = lenet_params(devices=len(jax.devices()))
    if parallel.is_writer():
        np.save(out, params)


if __name__ == "__main__":
    main()
