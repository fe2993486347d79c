"""Render every figure that applies to a result path (a run or a sweep).

    python -m collapse_sim.figures.render RESULTS_PATH [--out DIR]

Each world has its figures (``FIGURES``); a figure module declares which runs it draws
(``applies(meta)``), which config fields it can tell apart (``SHOWS``: names, or prefixes ending
in ".") and how many runs it can draw distinctly (``MAX_RUNS``, default one per line style).  A
figure draws its runs when they differ only in fields it shows and are not too many; runs that
no figure drew but that differ in swept parameters go to figures/sweep.py, which lays the
parameters out as facets, colour and a phase map.  A figure in ``ACROSS_WORLDS`` draws the runs of
several worlds together (one column per world) before the figures of each world are drawn.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections import defaultdict
from pathlib import Path

from collapse_sim.figures import style, sweep
from collapse_sim.simulator import results

_TEXT = (
    "collapse_sim.figures.lm_collapse",
    "collapse_sim.figures.lm_ppl_histograms",
    "collapse_sim.figures.synthetic_proportion",
    "collapse_sim.figures.ngram_diagnostics",
    "collapse_sim.figures.toedit_iterative",
)
# world name -> figure modules, each with ``plot(run_dirs, out_dir) -> [paths]`` and
# ``applies(meta) -> bool``.
FIGURES = {
    "regression": ("collapse_sim.figures.regression", "collapse_sim.figures.toedit_audit", "collapse_sim.figures.strong_collapse"),
    "gaussian": ("collapse_sim.figures.gaussian", "collapse_sim.figures.kazdan", "collapse_sim.figures.golden_ratio",
                 "collapse_sim.figures.temperature_phase"),
    "gmm": ("collapse_sim.figures.gmm",),
    "categorical": ("collapse_sim.figures.categorical",),
    "ngram": _TEXT,
    "transformer": _TEXT,
}
# Figures whose runs come from several worlds: they get every run they apply to, of any world.
ACROSS_WORLDS = ("collapse_sim.figures.curation_rules",)


def shows(module, metas) -> bool:
    """Whether the module's figure tells these runs apart: every swept field is one it shows,
    and there are no more runs than it can draw distinctly."""
    names = getattr(module, "SHOWS", ())
    limit = getattr(module, "MAX_RUNS", len(style.SERIES))
    ok = all(any(k == s or (s.endswith(".") and k.startswith(s)) for s in names) for k in sweep.swept(metas))
    return ok and (limit is None or len(metas) <= limit)


def render_runs(run_dirs, out_dir) -> list[Path]:
    """Render the figures of the given run folders into ``out_dir``."""
    by_world = defaultdict(list)
    for run in run_dirs:
        _, meta = results.load(run)
        by_world[meta["config"]["world"]["name"]].append((Path(run), meta))
    outs, across = [], set()
    for name in ACROSS_WORLDS:
        module = importlib.import_module(name)
        mine = [(r, m) for runs in by_world.values() for r, m in runs if module.applies(m)]
        if mine and shows(module, [m for _, m in mine]):
            paths = module.plot([r for r, _ in mine], out_dir)
            if paths:
                across |= {r for r, _ in mine}
            outs += paths
    for world, runs in sorted(by_world.items()):
        drawn = set(across)
        for name in FIGURES.get(world, ()):
            module = importlib.import_module(name)
            mine = [(r, m) for r, m in runs if module.applies(m)]
            if not mine or not shows(module, [m for _, m in mine]):
                continue
            paths = module.plot([r for r, _ in mine], out_dir)
            if paths:
                drawn |= {r for r, _ in mine}
            outs += paths
        rest = [(r, m) for r, m in runs if r not in drawn]
        if rest and sweep.parameters([m for _, m in rest]):
            outs += sweep.plot([r for r, _ in rest], out_dir)
    return outs


def render_path(path: Path, out_dir=None) -> list[Path]:
    """Render every figure for the runs at or below ``path``."""
    return render_runs(results.find_runs(path), out_dir or path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    path = Path(args.path)
    prog = "python -m collapse_sim.figures.render"
    if not path.exists():
        print(f"{prog}: error: no such result path: {path}", file=sys.stderr)
        sys.exit(2)
    runs = results.find_runs(path)
    if not runs:
        print(f"{prog}: error: no runs under {path} (a run folder holds {results.RECORDS})", file=sys.stderr)
        sys.exit(2)
    try:
        outs = render_runs(runs, args.out or path)
    except ValueError as e:  # a damaged result file (results.CorruptFile), a record a figure needs
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    if not outs:
        worlds = sorted({results.load(r)[1]["config"]["world"]["name"] for r in runs})
        print(f"{prog}: error: no figure applies to the {len(runs)} run(s) under {path} (worlds: {', '.join(worlds)})",
              file=sys.stderr)
        sys.exit(2)
    for p in outs:
        print(p)


if __name__ == "__main__":
    main()
