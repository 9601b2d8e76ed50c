"""Resumable runs: the whole training state and history, saved with orbax after each epoch.

A checkpoint holds the TrainState (params, BatchNorm statistics, optimizer and schedule state,
update count, PRNG key), the best-epoch weights kept for `restore_best`, and the History and loop
position as JSON. orbax writes each checkpoint to a temporary directory and renames it when
complete, so an interrupt (SIGINT, SIGTERM, a crash) leaves the previous checkpoint intact.

Identity: a checkpoint directory belongs to one run. `save` stores the run's identity (a JSON
value the caller chooses, e.g. {"run": <config digest>, "key": "M=2"}; None for an unnamed run)
in every checkpoint's meta and in `<directory>/identity.json`; resuming with another identity
raises `IdentityMismatchError` and leaves the directory untouched (`read_identity` lets a runner
check a folder before training).

Unreadable checkpoints: `restore_latest` falls back to the newest checkpoint that reads, moving
each unreadable one aside (`<step>.corrupt-<UTC time>` next to it, never deleted) with a one-line
`CheckpointWarning`; when none reads, the run starts afresh.

A failed orbax restore is quiet: orbax runs each restore on a private asyncio event loop
(`asyncio_utils.run_sync`) that it closes as soon as the restore coroutine ends. When one array
fails to read, `asyncio.gather` raises at once while tensorstore is still reading the others;
each of those reads, on completing, calls `loop.call_soon_threadsafe` on the closed loop from a
tensorstore thread, and the resulting RuntimeError("Event loop is closed") is reported through
`sys.unraisablehook` (a traceback per array: hundreds of lines for a CNN and its optimizer
state), followed by asyncio's "Task exception was never retrieved" for the failed tasks. A
restore therefore installs two narrow filters for exactly these reports (they arrive after the
restore has returned, so they stay installed; everything else passes through).
"""

import datetime
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxsched import results
from jaxsched.train import TrainState

IDENTITY_FILE = "identity.json"


class IdentityMismatchError(ValueError):
    """A checkpoint directory holds the checkpoints of another run (another identity)."""


class CheckpointWarning(UserWarning):
    """An unreadable checkpoint was moved aside; the run resumed from an older one or afresh."""


def manager(directory: str | os.PathLike, max_to_keep: int = 2) -> ocp.CheckpointManager:
    """An orbax CheckpointManager keeping the `max_to_keep` newest checkpoints in `directory`."""
    return ocp.CheckpointManager(
        os.path.abspath(directory),
        # Synchronous: `save` returns with the checkpoint on disk (an epoch ends, then saves).
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False
        ),
    )


def canonical_identity(identity: Any) -> Any:
    """`identity` as the plain JSON value it is stored as (tuples become lists, ...).

    Raises ValueError when it cannot be written as JSON.
    """
    try:
        return json.loads(json.dumps(results.to_jsonable(identity), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint_identity must be a JSON value, got {identity!r}: {e}") from e


def read_identity(directory: str | os.PathLike) -> Any | None:
    """The identity stored in `directory`/identity.json, or None when there is none."""
    path = Path(directory) / IDENTITY_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(
            f"{path} is not valid JSON ({e}); delete or move {path.parent} to start afresh"
        ) from e


def check_identity(directory: str | os.PathLike, identity: Any) -> None:
    """Raises IdentityMismatchError unless `directory`'s identity.json holds `identity` (None
    matches a directory without one)."""
    stored = read_identity(directory)
    wanted = canonical_identity(identity)
    if _key(stored) != _key(wanted):
        raise IdentityMismatchError(_mismatch(Path(directory), stored, wanted))


def save(
    mngr: ocp.CheckpointManager,
    epoch: int,
    state: TrainState,
    best: Any,
    meta: dict[str, Any],
    *,
    identity: Any = None,
) -> None:
    """Saves the state after `epoch` completed epochs (synchronously: it is on disk on return).

    best: a pytree shaped like (params, batch_stats); meta: JSON (history, loop position).
    identity: the run's identity, stored in meta["identity"] and (before the first checkpoint
    is written) in identity.json.
    """
    identity = canonical_identity(identity)
    directory = Path(mngr.directory)
    if jax.process_index() == 0 and (
        not (directory / IDENTITY_FILE).exists() or _key(read_identity(directory)) != _key(identity)
    ):
        results.write_json_atomic(directory / IDENTITY_FILE, identity)
    mngr.save(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_raw(state)),
            best=ocp.args.StandardSave(best),
            meta=ocp.args.JsonSave({**meta, "identity": identity}),
        ),
    )
    mngr.wait_until_finished()


def restore_latest(
    mngr: ocp.CheckpointManager, like: TrainState, *, identity: Any = None
) -> tuple[int, TrainState, Any, dict[str, Any]] | None:
    """(epochs completed, state, best, meta) of the newest readable checkpoint, or None if there
    is none.

    like: a TrainState of the same structure (e.g. a fresh initialization) giving shapes/dtypes.
    identity: the run's identity; IdentityMismatchError (nothing touched) when the directory's
      identity.json or the checkpoint's meta holds another.

    A checkpoint that fails to restore (truncated or overwritten files, ...) is moved aside to
    `<step>.corrupt-<UTC time>` in the same directory and the next older one is tried, with one
    CheckpointWarning line per checkpoint moved; None (start afresh) when none reads.
    """
    directory = Path(mngr.directory)
    mngr.reload()
    steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
        return None
    check_identity(directory, identity)
    wanted = canonical_identity(identity)
    _quiet_failed_restores()
    unreadable: list[tuple[int, str]] = []
    for step in steps:
        try:
            epoch, state, best, meta = _restore(mngr, step, like)
        except Exception as e:  # any failure to read it: the checkpoint is unusable
            unreadable.append((step, _reason(e, directory / str(step))))
            continue
        if _key(meta.get("identity")) != _key(wanted):
            where = directory / str(step)
            raise IdentityMismatchError(_mismatch(where, meta.get("identity"), wanted))
        _move_aside(mngr, unreadable, f"resuming from step {step}")
        return epoch, state, best, meta
    _move_aside(mngr, unreadable, "no readable checkpoint is left: starting afresh")
    return None


def _raw(state: TrainState) -> TrainState:
    # Typed PRNG keys are stored as their uint32 key data.
    return state._replace(rng=jax.random.key_data(state.rng))


def _restore(
    mngr: ocp.CheckpointManager, step: int, like: TrainState
) -> tuple[int, TrainState, Any, dict[str, Any]]:
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _raw(like))
    best_abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, (like.params, like.batch_stats))
    restored = mngr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract),
            best=ocp.args.StandardRestore(best_abstract),
            meta=ocp.args.JsonRestore(),
        ),
    )
    raw = restored["state"]
    state = raw._replace(rng=jax.random.wrap_key_data(raw.rng, impl=jax.random.key_impl(like.rng)))
    return step, state, restored["best"], restored["meta"]


def _move_aside(mngr: ocp.CheckpointManager, unreadable: list[tuple[int, str]], then: str) -> None:
    """Renames each unreadable step folder to <step>.corrupt-<UTC time> (so a later save of that
    step does not collide), warns one line per folder and reloads the manager's step list."""
    if not unreadable:
        return
    directory = Path(mngr.directory)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for step, reason in unreadable:
        source = directory / str(step)
        target = directory / f"{step}.corrupt-{stamp}"
        suffix = 1
        while target.exists():
            target, suffix = directory / f"{step}.corrupt-{stamp}-{suffix}", suffix + 1
        if jax.process_index() == 0:
            source.rename(target)
        warnings.warn(
            f"checkpoint {source} is unreadable ({reason}); moved it to {target.name}; {then}",
            CheckpointWarning,
            stacklevel=4,  # the caller of loop.fit
        )
    mngr.reload()


def _reason(error: Exception, folder: Path) -> str:
    """A short one-line summary of a restore error (tensorstore's are paragraphs long): paths
    relative to the checkpoint `folder`, the status code and the innermost cause kept."""
    text = str(error).split(" [tensorstore_spec", 1)[0].replace(f"{folder}{os.sep}", "")
    text = " ".join(text.split())
    if len(text) > 200:
        head = text.split(" ", 1)[0]
        tail = text[-170:]
        tail = tail.split(": ", 1)[1] if ": " in tail else tail  # from a clause boundary
        text = f"{head} ... {tail}" if head.endswith(":") else f"... {tail}"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _key(value: Any) -> str:
    """A canonical compact text of a JSON value (for comparing and showing identities)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _show(value: Any, limit: int = 80) -> str:
    text = "none" if value is None else _key(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mismatch(where: Path, stored: Any, wanted: Any) -> str:
    if isinstance(stored, dict) and isinstance(wanted, dict):
        differ = [
            k
            for k in sorted(set(stored) | set(wanted))
            if k not in stored or k not in wanted or _key(stored[k]) != _key(wanted[k])
        ]
        what = ", ".join(
            f"{k}: {_show(stored[k]) if k in stored else 'absent'} stored, "
            f"{_show(wanted[k]) if k in wanted else 'absent'} given"
            for k in differ
        )
    else:
        what = f"{_show(stored)} stored, {_show(wanted)} given"
    return (
        f"checkpoints in {where} belong to another run (identity differs: {what}); "
        f"delete or move {where}, or use another checkpoint_dir"
    )


def _is_closed_loop_report(unraisable: Any) -> bool:
    """tensorstore's report of a read completing after orbax closed its event loop."""
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
        return False
    tb = unraisable.exc_traceback
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "call_soon_threadsafe":
            return True
        tb = tb.tb_next
    return False


class _OrphanedRestoreTasks(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for orbax's abandoned reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Task exception was never retrieved") and "orbax" in message)


def _quiet_failed_restores() -> None:
    """Installs (once; again if another hook replaced it) the filters for the reports of a
    failed orbax restore (module docstring)."""
    previous = sys.unraisablehook
    if not getattr(previous, "_jaxsched_quiet", False):

        def hook(unraisable: Any) -> None:
            if not _is_closed_loop_report(unraisable):
                previous(unraisable)

        hook._jaxsched_quiet = True  # type: ignore[attr-defined]
        sys.unraisablehook = hook
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _OrphanedRestoreTasks) for f in logger.filters):
        logger.addFilter(_OrphanedRestoreTasks())
