"""jaxsched.shape_grid, models.DepthWidthNet and jaxsched.eggholder: the 143 nets, their
parameter counts, padded nets computing exactly their own net, the strategies agreeing, and
early stopping per net with its best weights kept."""

import itertools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsched import eggholder, optimizers, shape_grid
from jaxsched.models import DepthWidthNet, count_params

WIDTHS = (16, 32, 64, 128, 256, 512)
SHAPES = [(16,), (32, 16), (16, 64), (16, 16, 16)]


def test_eggholder_at_known_points():
    # the global minimum on [-512, 512]^2, and values worked by hand from the formula
    np.testing.assert_allclose(eggholder.eggholder(np.array([512.0, 404.2319])), -959.6407, 1e-6)
    np.testing.assert_allclose(eggholder.eggholder(np.array([0, 0])), -47 * np.sin(np.sqrt(47)))
    # x2 = -47 zeroes the first term; x1 = 0 zeroes the second
    np.testing.assert_allclose(
        eggholder.eggholder(np.array([100.0, -47.0])), -100 * np.sin(np.sqrt(100.0))
    )
    np.testing.assert_allclose(
        eggholder.eggholder(np.array([[0.0, 53.0]])), [-100 * np.sin(np.sqrt(100.0))]
    )


def test_eggholder_splits_are_the_notebooks():
    train, test = eggholder.make_splits(10_000, noise_std=0.3, seed=3)
    assert train.images.shape == (8000, 2) and test.images.shape == (2000, 2)
    x = np.concatenate([train.images, test.images])
    assert np.all(x == np.round(x)) and x.min() >= -512 and x.max() <= 512
    assert x.min() == -512 and x.max() == 512  # both ends drawn (inclusive)
    residual = np.concatenate([train.labels, test.labels]) - eggholder.eggholder(x)
    assert abs(residual.std() - 0.3) < 0.02 and abs(residual.mean()) < 0.02
    again = eggholder.make_splits(10_000, noise_std=0.3, seed=3)
    np.testing.assert_array_equal(again[0].labels, train.labels)
    with pytest.raises(ValueError, match="test_fraction"):
        eggholder.make_splits(10, test_fraction=0.01)


def test_the_143_nets():
    nets = shape_grid.depth_width_nets()
    brute = [s for d in (1, 2, 3) for s in itertools.product(WIDTHS, repeat=d) if sum(s) <= 512]
    assert len(nets) == 143 and sorted(nets) == sorted(brute) and len(set(nets)) == 143
    assert [sum(len(s) == d for s in nets) for d in (1, 2, 3)] == [6, 25, 112]


@pytest.mark.parametrize("widths", [(16,), (16, 32), (64, 16, 256), (512,)])
def test_parameter_counts_match_the_flax_model_and_a_hand_count(widths):
    variables = DepthWidthNet(widths).init(jax.random.key(0), jnp.zeros((1, 2)), train=False)
    counts = shape_grid.num_params(widths)
    assert counts["trainable"] == count_params(variables["params"])
    assert counts["keras"] - counts["trainable"] == count_params(variables.get("batch_stats", {}))
    dims = (2, *widths, 1)
    hand = sum(a * b + b for a, b in zip(dims[:-1], dims[1:], strict=True))
    hand += sum(2 * w for w in widths[:-1])  # BatchNorm scale and offset before Dense 2..
    assert counts["trainable"] == hand
    assert shape_grid.num_params((16,)) == {"trainable": 65, "keras": 65}


def test_plan_groups():
    shapes = [(16,), (32, 16), (16, 64), (16, 16, 16), (32, 16)]
    depth = shape_grid.plan_groups(shapes, "depth")
    assert [(g.members, g.widths, g.padded) for g in depth] == [
        ((0,), (16,), False),
        ((1, 2, 4), (32, 64), True),
        ((3,), (16, 16, 16), False),
    ]
    (everything,) = shape_grid.plan_groups(shapes, "all")
    assert everything.widths == (64, 64, 64) and everything.members == (0, 1, 2, 3, 4)
    shape = shape_grid.plan_groups(shapes, "shape")
    assert [g.members for g in shape] == [(0,), (1, 4), (2,), (3,)]
    assert not any(g.padded for g in shape)
    sequential = shape_grid.plan_groups(shapes, "sequential")
    assert len(sequential) == 5 and not any(g.vmapped for g in sequential)


def _padded_member(own_widths, padded_widths, seed=0):
    """A member's own variables, its padded copy, and its masks / gates in the padded net."""
    x = jax.ShapeDtypeStruct((1, 2), jnp.float32)
    own = shape_grid.init_variables(
        shape_grid._shapes(DepthWidthNet(own_widths), x), own_widths, seed
    )
    big = shape_grid._shapes(DepthWidthNet(padded_widths), x)
    padded = shape_grid._embed(own, big)
    masks = [
        jnp.asarray((np.arange(w) < (own_widths[i] if i < len(own_widths) else 0)), jnp.float32)
        for i, w in enumerate(padded_widths)
    ]
    gates = jnp.arange(len(padded_widths)) < len(own_widths)
    return own, padded, masks, gates


@pytest.mark.parametrize(("own", "padded"), [((16, 8), (32, 32)), ((8,), (16, 16, 16))])
def test_a_padded_net_computes_its_own_and_its_padding_gets_zero_gradient(own, padded):
    own_vars, padded_vars, masks, gates = _padded_member(own, padded)
    x = jax.random.normal(jax.random.key(1), (64, 2)) * 300
    y = jax.random.normal(jax.random.key(2), (64,))

    def loss(model, variables, **kw):
        def f(params):
            out, _ = model.apply(
                {"params": params, "batch_stats": variables["batch_stats"]},
                x,
                train=True,
                mutable=["batch_stats"],
                **kw,
            )
            return jnp.mean((out[:, 0] - y) ** 2)

        return jax.value_and_grad(f)(variables["params"])

    small_loss, small_grads = loss(DepthWidthNet(own), own_vars)
    big_loss, big_grads = loss(
        DepthWidthNet(padded), padded_vars, unit_masks=masks, layer_gates=gates
    )
    np.testing.assert_allclose(big_loss, small_loss, rtol=1e-6)
    # the member's own gradients, and exact zeros everywhere in the padding
    chex.assert_trees_all_close(
        shape_grid._cut(big_grads, small_grads), small_grads, rtol=1e-5, atol=1e-6
    )
    flat_big = dict(jax.tree_util.tree_flatten_with_path(big_grads)[0])
    flat_small = dict(jax.tree_util.tree_flatten_with_path(small_grads)[0])
    for path, grad in flat_big.items():
        grad = np.array(grad)
        if path in flat_small:
            grad[tuple(slice(0, d) for d in flat_small[path].shape)] = 0.0
        assert np.all(grad == 0.0), (path, np.abs(grad).max())


@pytest.fixture(scope="module")
def splits():
    return eggholder.make_splits(3000, seed=0)


@pytest.fixture(scope="module")
def by_strategy(splits):
    tx = optimizers.make("nadam", 0.01, preset="keras")
    return {
        strategy: shape_grid.fit_shapes(
            DepthWidthNet,
            SHAPES,
            tx,
            *splits,
            epochs=6,
            batch_size=500,
            patience=2,
            strategy=strategy,
            eval_batch_size=700,
        )
        for strategy in ("sequential", "depth", "all")
    }


def test_strategies_train_every_net_alike(by_strategy):
    reference = by_strategy["sequential"].rows
    for strategy in ("depth", "all"):
        rows = by_strategy[strategy].rows
        assert [r["widths"] for r in rows] == [list(s) for s in SHAPES]
        for mine, ref in zip(rows, reference, strict=True):
            assert (
                mine["status"] == ref["status"] and mine["epochs_trained"] == ref["epochs_trained"]
            ), (strategy, mine, ref)
            np.testing.assert_allclose(mine["val_rmse"], ref["val_rmse"], rtol=2e-5)
            np.testing.assert_allclose(mine["train_loss"], ref["train_loss"], rtol=2e-5)
        chex.assert_trees_all_close(
            by_strategy[strategy].variables,
            by_strategy["sequential"].variables,
            rtol=1e-3,
            atol=1e-4,
        )
    assert by_strategy["all"].strategy == "all" and len(by_strategy["all"].groups) == 1


def test_early_stopping_keeps_each_nets_best_epoch(by_strategy, splits):
    grid = by_strategy["all"]
    statuses = {r["status"] for r in grid.rows}
    assert "stopped" in statuses, grid.rows  # the fixture's settings stop some nets early
    _, test = splits
    for row, variables in zip(grid.rows, grid.variables, strict=True):
        rmse = np.array(row["val_rmse"])
        assert row["best_val_rmse"] == pytest.approx(rmse.min(), rel=0, abs=0)
        assert row["best_epoch"] == int(np.argmin(rmse)) + 1
        if row["status"] == "stopped":  # Keras: patience epochs without a new best
            assert row["epochs_trained"] == row["best_epoch"] + 2 == row["stop_epoch"]
        else:
            assert row["epochs_trained"] == 6 and row["stop_epoch"] is None
        # the kept variables are the best epoch's: they reproduce its validation RMSE
        out = DepthWidthNet(tuple(row["widths"])).apply(variables, test.images, train=False)
        recomputed = float(np.sqrt(np.mean((np.asarray(out)[:, 0] - test.labels) ** 2)))
        assert recomputed == pytest.approx(row["best_val_rmse"], rel=2e-5)


def test_same_seed_same_numbers_and_seeds_differ(splits):
    tx = optimizers.make("nadam", 0.01, preset="keras")
    run = lambda seeds, strategy: shape_grid.fit_shapes(  # noqa: E731
        DepthWidthNet,
        [(8, 8)],
        tx,
        *splits,
        epochs=2,
        batch_size=500,
        patience=5,
        seeds=seeds,
        strategy=strategy,
    )
    first, second = run([0, 1], "shape"), run([0, 1], "shape")
    assert [r["val_rmse"] for r in first.rows] == [r["val_rmse"] for r in second.rows]
    assert first.rows[0]["val_rmse"] != first.rows[1]["val_rmse"]
    alone = run([1], "sequential")
    np.testing.assert_allclose(alone.rows[0]["val_rmse"], first.rows[1]["val_rmse"], rtol=1e-5)


def test_divergence_is_recorded_not_raised(splits):
    grid = shape_grid.fit_shapes(
        DepthWidthNet,
        [(8,), (8, 8)],
        optimizers.make("sgd", 1e6),
        *splits,
        epochs=3,
        batch_size=500,
        patience=5,
        strategy="all",
    )
    assert [r["status"] for r in grid.rows] == ["diverged", "diverged"]
    for row in grid.rows:
        assert row["epochs_trained"] >= 1 and row["stop_epoch"] is None


def test_auto_times_the_candidates_and_takes_the_fastest(splits):
    grid = shape_grid.fit_shapes(
        DepthWidthNet,
        SHAPES,
        optimizers.make("nadam", 0.01),
        *splits,
        epochs=1,
        batch_size=500,
        patience=2,
        strategy="auto",
        probe_steps=1,
    )
    assert set(grid.timings) == {"all", "depth", "sequential"}  # "shape" = "sequential" here
    assert grid.strategy == min(grid.timings, key=grid.timings.get)
    assert all(t > 0 for t in grid.timings.values())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "fastest"}, "strategy"),
        ({"patience": 0}, "patience"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 100_000}, "batch_size"),
        ({"shapes": []}, "shapes"),
        ({"shapes": [(8, 0)]}, "shapes"),
        ({"seeds": [-1]}, "seeds"),
    ],
)
def test_bad_arguments_are_refused_before_training(kwargs, field, splits):
    args = {"shapes": [(8,)], "epochs": 1, "batch_size": 100, "patience": 1, **kwargs}
    shapes = args.pop("shapes")
    with pytest.raises(ValueError, match=field):
        shape_grid.fit_shapes(DepthWidthNet, shapes, optimizers.make("sgd", 0.1), *splits, **args)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux /proc only")
def test_each_groups_program_is_released_after_it_trains(splits):
    """A CPU executable holds ~200 memory maps; 143 kept alive per call exhausted Linux's
    65,530 (vm.max_map_count) on a second call: "LLVM compilation error: Cannot allocate
    memory", then a segmentation fault."""

    def maps() -> int:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    shapes = [(w,) for w in (3, 5, 6, 7, 9, 10)]  # six programs no other test compiles
    run = lambda: shape_grid.fit_shapes(  # noqa: E731
        DepthWidthNet,
        shapes,
        optimizers.make("sgd", 1e-3),
        *splits,
        epochs=1,
        batch_size=500,
        patience=1,
        strategy="sequential",
    )
    run()
    before = maps()
    run()
    assert maps() - before < 150  # held: ~1400 more
