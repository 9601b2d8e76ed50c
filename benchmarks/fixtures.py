"""What several benchmarks share: the real Fashion-MNIST training split and jaxsched's LeNet-5
trained by `loop.fit`, the library's own path."""

import functools
from typing import Any

import numpy as np

from jaxsched import batching, data, loop, optimizers
from jaxsched.models import LeNet5

SMOKE_EXAMPLES = 1024
KERAS_SGD_RATE = 0.01  # Keras's SGD default, the course's rate


@functools.lru_cache(maxsize=2)
def fashion_mnist(smoke: bool) -> data.Dataset:
    """The Fashion-MNIST training split as float32 [N, 28, 28, 1] in [0, 1] and int32 labels:
    all 60,000 images, or the first SMOKE_EXAMPLES with `smoke`."""
    train = data.load("fashion_mnist", "train")
    n = SMOKE_EXAMPLES if smoke else len(train.labels)
    return data.Dataset(data.to_float(train.images[:n]), train.labels[:n].astype(np.int32))


def lenet_fit(
    train: data.Dataset,
    batch_size: batching.BatchSize,
    *,
    epochs: int,
    seed: int,
    learning_rate: float = KERAS_SGD_RATE,
    conv_impl: str = "auto",
    **fit_options: Any,
) -> dict[str, Any]:
    """A fresh LeNet-5 (convolutions lowered by `conv_impl`, jaxsched.models.conv) trained by
    `loop.fit` with Keras's SGD at `learning_rate`; returns
    "epoch_s" (train seconds per epoch, the first includes compiling), "compile_s", "params",
    "final_loss", "images_per_epoch" and the "history"."""
    from jaxsched.models import count_params

    tx = optimizers.make("sgd", learning_rate, preset="keras")
    state, history = loop.fit(
        LeNet5(conv_impl=conv_impl),
        tx,
        train,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        quiet=True,
        **fit_options,
    )
    return {
        "epoch_s": list(history.epochs["train_time_s"]),
        "compile_s": history.compile_time_s,
        "params": count_params(state.params) + count_params(state.batch_stats),
        "final_loss": history.final("train_loss"),
        # images trained in the first epoch (the loop drops each epoch's partial last batch)
        "images_per_epoch": sum(history.steps["batch_size"][: history.epochs["updates"][0]])
        if history.epochs["updates"]
        else None,
        "history": history,
    }
