"""Resumable runs: an interrupted fit resumes from its orbax checkpoint to the same numbers."""

import chex
import pytest

from jaxsched import loop, optimizers, schedules
from jaxsched.models import LeNet5


class Interrupt(Exception):
    pass


def fit(train_ds, test_ds, directory, **kwargs):
    tx = optimizers.make("sgd", schedules.cyclic_lr(0.01, 0.1, 8), momentum=0.9)
    return loop.fit(
        LeNet5(hidden_dropout=0.1),
        tx,
        train_ds,
        epochs=3,
        batch_size=64,
        eval_data=test_ds,
        restore_best="val_loss",
        checkpoint_dir=directory,
        sync_every=2,
        quiet=True,
        **kwargs,
    )


def test_an_interrupted_run_resumes_to_the_same_numbers(fashion_small, tmp_path):
    train_ds, test_ds = fashion_small
    reference_state, reference = fit(train_ds, test_ds, tmp_path / "whole")

    def interrupt_in_epoch_3(history):
        if len(history.steps["loss"]) > 2 * 8 + 2:  # 8 updates per epoch
            raise Interrupt
        return False

    with pytest.raises(Interrupt):
        fit(train_ds, test_ds, tmp_path / "cut", stop_when=interrupt_in_epoch_3)
    state, history = fit(train_ds, test_ds, tmp_path / "cut", resume=True)

    assert history.status == "done" and history.epochs["epoch"] == [1, 2, 3]
    assert (
        history.steps == reference.steps
        and history.epochs["val_loss"] == reference.epochs["val_loss"]
    )
    assert history.best_epoch == reference.best_epoch
    chex.assert_trees_all_close(state.params, reference_state.params, atol=1e-6)
    chex.assert_trees_all_close(state.batch_stats, reference_state.batch_stats, atol=1e-6)
    chex.assert_trees_all_equal(state.opt_state, reference_state.opt_state)


def test_resuming_a_finished_run_trains_nothing(fashion_small, tmp_path):
    train_ds, test_ds = fashion_small
    _, first = fit(train_ds, test_ds, tmp_path)
    _, again = fit(train_ds, test_ds, tmp_path, resume=True)
    assert again.steps == first.steps and again.status == first.status
    assert again.num_compilations == first.num_compilations  # nothing new was compiled


def test_without_resume_a_checkpoint_dir_starts_afresh(fashion_small, tmp_path):
    train_ds, test_ds = fashion_small
    _, first = fit(train_ds, test_ds, tmp_path)
    _, second = fit(train_ds, test_ds, tmp_path)
    assert second.steps == first.steps
