"""Batch plans, varying batch sizes in fit, and accumulation equivalence."""

import chex
import jax
import numpy as np
import optax
import pytest

from jaxsched import batching, loop, optimizers, train
from jaxsched.models import MLP, LeNet5


def cycle(sizes):
    return lambda update: sizes[update % len(sizes)]


def test_constant_batch_plan_drops_the_remainder():
    p = batching.plan(100, 32, epochs=2)
    assert (
        p.sizes == [[32, 32, 32], [32, 32, 32]]
        and p.num_micro_batches == [1] * 6
        and not p.truncated
    )


def test_schedule_plans_by_update_and_by_epoch():
    p = batching.plan(100, cycle([16, 32, 64]), epochs=2)
    # Epoch 1: 16+32 (=48) then 64 does not fit in the 52 left -> epoch ends; epoch 2 goes on
    # from update 2 with 64, then 16 (80), then 32 does not fit in 20.
    assert p.sizes == [[16, 32], [64, 16]]
    by_epoch = batching.plan(100, lambda epoch: 25 * 2**epoch, epochs=3, unit="epoch")
    assert by_epoch.sizes == [[25] * 4, [50, 50], [100]]


def test_max_steps_truncates_mid_epoch():
    p = batching.plan(100, 10, epochs=3, max_steps=13)
    assert [len(s) for s in p.sizes] == [10, 3] and p.truncated
    assert not batching.plan(100, 10, epochs=3, max_steps=20).truncated


def test_accumulation_plans():
    sizes = cycle([64, 128, 256])
    shapes = batching.plan(1024, sizes, epochs=1, max_device_batch=128)
    assert list(zip(shapes.micro, shapes.num_micro_batches, strict=True))[:3] == [
        (64, 1),
        (128, 1),
        (128, 2),
    ]
    acc = batching.plan(1024, sizes, epochs=1, strategy="accumulate")
    assert set(acc.micro) == {64} and acc.num_micro_batches[:3] == [1, 2, 4]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=101), "batch_size must be an int in \\[1, num_examples=100\\]"),
        (dict(batch_size=cycle([32, 0])), "got 0 at update 1"),
        (dict(batch_size=50, max_device_batch=20), "equal micro-batches"),
        (
            dict(batch_size=cycle([32, 48]), strategy="accumulate"),
            "multiple of micro_batch_size=32",
        ),
        (dict(batch_size=32, strategy="fastest"), "strategy"),
        (dict(batch_size=32, unit="batch"), "batch_size_unit"),
        (dict(batch_size=32, epochs=0), "epochs"),
    ],
)
def test_bad_plans_say_what_is_wrong(kwargs, match):
    with pytest.raises(ValueError, match=match):
        batching.plan(100, **{"epochs": 1, **kwargs})


@pytest.mark.parametrize("strategy, compilations", [("shapes", 3), ("accumulate", 1)])
def test_cycling_three_sizes_twice_compiles_once_per_shape(fashion_small, strategy, compilations):
    train_ds, _ = fashion_small
    sizes = [64, 128, 256, 64, 128, 256]  # 896 examples: one epoch of 512 holds 64+128+256
    schedule = optax.piecewise_constant_schedule(0.05, {2: 0.5})
    _, history = loop.fit(
        LeNet5(),
        optimizers.make("sgd", schedule),
        train_ds,
        epochs=3,
        batch_size=cycle(sizes),
        strategy=strategy,
        quiet=True,
        max_steps=6,
    )
    assert history.steps["batch_size"] == sizes
    assert history.num_compilations == compilations
    # Schedules count optimizer updates, not micro-batches.
    np.testing.assert_allclose(
        history.steps["learning_rate"], [float(schedule(u)) for u in range(6)], rtol=1e-6
    )


def mlp_state(tx, images):
    model = MLP(hidden=(32,))
    return model, train.init_train_state(model, tx, jax.random.key(0), images[:1])


def test_k_micro_batches_make_the_update_of_one_k_times_larger_batch(fashion_small):
    images, labels = fashion_small[0].images[:64], fashion_small[0].labels[:64]
    tx = optimizers.make("adam", 1e-2)
    model, state = mlp_state(tx, images)
    big, _ = jax.jit(train.make_train_step(model, tx))(state, images, labels)

    acc_tx = optimizers.accumulate(tx, 4)
    acc_state = state._replace(opt_state=acc_tx.init(state.params))
    step = jax.jit(train.make_train_step(model, acc_tx))
    for j in range(4):
        acc_state, _ = step(acc_state, images[16 * j : 16 * (j + 1)], labels[16 * j : 16 * (j + 1)])
        if j < 3:
            chex.assert_trees_all_equal(acc_state.params, state.params)  # no update yet
    chex.assert_trees_all_close(acc_state.params, big.params, atol=1e-6, rtol=1e-5)


def test_fit_falls_back_to_accumulation_above_the_device_maximum(fashion_small):
    train_ds, _ = fashion_small
    model, tx = MLP(hidden=(32,)), optimizers.make("sgd", 0.1, momentum=0.9)
    direct, h1 = loop.fit(model, tx, train_ds, epochs=2, batch_size=128, quiet=True)
    split, h2 = loop.fit(
        model, tx, train_ds, epochs=2, batch_size=128, max_device_batch=32, quiet=True
    )
    chex.assert_trees_all_close(split.params, direct.params, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(h2.steps["loss"], h1.steps["loss"], rtol=1e-5)
    assert h2.steps["batch_size"] == [128] * 8 and h2.num_compilations == 1
