"""Run in a subprocess with 8 simulated CPU devices by tests/test_parallel.py: prints JSON.

k data-parallel updates of LeNet-5 (BatchNorm, no dropout) on 1, 2, 4 and 8 devices against
the single-device run; per-device BatchNorm; the error for a batch the devices do not divide.
"""

import json
import sys

import jax
import numpy as np

from jaxsched import data, loop, optimizers, parallel
from jaxsched.models import LeNet5
from jaxsched.models.conv import in_batch_slices


def fashion_subset() -> tuple[data.Dataset, data.Dataset]:
    """128 training images and 36 evaluation images (36: padded up per device count)."""
    train = data.load("fashion_mnist", "train")
    ds = data.Dataset(data.to_float(train.images[:128]), train.labels[:128])
    return ds, data.Dataset(ds.images[:36], ds.labels[:36])


def run(**kwargs) -> tuple[np.ndarray, object]:
    """One epoch of LeNet-5 (BatchNorm, no dropout) at batch 32: (flat params + stats, history)."""
    ds, evals = fashion_subset()
    state, history = loop.fit(
        LeNet5(),
        optimizers.make("sgd", 0.05, momentum=0.9),
        ds,
        epochs=1,
        batch_size=32,
        eval_data=evals,
        quiet=True,
        **kwargs,
    )
    leaves = jax.tree.leaves((state.params, state.batch_stats))
    return np.concatenate([np.ravel(np.asarray(x)) for x in leaves]), history


def lenet_params(**kwargs) -> np.ndarray:
    return run(**kwargs)[0]


COLLECTIVES = ("all-to-all", "all-gather", "collective-permute", "all-reduce", "reduce-scatter")


def sliced_convolution() -> dict:
    """A convolution of a batch sharded over 8 devices, computed in 4 interleaved slices: the
    collectives in its compiled program and its difference to the unsliced convolution."""
    mesh = parallel.make_mesh(8)
    x = jax.device_put(
        np.random.default_rng(0).standard_normal((32, 8, 8, 4), np.float32),
        parallel.batch_sharding(mesh),
    )
    kernel = jax.device_put(np.ones((3, 3, 4, 5), np.float32) / 9, parallel.replicated(mesh))

    def conv(images):
        return jax.lax.conv_general_dilated(
            images, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    sliced = jax.jit(lambda images: in_batch_slices(conv, images, 4))
    text = sliced.lower(x).compile().as_text()
    return {
        "collectives": [name for name in COLLECTIVES if name in text],
        "max_abs_diff": float(np.max(np.abs(np.asarray(sliced(x)) - np.asarray(jax.jit(conv)(x))))),
        "output_sharded_like_input": sliced(x).sharding.is_equivalent_to(x.sharding, 4),
    }


def main() -> None:
    ds, _ = fashion_subset()
    reference, ref_history = run()
    out = {"devices": len(jax.devices()), "max_abs_diff": {}, "val_loss_diff": {}}
    for n in (1, 2, 4, 8):
        params, history = run(devices=n)
        out["max_abs_diff"][n] = float(np.max(np.abs(params - reference)))
        out["val_loss_diff"][n] = abs(
            history.epochs["val_loss"][0] - ref_history.epochs["val_loss"][0]
        )
    per_device, _ = run(devices=2, sync_batchnorm=False)
    out["per_device_bn_diff"] = float(np.max(np.abs(per_device - reference)))
    try:
        loop.fit(LeNet5(), optimizers.make("sgd", 0.05), ds, epochs=1, batch_size=30, devices=8)
        out["indivisible_error"] = None
    except ValueError as error:
        out["indivisible_error"] = str(error)
    out["sliced_convolution"] = sliced_convolution()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
