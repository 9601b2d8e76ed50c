"""jaxsched.losses objectives: classification (the default, bit-identical to cross_entropy /
accuracy) and MSE regression, trained end to end through loop.fit and sweep.fit_grid."""

import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsched import data, loop, losses, optimizers, results, sweep, train
from jaxsched.models import MLP
from jaxsched.results import DONE, History

TOL = dict(rtol=1e-5, atol=1e-6)
N = 256


def abs_data(n: int, seed: int) -> data.Dataset:
    """x ~ U(-1, 1) float32[n, 1], y = |x| float32[n] (the dead-ReLU regression)."""
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 1)).astype(np.float32)
    return data.Dataset(x, np.abs(x[:, 0]))


def regressor(outputs: int = 1) -> MLP:
    return MLP(hidden=(16, 16), num_classes=outputs)


@pytest.fixture(scope="module")
def mse_run():
    train_ds, eval_ds = abs_data(N, 0), abs_data(64, 1)
    state, history = loop.fit(
        regressor(),
        optax.adam(1e-2),
        train_ds,
        epochs=12,
        batch_size=32,
        seed=0,
        eval_data=eval_ds,
        loss="mse",
        quiet=True,
    )
    return state, history, eval_ds


def test_mse_per_example_matches_numpy():
    rng = np.random.default_rng(0)
    outputs, targets = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    expected = np.mean((outputs - targets) ** 2, axis=1)
    got = losses.MSE.per_example(jnp.asarray(outputs, jnp.float32), jnp.asarray(targets))
    assert got.shape == (5,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # targets [B] go with a 1-output model's outputs [B, 1]
    got = losses.MSE.per_example(jnp.asarray(outputs[:, :1]), jnp.asarray(targets[:, 0]))
    np.testing.assert_allclose(got, (outputs[:, 0] - targets[:, 0]) ** 2, rtol=1e-6)
    sums = losses.masked_sums(
        jnp.asarray(outputs[:, :1]), jnp.asarray(targets[:, 0]), jnp.arange(5) < 3, losses.MSE
    )
    np.testing.assert_allclose(sums["loss_sum"], np.sum((outputs[:3, 0] - targets[:3, 0]) ** 2))
    assert math.isnan(float(sums["correct"])) and float(sums["count"]) == 3


def test_classification_is_bit_identical_to_cross_entropy_and_accuracy():
    k1, k2 = jax.random.split(jax.random.key(0))
    logits = jax.random.normal(k1, (33, 10))
    labels = jax.random.randint(k2, (33,), 0, 10)
    mask = jnp.arange(33) < 30
    obj = losses.objective("classification")
    assert obj is losses.CLASSIFICATION and obj.integer_targets
    np.testing.assert_array_equal(
        obj.per_example(logits, labels).mean(), losses.cross_entropy(logits, labels)
    )
    np.testing.assert_array_equal(
        losses.batch_accuracy(obj, logits, labels), losses.accuracy(logits, labels)
    )
    np.testing.assert_array_equal(
        jnp.mean(obj.correct(logits, labels)), losses.accuracy(logits, labels)
    )
    chex.assert_trees_all_equal(
        losses.masked_sums(logits, labels, mask, obj), losses.masked_sums(logits, labels, mask)
    )


def test_train_and_eval_steps_default_to_classification():
    model, tx = MLP(hidden=(8,)), optax.sgd(0.1)
    x = jax.random.normal(jax.random.key(1), (16, 4))
    y = jnp.arange(16) % 10
    state = train.init_train_state(model, tx, jax.random.key(0), x[:1])
    default = jax.jit(train.make_train_step(model, tx))(state, x, y)
    named = jax.jit(train.make_train_step(model, tx, loss=losses.CLASSIFICATION))(state, x, y)
    chex.assert_trees_all_equal(default[1], named[1])
    logits = model.apply({"params": state.params}, x, train=False)
    sums = train.make_eval_step(model)(state, x, y, jnp.ones(16, bool))
    chex.assert_trees_all_equal(sums, losses.masked_sums(logits, y, jnp.ones(16, bool)))


def test_mse_steps_report_nan_accuracy():
    model, tx = regressor(2), optax.sgd(0.1)
    x = jax.random.normal(jax.random.key(1), (8, 3))
    y = jax.random.normal(jax.random.key(2), (8, 2))
    state = train.init_train_state(model, tx, jax.random.key(0), x[:1])
    _, metrics = jax.jit(train.make_train_step(model, tx, loss="mse"))(state, x, y)
    assert set(metrics) == {"loss", "accuracy", "learning_rate"}
    assert metrics["accuracy"].dtype == jnp.float32 and jnp.isnan(metrics["accuracy"])
    outputs = model.apply({"params": state.params}, x, train=False)
    np.testing.assert_allclose(metrics["loss"], np.mean((outputs - y) ** 2), rtol=1e-6)
    sums = train.make_eval_step(model, "mse")(state, x, y, jnp.ones(8, bool))
    assert set(sums) == {"loss_sum", "correct", "count"} and jnp.isnan(sums["correct"])


def test_fit_mse_end_to_end(mse_run):
    state, history, eval_ds = mse_run
    assert history.status == DONE and history.diverged_at_step is None
    first, last = np.mean(history.steps["loss"][:4]), history.epochs["train_loss"][-1]
    assert last < first / 20, (first, last)
    assert all(math.isnan(a) for a in history.steps["accuracy"])
    assert all(math.isnan(a) for a in history.epochs["train_accuracy"])
    assert all(math.isnan(a) for a in history.epochs["val_accuracy"])
    predictions = np.asarray(
        regressor().apply({"params": state.params}, eval_ds.images, train=False)
    )
    expected = np.mean((predictions[:, 0].astype(np.float64) - eval_ds.labels) ** 2)
    np.testing.assert_allclose(history.epochs["val_loss"][-1], expected, rtol=1e-5)
    # NaN accuracies are null in results files and come back as NaN
    document = json.loads(json.dumps(results.to_jsonable(history.to_dict()), allow_nan=False))
    assert document["epochs"]["val_accuracy"][0] is None
    assert math.isnan(History.from_dict(document).epochs["val_accuracy"][0])


def test_fit_mse_with_vector_targets_and_dispatched_steps():
    x = np.random.default_rng(0).uniform(-1, 1, (128, 3)).astype(np.float32)
    y = np.stack([np.abs(x[:, 0]), x[:, 1] * x[:, 2]], axis=1)
    _, history = loop.fit(
        regressor(2),
        optimizers.make("adam", 1e-2),
        data.Dataset(x, y),
        epochs=4,
        batch_size=32,
        eval_data=data.Dataset(x[:40], y[:40]),
        eval_batch_size=16,  # a padded last batch
        loss="mse",
        scan_chunks=False,
        quiet=True,
    )
    assert history.status == DONE
    assert history.epochs["val_loss"][-1] < history.epochs["val_loss"][0]
    assert math.isnan(history.epochs["val_accuracy"][-1])


def test_fit_grid_mse_members_equal_loop_fit():
    train_ds, eval_ds = abs_data(128, 0), abs_data(48, 1)
    rates = [0.05, 0.01]
    kwargs = dict(epochs=2, batch_size=32, eval_data=eval_ds, loss="mse")
    grid = sweep.fit_grid(
        regressor(),
        optimizers.make("sgd", 1.0),
        train_ds,
        hyperparams={"learning_rate": rates},
        seeds=0,
        strategy="vmap",
        **kwargs,
    )
    assert grid.diverged == [False, False]
    for i, rate in enumerate(rates):
        state, history = loop.fit(
            regressor(), optimizers.make("sgd", rate), train_ds, seed=0, quiet=True, **kwargs
        )
        mine = grid.histories[i]
        chex.assert_trees_all_close(grid.member_state(i).params, state.params, **TOL)
        for key in ("loss", "learning_rate"):
            np.testing.assert_allclose(mine.steps[key], history.steps[key], **TOL)
        for key in ("train_loss", "val_loss"):
            np.testing.assert_allclose(mine.epochs[key], history.epochs[key], **TOL)
        for key in ("train_accuracy", "val_accuracy"):
            assert all(math.isnan(v) for v in mine.epochs[key] + history.epochs[key])


@pytest.fixture
def no_training(monkeypatch):
    """Initializing or building a train step fails the test: the checks must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("initialized or compiled before rejecting the inputs")

    monkeypatch.setattr(train, "init_train_state", forbidden)
    monkeypatch.setattr(train, "make_train_step", forbidden)


def run_fit(train_ds, **kwargs):
    kwargs = {"epochs": 1, "batch_size": 32, "quiet": True, **kwargs}
    return loop.fit(regressor(), optimizers.make("sgd", 0.1), train_ds, **kwargs)


def run_grid(train_ds, **kwargs):
    kwargs = {"epochs": 1, "batch_size": 32, **kwargs}
    return sweep.fit_grid(
        regressor(), optimizers.make("sgd", 0.1), train_ds, strategy="sequential", **kwargs
    )


X = abs_data(64, 0).images
GOOD = abs_data(64, 0)


@pytest.mark.parametrize("runner", [run_fit, run_grid], ids=["fit", "fit_grid"])
@pytest.mark.parametrize(
    "train_ds, kwargs, message",
    [
        (data.Dataset(X, np.zeros((64, 3), np.int32)), {"loss": "mse"}, r"train_data\.labels: "),
        (data.Dataset(X, np.zeros((64, 2), np.float32)), {"loss": "mse"}, r"\[N, 1\] or \[N\]"),
        (data.Dataset(X, np.zeros((64, 1, 1))), {"loss": "mse"}, r"train_data\.labels"),
        (data.Dataset(X, np.zeros(64, bool)), {"loss": "mse"}, r"train_data\.labels.*real"),
        (data.Dataset(X, np.full(64, np.nan)), {"loss": "mse"}, r"train_data\.labels.*finite"),
        (data.Dataset(X, np.zeros(63)), {"loss": "mse"}, r"train_data: 64 images but 63 labels"),
        (
            GOOD,
            {"loss": "mse", "eval_data": data.Dataset(X, np.zeros((64, 2)))},
            r"eval_data\.labels",
        ),
        (GOOD, {}, r"train_data\.labels: labels must have an integer dtype.*loss='mse'"),
        (GOOD, {"loss": "hinge"}, r"loss must be one of \('classification', 'mse'\)"),
    ],
)
def test_bad_inputs_raise_before_compiling(no_training, runner, train_ds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        runner(train_ds, **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"restore_best": "val_accuracy"}, "restore_best"),
        ({"stop_when": loop.early_stopping(2, monitor="val_accuracy")}, "stop_when"),
        ({"stop_when": loop.target_reached(0.9)}, "stop_when"),
    ],
)
def test_monitoring_accuracy_under_mse_raises(no_training, kwargs, name):
    with pytest.raises(ValueError, match=rf"{name} monitors .*accuracy.*loss='mse'"):
        run_fit(GOOD, loss="mse", eval_data=GOOD, **kwargs)


def test_mse_monitoring_the_loss_works():
    _, history = run_fit(
        GOOD,
        loss="mse",
        eval_data=GOOD,
        epochs=3,
        restore_best="val_loss",
        stop_when=loop.early_stopping(5),
    )
    assert history.best_epoch is not None and history.status == DONE
