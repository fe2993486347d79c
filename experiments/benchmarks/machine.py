"""The machine a ``collapse-bench`` run measured: CPU, memory, versions, BLAS libraries and
their threads, environment, load and git commit, recorded in ``benchmark.json``."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp



def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git() -> dict:
    root = Path(__file__).resolve().parents[2]  # the repository
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return {"commit": head.stdout.strip() or None, "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def blas_info() -> list:
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [
        {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
        for i in threadpoolctl.threadpool_info()
    ]


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit the threads of every BLAS library loaded in the process (numpy's and
    scipy's OpenBLAS; the latter runs JAX's CPU LAPACK kernels) with threadpoolctl.
    Without threadpoolctl the environment the process started with decides
    (OPENBLAS_NUM_THREADS), and the JSON records ``blas`` as it was."""
    try:
        import threadpoolctl
    except ImportError:
        yield False
        return
    jnp.linalg.cholesky(jnp.eye(2)).block_until_ready()  # loads JAX's LAPACK (scipy's OpenBLAS) first
    with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
        yield True


def machine_info() -> dict:
    from collapse_sim.simulator.driver import versions

    v = versions()
    from importlib import metadata

    v["jaxlib"] = v.get("jaxlib") or metadata.version("jaxlib")
    try:
        import torch

        v["torch"] = torch.__version__
    except ImportError:
        v["torch"] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_gib(),
        "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "versions": v,
        "blas": blas_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS", "JAX_PLATFORMS")},
        "loadavg_start": list(os.getloadavg()),
        "git": _git(),
        "command": " ".join(["collapse-bench", *sys.argv[1:]]),
    }
