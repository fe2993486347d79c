"""Kazdan et al.'s multivariate Gaussian: replace vs accumulate vs accumulate_subsample.

Four panels against the generation g, one line per regime (Monte Carlo mean over
seeds with its 95% Student-t interval, figures/bands.py): the squared error of the fitted mean ||μ_g − μ||², the
trace ratio tr Σ_g / tr Σ, the log-determinant change log det Σ_g − log det Σ (the
finite-variance statistic; det itself is heavy-tailed) and W₂² to the truth.  Theory
(broad pale lines, same colour) where experiments/predictions/gaussian.py attached it: the exact
replace curves (theory/gaussian.py, Bartlett for the log-determinant), the exact
accumulate recursions, and accumulate's bound (π²/6) tr Σ / M on the mean error
(dotted).  accumulate_subsample has no closed form.  Only gaussian-world runs with
d >= 2 are drawn (1-D runs go to figures/gaussian.py).

    python -m collapse_sim.figures.kazdan RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.figures.regression import label
from collapse_sim.simulator import results

STEM = "kazdan_gaussian"
SHOWS = ("regime.",)  # figures/render.py: one line (or row) per regime variant
ORDER = ["replace", "accumulate_subsample", "accumulate", "mix"]
PANELS = [
    ("mean_error", r"$\|\mu_g - \mu\|^2$", "log"),
    ("trace_ratio", r"$\mathrm{tr}\,\Sigma_g\,/\,\mathrm{tr}\,\Sigma$", "log"),
    ("logdet_change", r"$\log\det\Sigma_g - \log\det\Sigma$", "linear"),
    ("w2sq", r"$W_2^2$ to the truth", "log"),
]


def applies(meta: dict) -> bool:
    c = meta["config"]
    return c["world"]["name"] == "gaussian" and c["world"]["d"] >= 2


def _order(meta):
    name = meta["config"]["regime"]["name"]
    return (ORDER.index(name) if name in ORDER else len(ORDER), label(meta))


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw the gaussian-world runs with d >= 2 in ``run_dirs``; [] if there is none."""
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = sorted((r for r in runs if applies(r[1])), key=lambda r: _order(r[1]))
    if not runs:
        return []
    seeds = [rec[PANELS[0][0]].shape[0] for rec, _ in runs]
    with plt.rc_context(style.RC):
        fig, axes = style.subplots(1, len(PANELS), figsize=(12.4, 3.2))
        labelled = set()
        for i, (rec, meta) in enumerate(runs):
            st = style.series(i)
            for ax, (name, ylabel, scale) in zip(axes, PANELS):
                y = rec[name]
                g = np.arange(y.shape[1])
                m, half = bands.mean_interval(y)
                ax.plot(g, m, **st, markevery=max(1, len(g) // 8), label=label(meta))
                style.band(ax, g, m, half, st["color"], log=scale == "log",
                           label=None if "band" in labelled else f"{bands.describe(seeds)} (shaded)")
                labelled.add("band")
                if f"theory/{name}" in rec:
                    ax.plot(g, rec[f"theory/{name}"], color=st["color"], linestyle="-", linewidth=3.0, alpha=0.3,
                            zorder=1, label=None if "exact" in labelled else "theory (exact): broad pale line, in the regime's colour")
                    labelled.add("exact")
                if f"theory/{name}_bound" in rec:
                    ax.plot(g, rec[f"theory/{name}_bound"], color=st["color"], linestyle=(0, (1, 2)), linewidth=1.0,
                            label=None if "bound" in labelled else f"{label(meta)}: bound " + r"$(\pi^2/6)\,\mathrm{tr}\,\Sigma/M$")
                    labelled.add("bound")
                ax.set_yscale(scale)
                ax.set_ylabel(ylabel)
                ax.set_xlabel("generation g")
                ax.set_xlim(0, g[-1])
                style.integer_generations(ax)
        style.figure_legend(fig, axes, first=[label(m) for _, m in runs])
        w = runs[0][1]["config"]["world"]
        size = f"M={w['M']}" if w.get("M_schedule") is None else f"M_g={w['M_schedule']}"
        fig.suptitle(
            f"Multivariate Gaussian (Kazdan et al. 2024): d={w['d']}, {size}, {w['estimator']} refits, "
            f"{w['spectrum']} Σ; {bands.describe(seeds)}",
            fontsize=9,
        )
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "gaussian-world runs with d >= 2", argv)


if __name__ == "__main__":
    main()
