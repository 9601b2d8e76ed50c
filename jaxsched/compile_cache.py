"""JAX's persistent compilation cache, on by default for the experiment runners: a program
compiled once on a machine is read back from disk by every later run (an interrupted run that
resumes, a rerun with another seed, the next experiment with the same model) instead of being
compiled again. A cache hit is the same executable, so results are unchanged."""

import importlib.util
import os
from pathlib import Path

import jax

ENV = "JAXSCHED_COMPILE_CACHE"  # the folder; "off" disables the cache
MAX_BYTES = 4 * 2**30  # least recently used entries go beyond this


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
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() == "off" else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxsched" / "xla"


def enable(directory: str | os.PathLike | None = None) -> Path | None:
    """Turns on JAX's persistent compilation cache in `directory` (default `default_dir()`)
    for every program, however quickly it compiled, up to MAX_BYTES (where `filelock`, a
    dependency, is installed: JAX needs it for the cap). A cache folder already
    configured (JAX_COMPILATION_CACHE_DIR, or jax.config) is kept. Returns the folder in use,
    or None when disabled. Call before the first compilation.

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
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    # JAX caps the size with file locks: capped without `filelock`, every read and write fails
    # (a warning) and the cache stays empty, so without it the cache is left uncapped.
    if importlib.util.find_spec("filelock") is not None:
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return folder
