"""Render every figure that applies to a result path (a run or a sweep).

    python -m collapse_sim.figures.render RESULTS_PATH [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
from collections import defaultdict
from pathlib import Path

from collapse_sim.simulator import results

# world name -> figure modules, each with ``plot(run_dirs, out_dir) -> [paths]``; a module
# draws the runs it applies to and ignores the others (returning [] if none applies).
FIGURES = {
    "regression": ("collapse_sim.figures.regression", "collapse_sim.figures.toedit_audit"),
    "gaussian": ("collapse_sim.figures.gaussian", "collapse_sim.figures.kazdan"),
    "gmm": ("collapse_sim.figures.gmm",),
    "categorical": ("collapse_sim.figures.categorical",),
    **{
        world: (
            "collapse_sim.figures.lm_collapse",
            "collapse_sim.figures.lm_ppl_histograms",
            "collapse_sim.figures.synthetic_proportion",
            "collapse_sim.figures.ngram_diagnostics",
            "collapse_sim.figures.toedit_iterative",
        )
        for world in ("ngram", "transformer")
    },
}


def render_runs(run_dirs, out_dir) -> list[Path]:
    """Render the figures of the given run folders into ``out_dir``."""
    by_world = defaultdict(list)
    for run in run_dirs:
        _, meta = results.load(run)
        by_world[meta["config"]["world"]["name"]].append(run)
    outs = []
    for world, runs in sorted(by_world.items()):
        for module in FIGURES.get(world, ()):
            outs += importlib.import_module(module).plot(runs, out_dir)
    return outs


def render_path(path: Path, out_dir=None) -> list[Path]:
    """Render every figure for the runs at or below ``path``."""
    return render_runs(results.find_runs(path), out_dir or path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    for p in render_path(Path(args.path), args.out):
        print(p)


if __name__ == "__main__":
    main()
