"""The theory ledger: every formula of ``theory/`` with its status, its source and a fresh Monte Carlo
z-score from the engine at a default setting.

    collapse-sim ledger [--markdown] [--seed N] [--world NAME ...]
    python -m collapse_sim.theory.ledger [same options]

One row per formula (``theory/ledger_regression.py``, ``ledger_gaussian.py``, ``ledger_discrete.py``):
id, world, formula, status (exact / exact one step / limit / bound / paper claim / paper bound /
approx), source (paper and equation, or the derivation in theory/derivations.md, theory/curation.md,
theory/toedit_audit.md), setting, theory value, MC mean ± SE, seeds, z and flag (rules in
``theory/ledger_core.py``).  The engine runs of a world are one jit-compiled call.  Unlike the rest of
``theory/`` (closed forms only) the ledger runs the simulator: it is the index that ties the two.

``NOT_FORMULAS`` names the public functions of ``theory/`` that are not formulas (argument checks, metrics,
distributions, the regression dispatcher); every other public function must appear in a row
(tests/theory/test_ledger.py).  The exit status is 0 even with flags; the last lines say how many
rows are flagged and how long the ledger took.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as experiments/main.py: small matrices, shared cores

COLUMNS = ("id", "world", "formula", "status", "source", "setting", "theory", "MC mean ± SE", "seeds", "z", "flag")

_METRIC = "a metric of one model (the quantity itself, not a prediction about a run)"
_DIST = "builds or validates a distribution"
_CHECK = "argument check"
NOT_FORMULAS = {
    "categorical.entropy": _METRIC,
    "categorical.heterozygosity": _METRIC,
    "categorical.support_size": _METRIC,
    "categorical.uniform_distribution": _DIST,
    "categorical.zipf_distribution": _DIST,
    "categorical.validate_distribution": _DIST,
    "checks.check_G": _CHECK,
    "checks.check_choice": _CHECK,
    "checks.check_cov": _CHECK,
    "checks.check_fraction": _CHECK,
    "checks.check_sigma2": _CHECK,
    "checks.check_sizes": _CHECK,
    "gaussian.sample_sizes": "per-generation sample sizes (argument handling)",
    "gaussian_metrics.tail_mass": _METRIC,
    "gaussian_metrics.tail_mass_1d": _METRIC,
    "gaussian_metrics.w2sq_gaussians": _METRIC,
    "gaussian_metrics.w2sq_gaussians_1d": _METRIC,
    "regression_run.expected_test_error": "dispatcher: picks the regression curve of a (regime, design, ridge); "
    "its curves are the regression rows",
}


WORLDS = ("regression", "gaussian", "kde", "categorical")  # table order


def ledgers(worlds=None) -> list:
    """The world ledgers in table order, optionally only the named worlds."""
    unknown = [w for w in worlds or () if w not in WORLDS]
    if unknown:
        raise ValueError(f"--world {', '.join(unknown)} is not known; allowed: {', '.join(WORLDS)}")
    from collapse_sim.theory import ledger_discrete, ledger_gaussian, ledger_regression

    every = [ledger_regression.LEDGER, ledger_gaussian.LEDGER, ledger_discrete.KDE, ledger_discrete.CATEGORICAL]
    return [w for w in every if not worlds or w.name in worlds]


def theory_functions(theory_dir: Path = Path(__file__).parent) -> set:
    """``module.function`` for every public function defined in theory/*.py (the ledger's own modules aside)."""
    out = set()
    for path in sorted(theory_dir.glob("*.py")):
        if path.stem.startswith("ledger") or path.stem.startswith("__"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                out.add(f"{path.stem}.{node.name}")
    return out


def covered_functions() -> set:
    return {fn for world in ledgers() for f in world.formulas for fn in f.functions}


def run(seed: int = 0, worlds=None, max_seeds=None, log=None, records_out=None) -> tuple[list, dict]:
    """(results in table order, {world: {"compile", "run", "theory"} seconds}).  Each world's engine runs
    are one compiled call; the next world compiles on a second thread while one runs and is scored.
    ``records_out``, a dict, receives each world's records by run id."""
    from collapse_sim.theory import ledger_core as lc

    results, seconds = [], {}
    chosen = ledgers(worlds)
    with lc.float64(), ThreadPoolExecutor(max_workers=2) as pool:
        programs = [pool.submit(lc.compile_world, w, seed, max_seeds) for w in chosen]
        for world, future in zip(chosen, programs):
            program = future.result()
            records, run_s = program()
            if records_out is not None:
                records_out[world.name] = records
            t0 = time.perf_counter()
            results += lc.evaluate(world, records)
            seconds[world.name] = {"compile": program.compile_s, "run": run_s, "theory": time.perf_counter() - t0}
            if log:
                log(f"[ledger] {world.name}: {len(world.runs)} runs, {len(world.formulas)} rows; "
                    + ", ".join(f"{k} {v:.1f} s" for k, v in seconds[world.name].items()))
    return results, seconds


# --------------------------------------------------------------------------- tables


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def cells(r) -> list[str]:
    f, c = r.formula, r.check
    if c is None:
        theory = mc = seeds = z = "—"
        setting = f"no MC: {f.note}"
    else:
        theory = _num(c.theory) + (f" ± {c.theory_se:.2g}" if c.theory_se > 0 else "")
        mc, seeds, setting = f"{_num(c.mc)} ± {c.mc_se:.2g}", str(c.n_seeds), r.setting
        z = f"{r.z:+.2f}" if math.isfinite(r.z) else f"{r.z:+}"
    return [f.id, r.world, f.formula, f.status, f.source, setting, theory, mc, seeds, z, r.flag]


def markdown_table(results) -> str:
    def esc(s):
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in results]
    return "\n".join(lines)


def text_table(results) -> str:
    rows = [list(COLUMNS)] + [cells(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def summary(results) -> str:
    flagged = [r.formula.id for r in results if r.flagged]
    approx = sum(r.flag == "approx" for r in results)
    no_mc = sum(r.check is None for r in results)
    line = (f"{len(results)} formulas, {len(flagged)} flagged (z>4 or above a bound); "
            f"{approx} paper claims or approximations off by > 4 SE (approx); {no_mc} without an engine counterpart")
    return line + (f"\nflagged: {', '.join(flagged)}" if flagged else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="collapse-sim ledger", description=__doc__.split("\n\n")[0])
    p.add_argument("--markdown", action="store_true", help="print a GitHub markdown table (for the README)")
    p.add_argument("--seed", type=int, default=0, help="root seed of every engine run (default 0)")
    p.add_argument("--world", action="append", help="only this world (repeatable): regression, gaussian, kde, "
                   "categorical")
    args = p.parse_args(argv)
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    if not 0 <= args.seed < 2**32:
        p.error(f"--seed={args.seed} is not allowed; allowed: a whole number in [0, 2**32)")
    try:
        ledgers(args.world)
    except ValueError as e:
        p.error(str(e))
    results, seconds = run(args.seed, args.world, log=lambda s: print(s, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    print(markdown_table(results) if args.markdown else text_table(results))
    print()
    print(summary(results))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"wall time {wall:.1f} s, CPU time {usage.ru_utime + usage.ru_stime:.1f} s (one compiled call per world: "
          f"{', '.join(seconds)}; a world compiles while the one before it runs); seed {args.seed}; "
          f"{os.cpu_count()} CPUs, load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
