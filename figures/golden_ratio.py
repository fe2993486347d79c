"""The golden-ratio U-curve (He, Xu & Cheng, arXiv 2502.18049): the stationary error of the weighted
Gaussian-mean loop against the weight w on fresh real data, one colour per real:synthetic ratio k.

θ_g = w·fit(n fresh real rows) + (1−w)·fit(m = n/k rows of model g−1) (regime ``weighted``).
Points: the Monte Carlo E‖μ_G − μ‖² at the last generation G with its 95% Student-t interval
(figures/bands.py); lines: the exact stationary error (tr Σ/n)[k(1−w)² + w²]/(w(2−w))
(theory/weighting.py ``gaussian_mean_limit``); stars: the minimum at w*(k) = (√(k²+4k) − k)/2,
where the error is w*·tr Σ/n (k = 1: w* = 0.618…, the golden ratio); dotted verticals: pooling's
weight k/(1+k), which is not the optimum.  The y-axis is n/tr Σ times the error.

    python -m collapse_sim.figures.golden_ratio RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results
from collapse_sim.theory import weighting as tw

STEM = "golden_ratio"
SHOWS = ("regime.weight", "regime.real_to_synthetic")  # figures/render.py: w on x, one colour per k
MAX_RUNS = None


def applies(meta: dict) -> bool:
    c = meta["config"]
    return c["world"]["name"] == "gaussian" and c["regime"]["name"] == "weighted" and c["run"]["n_generations"] > 0


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw the weighted gaussian-world runs in ``run_dirs``; [] if there is none."""
    import matplotlib.pyplot as plt

    runs = [r for r in (results.load(d) for d in run_dirs) if applies(r[1])]
    if not runs:
        return []
    by_k = defaultdict(list)
    for rec, meta in runs:
        by_k[float(meta["config"]["regime"]["real_to_synthetic"])].append((rec, meta))
    seeds = [rec["mean_error"].shape[0] for rec, _ in runs]
    w0 = runs[0][1]["config"]["world"]
    n, scale = w0["M"], w0["M"] / (w0["d"] * w0["sigma"] ** 2)  # tr Σ = d σ² (isotropic)
    grid = np.linspace(0.02, 1.0, 300)
    with plt.rc_context(style.RC):
        fig, ax = style.subplots(1, 1, figsize=(6.4, 4.2))
        for i, (k, pts) in enumerate(sorted(by_k.items())):
            st = style.series(i)
            w = np.array([float(m["theory"]["units"]["weight"]) for _, m in pts])
            m, half = zip(*(bands.mean_interval(rec["mean_error"][:, -1] * scale) for rec, _ in pts))
            order = np.argsort(w)
            ax.errorbar(w[order], np.array(m)[order], yerr=np.array(half)[order], color=st["color"],
                        marker=st["marker"], linestyle="none", capsize=2, label=f"k = {k:g}: Monte Carlo, 95% t-interval")
            ax.plot(grid, tw.gaussian_mean_limit(grid, k, n, 1.0) * n, color=st["color"], linewidth=1.2,
                    label=f"k = {k:g}: exact stationary error")
            star = float(tw.golden_weight(k))
            ax.plot([star], [star], marker="*", markersize=12, color=st["color"], linestyle="none",
                    label=f"k = {k:g}: minimum at w* = {star:.3f}")
            ax.axvline(float(tw.pooling_weight(k)), color=st["color"], linestyle=(0, (1, 2)), linewidth=1.0,
                       label=f"k = {k:g}: pooling's weight k/(1+k)")
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("weight w on the fit to fresh real data")
        ax.set_ylabel(r"$(n/\mathrm{tr}\,\Sigma)\;E\|\mu_G - \mu\|^2$")
        ax.legend(fontsize=6, ncol=2)
        G = runs[0][0]["mean_error"].shape[1] - 1
        fig.suptitle(f"Golden-ratio weighting: Gaussian mean, d={w0['d']}, n={n}, error at generation {G}; "
                     f"{bands.describe(seeds)}", fontsize=9)
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "gaussian-world runs of the weighted regime", argv)


if __name__ == "__main__":
    main()
