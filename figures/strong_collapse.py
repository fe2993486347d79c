"""Strong model collapse (Dohmatob et al., arXiv 2410.04840): one OLS fit on a mixture of real and
shifted rows, test error against the training size n, one line per shifted share p₂.

Points: the Monte Carlo mean of E‖ŵ − w*‖²_Σ over seeds with its 95% Student-t interval
(figures/bands.py); broad pale lines: the exact finite-n error (theory/strong_collapse.py
``mixture_error``, with the run's own count of shifted rows round(p₂ n)); dotted lines: the
plateau p₂² δᵀΣδ that the error tends to as n → ∞ (``plateau``), which no amount of data removes
while p₂ > 0.  Runs: the regression world with ``run.n_generations=0`` (a single fit).

    python -m collapse_sim.figures.strong_collapse RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results
from collapse_sim.theory import strong_collapse as sc

STEM = "strong_collapse"
SHOWS = ("world.T", "world.shift_share", "world.shift_norm")  # figures/render.py: n on x, one line per share
MAX_RUNS = None


def applies(meta: dict) -> bool:
    c = meta["config"]
    return c["world"]["name"] == "regression" and c["run"]["n_generations"] == 0


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw the single-fit regression runs in ``run_dirs`` against n; [] if there is none."""
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = [r for r in runs if applies(r[1])]
    if not runs:
        return []
    lines = defaultdict(list)
    for rec, meta in runs:
        w = meta["config"]["world"]
        lines[(w["shift_share"], w["shift_norm"])].append((w["T"], rec))
    seeds = [rec["test_error"].shape[0] for rec, _ in runs]
    with plt.rc_context(style.RC):
        fig, ax = style.subplots(1, 1, figsize=(6.4, 4.2))
        for i, ((share, norm), pts) in enumerate(sorted(lines.items())):
            st = style.series(i)
            pts.sort(key=lambda p: p[0])
            n = np.array([p[0] for p in pts], float)
            m, half = zip(*(bands.mean_interval(rec["test_error"][:, 0]) for _, rec in pts))
            label = f"$p_2$ = {share:g}"
            ax.errorbar(n, m, yerr=half, color=st["color"], marker=st["marker"], linestyle="none",
                        capsize=2, label=f"{label}: Monte Carlo, 95% t-interval")
            exact = [rec["theory/prediction"][0] for _, rec in pts if "theory/prediction" in rec]
            if len(exact) == len(pts):
                ax.plot(n, exact, color=st["color"], linewidth=3.0, alpha=0.3, label=f"{label}: exact (finite n)")
            if share > 0:
                ax.axhline(sc.plateau(1 - share, norm**2), color=st["color"], linestyle=(0, (1, 2)), linewidth=1.0,
                           label=rf"{label}: plateau $p_2^2\,\delta^\top\Sigma\delta$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training rows n")
        ax.set_ylabel(r"test error $\|\hat w - w^*\|_\Sigma^2$")
        ax.legend(fontsize=6.5, ncol=2)
        w = runs[0][1]["config"]["world"]
        fig.suptitle(f"Strong model collapse: OLS on real and shifted rows, d={w['d']}, σ={w['sigma']:g}, "
                     f"{w['spectrum']} Σ; {bands.describe(seeds)}", fontsize=9)
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "regression runs with run.n_generations=0", argv)


if __name__ == "__main__":
    main()
