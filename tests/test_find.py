"""jaxsched.lr_find / batch_size_find: one call on any model, the runner's numbers, divergence
as a message, regression, bad input before any training."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import optax
import pytest

import jaxsched
from experiments import lr_range_test
from experiments.configs.lr_range_test import SMOKE
from jaxsched import data, find, loop, range_test
from jaxsched.models import MLP, LeNet5


def flat(ds: data.Dataset) -> data.Dataset:
    return data.Dataset(ds.images.reshape(len(ds.labels), -1), ds.labels)


def test_top_level_namespace_is_lazy_and_complete():
    names = ["cyclic_lr", "one_cycle_lr", "fit", "fit_grid", "lr_find", "batch_size_find"]
    assert all(callable(getattr(jaxsched, n)) for n in names)
    assert jaxsched.fit is loop.fit and jaxsched.lr_find is find.lr_find
    assert jaxsched.optimizers.make and jaxsched.schedules.cyclic_lr is jaxsched.cyclic_lr
    assert set(names) <= set(dir(jaxsched))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = jaxsched.nope


def test_sweep_on_an_mlp_brackets_rates_that_train(fashion_small):
    train, _ = fashion_small
    model = MLP(hidden=(32,))
    found = jaxsched.lr_find(model, "sgd", (train.images, train.labels), batch_size=32)
    assert found.suggested and found.method == "sweep"
    assert 1e-4 < found.lr_min < found.lr_max < 10
    assert found.lr_max in found.learning_rates[: found.summary["used_steps"]]  # a rate it used
    assert len(found.learning_rates) == len(found.losses) <= 500
    assert "lr_min=" in found.message and found.rule

    def loss_after_an_epoch(lr):
        _, h = loop.fit(model, optax.sgd(lr), train, epochs=1, batch_size=32, quiet=True)
        return h.final("train_loss")

    # In the bracket training works; far below it, it barely moves.
    assert loss_after_an_epoch(found.lr_max) < loss_after_an_epoch(found.lr_min / 1000) - 0.3
    fig = found.plot()
    smoothed = fig.axes[0].get_lines()[1]
    np.testing.assert_allclose(smoothed.get_ydata(), found.summary["smoothed_loss"])
    assert found.to_dict()["lr_max"] == found.lr_max
    # A plain optax optimizer (no injected rate) sweeps the same rates to the same suggestion.
    plain = jaxsched.lr_find(model, optax.sgd, (train.images, train.labels), batch_size=32)
    np.testing.assert_allclose(plain.learning_rates, found.learning_rates, rtol=1e-6)
    np.testing.assert_allclose(plain.losses, found.losses, rtol=1e-4)
    assert plain.lr_max == pytest.approx(found.lr_max, rel=1e-6)


@pytest.mark.slow
def test_sweep_agrees_with_the_lr_range_test_runner(tmp_path):
    config = dataclasses.replace(SMOKE, method="sweep")
    doc = lr_range_test.run(config, tmp_path, quiet=True)
    train, _ = data.load_splits(
        config.dataset,
        config.data_dir,
        config.preprocessing,
        config.train_examples,
        config.eval_examples,
        config.seed,
    )
    found = jaxsched.lr_find(
        LeNet5(),
        config.optimizer,
        train,
        lr_start=config.sweep_start,
        lr_end=config.sweep_end,
        num_steps=config.sweep_steps,
        factor=config.sweep_factor,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    assert (found.lr_min, found.lr_max) == (doc["summary"]["lr_min"], doc["summary"]["lr_max"])
    assert found.losses == doc["runs"][0]["history"]["steps"]["loss"]


@pytest.mark.slow
def test_grid_agrees_with_the_runner_and_a_plain_optax_optimizer(tmp_path, fashion_small):
    config = dataclasses.replace(SMOKE, method="grid", grid_strategy="vmap")
    doc = lr_range_test.run(config, tmp_path, quiet=True)
    train, _ = data.load_splits(
        config.dataset, None, config.preprocessing, config.train_examples, None, config.seed
    )
    kwargs = dict(learning_rates=config.learning_rates, batch_size=config.batch_size)
    found = jaxsched.lr_find(
        LeNet5(), "sgd", train, method="grid", max_loss=config.divergence_loss, **kwargs
    )
    assert (found.lr_min, found.lr_max) == (doc["summary"]["lr_min"], doc["summary"]["lr_max"])
    runner = {r["learning_rate"]: r["final"]["train_loss"] for r in doc["runs"]}
    assert dict(zip(found.learning_rates, found.losses, strict=True)) == pytest.approx(runner)
    # An optimizer without an injected learning rate trains rate by rate: the same numbers.
    small = flat(fashion_small[0])
    mlp = MLP(hidden=(16,))
    grid = jaxsched.lr_find(mlp, "sgd", small, method="grid", learning_rates=(0.3, 0.01))
    plain = jaxsched.lr_find(mlp, optax.sgd, small, method="grid", learning_rates=(0.3, 0.01))
    np.testing.assert_allclose(plain.losses, grid.losses, rtol=1e-5)
    assert plain.lr_max == grid.lr_max == 0.3
    assert len(grid.plot().axes) == 2


def test_a_model_that_diverges_at_once_gets_a_message_not_a_suggestion(fashion_small):
    small = flat(fashion_small[0])
    model = MLP(hidden=(16,))
    found = jaxsched.lr_find(model, "sgd", small, lr_start=1e4, lr_end=1e8, max_loss=100)
    assert not found.suggested and found.lr_max is None
    assert found.message.startswith("no suggestion: the loss diverged at update 1 (lr 1.02e+04)")
    assert found.plot() is not None  # the losses it saw can still be drawn
    # Without a loss limit the loss stays finite but never falls: no suggestion either.
    rising = jaxsched.lr_find(model, "sgd", small, lr_start=1e4, lr_end=1e8)
    assert not rising.suggested and "no rate swept trains" in rising.message
    huge = {"method": "grid", "learning_rates": (1e5, 1e7)}
    grid = jaxsched.lr_find(model, "sgd", small, max_loss=100, **huge)
    assert not grid.suggested and "no learning rate gave a finite" in grid.message
    grid = jaxsched.lr_find(model, "sgd", small, **huge)
    assert not grid.suggested and "no learning rate lowered the training loss" in grid.message


def test_regression_with_mse_end_to_end():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1024, 1)).astype(np.float32)
    y = np.abs(x)
    model = MLP(hidden=(32, 32), num_classes=1)
    found = jaxsched.lr_find(model, "adam", (x, y), loss="mse", batch_size=32, lr_end=100.0)
    assert found.suggested and 1e-5 < found.lr_min < found.lr_max < 100
    _, history = jaxsched.fit(
        model,
        optax.adam(found.lr_max / 3),
        data.Dataset(x, y),
        epochs=5,
        batch_size=32,
        loss="mse",
        quiet=True,
    )
    losses = history.epochs["train_loss"]
    assert losses[-1] < 0.1 * losses[0] and losses[-1] < 0.01
    assert all(math.isnan(a) for a in history.steps["accuracy"])


def test_batch_size_find_reads_the_plateau(fashion_small):
    train, test = (flat(d) for d in fashion_small)
    found = jaxsched.batch_size_find(
        MLP(hidden=(32,)), "sgd", train, 0.05, sizes=(8, 16, 32, 64, 128), eval_data=test
    )
    assert [r["batch_size"] for r in found.table] == [8, 16, 32, 64, 128]
    assert [r["updates"] for r in found.table] == [512 // s for s in (8, 16, 32, 64, 128)]
    assert found.b_min <= found.b_max and found.b_min in found.summary["plateau"]
    expected = range_test.suggest_batch_bounds(
        [r["batch_size"] for r in found.table], [r["train_accuracy"] for r in found.table]
    )
    assert (found.b_min, found.b_max, found.message) == (
        expected["b_min"],
        expected["b_max"],
        expected["message"],
    )
    assert len(found.plot().axes) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "bisect"}, "method must be one of 'sweep', 'grid', got 'bisect'"),
        ({"lr_start": 1.0, "lr_end": 0.1}, "lr_start and lr_end must satisfy lr_start < lr_end"),
        ({"num_steps": 5}, "num_steps must be an integer >= 12, got 5"),
        ({"factor": 1.0}, "factor must be a finite number > 1"),
        ({"method": "grid", "learning_rates": (0.1, -1.0)}, "learning_rates must each be a fin"),
        ({"method": "grid", "learning_rates": (0.1, 0.1)}, "learning_rates must not repeat"),
    ],
)
def test_lr_find_rejects_bad_input_before_training(monkeypatch, fashion_small, kwargs, match):
    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=match):
        jaxsched.lr_find(MLP(hidden=(8,)), "sgd", fashion_small[0], **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sizes": (8, 24, 32)}, "sizes must each be a power of two, got 24"),
        ({"sizes": (8, 16)}, "sizes must hold at least 3"),
        ({"sizes": (8, 16, 1024)}, "sizes must each be at most the 512 training examples"),
        ({"metric": "val_accuracy"}, "metric 'val_accuracy' needs eval_data"),
        ({"metric": "loss"}, "metric must be one of 'train_accuracy', 'val_accuracy', got 'loss'"),
    ],
)
def test_batch_size_find_rejects_bad_input_before_training(
    monkeypatch, fashion_small, kwargs, match
):
    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=match):
        jaxsched.batch_size_find(MLP(hidden=(8,)), "sgd", fashion_small[0], 0.1, **kwargs)


def test_optimizer_and_data_specs_are_checked():
    with pytest.raises(TypeError, match="optimizer must be a name"):
        find.make_optimizer(3, 0.1)
    with pytest.raises(TypeError, match="must return an optax.GradientTransformation"):
        find.make_optimizer(lambda lr: lr, 0.1)
    with pytest.raises(ValueError, match="inputs must be floating point"):
        data.as_dataset((np.zeros((2, 3), np.uint8), np.zeros(2)))
    with pytest.raises(ValueError, match="train_data must be a jaxsched.data.Dataset"):
        data.as_dataset(np.zeros((2, 3)))


@pytest.mark.slow
def test_the_readme_example_runs(monkeypatch, tmp_path, capsys, fashion_small):
    """README's "Use it on your own model" block as written (512 images, a 100-update sweep)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("<!-- own-model-example:start -->")[1].split("<!-- own-model-example")[0]
    code = block.split("```python\n")[1].split("```")[0]
    small = data.load("fashion_mnist", "train")
    small = data.Dataset(small.images[:512], small.labels[:512])
    monkeypatch.setattr(data, "load", lambda *a, **k: small)
    lr_find = find.lr_find  # a shorter sweep: the test is that the code runs as written
    monkeypatch.setattr(find, "lr_find", lambda *a, **k: lr_find(*a, num_steps=100, **k))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("lr_min=") and (tmp_path / "lr_find.png").stat().st_size > 0
    assert len(eval(lines[1])) == 4  # accuracy per epoch
