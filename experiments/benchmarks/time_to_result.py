"""Time to result: wall-clock seconds of the commands a user waits for, end to end.

    python -m collapse_sim.experiments.benchmarks.time_to_result --out results/time_to_result.json

Runs, each as a fresh process with its own (initially empty) compilation cache folder:

1. ``collapse-sim`` (the default experiment: 4 regimes, 256 seeds, 10 generations), cold;
2. the same with ``run.resume=false`` (the program store and JAX's cache are warm: it traces and
   compiles nothing);
3. a 33-point sweep on the command line: ``regime=mix``, ``regime.real_fraction`` 0.0..1.0 in
   11 steps × ``world.T`` 20, 40, 80, 128 seeds, 10 generations (``--multirun``: one grid call, T padded);
4. the same 33 points from Python, ``simulate(..., grid=...)``.

Prints and writes JSON: seconds per command, the 1-minute load average before and after
each (the machine may be shared), and the compile counts the runs recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRACTIONS = ",".join(f"{i / 10:.1f}" for i in range(11))
SWEEP = ["--multirun", "regime=mix", f"regime.real_fraction={FRACTIONS}", "world.T=20,40,80", "run.n_seeds=128",
         "run.figure=false"]
GRID = f"""
import collapse_sim as cs
rs = cs.simulate("regression", "mix", n_seeds=128, n_generations=10,
                 grid={{"T": [20, 40, 80], "real_fraction": [{FRACTIONS}]}})
print(len(rs), rs[0]["test_error"].shape)
"""


def timed(cmd: list[str], env: dict, cwd: Path) -> dict:
    load = os.getloadavg()[0]
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return {"command": " ".join(cmd[2:] if cmd[1] == "-m" else cmd), "seconds": round(seconds, 2),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def programs(root: Path) -> list[int]:
    """Programs compiled (or loaded) per run; the jobs of one grid call share theirs, counted once."""
    metas = [json.loads(p.read_text()) for p in sorted(root.rglob("results.json"))]
    return [m["compile"]["programs"] for m in metas if m.get("grid", {}).get("point", 0) == 0]


def grid_calls(root: Path) -> int:
    """Compiled calls that ran the jobs below ``root``: one per grid, one per job outside a grid."""
    return len(programs(root))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the timings here as JSON")
    ap.add_argument("--skip", nargs="*", default=[], choices=["default", "rerun", "sweep", "grid"])
    args = ap.parse_args(argv)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
        env.pop("COLLAPSE_SIM_NO_CACHE", None)
        env.pop("COLLAPSE_SIM_CACHE_DIR", None)
        cli = [sys.executable, "-m", "collapse_sim"]
        if "default" not in args.skip:
            out["default"] = timed([*cli, f"hydra.sweep.dir={tmp / 'default'}"], env, tmp)
            out["default"]["programs"] = programs(tmp / "default")
        if "rerun" not in args.skip:
            out["rerun"] = timed([*cli, f"hydra.sweep.dir={tmp / 'default'}", "run.resume=false"], env, tmp)
        if "sweep" not in args.skip:
            out["sweep"] = timed([*cli, *SWEEP, f"hydra.sweep.dir={tmp / 'sweep'}"], env, tmp)
            out["sweep"]["programs"] = sum(programs(tmp / "sweep"))
            out["sweep"]["calls"] = grid_calls(tmp / "sweep")
        if "grid" not in args.skip:
            out["grid"] = timed([sys.executable, "-c", GRID], env, tmp)
    print(json.dumps(out, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
