"""Keras 3 on the TensorFlow backend: the course's models and its `model.fit` calls.

Threads: TensorFlow's defaults (intra- and inter-op 0: TensorFlow sizes both pools to the
machine), recorded in benchmarks.json. `compile(jit_compile=...)`: Keras's default "auto" is
False on a CPU-only machine (no XLA), which is what the course ran; the "keras-xla" variant
passes jit_compile=True.
"""

import math
import os
import time
from typing import Any

import numpy as np

VARIANTS = {"model.fit": False, "model.fit jit_compile=True": True}


def keras():
    """Imports Keras with the TensorFlow backend (set before the import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras as k

    if k.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"Keras was imported with the {k.backend.backend()!r} backend before the benchmark "
            "could select 'tensorflow'"
        )
    return k


def lenet5(num_classes: int = 10, input_shape: tuple[int, ...] = (28, 28, 1)):
    """jaxsched.models.LeNet5 (input BatchNorm, hidden BatchNorm) in Keras: 62,614 params."""
    k = keras()
    layers = k.layers
    return k.Sequential(
        [
            k.Input(input_shape),
            layers.BatchNormalization(),
            layers.Conv2D(6, 5, padding="same", activation="tanh"),
            layers.BatchNormalization(),
            layers.AveragePooling2D(2),
            layers.Conv2D(16, 5, padding="valid", activation="tanh"),
            layers.BatchNormalization(),
            layers.AveragePooling2D(2),
            layers.Conv2D(120, 5, padding="valid", activation="tanh"),
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dense(84, activation="tanh"),
            layers.BatchNormalization(),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def compiled_lenet5(learning_rate: float, jit_compile: bool, seed: int):
    """A fresh LeNet-5 compiled as the course did: SGD, sparse categorical cross-entropy,
    accuracy; `jit_compile` False is what Keras's "auto" gives on a CPU-only machine."""
    k = keras()
    k.utils.set_random_seed(seed)
    model = lenet5()
    model.compile(
        optimizer=k.optimizers.SGD(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def epoch_timer():
    """A callback recording (start, end) perf_counter seconds of every epoch in `.epochs`."""
    k = keras()

    class EpochTimer(k.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: list[tuple[float, float]] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((self._start, time.perf_counter()))

    return EpochTimer()


def fit_epochs(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    epochs: int,
    jit_compile: bool,
    seed: int,
    learning_rate: float = 0.01,
) -> dict[str, Any]:
    """A fresh LeNet-5 `fit(x, y, batch_size, epochs, verbose=0)`; returns its seconds per
    epoch ("epoch_s", the first includes tracing / XLA compilation), "fit_s" (the whole call),
    "params" and "final_loss"."""
    k = keras()
    model = compiled_lenet5(learning_rate, jit_compile, seed)
    timer = epoch_timer()
    start = time.perf_counter()
    hist = model.fit(
        images, labels, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[timer]
    )
    fit_s = time.perf_counter() - start
    out = {
        "epoch_s": [end - begin for begin, end in timer.epochs],
        "fit_s": fit_s,
        "params": int(model.count_params()),
        "final_loss": float(hist.history["loss"][-1]),
        "jit_compile": bool(model.jit_compile),
    }
    del model
    k.backend.clear_session()
    return out


def dead_relu_simulation(config: Any, seed: int) -> dict[str, float]:
    """One simulation of the dead-ReLU study as the course ran it: data drawn for it, a model
    built, compiled (Adam, MSE) and fitted, its test predictions' variance measured.

    config: experiments.configs.dead_relu.Config (widths, points, epochs, batch, rate).
    Returns {"seconds" (data to prediction), "pred_variance"}.
    """
    k = keras()
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    lim = config.x_limit
    x = rng.uniform(-lim, lim, (config.train_points, 1)).astype(np.float32)
    x_test = rng.uniform(-lim, lim, (config.test_points, 1)).astype(np.float32)
    k.utils.set_random_seed(seed)
    model = k.Sequential(
        [k.Input((1,))]
        + [k.layers.Dense(config.width, activation="relu") for _ in range(config.depth)]
        + [k.layers.Dense(1)]
    )
    model.compile(optimizer=k.optimizers.Adam(learning_rate=config.learning_rate), loss="mse")
    model.fit(x, np.abs(x), epochs=config.epochs, batch_size=config.batch_size, verbose=0)
    pred = model.predict(x_test, batch_size=len(x_test), verbose=0)[:, 0]
    seconds = time.perf_counter() - start
    k.backend.clear_session()
    variance = float(np.var(pred))
    return {"seconds": seconds, "pred_variance": variance if math.isfinite(variance) else math.nan}


def depth_width_fit(
    widths: tuple[int, ...],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    patience: int,
    learning_rate: float,
    seed: int,
) -> dict[str, Any]:
    """One net of the depth-vs-width study as the course's loop trained it: the Keras model of
    jaxsched.models.DepthWidthNet (Dense + ReLU, then BatchNormalization before every later
    Dense + ReLU, a linear Dense 1; Keras's Glorot-uniform kernels, zero biases, BatchNorm
    momentum 0.99 and epsilon 1e-3) built, compiled (Nadam, MSE, RMSE metric) and fitted with
    the validation split and EarlyStopping(val RMSE, patience, best weights restored).

    train, test: (inputs float32[N, D], targets float32[N]).
    Returns {"seconds" (build + compile + fit), "params" (Keras's count_params), "epochs" (run),
    "val_rmse" (the last epoch's)}.
    """
    k = keras()
    (x, y), (x_test, y_test) = train, test
    start = time.perf_counter()
    k.utils.set_random_seed(seed)
    layers = [k.Input((x.shape[1],)), k.layers.Dense(widths[0], activation="relu")]
    for width in widths[1:]:
        layers += [k.layers.BatchNormalization(), k.layers.Dense(width, activation="relu")]
    model = k.Sequential([*layers, k.layers.Dense(1)])
    model.compile(
        optimizer=k.optimizers.Nadam(learning_rate=learning_rate),
        loss="mse",
        metrics=[k.metrics.RootMeanSquaredError()],
    )
    stop = k.callbacks.EarlyStopping(
        monitor="val_root_mean_squared_error", patience=patience, restore_best_weights=True
    )
    hist = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_test, y_test),
        callbacks=[stop],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    out = {
        "seconds": seconds,
        "params": int(model.count_params()),
        "epochs": len(hist.history["loss"]),
        "val_rmse": float(hist.history["val_root_mean_squared_error"][-1]),
    }
    del model
    k.backend.clear_session()
    return out


def minigooglenet(width: float = 1.0, num_classes: int = 10, input_shape=(32, 32, 1)):
    """jaxsched.models.MiniGoogLeNet in Keras (the layout of its LAYOUT, Rosebrock's book):
    conv_module = Conv2D (with bias) -> BatchNormalization -> ReLU, inception and downsample
    modules concatenated on the channels, 7x7 average pool, Dropout 0.5, a softmax Dense;
    every filter count K is max(1, round(K * width)). At width 1 and one input channel,
    1,654,522 params (tests/test_minigooglenet.py builds the same network)."""
    from jaxsched.models import minigooglenet as mgn

    k = keras()
    layers = k.layers

    def conv(x, filters, size, stride=1, padding="same"):
        x = layers.Conv2D(mgn.scaled(filters, width), size, strides=stride, padding=padding)(x)
        return layers.Activation("relu")(layers.BatchNormalization()(x))

    inputs = k.Input(input_shape)
    x = conv(inputs, mgn.STEM_FILTERS, 3)
    for kind, filters in mgn.LAYOUT:
        if kind == "inception":
            f1, f3 = filters
            x = layers.concatenate([conv(x, f1, 1), conv(x, f3, 3)])
        else:
            pool = layers.MaxPooling2D(3, strides=2)(x)
            x = layers.concatenate([conv(x, filters[0], 3, 2, "valid"), pool])
    x = layers.AveragePooling2D(mgn.POOL_SIZE)(x)
    x = layers.Flatten()(layers.Dropout(0.5)(x))
    return k.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))


def minigooglenet_steps(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int,
    repetitions: int,
    jit_compile: bool,
    width: float = 1.0,
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    seed: int = 0,
) -> dict[str, Any]:
    """A fresh MiniGoogLeNet compiled as the course compiles (SGD with momentum, sparse
    categorical cross-entropy, accuracy) and trained by one `fit` of 1 + repetitions epochs on
    `steps` copies of the batch (batch_size = len(images), shuffle=False, verbose=0).

    Returns "step_s" (seconds per step of every epoch after the first, fit's per-epoch overhead
    included), "first_s" ([the first epoch's seconds less steps - 1 median steps]: the first
    step, tracing / compilation included),
    "params", "final_loss" and "jit_compile"."""
    k = keras()
    k.utils.set_random_seed(seed)
    model = minigooglenet(width, input_shape=images.shape[1:])
    model.compile(
        optimizer=k.optimizers.SGD(learning_rate=learning_rate, momentum=momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    x = np.concatenate([images] * steps)
    y = np.concatenate([labels] * steps)
    timer = epoch_timer()
    hist = model.fit(
        x,
        y,
        batch_size=len(images),
        epochs=1 + repetitions,
        shuffle=False,
        verbose=0,
        callbacks=[timer],
    )
    epoch_s = [end - begin for begin, end in timer.epochs]
    step_s = [s / steps for s in epoch_s[1:]]
    out = {
        "first_s": [epoch_s[0] - (steps - 1) * float(np.median(step_s))],
        "step_s": step_s,
        "params": int(model.count_params()),
        "final_loss": float(hist.history["loss"][-1]),
        "jit_compile": bool(model.jit_compile),
    }
    del model
    k.backend.clear_session()
    return out
