"""Speed of ``simulator.normal.normal`` against ``jax.random.normal`` (float64, CPU).

    python -m collapse_sim.experiments.benchmarks.normal_speed [--reps 60] [--effort both]

For each case both programs are compiled with the same XLA options (``--effort``: ``full``, XLA's
default, or ``fast``, LLVM's optimisations off as ``run.compile_effort=fast`` in simulator/compute.py)
and called alternately ``--reps`` times; the best time of each is printed with their ratio (the machine
may be shared: only the best of many calls, taken in one run, compares).  Cases: one key drawing
(256, 40), (256, 400), (256, 4000); 256 vmapped keys each drawing (40,) and (400,).  Then the parts on
(256, 1000) uniforms: XLA's ``erf_inv`` against ``normal.erfinv`` with its own log and with XLA's
``log``, and the two logs alone.  Each row also gives the largest relative difference of the outputs.
Takes about a minute.
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from collapse_sim.simulator import normal as nrm
from collapse_sim.simulator.compute import FAST_COMPILE

EFFORTS = {"full": {}, "fast": dict(FAST_COMPILE)}


def best_ms(fns: list, args: tuple, reps: int) -> list[float]:
    """Best milliseconds of each compiled ``fn(*args)``, the functions called in turn ``reps`` times."""
    best = [math.inf] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            best[i] = min(best[i], (time.perf_counter() - t0) * 1e3)
    return best


def max_rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), np.finfo(a.dtype).tiny)))


def compare(label: str, fns: list, args: tuple, options: dict, reps: int) -> None:
    compiled = [jax.jit(f).lower(*args).compile(options) for f in fns]
    outs = [c(*args) for c in compiled]
    times = best_ms(compiled, args, reps)
    cells = "".join(f"{t:9.3f}" for t in times)
    ratios = "".join(f"{times[0] / t:7.2f}x" for t in times[1:])
    diff = f"   max rel diff {max(max_rel(outs[0], o) for o in outs[1:]):.1e}" if len(fns) > 1 else ""
    print(f"  {label:34s}{cells}  {ratios}{diff}", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=60, help="calls of each program per case (best is kept)")
    ap.add_argument("--effort", choices=["full", "fast", "both"], default="both")
    args = ap.parse_args(argv)
    key = jax.random.key(0)
    keys = jax.random.split(key, 256)
    print(f"jax {jax.__version__}, {jax.devices()[0].device_kind}, load average {os.getloadavg()[0]:.2f}")
    for effort in ["full", "fast"] if args.effort == "both" else [args.effort]:
        options = EFFORTS[effort]
        reps = args.reps if effort == "full" else max(3, args.reps // 4)
        print(f"\ncompile effort {effort}; best of {reps} calls, ms: jax.random.normal, normal.normal, ratio")
        for shape in [(256, 40), (256, 400), (256, 4000)]:
            fns = [lambda k, s=shape: jax.random.normal(k, s, jnp.float64), lambda k, s=shape: nrm.normal(k, s, jnp.float64)]
            compare(f"key -> {shape}", fns, (key,), options, reps)
        for shape in [(40,), (400,)]:
            fns = [jax.vmap(lambda k, s=shape: jax.random.normal(k, s, jnp.float64)),
                   jax.vmap(lambda k, s=shape: nrm.normal(k, s, jnp.float64))]
            compare(f"256 vmapped keys -> {shape}", fns, (keys,), options, reps)
        u = jax.random.uniform(key, (256, 1000), jnp.float64, np.nextafter(-1.0, 0.0), 1.0)
        print("  parts on (256, 1000) uniforms, ms: XLA, ours (own log), ours (XLA log); ratios")
        fns = [jax.lax.erf_inv, nrm.erfinv, lambda x: nrm.erfinv(x, log_fn=jnp.log)]
        compare("erf_inv", fns, (u,), options, reps)
        compare("log((1-u)(1+u)): XLA, own", [lambda x: jnp.log((1 - x) * (1 + x)), lambda x: nrm.log((1 - x) * (1 + x))],
                (u,), options, reps)
        compare("uniform draw (both draw it)",
                [lambda k: jax.random.uniform(k, (256, 1000), jnp.float64, np.nextafter(-1.0, 0.0), 1.0)],
                (key,), options, reps)


if __name__ == "__main__":
    main()
