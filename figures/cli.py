"""The command line every figure script shares: ``python -m collapse_sim.figures.NAME PATH [PATH ...] [--out DIR]``."""

from __future__ import annotations

import argparse

from collapse_sim.simulator import results


def main(plot, doc: str, missing: str, argv=None, **options) -> None:
    """Render ``plot(run_dirs, out_dir, **options)`` from every run under the given paths.

    ``missing`` names what the figure needs when no run under the paths has it;
    ``options`` are extra flags, name → ``argparse`` keyword arguments.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="result directories (runs or sweeps)")
    parser.add_argument("--out", default=None, help="output folder (default: the first path)")
    for name, kwargs in options.items():
        parser.add_argument(f"--{name}", **kwargs)
    args = parser.parse_args(argv)
    try:
        run_dirs = [r for p in args.paths for r in results.find_runs(p)]
    except FileNotFoundError as e:
        parser.error(str(e))
    try:
        paths = plot(run_dirs, args.out or args.paths[0], **{name: getattr(args, name) for name in options})
    except ValueError as e:  # a request the runs cannot answer (e.g. a record they lack)
        parser.error(str(e))
    if not paths:
        parser.error(f"no {missing} under {' '.join(args.paths)}")
    for p in paths:
        print(p)
