"""Categorical tail loss: support size, tail mass lost, tail mass and entropy per generation.

One line per run (regime), Monte Carlo mean over seeds with its 95% Student-t interval
(figures/bands.py); the
exact expectations (theory/categorical.py, via the binomial marginal
chains) as grey dashed lines where experiments/predictions/categorical.py attached them
(replace without smoothing).  The tail is the set of outcomes whose true probability
lies below the world's ``tail_quantile`` quantile; "tail mass lost" is the true mass
of the tail outcomes that no longer appear.  The mean tail mass of the fit is a
martingale under replace (its expectation stays at the true tail mass) while the
median run loses it: both are drawn.

    python -m collapse_sim.figures.categorical RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.figures.regression import label
from collapse_sim.simulator import results

STEM = "categorical_tails"
SHOWS = ("regime.",)  # figures/render.py: one line (or row) per regime variant
ORDER = ["replace", "mix", "accumulate_subsample", "accumulate"]
PANELS = [
    ("support", "support size (outcomes kept)"),
    ("tail_lost", "true tail mass lost"),
    ("tail_mass", "tail mass of the fit: mean, median (thin)"),
    ("entropy", "entropy (nats)"),
]


def applies(meta: dict) -> bool:
    return meta["config"]["world"]["name"] == "categorical"


def _order(meta):
    name = meta["config"]["regime"]["name"]
    return (ORDER.index(name) if name in ORDER else len(ORDER), label(meta))


def world_label(w: dict) -> str:
    dist = {"uniform": "uniform", "zipf": f"Zipf({w['zipf_s']:g})", "given": "given p"}[w["dist"]]
    size = f"M={w['M']}" if w.get("M_schedule") is None else f"M_g={w['M_schedule']}"
    smooth = f", smoothing {w['smoothing']:g}" if w["smoothing"] else ""
    return f"{dist} over V={w['V']} outcomes, {size}{smooth}; tail = outcomes below the {w['tail_quantile']:g} quantile"


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw the categorical-world runs in ``run_dirs``; [] if there is none."""
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = sorted((r for r in runs if applies(r[1])), key=lambda r: _order(r[1]))
    if not runs:
        return []
    seeds = [rec[PANELS[0][0]].shape[0] for rec, _ in runs]
    with plt.rc_context(style.RC):
        fig, axes = style.subplots(1, len(PANELS), figsize=(12.4, 3.2))
        labelled = set()

        def once(key, text):
            new = key not in labelled
            labelled.add(key)
            return text if new else None

        for i, (rec, meta) in enumerate(runs):
            st = style.series(i)
            for ax, (name, ylabel) in zip(axes, PANELS):
                y = rec[name]
                g = np.arange(y.shape[1])
                m, half = bands.mean_interval(y)
                ax.plot(g, m, **st, markevery=max(1, len(g) // 8), label=label(meta))
                style.band(ax, g, m, half, st["color"], label=once("band", f"{bands.describe(seeds)} (shaded)"))
                if name == "tail_mass":
                    ax.plot(g, np.median(y, 0), color=st["color"], linestyle="-", linewidth=0.7,
                            label=once("median", "median over seeds (thin line, tail-mass panel)"))
                if f"theory/{name}" in rec:  # grey on top: the MC usually hides a same-colour line
                    ax.plot(g, rec[f"theory/{name}"], color="0.6", linestyle="--", linewidth=1.3, zorder=5,
                            label=once("theory", "theory (exact, replace): grey dashed"))
                ax.set_ylabel(ylabel)
                ax.set_xlabel("generation g")
                ax.set_xlim(0, g[-1])
                ax.set_ylim(bottom=0)
                style.integer_generations(ax)
        style.figure_legend(fig, axes, first=[label(m) for _, m in runs])
        w = runs[0][1]["config"]["world"]
        fig.suptitle(f"Categorical refits: {world_label(w)}; {bands.describe(seeds)}", fontsize=9)
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "categorical-world runs", argv)


if __name__ == "__main__":
    main()
