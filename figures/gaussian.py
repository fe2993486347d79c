"""Shumailov et al.'s 1-D Gaussian collapse: one column per sample size M.

Top row (log scale): the fitted variance σ_g² — its mean over seeds with its 95% Student-t
interval (figures/bands.py; where the interval reaches 0 its lower edge runs to the bottom of
the axis), a martingale with unbiased refits: its expectation stays at σ², but its distribution
grows so heavy-tailed that the sample mean over seeds falls below σ² once most runs have
collapsed; its median (which decays) and the squared mean of σ_g (E σ_g decays as
σ Π c(M_i − 1)).  Bottom row: E W₂²(N(μ_g, σ_g²), N(μ, σ²)) — the Monte
Carlo mean with its 95% t-interval, the exact value (theory/gaussian.py) and the paper's
first-order approximation (3/2) σ² Σ_{i≤g} 1/M_i (Shumailov et al. 2024, SI Eq. 6).
Theory lines are drawn only where experiments/predictions/gaussian.py attached them
(replace).  Only 1-D runs of the gaussian world under replace are drawn.

    python -m collapse_sim.figures.gaussian RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results

STEM = "gaussian_collapse"
SHOWS = ("world.M", "world.M_schedule", "world.estimator")  # figures/render.py: one column per run
MC, MEDIAN, STD, EXACT, APPROX = (style.series(i) for i in range(5))


def applies(meta: dict) -> bool:
    c = meta["config"]
    return c["world"]["name"] == "gaussian" and c["world"]["d"] == 1 and c["regime"]["name"] == "replace"


def size_label(world: dict) -> str:
    s = world.get("M_schedule")
    return f"M = {world['M']}" if s is None else "M = " + ", ".join(map(str, s[:4])) + (", …" if len(s) > 4 else "")


def _order(meta):
    w = meta["config"]["world"]
    return (w.get("M_schedule") is not None, w["M"], str(w.get("M_schedule")))


def _line(ax, g, y, st, label, band=None, band_label=None, log=False):
    ax.plot(g, y, color=st["color"], linestyle=st["linestyle"], marker=st["marker"],
            markevery=max(1, len(g) // 8), label=label)
    if band is not None:
        style.band(ax, g, y, band, st["color"], log=log, label=band_label)


def _theory(ax, g, rec, name, st, label):
    if f"theory/{name}" in rec:
        ax.plot(g, rec[f"theory/{name}"], color=st["color"], linestyle=st["linestyle"], linewidth=1.0, label=label)


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw the 1-D replace runs of the gaussian world in ``run_dirs``; [] if there is none."""
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = sorted((r for r in runs if applies(r[1])), key=lambda r: _order(r[1]))
    if not runs:
        return []
    n = len(runs)
    seeds = [rec["var"].shape[0] for rec, _ in runs]
    shaded = f"{bands.describe(seeds)} (shaded)"
    with plt.rc_context(style.RC):
        fig, axes = style.subplots(2, n, figsize=(2.6 * n + 3.4, 5.0), squeeze=False, sharex="col")
        for j, (rec, meta) in enumerate(runs):
            world = meta["config"]["world"]
            sigma2 = world["sigma"] ** 2
            var, w2 = rec["var"], rec["w2sq"]
            g = np.arange(var.shape[1])
            ax = axes[0, j]
            if j:
                ax.sharey(axes[0, 0])
            m, half = bands.mean_interval(var)
            _line(ax, g, m, MC, "mean $\\sigma^2_g$ over seeds (heavy-tailed: below its\nexpectation once most runs collapsed)",
                  half, shaded, log=True)
            _line(ax, g, np.median(var, 0), MEDIAN, "median $\\sigma^2_g$")
            _line(ax, g, rec["std"].mean(0) ** 2, STD, "(mean $\\sigma_g$)$^2$")
            _theory(ax, g, rec, "var", EXACT, "exact $E\\,\\sigma^2_g$, median, $(E\\,\\sigma_g)^2$")
            _theory(ax, g, rec, "var_median", EXACT, None)
            if "theory/std" in rec:
                ax.plot(g, rec["theory/std"] ** 2, color=EXACT["color"], linestyle=EXACT["linestyle"], linewidth=1.0)
            ax.set_title(f"{size_label(world)}, {world['estimator']} refits")
            ax.set_yscale("log")
            ax.set_ylim(1e-3 * sigma2, 3 * sigma2)
            ax = axes[1, j]
            m, half = bands.mean_interval(w2)
            _line(ax, g, m, MC, "mean $W_2^2$ over seeds (heavy-tailed\nonce most runs collapsed)", half, shaded)
            _theory(ax, g, rec, "w2sq", EXACT, "exact $E\\,W_2^2$")
            _theory(ax, g, rec, "w2sq_approx", APPROX, "$\\frac{3}{2}\\sigma^2\\sum_{i\\leq g} 1/M_i$ (paper, 1st order)")
            ax.set_ylim(bottom=0)
            ax.set_ylabel("$W_2^2$ to the truth")
            ax.set_xlabel("generation g")
            ax.set_xlim(0, g[-1])
            style.integer_generations(ax)
        axes[0, 0].set_ylabel("fitted variance $\\sigma^2_g$")
        for row in axes:
            handles = {}
            for ax in row:
                for h, lab in zip(*ax.get_legend_handles_labels()):
                    handles.setdefault(lab, h)
            row[-1].legend(handles.values(), handles.keys(), frameon=False, loc="center left", bbox_to_anchor=(1.04, 0.5))
        sigma2 = runs[0][1]["config"]["world"]["sigma"] ** 2
        fig.suptitle(
            f"1-D Gaussian refitted to its own samples (Shumailov et al. 2024, Thm 3.1), σ² = {sigma2:g}; "
            f"{bands.describe(seeds)}",
            fontsize=9,
        )
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "1-D replace runs of the gaussian world", argv)


if __name__ == "__main__":
    main()
