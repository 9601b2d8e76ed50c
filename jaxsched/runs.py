"""Run identity and output folders: a result belongs to the config, data and code that made it.

A run's identity is a digest of its config, the data it reads (file names, sizes and SHA-256
hashes, from `data.describe`), the number of devices it trains on and the jaxsched version.
`results.json` and every checkpoint store it; finished work is reused only under the same
identity, and work of another identity is never overwritten: it is moved aside with a
timestamp (`set_aside`).

Examples:
  >>> from jaxsched import runs
  >>> a = runs.identity({"seed": 0, "epochs": 5}, data=[])
  >>> b = runs.identity({"seed": 1, "epochs": 5}, data=[])
  >>> a["digest"] == b["digest"]
  False
  >>> runs.differences(a, b)
  ['config.seed: 0 -> 1']
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jaxsched
from jaxsched import results


class OutputError(ValueError):
    """The output folder cannot be created or written."""


class ResultsFileError(ValueError):
    """A results.json that cannot be read (corrupt, not a results document)."""


class RunConflictError(ValueError):
    """Finished work of another identity is in the way."""


def identity(config: Any, data: Sequence[Mapping[str, Any]], devices: int | None = None) -> dict:
    """{"digest", "config", "data", "devices", "jaxsched"}: what made a run, with a 16-hex
    SHA-256 digest of the rest. `data`: one `data.describe(...)` record per dataset read."""
    body = {
        "config": results.to_jsonable(config),
        "data": results.to_jsonable(list(data)),
        "devices": devices or 1,
        "jaxsched": jaxsched.__version__,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return {"digest": hashlib.sha256(canonical.encode()).hexdigest()[:16], **body}


def differences(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """What differs between two identities, one short line per difference (config fields,
    data files, devices, version); ["no identity recorded"] for files written before them."""
    if not stored or "digest" not in stored:
        return ["no run identity recorded (written by an older jaxsched)"]
    lines = []
    old_config, new_config = stored.get("config") or {}, current.get("config") or {}
    for key in sorted(set(old_config) | set(new_config)):
        if old_config.get(key) != new_config.get(key):
            lines.append(
                f"config.{key}: {_short(old_config.get(key))} -> {_short(new_config.get(key))}"
            )
    old_files, new_files = _files(stored.get("data")), _files(current.get("data"))
    for name in sorted(set(old_files) | set(new_files)):
        if old_files.get(name) != new_files.get(name):
            lines.append(
                f"data {name}: {_short(old_files.get(name), 12)} -> "
                f"{_short(new_files.get(name), 12)}"
            )
    if not lines and stored.get("data") != current.get("data"):
        lines.append("data: another source")
    for key in ("devices", "jaxsched"):
        if stored.get(key) != current.get(key):
            lines.append(f"{key}: {stored.get(key)} -> {current.get(key)}")
    return lines or ([] if stored["digest"] == current["digest"] else ["digest"])


def files_record(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """A `data.describe`-shaped record of other input files a run reads (e.g. an earlier
    results.json its bounds come from): name, size and SHA-256 of each."""
    files = []
    for path in map(Path, paths):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        files.append(
            {"name": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
        )
    return {"dataset": "inputs", "format": "files", "directory": None, "files": files}


def _files(data: Any) -> dict[str, str]:
    """{"<dataset>/<file>": sha256} of a list of data.describe records."""
    out = {}
    for record in data or []:
        for f in record.get("files", []):
            out[f"{record.get('dataset')}/{f.get('name')}"] = f.get("sha256")
        if not record.get("files"):
            out[f"{record.get('dataset')}"] = f"{record.get('format')}:{record.get('directory')}"
    return out


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def prepare_output(workdir: str | os.PathLike) -> Path:
    """Creates `workdir` (and parents) and checks a file can be written in it, before any
    work: raises OutputError naming the folder otherwise."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise OutputError(f"{workdir} exists and is not a folder")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=workdir)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"cannot write in {workdir}: {error.strerror or error}") from None
    return workdir


def set_aside(path: str | os.PathLike) -> Path:
    """Moves `path` (a file or folder) to `<path>.superseded-<UTC time>` beside it and returns
    the new path; nothing is deleted."""
    path = Path(path)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.superseded-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.superseded-{stamp}-{n}")
    path.rename(target)
    return target


def read_results(path: str | os.PathLike) -> dict[str, Any] | None:
    """The results document at `path`, None when there is no file; ResultsFileError naming
    the file when it is not a readable results document."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        doc = results.read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{path} is unreadable ({error})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs", []), list):
        raise ResultsFileError(f"{path} is not a jaxsched results document")
    return doc
