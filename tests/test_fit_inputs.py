"""loop.fit and sweep.fit_grid reject bad inputs with a ValueError naming the argument, before
anything is initialized or compiled (loop.check_inputs)."""

import math

import numpy as np
import pytest

from jaxsched import data, loop, optimizers, sweep, train
from jaxsched.models import MLP, LeNet5, ResNetV1

N = 128


@pytest.fixture(scope="module")
def small(fashion_small):
    train_ds, test_ds = fashion_small
    return (
        data.Dataset(train_ds.images[:N], train_ds.labels[:N]),
        data.Dataset(test_ds.images[:64], test_ds.labels[:64]),
    )


@pytest.fixture
def no_training(monkeypatch):
    """Initializing or building a train step fails the test: the checks must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("initialized or compiled before rejecting the inputs")

    monkeypatch.setattr(train, "init_train_state", forbidden)
    monkeypatch.setattr(train, "make_train_step", forbidden)


def run_fit(train_ds, **kwargs):
    kwargs = {"epochs": 1, "batch_size": 32, "quiet": True, **kwargs}
    return loop.fit(MLP(hidden=(8,)), optimizers.make("sgd", 0.1), train_ds, **kwargs)


def run_grid(train_ds, **kwargs):
    kwargs = {"epochs": 1, "batch_size": 32, **kwargs}
    kwargs.pop("quiet", None)
    return sweep.fit_grid(
        MLP(hidden=(8,)), optimizers.make("sgd", 0.1), train_ds, strategy="sequential", **kwargs
    )


RUNNERS = pytest.mark.parametrize("runner", [run_fit, run_grid], ids=["fit", "fit_grid"])


def with_labels(ds, labels):
    return data.Dataset(ds.images, np.asarray(labels))


@RUNNERS
@pytest.mark.parametrize(
    "images, labels, message",
    [
        (100, N, "train_data: 100 images but 128 labels"),  # used to train silently
        (N, 100, "train_data: 128 images but 100 labels"),  # used to end in IndexError
    ],
)
def test_images_and_labels_of_different_lengths(
    small, no_training, runner, images, labels, message
):
    train_ds, _ = small
    ds = data.Dataset(train_ds.images[:images], np.resize(train_ds.labels, labels))
    with pytest.raises(ValueError, match=message):
        runner(ds)


@RUNNERS
def test_eval_data_of_different_lengths(small, no_training, runner):
    train_ds, test_ds = small
    bad_eval = data.Dataset(test_ds.images, test_ds.labels[:50])
    with pytest.raises(ValueError, match="eval_data: 64 images but 50 labels"):
        runner(train_ds, eval_data=bad_eval)


@RUNNERS
@pytest.mark.parametrize(
    "label, where",
    [(-1, "train_data"), (10, "train_data"), (10, "eval_data")],
    # -1 used to train as class 9 (the loss wraps it); 10 was reported as "diverged"
)
def test_labels_outside_the_models_classes(small, no_training, runner, label, where):
    train_ds, test_ds = small
    datasets = {"train_data": train_ds, "eval_data": test_ds}
    labels = np.array(datasets[where].labels)
    labels[7] = label
    datasets[where] = with_labels(datasets[where], labels)
    message = rf"{where}.labels: label {label} at index 7 is (negative|outside 0..9)"
    with pytest.raises(ValueError, match=message):
        runner(datasets["train_data"], eval_data=datasets["eval_data"])


@RUNNERS
@pytest.mark.parametrize(
    "labels",
    [
        lambda y: y.astype(np.float32),
        lambda y: np.eye(10, dtype=np.int32)[y],  # one-hot
        lambda y: y > 4,
    ],
    ids=["float", "2-D", "bool"],
)
def test_labels_must_be_1d_integers(small, no_training, runner, labels):
    train_ds, _ = small
    with pytest.raises(
        ValueError, match=r"train_data.labels: labels must (be 1-D|have an integer dtype)"
    ):
        runner(with_labels(train_ds, labels(train_ds.labels)))


@RUNNERS
@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"epochs": 2.5}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": N + 1}, "batch_size"),
        ({"batch_size": 32.0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"sync_every": 0}, "sync_every"),
        ({"sync_every": 2.5}, "sync_every"),
        ({"max_loss": math.nan}, "max_loss"),
        ({"max_steps": 0}, "max_steps"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
    ],
)
def test_bad_scalar_arguments_are_named(small, no_training, runner, kwargs, argument):
    train_ds, _ = small
    with pytest.raises(ValueError, match=rf"^{argument} must be"):
        runner(train_ds, **kwargs)


def test_the_class_count_comes_from_the_model(small, no_training):
    train_ds, _ = small
    labels = np.minimum(train_ds.labels, 3)
    labels[0] = 4
    model = MLP(hidden=(8,), num_classes=4)
    with pytest.raises(ValueError, match=r"label 4 at index 0 is outside 0..3 \(4 classes\)"):
        loop.fit(
            model,
            optimizers.make("sgd", 0.1),
            with_labels(train_ds, labels),
            epochs=1,
            batch_size=32,
        )


@pytest.mark.parametrize(
    "model",
    [MLP(hidden=(8,), num_classes=7), LeNet5(num_classes=7), ResNetV1(depth=8, num_classes=7)],
    ids=["MLP", "LeNet5", "ResNet-8"],
)
def test_output_size_of_every_model_kind(small, model):
    train_ds, _ = small
    assert loop._num_outputs(model, train_ds.images[:1]) == 7


def test_valid_inputs_still_train(small):
    train_ds, test_ds = small
    _, history = run_fit(train_ds, eval_data=test_ds, epochs=1)
    assert history.status == "done" and len(history.steps["loss"]) == N // 32
