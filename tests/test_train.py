"""Train step, compiled-step cache, evaluation and fit() on real Fashion-MNIST slices."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsched import loop, optimizers, results, train
from jaxsched.models import LeNet5
from jaxsched.results import DIVERGED, DONE


def small_state(model, tx, images):
    return train.init_train_state(model, tx, jax.random.key(0), images[:1])


def test_fit_learns_on_real_fashion_mnist(fashion_small):
    train_ds, test_ds = fashion_small
    _, history = loop.fit(
        LeNet5(),
        optimizers.make("sgd", 0.1),
        train_ds,
        epochs=3,
        batch_size=32,
        seed=0,
        eval_data=test_ds,
        quiet=True,
    )
    assert history.status == DONE
    assert len(history.steps["loss"]) == 3 * (512 // 32)
    losses = history.epochs["train_loss"]
    assert losses[-1] < losses[0] < math.log(10) + 0.5
    assert history.epochs["val_accuracy"][-1] > 0.5  # chance is 0.1
    np.testing.assert_allclose(history.steps["learning_rate"], 0.1, rtol=1e-6)


def test_fit_is_deterministic(fashion_small):
    train_ds, _ = fashion_small
    runs = [
        loop.fit(
            LeNet5(hidden_dropout=0.3),
            optimizers.make("sgd", 0.05),
            train_ds,
            epochs=1,
            batch_size=64,
            seed=3,
            quiet=True,
        )[1]
        for _ in range(2)
    ]
    assert runs[0].steps == runs[1].steps


def test_nan_loss_is_a_recorded_outcome(fashion_small):
    train_ds, test_ds = fashion_small
    # An infinite learning rate makes every parameter non-finite after the first update.
    _, history = loop.fit(
        LeNet5(),
        optimizers.make("sgd", math.inf),
        train_ds,
        epochs=2,
        batch_size=64,
        eval_data=test_ds,
        quiet=True,
    )
    assert history.status == DIVERGED
    assert history.diverged_at_step == 1
    assert math.isfinite(history.steps["loss"][0]) and math.isnan(history.steps["loss"][1])
    assert len(history.steps["loss"]) == 2
    assert history.epochs["epoch"] == []
    assert math.isnan(history.final("train_loss"))


def test_logged_learning_rate_follows_the_schedule(fashion_small):
    train_ds, _ = fashion_small
    schedule = optax.linear_schedule(0.1, 0.0, transition_steps=16)
    _, history = loop.fit(
        LeNet5(), optimizers.make("sgd", schedule), train_ds, epochs=1, batch_size=32, quiet=True
    )
    expected = [float(schedule(k)) for k in range(16)]  # update k uses schedule(k)
    np.testing.assert_allclose(history.steps["learning_rate"], expected, rtol=1e-6, atol=1e-9)


def test_one_compilation_per_batch_shape(fashion_small):
    train_ds, _ = fashion_small
    model, tx = LeNet5(), optimizers.make("sgd", 0.01)
    state = small_state(model, tx, train_ds.images)
    # chex fails the test if the step is traced a 4th time (as fit runs it: state donated).
    traced = chex.assert_max_traces(train.make_train_step(model, tx), n=3)
    step = train.CompiledStep(traced, donate_state=True)
    for size in (32, 32, 16, 32, 16, 8, 8, 32):
        state, metrics = step(state, train_ds.images[:size], train_ds.labels[:size])
    assert step.num_compilations == 3
    assert int(state.step) == 8
    chex.assert_tree_all_finite(metrics)


def test_train_step_matches_a_manual_sgd_update(fashion_small):
    train_ds, _ = fashion_small
    model = LeNet5(input_norm="none", hidden_batchnorm=False)
    tx = optimizers.make("sgd", 0.5)
    state = small_state(model, tx, train_ds.images)
    x, y = train_ds.images[:16], train_ds.labels[:16]
    new_state, metrics = jax.jit(train.make_train_step(model, tx))(state, x, y)

    def loss_fn(params):
        logits = model.apply({"params": params}, x, train=False)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(state.params)  # the reference
    expected = jax.tree.map(lambda p, g: p - 0.5 * g, state.params, grads)
    chex.assert_trees_all_close(new_state.params, expected, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)


def test_evaluation_is_exact_with_a_padded_last_batch(fashion_small):
    train_ds, test_ds = fashion_small
    model, tx = LeNet5(), optimizers.make("sgd", 0.1)
    state = small_state(model, tx, train_ds.images)
    eval_step = train.CompiledStep(train.make_eval_step(model))
    whole = loop.evaluate(eval_step, state, test_ds.images, test_ds.labels, batch_size=256)
    padded = loop.evaluate(eval_step, state, test_ds.images, test_ds.labels, batch_size=100)
    assert eval_step.num_compilations == 2
    np.testing.assert_allclose(padded["loss"], whole["loss"], rtol=1e-5)
    assert padded["accuracy"] == whole["accuracy"]
    logits = model.apply(
        {"params": state.params, "batch_stats": state.batch_stats}, test_ds.images, train=False
    )
    np.testing.assert_allclose(
        whole["accuracy"], float(jnp.mean(jnp.argmax(logits, -1) == test_ds.labels))
    )


def test_eval_batches_cover_every_example_once():
    seen = np.concatenate([idx[mask] for idx, mask in loop.eval_batches(10, 4)])
    np.testing.assert_array_equal(seen, np.arange(10))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(epochs=0, batch_size=8), "epochs"),
        (dict(epochs=1, batch_size=0), "batch_size"),
        (dict(epochs=1, batch_size=8, sync_every=0), "sync_every"),
    ],
)
def test_fit_rejects_bad_arguments(fashion_small, kwargs, name):
    with pytest.raises(ValueError, match=name):
        loop.fit(LeNet5(), optimizers.make("sgd", 0.1), fashion_small[0], quiet=True, **kwargs)


def test_a_loss_above_max_loss_also_counts_as_divergence(fashion_small):
    _, history = loop.fit(
        LeNet5(),
        optimizers.make("sgd", 0.01),
        fashion_small[0],
        epochs=1,
        batch_size=64,
        max_loss=0.5,
        quiet=True,
    )  # initial loss is ~2.3
    assert history.status == DIVERGED and history.diverged_at_step == 0
    assert history.steps["loss"][0] > 0.5


def test_max_steps_ends_mid_epoch_without_an_epoch_record(fashion_small):
    _, history = loop.fit(
        LeNet5(),
        optimizers.make("sgd", 0.01),
        fashion_small[0],
        epochs=3,
        batch_size=64,
        max_steps=11,
        sync_every=4,
        quiet=True,
    )
    assert history.status == DONE and len(history.steps["loss"]) == 11
    assert history.epochs["epoch"] == [1]  # 8 updates per epoch: one whole epoch, then 3


def test_stop_when_ends_the_run_as_stopped(fashion_small):
    train_ds, test_ds = fashion_small
    _, history = loop.fit(
        LeNet5(),
        optimizers.make("sgd", 0.01),
        train_ds,
        epochs=5,
        batch_size=64,
        eval_data=test_ds,
        quiet=True,
        stop_when=lambda h: len(h.epochs["epoch"]) == 2,
    )
    assert history.status == "stopped" and history.epochs["epoch"] == [1, 2]
    assert math.isfinite(history.final("val_loss"))


@pytest.mark.parametrize(
    "val_loss, patience, stops",
    [
        ([1.0, 0.9, 0.8], 2, False),  # still improving
        ([1.0, 0.9, 0.95, 0.91], 2, True),  # no new best in the last 2 epochs
        ([1.0, 0.9, 0.95, 0.89], 2, False),  # new best in the window
        ([1.0, 0.9], 2, False),  # too few epochs to judge
    ],
)
def test_early_stopping_rule(val_loss, patience, stops):
    history = results.History()
    history.epochs["val_loss"] = val_loss
    assert loop.early_stopping(patience)(history) is stops


def test_regularizer_adds_to_the_loss_and_the_gradient(fashion_small):
    train_ds, _ = fashion_small
    model = LeNet5(input_norm="none", hidden_batchnorm=False)
    tx = optimizers.make("sgd", 0.1)
    state = small_state(model, tx, train_ds.images)
    x, y = train_ds.images[:8], train_ds.labels[:8]
    penalty = lambda p: 0.01 * sum(jnp.sum(w**2) for w in jax.tree.leaves(p))  # noqa: E731
    plain_state, plain = jax.jit(train.make_train_step(model, tx))(state, x, y)
    reg_state, reg = jax.jit(train.make_train_step(model, tx, regularizer=penalty))(state, x, y)
    np.testing.assert_allclose(reg["loss"], plain["loss"] + penalty(state.params), rtol=1e-5)
    # SGD with lr 0.1 and penalty c*|w|^2: the extra step is -0.1 * 2c * w.
    expected = jax.tree.map(lambda p, w: p - 0.1 * 2 * 0.01 * w, plain_state.params, state.params)
    chex.assert_trees_all_close(reg_state.params, expected, atol=1e-6)


def test_restore_best_returns_the_best_epochs_weights(fashion_small):
    train_ds, test_ds = fashion_small
    model, tx = LeNet5(), optimizers.make("sgd", 0.05)
    eval_step = train.CompiledStep(train.make_eval_step(model))
    last, h_last = loop.fit(
        model, tx, train_ds, epochs=4, batch_size=64, eval_data=test_ds, quiet=True
    )
    best, h_best = loop.fit(
        model,
        tx,
        train_ds,
        epochs=4,
        batch_size=64,
        eval_data=test_ds,
        restore_best="val_loss",
        quiet=True,
    )
    assert h_best.steps == h_last.steps  # the same training either way
    k = int(np.argmin(h_best.epochs["val_loss"]))
    assert h_best.best_epoch == k + 1
    restored = loop.evaluate(eval_step, best, test_ds.images, test_ds.labels)
    np.testing.assert_allclose(restored["loss"], h_best.epochs["val_loss"][k], rtol=1e-5)
    if k < 3:
        final = loop.evaluate(eval_step, last, test_ds.images, test_ds.labels)
        np.testing.assert_allclose(final["loss"], h_last.epochs["val_loss"][-1], rtol=1e-5)
    with pytest.raises(ValueError, match="restore_best"):
        loop.fit(model, tx, train_ds, epochs=1, batch_size=64, restore_best="val_los")


def test_time_to_accuracy_and_the_target_stop_rule():
    history = results.History()
    history.epochs.update(
        val_accuracy=[0.5, 0.91, 0.93, 0.92],
        updates=[10, 20, 30, 40],
        train_time_s=[2.0, 1.0, 1.0, 1.0],
        eval_time_s=[0.5, 0.5, 0.5, 0.5],
    )
    t = loop.time_to_accuracy(history, 0.92)
    assert (t["reached"], t["epoch"], t["updates"], t["seconds"]) == (True, 3, 30, 5.5)
    assert (t["best_accuracy"], t["best_epoch"]) == (0.93, 3)
    never = loop.time_to_accuracy(history, 0.99)
    assert not never["reached"] and never["epoch"] is None and never["best_accuracy"] == 0.93
    assert loop.target_reached(0.92)(history) and not loop.target_reached(0.99)(history)


def test_batch_augmentation_runs_inside_the_step(fashion_small):
    from jaxsched import augment

    train_ds, _ = fashion_small
    model = LeNet5(input_norm="none", hidden_batchnorm=False)
    tx = optimizers.make("sgd", 0.1)
    state = small_state(model, tx, train_ds.images)
    x, y = train_ds.images[:8], train_ds.labels[:8]
    plain, _ = jax.jit(train.make_train_step(model, tx))(state, x, y)
    # M identical copies (no augmentation) average to the same gradient as the batch itself.
    repeat = augment.make_batch_augment(4, name=None)
    copies, _ = jax.jit(train.make_train_step(model, tx, batch_augment=repeat))(state, x, y)
    chex.assert_trees_all_close(copies.params, plain.params, atol=1e-6)
    # With cutout, the 4 copies differ: a different update, still finite.
    holes = augment.make_batch_augment(4, name="cutout", cutout_size=8)
    cut, metrics = jax.jit(train.make_train_step(model, tx, batch_augment=holes))(state, x, y)
    chex.assert_tree_all_finite(cut.params)
    assert not np.allclose(cut.params["Dense_1"]["kernel"], plain.params["Dense_1"]["kernel"])


def test_compiled_step_memory_footprint_grows_with_the_batch():
    model = LeNet5()
    tx = optax.sgd(0.1)
    images = jnp.zeros((8, 28, 28, 1))
    state = train.init_train_state(model, tx, jax.random.key(0), images)
    step = train.CompiledStep(train.make_train_step(model, tx))
    step(state, images, jnp.zeros(8, jnp.int32))
    small = step.memory_bytes
    step(state, jnp.zeros((256, 28, 28, 1)), jnp.zeros(256, jnp.int32))
    # The state (~62k float32 params, twice) is shared; activations and the batch scale with B.
    assert small > 2 * 62_000 * 4 and step.memory_bytes > 4 * small


def test_update_chunks_cover_the_epoch_in_order_one_length_per_size():
    perm = np.arange(100, 132)
    chunks = list(loop.update_chunks([4, 4, 4, 8, 8, 4], perm, max_length=2, row_bytes=1))
    assert [c[2] for c in chunks] == [[4, 4], [4], [8, 8], [4]]
    for idx, valid, sizes in chunks:
        assert idx.shape == (2, sizes[0]) and valid.tolist() == [True] * len(sizes) + [False] * (
            2 - len(sizes)
        )
    drawn = np.concatenate([idx[valid].ravel() for idx, valid, _ in chunks])
    np.testing.assert_array_equal(drawn, perm)  # every index once, in the epoch's order
    # a batch of CHUNK_BYTES / 2 bytes per update: two updates per chunk at most
    capped = list(loop.update_chunks([4] * 5, perm, 100, row_bytes=loop.CHUNK_BYTES // 8))
    assert [len(sizes) for *_, sizes in capped] == [2, 2, 1]
    # batches gathered on the device (row_bytes None): no cap, max_length updates per chunk
    uncapped = list(loop.update_chunks([4] * 5, perm, 100, row_bytes=None))
    assert [len(sizes) for *_, sizes in uncapped] == [5] and uncapped[0][0].shape == (100, 4)


def test_indexed_chunk_step_gathers_on_the_device_exactly_like_host_batches(fashion_small):
    train_ds, _ = fashion_small
    model, tx = LeNet5(), optimizers.make("sgd", 0.05, momentum=0.9)
    step = train.make_train_step(model, tx)
    state = small_state(model, tx, train_ds.images[:8])
    idx = np.random.default_rng(0).permutation(len(train_ds.images))[: 4 * 16].reshape(4, 16)
    valid = np.array([True, True, True, False])  # the last row is padding: skipped
    host_state, host_metrics = jax.jit(train.make_chunk_step(step))(
        state, train_ds.images[idx], train_ds.labels[idx], valid
    )
    images, labels = jax.device_put((train_ds.images, train_ds.labels))
    dev_state, dev_metrics = jax.jit(train.make_indexed_chunk_step(step))(
        state, images, labels, idx, valid
    )
    chex.assert_trees_all_equal(dev_state, host_state)
    chex.assert_trees_all_equal(dev_metrics, host_metrics)
    assert int(dev_state.step) == 3 and float(dev_metrics["loss"][3]) == 0.0


def test_fit_with_data_on_the_device_matches_host_batches(fashion_small, monkeypatch):
    train_ds, eval_ds = fashion_small

    def run():
        return loop.fit(
            LeNet5(),
            optimizers.make("sgd", 0.05),
            train_ds,
            epochs=2,
            batch_size=lambda u: 16 if u % 5 < 2 else 32,
            seed=3,
            sync_every=5,
            scan_chunks=True,
            eval_data=eval_ds,
            quiet=True,
        )

    placed = loop.place_on_device(train_ds)
    assert placed is not None and isinstance(placed.images, jax.Array)
    np.testing.assert_array_equal(np.asarray(placed.images), train_ds.images)
    on_device, h_device = run()
    monkeypatch.setattr(loop, "DEVICE_DATA_BYTES", train_ds.images.nbytes - 1)
    assert loop.place_on_device(train_ds) is None  # too large: host batches
    on_host, h_host = run()
    chex.assert_trees_all_equal(on_device.params, on_host.params)
    assert h_device.steps == h_host.steps
    assert h_device.epochs["val_loss"] == h_host.epochs["val_loss"]


@pytest.mark.parametrize("batch_size", [32, lambda u: 16 if u % 5 < 2 else 32])
def test_scan_chunks_train_exactly_like_one_dispatch_per_step(fashion_small, batch_size):
    train_ds, _ = fashion_small

    def run(scan_chunks):
        return loop.fit(
            LeNet5(),
            optimizers.make("sgd", 0.05),
            train_ds,
            epochs=2,
            batch_size=batch_size,
            seed=3,
            sync_every=5,  # chunks of 5 updates; the epoch's last chunk is padded
            scan_chunks=scan_chunks,
            quiet=True,
        )

    (chunked, h_chunked), (stepped, h_stepped) = run(True), run(False)
    assert h_chunked.steps["batch_size"] == h_stepped.steps["batch_size"]
    np.testing.assert_allclose(h_chunked.steps["loss"], h_stepped.steps["loss"], rtol=2e-5)
    chex.assert_trees_all_close(chunked.params, stepped.params, rtol=1e-4, atol=1e-6)
    assert int(chunked.step) == int(stepped.step) == len(h_stepped.steps["loss"])
    # one executable per batch size either way
    assert (
        h_chunked.num_compilations
        == h_stepped.num_compilations
        == len(set(h_stepped.steps["batch_size"]))
    )


def test_scan_pays_except_for_xla_convolutions_on_cpu(fashion_small):
    train_ds, _ = fashion_small
    x, y = train_ds.images[:8], train_ds.labels[:8]
    tx = optimizers.make("sgd", 0.01)
    pays = {}
    for impl in ("xla", "im2col"):
        model = LeNet5(conv_impl=impl)
        step = train.make_train_step(model, tx)
        pays[impl] = train.scan_pays(step, small_state(model, tx, x), x, y)
    assert pays["im2col"]
    assert pays["xla"] == (jax.default_backend() != "cpu")
    with pytest.raises(ValueError, match="scan_chunks must be"):
        loop.fit(LeNet5(), tx, train_ds, epochs=1, batch_size=32, scan_chunks="yes", quiet=True)
