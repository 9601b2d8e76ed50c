"""Resumable runs: the whole training state and history, saved with orbax after each epoch.

A checkpoint holds the TrainState (params, BatchNorm statistics, optimizer and schedule state,
update count, PRNG key), the best-epoch weights kept for `restore_best`, and the History and loop
position as JSON. orbax writes each checkpoint to a temporary directory and renames it when
complete, so an interrupt (SIGINT, SIGTERM, a crash) leaves the previous checkpoint intact.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxsched.results import History
from jaxsched.train import TrainState


def manager(directory: str | os.PathLike, max_to_keep: int = 2) -> ocp.CheckpointManager:
    """An orbax CheckpointManager keeping the `max_to_keep` newest checkpoints in `directory`."""
    return ocp.CheckpointManager(
        os.path.abspath(directory),
        # Synchronous: `save` returns with the checkpoint on disk (an epoch ends, then saves).
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False
        ),
    )


def _raw(state: TrainState) -> TrainState:
    # Typed PRNG keys are stored as their uint32 key data.
    return state._replace(rng=jax.random.key_data(state.rng))


def save(
    mngr: ocp.CheckpointManager, epoch: int, state: TrainState, best: Any, meta: dict[str, Any]
) -> None:
    """Saves the state after `epoch` completed epochs (synchronously: it is on disk on return).

    best: a pytree shaped like (params, batch_stats); meta: JSON (history, loop position).
    """
    mngr.save(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_raw(state)),
            best=ocp.args.StandardSave(best),
            meta=ocp.args.JsonSave(meta),
        ),
    )
    mngr.wait_until_finished()


def restore_latest(
    mngr: ocp.CheckpointManager, like: TrainState
) -> tuple[int, TrainState, Any, dict[str, Any]] | None:
    """(epochs completed, state, best, meta) of the newest checkpoint, or None if there is none.

    like: a TrainState of the same structure (e.g. a fresh initialization) giving shapes/dtypes.
    """
    epoch = mngr.latest_step()
    if epoch is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _raw(like))
    best_abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, (like.params, like.batch_stats))
    restored = mngr.restore(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract),
            best=ocp.args.StandardRestore(best_abstract),
            meta=ocp.args.JsonRestore(),
        ),
    )
    raw = restored["state"]
    state = raw._replace(rng=jax.random.wrap_key_data(raw.rng, impl=jax.random.key_impl(like.rng)))
    return epoch, state, restored["best"], restored["meta"]


def history_from_meta(meta: dict[str, Any]) -> History:
    return History.from_dict(meta["history"])
