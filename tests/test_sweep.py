"""jaxsched.sweep: a vmapped grid equals its members trained one by one, on real Fashion-MNIST."""

import json
import math

import chex
import jax
import numpy as np
import optax
import pytest

from jaxsched import data, loop, optimizers, sweep, train
from jaxsched.models import MLP, LeNet5
from jaxsched.results import DIVERGED, DONE

LRS = [0.2, 0.05, 0.01]
TOL = dict(rtol=1e-5, atol=1e-6)


def numeric(state):
    """A TrainState with its PRNG key as integers, so chex can compare it."""
    return state._replace(rng=jax.random.key_data(state.rng))


def mlp():
    return MLP(hidden=(32,))


def reference_run(model, tx, ds, *, seed, data_seed, epochs, batch_size):
    """One member trained with the plain step, straight from train.py and data.py."""
    state = train.init_train_state(model, tx, jax.random.key(seed), ds.images[:1])
    step = jax.jit(train.make_train_step(model, tx))
    losses = []
    for epoch in range(epochs):
        for idx in data.epoch_batches(len(ds.images), batch_size, seed=data_seed, epoch=epoch):
            state, metrics = step(state, ds.images[idx], ds.labels[idx])
            losses.append(float(metrics["loss"]))
    return state, losses


@pytest.fixture(scope="module")
def lr_grids(fashion_small):
    """The same 3-learning-rate MLP grid by every strategy, with per-epoch evaluation."""
    train_ds, test_ds = fashion_small
    kwargs = dict(
        hyperparams={"learning_rate": LRS},
        seeds=3,
        data_seed=3,
        epochs=2,
        batch_size=64,
        eval_data=test_ds,
        sync_every=5,
        remember=False,  # "auto" probes (remembering is tested below)
    )
    tx = optimizers.make("sgd", 1.0)  # the grid replaces the learning rate
    return {s: sweep.fit_grid(mlp(), tx, train_ds, strategy=s, **kwargs) for s in sweep.STRATEGIES}


def test_vmap_and_map_grids_equal_sequential_and_loop_fit(fashion_small, lr_grids):
    train_ds, test_ds = fashion_small
    vmapped, mapped, sequential = lr_grids["vmap"], lr_grids["map"], lr_grids["sequential"]
    assert (vmapped.strategy, mapped.strategy, sequential.strategy) == sweep.PROBED
    assert [m["learning_rate"] for m in vmapped.members] == LRS
    for grid in (vmapped, mapped):
        chex.assert_trees_all_close(numeric(grid.state), numeric(sequential.state), **TOL)
        for i in range(len(LRS)):
            sequential_state = sequential.member_state(i)
            chex.assert_trees_all_close(grid.member_state(i).params, sequential_state.params, **TOL)
    i = 1  # loop.fit compiles its own step: one member is enough here
    state, history = loop.fit(
        mlp(),
        optimizers.make("sgd", LRS[i]),
        train_ds,
        epochs=2,
        batch_size=64,
        seed=3,
        eval_data=test_ds,
        quiet=True,
    )
    for grid in (vmapped, mapped, sequential):
        assert [h.status for h in grid.histories] == [DONE] * 3
        mine = grid.histories[i]
        chex.assert_trees_all_close(grid.member_state(i).params, state.params, **TOL)
        assert mine.steps["batch_size"] == history.steps["batch_size"]
        for key in ("loss", "accuracy", "learning_rate"):
            np.testing.assert_allclose(mine.steps[key], history.steps[key], **TOL)
        assert mine.epochs["epoch"] == [1, 2] and mine.epochs["updates"] == [8, 16]
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(mine.epochs[key], history.epochs[key], **TOL)


def test_one_compilation_per_batch_shape(fashion_small, lr_grids):
    assert lr_grids["vmap"].num_compilations == 1
    assert lr_grids["map"].num_compilations == 1
    assert lr_grids["sequential"].num_compilations == 1
    assert lr_grids["vmap"].histories[0].num_compilations == 1
    sizes = lambda u: 32 if u < 3 else 64  # noqa: E731
    result = sweep.fit_grid(
        mlp(),
        optimizers.make("sgd", 0.1),
        fashion_small[0],
        hyperparams={"learning_rate": [0.1, 0.01]},
        epochs=1,
        batch_size=sizes,
        strategy="vmap",
    )
    assert result.num_compilations == 2 and result.compile_time_s > 0
    assert result.histories[1].steps["batch_size"][:5] == [32, 32, 32, 64, 64]


def test_auto_measures_every_strategy_and_trains_like_vmap(lr_grids):
    auto = lr_grids["auto"]
    assert set(auto.timings) == set(sweep.PROBED) == {"vmap", "map", "sequential"}
    assert all(t > 0 for t in auto.timings.values())
    assert auto.strategy == min(auto.timings, key=auto.timings.get)
    assert lr_grids["vmap"].timings == {}
    # the probe steps ran on copies: the run itself is untouched
    chex.assert_trees_all_close(numeric(auto.state), numeric(lr_grids["vmap"].state), **TOL)
    assert auto.to_dict()["strategy"] == auto.strategy
    assert (auto.decided, auto.to_dict()["decided"], lr_grids["vmap"].decided) == (
        "measured",
        "measured",
        "given",
    )


def test_auto_remembers_its_decision_per_program_and_member_count(
    fashion_small, tmp_path, monkeypatch
):
    """The second call with the same member program and K reuses the stored strategy without
    probing (no second strategy compiled) and trains the same numbers; another K, or another
    batch shape, probes again; an unreadable store only costs a probe."""
    store = tmp_path / "decisions.json"
    run = lambda lrs, batch_size=64: sweep.fit_grid(  # noqa: E731
        mlp(),
        optimizers.make("sgd", 1.0),
        fashion_small[0],
        hyperparams={"learning_rate": lrs},
        epochs=1,
        batch_size=batch_size,
        max_steps=3,
        remember=store,
    )
    first = run(LRS)
    assert first.decided == "measured" and set(first.timings) == set(sweep.PROBED)
    stored = json.loads(store.read_text())
    (key,) = stored
    assert stored[key]["strategy"] == first.strategy and "machine" in stored[key]
    with monkeypatch.context() as patched:  # a remembered decision times nothing
        for runner in (sweep._Vmap, sweep._Map, sweep._Sequential):
            patched.setattr(runner, "time_step", lambda *a: pytest.fail("probed again"))
        again = run(LRS)
    assert (again.decided, again.strategy) == ("remembered", first.strategy)
    assert again.timings == pytest.approx(first.timings)
    chex.assert_trees_all_close(numeric(again.state), numeric(first.state), **TOL)
    assert run(LRS[:2]).decided == "measured"  # K = 2: another key
    assert run(LRS, batch_size=32).decided == "measured"  # another batch shape
    assert len(json.loads(store.read_text())) == 3
    store.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable decision store"):
        assert run(LRS).decided == "measured"
    assert len(json.loads(store.read_text())) == 1  # rewritten, readable
    assert (
        sweep.fit_grid(  # remember=False probes even with a stored decision
            mlp(),
            optimizers.make("sgd", 1.0),
            fashion_small[0],
            hyperparams={"learning_rate": LRS},
            epochs=1,
            batch_size=64,
            max_steps=3,
            remember=False,
        ).decided
        == "measured"
    )


def test_diverging_members_leave_the_others_untouched(fashion_small, lr_grids):
    train_ds, _ = fashion_small
    tx = optimizers.make("sgd", 0.1)
    clean = lr_grids["vmap"]  # the same grid without the two diverging members
    # inf: parameters inf after update 0, loss NaN at 1; 1e10: loss ~1e20 > max_loss at 1
    kwargs = dict(epochs=2, batch_size=64, seeds=3, data_seed=3, max_loss=1e15, sync_every=3)
    lrs = [LRS[0], math.inf, 1e10, LRS[2]]
    grids = {
        s: sweep.fit_grid(
            mlp(), tx, train_ds, hyperparams={"learning_rate": lrs}, strategy=s, **kwargs
        )
        for s in sweep.PROBED
    }
    for grid in grids.values():
        assert grid.diverged == [False, True, True, False]
        for i in (1, 2):
            history = grid.histories[i]
            assert history.status == DIVERGED and history.diverged_at_step == 1
            assert len(history.steps["loss"]) == 2 and history.epochs["epoch"] == []
            assert int(grid.member_state(i).step) == 1  # frozen: no update after the bad loss
        assert math.isnan(grid.histories[1].steps["loss"][1])
        assert grid.histories[2].steps["loss"][1] > 1e15
        for i, j in ((0, 0), (3, 2)):
            chex.assert_tree_all_finite(grid.member_state(i).params)
            chex.assert_trees_all_close(
                numeric(grid.member_state(i)), numeric(clean.member_state(j)), **TOL
            )
            np.testing.assert_allclose(
                grid.histories[i].steps["loss"], clean.histories[j].steps["loss"], **TOL
            )
            assert grid.histories[i].epochs["epoch"] == [1, 2]
    for other in ("vmap", "map"):
        for a, b in zip(grids[other].histories, grids["sequential"].histories, strict=True):
            np.testing.assert_allclose(a.steps["loss"], b.steps["loss"], **TOL)


def test_seed_and_momentum_grid_equals_per_seed_runs(fashion_small):
    train_ds, _ = fashion_small
    seeds, momenta = [1, 2], [0.9, 0.0]
    result = sweep.fit_grid(
        mlp(),
        optimizers.make("sgd", 0.05, momentum=0.7),
        train_ds,
        hyperparams={"learning_rate": 0.05, "momentum": momenta},
        seeds=seeds,
        data_seed=4,
        epochs=1,
        batch_size=128,
        strategy="vmap",
    )
    assert result.members == [
        {"seed": s, "learning_rate": 0.05, "momentum": m}
        for s, m in zip(seeds, momenta, strict=True)
    ]
    for i, (seed, momentum) in enumerate(zip(seeds, momenta, strict=True)):
        state, losses = reference_run(
            mlp(),
            optimizers.make("sgd", 0.05, momentum=momentum),
            train_ds,
            seed=seed,
            data_seed=4,
            epochs=1,
            batch_size=128,
        )
        chex.assert_trees_all_close(result.member_state(i).params, state.params, **TOL)
        np.testing.assert_allclose(result.histories[i].steps["loss"], losses, **TOL)
        hyper = optimizers.hyperparams(result.member_state(i).opt_state)
        np.testing.assert_allclose(hyper["momentum"], momentum, rtol=1e-6)


def test_lenet5_with_batchnorm_vmaps_like_sequential(fashion_small):
    train_ds, _ = fashion_small
    small = data.Dataset(train_ds.images[:128], train_ds.labels[:128])
    kwargs = dict(hyperparams={"learning_rate": [0.1, 0.01]}, epochs=1, batch_size=32)
    tx = optimizers.make("sgd", 0.1)
    grids = [sweep.fit_grid(LeNet5(), tx, small, strategy=s, **kwargs) for s in sweep.PROBED]
    for other in grids[:2]:  # vmap and map against sequential
        chex.assert_trees_all_close(
            numeric(other.state), numeric(grids[2].state), rtol=1e-4, atol=1e-5
        )
        for a, b in zip(other.histories, grids[2].histories, strict=True):
            np.testing.assert_allclose(a.steps["loss"], b.steps["loss"], rtol=1e-4)
    stats = jax.tree.leaves(grids[0].state.batch_stats)  # per member: the last layers' differ
    assert all(x.shape[0] == 2 for x in stats) and not np.allclose(stats[-1][0], stats[-1][1])


@pytest.mark.parametrize(
    "tx, kwargs, name",
    [
        (None, dict(hyperparams={"learning_rate": []}), "learning_rate"),
        (None, dict(seeds=[]), "seeds"),
        (None, dict(hyperparams={"learning_rate": [0.1, 0.2]}, seeds=[0, 1, 2]), "seeds"),
        (None, dict(hyperparams={"momentum": [0.0, 0.9]}), "momentum"),
        (optax.sgd(0.1), dict(hyperparams={"learning_rate": [0.1, 0.2]}), "learning_rate"),
        (
            optimizers.make("sgd", optax.linear_schedule(0.1, 0.0, 10)),
            dict(hyperparams={"learning_rate": [0.1, 0.2]}),
            "learning_rate",
        ),
        (None, dict(strategy="pmap"), "strategy"),
        (None, dict(epochs=0), "epochs"),
        (None, dict(data_seed=-1), "data_seed"),
        (None, dict(hyperparams={"learning_rate": ["big"]}), "learning_rate"),
    ],
)
def test_bad_inputs_raise_naming_the_parameter(fashion_small, tx, kwargs, name):
    tx = tx or optimizers.make("sgd", 0.1)
    args = dict(epochs=1, batch_size=64) | kwargs
    with pytest.raises(ValueError, match=name):
        sweep.fit_grid(mlp(), tx, fashion_small[0], **args)
