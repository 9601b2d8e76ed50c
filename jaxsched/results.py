"""Training histories, environment metadata and atomic results JSON.

Results files are plain JSON (`allow_nan=False`): non-finite floats are written as null, so
any JSON reader can load them. Every file carries the config that produced it, the library
versions, the device and wall-clock times.
"""

import contextlib
import dataclasses
import datetime
import functools
import json
import math
import os
import platform
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import jaxsched
from jaxsched import host_memory

DONE = "done"
DIVERGED = "diverged"
STOPPED = "stopped"  # ended by a stop rule (early stopping, a sweep's explosion rule)


@dataclasses.dataclass
class History:
    """What one training run produced.

    steps: per optimizer update, lists "learning_rate", "loss", "accuracy" (the batch's loss
      and accuracy before the update; Keras's per-batch logs) and "batch_size".
    epochs: per completed epoch, lists "epoch" (1-based), "updates" (made by its end),
      "train_loss" and "train_accuracy" (means over the epoch's examples, as Keras reports
      them), "val_loss" and "val_accuracy"
      (after the epoch, when validation data is given), "train_time_s", "eval_time_s".
    status: "done"; "diverged" when a loss became NaN/inf (metrics up to then are kept);
      "stopped" when a stop rule ended it (early stopping).
    diverged_at_step: 0-based index of the first non-finite loss, else None.
    compile_time_s: seconds spent compiling train/eval steps (included in the epoch times).
    num_compilations: train-step executables compiled (one per distinct micro-batch shape).
    step_memory_mib: the train step's memory footprint by XLA's memory analysis (MiB, the
      largest over its compiled shapes): state, batch, outputs and temporaries.
    best_epoch: with fit(restore_best=...), the 1-based epoch whose weights were returned.
    wall_time_s: seconds for the whole run.
    """

    steps: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {"learning_rate": [], "loss": [], "accuracy": [], "batch_size": []}
    )
    epochs: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {
            k: []
            for k in (
                "epoch",
                "updates",
                "train_loss",
                "train_accuracy",
                "val_loss",
                "val_accuracy",
                "train_time_s",
                "eval_time_s",
            )
        }
    )
    status: str = DONE
    diverged_at_step: int | None = None
    compile_time_s: float = 0.0
    num_compilations: int = 0
    step_memory_mib: float = 0.0
    best_epoch: int | None = None
    wall_time_s: float = 0.0

    def final(self, key: str) -> float:
        """Last recorded per-epoch value of `key`, NaN when there is none (or it diverged)."""
        values = self.epochs.get(key, [])
        if self.status == DIVERGED or not values:
            return math.nan
        return float(values[-1])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        def unnull(values):
            return [math.nan if v is None else v for v in values]

        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{
                **{k: v for k, v in d.items() if k in known},
                "steps": {k: unnull(v) for k, v in d["steps"].items()},
                "epochs": {k: unnull(v) for k, v in d["epochs"].items()},
            }
        )


def to_jsonable(obj: Any) -> Any:
    """Converts dataclasses, NumPy/JAX values and tuples to JSON types; NaN/inf become None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy / jax arrays and scalars
        return to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, str | int | bool) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The one atomic writer for results, plots and benchmarks: yields a temporary path beside
    `path`; when the block ends without error the file is flushed to disk and renamed onto `path`
    (normal permissions), otherwise removed. A crash or interrupt leaves either the previous file
    or the new one, never half of one.

      >>> import os, tempfile
      >>> target = os.path.join(tempfile.mkdtemp(), "out", "notes.txt")
      >>> with atomic_path(target) as tmp:
      ...     _ = tmp.write_text("done")
      >>> open(target).read(), os.listdir(os.path.dirname(target))
      ('done', ['notes.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Writes `obj` as JSON (`to_jsonable`, indented) to `path` atomically (`atomic_path`)."""
    text = json.dumps(to_jsonable(obj), indent=1, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically (`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(jaxsched.__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """Library versions, device and host facts for a results file."""
    import flax
    import jax
    import jaxlib
    import optax

    devices = jax.devices()
    return {
        "jaxsched": jaxsched.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        # "huge pages" when glibc maps large buffers with huge pages (jaxsched.host_memory)
        "host_memory": host_memory.status(),
        "git_commit": _git("rev-parse", "HEAD") or None,
        # Uncommitted changes in the checkout that ran (None outside a git checkout).
        "git_dirty": None if (status := _git("status", "--porcelain")) is None else status != "",
    }


def results_document(
    experiment: str,
    config: Any,
    runs: list[Mapping[str, Any]],
    summary: Mapping[str, Any],
    *,
    status: str,
    wall_time_s: float,
    started_at: str,
) -> dict[str, Any]:
    """The standard results.json layout shared by all experiments, as plain JSON types."""
    return to_jsonable(
        {
            "experiment": experiment,
            "status": status,
            "config": config,
            "environment": dict(environment()),
            "started_at": started_at,
            "finished_at": now_iso() if status != "running" else None,
            "wall_time_s": wall_time_s,
            "summary": summary,
            "runs": list(runs),
        }
    )


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
