"""Measured choices remembered per machine, so a probe runs once, not on every call.

`sweep.fit_grid(strategy="auto")` times its two strategies on the first batch and trains with
the faster; the winner depends only on the compiled program (model, optimizer, batch shape),
the number of members and the machine, so it is stored here under a key made of exactly those
and read back by every later call with the same key (the probe's compilations and timed steps
are then skipped). The store is one small JSON file per machine: $JAXSCHED_DECISIONS, else
$XDG_CACHE_HOME/jaxsched/decisions.json (~/.cache/jaxsched/decisions.json); "off" disables it.
An unreadable store is ignored (and rewritten by the next decision): it only costs a probe.
"""

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import jax

from jaxsched import compile_cache, results

ENV = "JAXSCHED_DECISIONS"  # the JSON file; "off" disables remembering


def default_path() -> Path | None:
    """$JAXSCHED_DECISIONS, else $XDG_CACHE_HOME/jaxsched/decisions.json; None when "off".

    Examples:
      >>> import os
      >>> from jaxsched import decisions
      >>> os.environ["JAXSCHED_DECISIONS"] = "/tmp/d.json"
      >>> str(decisions.default_path())
      '/tmp/d.json'
      >>> os.environ["JAXSCHED_DECISIONS"] = "off"
      >>> decisions.default_path() is None
      True
      >>> del os.environ["JAXSCHED_DECISIONS"]
    """
    return compile_cache.cache_path(ENV, "decisions.json")


def machine() -> dict[str, Any]:
    """What a timing depends on besides the program: backend, device kind and count, jax."""
    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
    }


def key(kind: str, program_text: str, **fields: Any) -> str:
    """A digest of `kind`, the program (e.g. a lowered step's StableHLO text, which holds the
    model, optimizer and shapes), `fields` (e.g. the member count) and `machine()`."""
    payload = json.dumps(
        {"kind": kind, "fields": fields, "machine": machine()}, sort_keys=True, default=str
    )
    digest = hashlib.sha256(payload.encode())
    digest.update(program_text.encode())
    return f"{kind}:{digest.hexdigest()[:32]}"


def _read(path: Path) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring the unreadable decision store {path}: {exc}", stacklevel=3)
        return {}
    return stored if isinstance(stored, dict) else {}


def recall(decision_key: str, path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The decision stored under `decision_key` (a dict), or None (none, or remembering off)."""
    path = Path(path) if path is not None else default_path()
    if path is None:
        return None
    value = _read(path).get(decision_key)
    return value if isinstance(value, dict) else None


def remember(
    decision_key: str, decision: dict[str, Any], path: str | os.PathLike | None = None
) -> None:
    """Stores `decision` (JSON-able) under `decision_key`, atomically; a store that cannot be
    written only costs the next call a probe (a warning, no error)."""
    path = Path(path) if path is not None else default_path()
    if path is None:
        return
    stored = _read(path)
    stored[decision_key] = {**decision, "machine": machine()}
    try:
        results.write_json_atomic(path, stored)
    except OSError as exc:
        warnings.warn(f"could not remember a decision in {path}: {exc}", stacklevel=2)
