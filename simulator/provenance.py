"""What a run records about how it was made, and how long compiling took.

- :func:`provenance`: package version, git commit of the source checkout (None
  outside one; never fails), the full command line, library versions.
- :class:`CompileClock`: seconds spent tracing, lowering and compiling (or
  loading from the persistent cache) while it is active, from JAX's own
  monitoring events, so compile and compute time are measured apart.
- :func:`enable_compile_cache`: JAX's persistent compilation cache in the user's
  cache folder (``$XDG_CACHE_HOME/collapse_sim/jax``, else
  ``~/.cache/collapse_sim/jax``), off with ``COLLAPSE_SIM_NO_CACHE=1`` or
  ``run.compile_cache=false`` (which turn ``simulator/program_store.py`` off too).
"""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import jax
import numpy as np

SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the checkout when installed in editable mode

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",  # includes a persistent-cache load
)
STORE_LOAD_EVENT = "/collapse_sim/program_store/load_duration"


def versions() -> dict:
    """Library versions (flax and optax from their installed metadata: importing them costs
    0.3 s, and a closed-form run does not use them)."""
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": version("flax"),
        "optax": version("optax"),
        "numpy": np.__version__,
    }


@functools.lru_cache(maxsize=None)
def git_commit(root: Path = SOURCE_ROOT) -> dict | None:
    """{"commit", "dirty"} of the git checkout the package runs from, or None (not a checkout,
    no git, or any failure).  Asked once a process: the code running is the code imported at
    its start, however the checkout changes later (and a sweep's jobs skip three git calls each)."""
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)

        top = git("rev-parse", "--show-toplevel")
        if top.returncode or Path(top.stdout.strip()).resolve() != root.resolve():
            return None  # e.g. an installed copy inside some other repository
        commit = git("rev-parse", "HEAD").stdout.strip()
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
        return {"commit": commit, "dirty": dirty} if commit else None
    except Exception:
        return None


def provenance() -> dict:
    from collapse_sim import __version__

    return {
        "package_version": __version__,
        "git": git_commit(),
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "versions": versions(),
    }


class CompileClock:
    """``with CompileClock() as clock:`` ... ``clock.seconds`` (compile time inside the block),
    ``clock.programs`` (programs compiled or loaded), ``clock.cache_hits``/``cache_misses``."""

    _active: list["CompileClock"] = []
    _registered = False
    _mutex = threading.Lock()

    def __init__(self):
        self.seconds, self.programs, self.cache_hits, self.cache_misses = 0.0, 0, 0, 0

    @classmethod
    def _duration(cls, event, seconds, **kwargs):
        stored = event == STORE_LOAD_EVENT  # a program loaded from simulator/program_store.py
        if event in _COMPILE_EVENTS or stored:
            for c in cls._active:
                c.seconds += seconds
                c.programs += event == _COMPILE_EVENTS[-1] or stored
                c.cache_hits += stored

    @classmethod
    def _event(cls, event, **kwargs):
        for c in cls._active:
            c.cache_hits += event == "/jax/compilation_cache/cache_hits"
            c.cache_misses += event == "/jax/compilation_cache/cache_misses"

    def __enter__(self):
        with self._mutex:
            if not CompileClock._registered:
                jax.monitoring.register_event_duration_secs_listener(CompileClock._duration)
                jax.monitoring.register_event_listener(CompileClock._event)
                CompileClock._registered = True
            self._active.append(self)
        return self

    def __exit__(self, *exc):
        with self._mutex:
            self._active.remove(self)


def cache_folder() -> Path:
    """JAX's persistent cache folder: ``$COLLAPSE_SIM_CACHE_DIR/jax`` where that is set, else
    ``$XDG_CACHE_HOME/collapse_sim/jax``, else ``~/.cache/collapse_sim/jax`` (the program store,
    ``simulator/program_store.py``, is its sibling ``programs``)."""
    own = os.environ.get("COLLAPSE_SIM_CACHE_DIR")
    if own:
        return Path(own) / "jax"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "collapse_sim" / "jax"


def enable_compile_cache(enabled: bool = True, say=print) -> str | None:
    """Turn on JAX's persistent compilation cache (unless disabled); return its folder or None.

    A cache folder the user set for JAX (``JAX_COMPILATION_CACHE_DIR``) is kept as it is.
    Every program is cached (``jax_persistent_cache_min_compile_time_secs=0``), so a
    second identical run compiles nothing.  A folder that cannot be written turns the
    cache off with one line; it never stops a run."""
    if not enabled or os.environ.get("COLLAPSE_SIM_NO_CACHE", "") not in ("", "0"):
        return None
    own = jax.config.jax_compilation_cache_dir
    if own:
        return own
    folder = cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError("not writable")
    except OSError as e:
        say(f"compilation cache off: cannot write {folder} ({getattr(e, 'strerror', None) or e})")
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return str(folder)
