"""JAX's persistent compilation cache, on by default for the experiment runners: a program
compiled once on a machine is read back from disk by every later run (an interrupted run that
resumes, a rerun with another seed, the next experiment with the same model) instead of being
compiled again. A cache hit is the same executable, so results are unchanged."""

import os
from pathlib import Path

import jax

ENV = "JAXSCHED_COMPILE_CACHE"  # the folder; "off" disables the cache
MAX_BYTES = 4 * 2**30  # beyond this, `enable` deletes the oldest entries


def default_dir() -> Path | None:
    """$JAXSCHED_COMPILE_CACHE, else $XDG_CACHE_HOME/jaxsched/xla (~/.cache/jaxsched/xla); None
    when $JAXSCHED_COMPILE_CACHE is "off".

    Examples:
      >>> import os
      >>> from jaxsched import compile_cache
      >>> os.environ["JAXSCHED_COMPILE_CACHE"] = "/tmp/xla-cache"
      >>> str(compile_cache.default_dir())
      '/tmp/xla-cache'
      >>> os.environ["JAXSCHED_COMPILE_CACHE"] = "off"
      >>> compile_cache.default_dir() is None
      True
      >>> del os.environ["JAXSCHED_COMPILE_CACHE"]
    """
    return cache_path(ENV, "xla")


def cache_path(env: str, name: str) -> Path | None:
    """$`env` when set (None when it is "off"), else $XDG_CACHE_HOME/jaxsched/`name`
    (~/.cache/jaxsched/`name`): where jaxsched keeps a per-machine cache."""
    value = os.environ.get(env)
    if value is not None:
        return None if value.strip().lower() == "off" else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxsched" / name


def enable(directory: str | os.PathLike | None = None) -> Path | None:
    """Turns on JAX's persistent compilation cache in `directory` (default `default_dir()`)
    for every program, however quickly it compiled, after pruning the folder to MAX_BYTES
    (`prune`). A cache folder already configured (JAX_COMPILATION_CACHE_DIR, or jax.config)
    is kept. Returns the folder in use, or None when disabled. Call before the first
    compilation.

    JAX's own size cap (`jax_compilation_cache_max_size`) is left off on purpose: with it, every
    write lists and stats the whole folder under a file lock (quadratic in the number of
    entries; it made a cold test run of ~3,000 programs minutes slower), where `prune` looks
    once per process.

    Examples:
      >>> from jaxsched import compile_cache
      >>> folder = compile_cache.enable()
      >>> folder is None or folder.is_dir()
      True
    """
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return Path(configured)
    folder = Path(directory).expanduser() if directory is not None else default_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable cache only costs compile time
    prune(folder)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    return folder


def prune(
    folder: str | os.PathLike, max_bytes: int = MAX_BYTES, keep_fraction: float = 0.75
) -> int:
    """Deletes the oldest-written files of `folder` until it holds at most
    keep_fraction * max_bytes, when it holds more than max_bytes. Returns the bytes freed.

    Oldest written, not least recently read: JAX does not mark a cache hit on disk without its
    own (slow, above) cap, so an old entry still in use is compiled and written once more.
    A file another process deletes or replaces meanwhile is skipped.

    Examples:
      >>> import os, tempfile
      >>> from jaxsched import compile_cache
      >>> folder = tempfile.mkdtemp()
      >>> for i in range(4):
      ...     path = os.path.join(folder, f"entry{i}-cache")
      ...     _ = open(path, "wb").write(b"x" * 100)
      ...     os.utime(path, (i, i))  # entry0 is the oldest
      >>> compile_cache.prune(folder, max_bytes=350, keep_fraction=0.6)
      200
      >>> sorted(os.listdir(folder))
      ['entry2-cache', 'entry3-cache']
    """
    entries = []
    for entry in os.scandir(folder):
        try:
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                entries.append((info.st_mtime, info.st_size, entry.path))
        except OSError:
            continue
    total = sum(size for _, size, _ in entries)
    if total <= max_bytes:
        return 0
    freed, target = 0, total - keep_fraction * max_bytes
    for _, size, path in sorted(entries):
        if freed >= target:
            break
        try:
            os.remove(path)
            freed += size
        except OSError:
            continue
    return freed
