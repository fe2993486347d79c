"""Kazdan et al.'s multivariate Gaussian: replace vs accumulate vs accumulate_subsample.

Four panels against the generation g, one line per regime (Monte Carlo mean over
seeds with its 95% band): the squared error of the fitted mean ||μ_g − μ||², the
trace ratio tr Σ_g / tr Σ, the log-determinant change log det Σ_g − log det Σ (the
finite-variance statistic; det itself is heavy-tailed) and W₂² to the truth.  Theory
(thin lines, same colour) where predictions_distributions attached it: the exact
replace curves (theory.md §3.2, Bartlett for the log-determinant), the exact
accumulate recursions, and accumulate's bound (π²/6) tr Σ / M on the mean error
(dotted).  accumulate_subsample has no closed form.  Only gaussian-world runs with
d >= 2 are drawn (1-D runs go to figures/gaussian.py).

    python -m collapse_sim.figures.kazdan RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import cli, style
from collapse_sim.figures.regression import label
from collapse_sim.simulator import results

STEM = "kazdan_gaussian"
ORDER = ["replace", "accumulate_subsample", "accumulate", "mix"]
PANELS = [
    ("mean_error", "||μ_g − μ||²", "log"),
    ("trace_ratio", "tr Σ_g / tr Σ", "log"),
    ("logdet_change", "log det Σ_g − log det Σ", "linear"),
    ("w2sq", "W₂² to the truth", "log"),
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
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(1, len(PANELS), figsize=(11.0, 2.9))
        for i, (rec, meta) in enumerate(runs):
            st = style.series(i)
            for ax, (name, ylabel, scale) in zip(axes, PANELS):
                y = rec[name]
                g = np.arange(y.shape[1])
                m, half = style.mean_band(y)
                ax.plot(g, m, color=st["color"], linestyle="-", marker=st["marker"], markevery=max(1, len(g) // 8),
                        label=f"{label(meta)} (MC)")
                ax.fill_between(g, m - half, m + half, color=st["color"], alpha=0.18, linewidth=0)
                if f"theory/{name}" in rec:
                    ax.plot(g, rec[f"theory/{name}"], color=st["color"], linestyle="--", linewidth=1.0)
                if f"theory/{name}_bound" in rec:
                    ax.plot(g, rec[f"theory/{name}_bound"], color=st["color"], linestyle=":", linewidth=1.0)
                ax.set_yscale(scale)
                ax.set_title(ylabel)
                ax.set_xlabel("generation g")
                ax.set_xlim(0, g[-1])
        axes[0].plot([], [], color="0.3", linestyle="--", label="theory (exact)")
        axes[0].plot([], [], color="0.3", linestyle=":", label="accumulate bound (π²/6) tr Σ/M")
        fig.legend(*axes[0].get_legend_handles_labels(), frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
        w, run = runs[0][1]["config"]["world"], runs[0][1]["config"]["run"]
        size = f"M={w['M']}" if w.get("M_schedule") is None else f"M_g={w['M_schedule']}"
        fig.suptitle(
            f"Multivariate Gaussian (Kazdan et al. 2024): d={w['d']}, {size}, {w['estimator']} refits, "
            f"{w['spectrum']} Σ, {run['n_seeds']} seeds",
            fontsize=9,
        )
        fig.tight_layout()
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "gaussian-world runs with d >= 2", argv)


if __name__ == "__main__":
    main()
