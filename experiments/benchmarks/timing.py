"""Timing helpers of ``collapse-bench``: a log line, the best of a few timed calls, and a
``jax.profiler`` summary of a compiled program (shared by experiments/benchmarks/benchmark.py
and experiments/benchmarks/transformer.py)."""

from __future__ import annotations

import collections
import math
import re
import tempfile
import time
from pathlib import Path

import jax


def log(msg: str) -> None:
    print(f"[collapse-bench] {msg}", flush=True)


def best_time(fn, budget: float, max_reps: int = 3):
    """(best seconds, last output) over up to ``max_reps`` calls, fewer when one call
    takes more than a third of ``budget`` (then a single call is the measurement)."""
    best, out, spent = math.inf, None, 0.0
    for _ in range(max_reps):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent + dt > budget:
            break
    return best, out


def profile_compiled(compiled, args: tuple, calls: int = 3, top: int = 8) -> dict:
    """Where a compiled program spends its time: a ``jax.profiler`` trace of ``calls``
    calls, XLA ops summed over the worker threads (loop and call wrappers
    excluded), the ``top`` ops by share, each named by the jax op it came from."""
    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            for _ in range(calls):
                jax.block_until_ready(compiled(*args))
        data = jax.profiler.ProfileData.from_file(str(next(Path(tmp).rglob("*.xplane.pb"))))
        per_op = collections.Counter()
        for plane in data.planes:
            for line in plane.lines:
                if "XLAEigen" not in line.name and "PjRtCpu" not in line.name and "/device:" not in plane.name:
                    continue
                for ev in line.events:
                    if ev.name.startswith(("ThunkExecutor", "while", "call", "conditional", "end:")):
                        continue
                    per_op[ev.name] += ev.duration_ns
    hlo = {}
    for m in re.finditer(r"%([\w.-]+) = [^\n]*metadata=\{op_name=\"([^\"]+)\"", compiled.as_text()):
        hlo.setdefault(m.group(1), re.sub(r"^jit\(\w+\)/", "", m.group(2)))
    total = sum(per_op.values()) or 1
    ops = [{"op": k, "source": hlo.get(k, ""), "ms_per_call": v / 1e6 / calls, "share": v / total} for k, v in per_op.most_common(top)]
    kinds = collections.Counter()
    for k, v in per_op.items():
        kinds[_op_kind(k, hlo.get(k, ""))] += v / total
    return {"calls": calls, "busy_ms_per_call": total / 1e6 / calls, "ops": ops, "kinds": dict(kinds.most_common())}


def _op_kind(name: str, source: str) -> str:
    """A coarse class of an XLA op for the profile summary."""
    if name.startswith(("eigh", "cholesky", "lu", "triangular", "qr", "svd")) or "/eigh" in source:
        return "LAPACK (eigh, cholesky, ...)"
    if any(t in source for t in ("_normal", "_uniform", "threefry", "random_bits", "_gumbel", "erfinv")):
        return "random numbers"
    if name.startswith(("sort", "top_k")) or any(t in source for t in ("sort", "top_k", "searchsorted")):
        return "sort / top_k / searchsorted"
    if name.startswith("dot") or "dot_general" in source:
        return "matmul (dot)"
    if name.startswith("SlinkyThreadPool") or not source:
        return "runtime / unattributed"
    return "elementwise, reductions, copies"
