"""Compiled programs kept on disk by what decides them, so a rerun neither traces nor compiles.

JAX's persistent compilation cache is keyed by the lowered program, so finding a program
there still costs tracing and lowering it (0.5-1 s for a run's program on a 2-core CPU).
This store keys a compiled executable by what the program is built from instead:

- the run's skeleton (``compute.skeleton``: world and regime with their traced numbers
  blanked, the run settings that set shapes), whether it is a grid, the argument shapes and
  the XLA options;
- a fingerprint of everything else that could change it: the source of ``simulator/`` and
  ``theory/``, the versions of jax, jaxlib and numpy, the backend and its devices, ``XLA_FLAGS``
  and the JAX settings read while tracing (x64, the PRNG implementation, matmul precision).

An entry is ``jax.experimental.serialize_executable``'s bytes and the program's argument
and output trees (pickled); the shapes of a program's carried state are kept the same way.
It lives in ``$XDG_CACHE_HOME/collapse_sim/programs`` (else ``~/.cache/...``), beside JAX's
cache, and is on and off with it (``run.compile_cache``, ``COLLAPSE_SIM_NO_CACHE=1``).  An
entry that does not load (another jaxlib, a truncated file) is compiled again and replaced.
A load counts as a compiled program in ``results.json`` (``compile``), its seconds as
compile seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import tempfile
import threading
import time
from pathlib import Path

import jax
import numpy as np

from collapse_sim.simulator.provenance import STORE_LOAD_EVENT as LOAD_EVENT, cache_folder

_fingerprint: str | None = None


def folder() -> Path:
    return cache_folder().parent / "programs"


def _source_files():
    for package in ("collapse_sim.simulator", "collapse_sim.theory"):
        spec = importlib.util.find_spec(package)
        for root in spec.submodule_search_locations or []:
            yield from sorted(Path(root).rglob("*.py"))


def fingerprint() -> str:
    """What decides a compiled program besides its config and shapes (computed once a process)."""
    global _fingerprint
    if _fingerprint is None:
        import jaxlib

        h = hashlib.sha256()
        for f in _source_files():
            h.update(f.name.encode())
            h.update(f.read_bytes())
        h.update(repr((jax.__version__, jaxlib.__version__, np.__version__, jax.default_backend(),
                       [(d.platform, d.device_kind) for d in jax.devices()], os.environ.get("XLA_FLAGS", ""),
                       jax.config.jax_enable_x64, jax.config.jax_threefry_partitionable,
                       str(jax.config.jax_default_prng_impl), str(jax.config.jax_default_matmul_precision),
                       jax.process_count())).encode())
        _fingerprint = h.hexdigest()
    return _fingerprint


def _path(key: str, kind: str) -> Path:
    digest = hashlib.sha256(f"{fingerprint()}|{kind}|{key}".encode()).hexdigest()[:40]
    return folder() / f"{digest}.{kind}"


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:  # a store that cannot be written only means the next run compiles again
        pass


def _read(path: Path):
    try:
        return pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except Exception:  # truncated or from another version: compile again, replace it
        return None


def shapes(key: str, make):
    """``make()`` (a pytree of ``jax.ShapeDtypeStruct``, e.g. ``jax.eval_shape``'s), kept under ``key``."""
    path = _path(key, "shapes")
    found = _read(path)
    if found is not None:
        return found
    out = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), make())
    _write(path, pickle.dumps(out))
    return out


_lapack_ready = False


def _initialize_lapack() -> None:
    """The CPU LAPACK kernels a program calls (Cholesky, eigh, solves) take their function
    pointers when JAX first lowers one; a program loaded without lowering anything would call
    null pointers.  JAX's own initialiser where it has one, else lowering one of each."""
    global _lapack_ready
    if _lapack_ready or jax.default_backend() != "cpu":
        return
    try:
        from jax._src.lax.linalg import initialize_lapack

        initialize_lapack()
    except ImportError:
        import jax.numpy as jnp

        eye = jnp.eye(2)
        jax.jit(lambda a: (jnp.linalg.cholesky(a), jnp.linalg.eigh(a), jnp.linalg.solve(a, a))).lower(eye)
    _lapack_ready = True


def load(key: str):
    """The compiled program stored under ``key``, or None."""
    from jax.experimental import serialize_executable

    t = time.perf_counter()
    found = _read(_path(key, "exe"))
    if found is None:
        return None
    _initialize_lapack()
    try:
        exe = serialize_executable.deserialize_and_load(*found)
    except Exception:
        return None
    jax.monitoring.record_event_duration_secs(LOAD_EVENT, time.perf_counter() - t)
    return exe


def _count_hits(event, **kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":  # reported in the thread that compiles
        _local.hits = getattr(_local, "hits", 0) + 1


_local = threading.local()
_setting = threading.Lock()
_compiling = [0, None]  # compiles in progress, the setting they replaced


@contextlib.contextmanager
def compiling():
    """Compile a program for the store: JAX's persistent cache does not keep it (the store
    does), so JAX never serves it either, which matters because an executable that JAX
    loaded from its cache serializes without all of its kernels (a program stored from one
    fails to run: "Function wrapped_convert not found").  Yields a list that holds True
    after the block when the program may be stored (it was compiled, not loaded by JAX).
    Safe in several threads at once: the setting is restored when the last compile ends."""
    with _setting:
        if not getattr(compiling, "_listening", False):
            jax.monitoring.register_event_listener(_count_hits)
            compiling._listening = True
        if _compiling[0] == 0:
            _compiling[1] = jax.config.jax_persistent_cache_min_compile_time_secs
            jax.config.update("jax_persistent_cache_min_compile_time_secs", float("inf"))
        _compiling[0] += 1
    hits = getattr(_local, "hits", 0)
    fresh: list[bool] = []
    try:
        yield fresh
    finally:
        with _setting:
            _compiling[0] -= 1
            if _compiling[0] == 0:
                jax.config.update("jax_persistent_cache_min_compile_time_secs", _compiling[1])
    fresh.append(getattr(_local, "hits", 0) == hits)


def save(key: str, compiled) -> None:
    """Keep ``compiled`` under ``key`` (a program that cannot be serialized is not kept)."""
    from jax.experimental import serialize_executable

    try:
        data = pickle.dumps(serialize_executable.serialize(compiled))
    except Exception:
        return
    _write(_path(key, "exe"), data)
