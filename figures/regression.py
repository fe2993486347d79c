"""Test error against generation for each regime in the regression world.

Monte Carlo mean over seeds with its 95% Student-t interval (figures/bands.py), one line
style per regime (style.SERIES); the theory's prediction as a broad pale line in the regime's
colour (with its own interval where it is averaged over sampled designs), its proven bound
dotted and ToEdit's claim dash-dotted, on the same axes, in units of v = sigma^2 d/(T-d-1).

    python -m collapse_sim.figures.regression RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results

STEM = "regression"


SHOWS = ("regime.",)  # figures/render.py: one curve per regime variant, one world


def applies(meta: dict) -> bool:
    """Regression runs over generations (a single fit, run.n_generations=0, is figures/strong_collapse.py's)."""
    c = meta["config"]
    return c["world"]["name"] == "regression" and c["run"]["n_generations"] > 0


def label(meta: dict) -> str:
    r = meta["config"]["regime"]
    name = r["name"]
    if name == "mix":
        redrawn = "" if r.get("real_source") != "original" or r.get("resample_real", True) else ", kept"
        return f"mix ({r['real_source']} real{redrawn}, p={r['real_fraction']:g})"
    if name == "token_edit":
        extra = {"bernoulli": f"q={r['q']:g}", "disjoint": f"k={r['k']}, eta={r['eta']:g}", "fixed": f"k={r['k']}"}
        source = r.get("edit_source", r.get("base", "previous"))
        extra = extra.get(r["schedule"], "") + ("" if source == "previous" else f", {source} data")
        return f"token_edit ({r['schedule']} {extra})".replace(" )", ")")
    return name


ORDER = ["replace", "mix", "accumulate_subsample", "accumulate", "token_edit"]


def _designs(meta: dict) -> int:
    return int(meta["config"]["run"].get("theory_designs", 0) or 0)


def plot(run_dirs, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = [r for r in runs if applies(r[1])]
    if not runs:
        return []
    order = {name: i for i, name in enumerate(ORDER)}
    runs.sort(key=lambda r: (order.get(r[1]["config"]["regime"]["name"], len(ORDER)), label(r[1])))
    units_known = all("v" in m["theory"].get("units", {}) for _, m in runs)
    seeds = [rec["test_error"].shape[0] for rec, _ in runs]
    with plt.rc_context(style.RC):
        fig, ax = style.subplots(figsize=(6.6, 3.4))
        first = {"band": True, "exact": True, "claim": True}
        for i, (rec, meta) in enumerate(runs):
            scale = meta["theory"]["units"]["v"] if units_known else 1.0
            err = rec["test_error"] / scale
            g = np.arange(err.shape[1])
            m, half = bands.mean_interval(err)
            st = style.series(i)
            ax.plot(g, m, **st, markevery=max(1, len(g) // 10), zorder=3, label=label(meta))
            style.band(ax, g, m, half, st["color"],
                       label=f"{bands.describe(err.shape[0])} (shaded)" if first.pop("band", False) else None)
            if "theory/prediction" in rec:
                p = rec["theory/prediction"] / scale
                ax.plot(g, p, color=st["color"], linestyle="-", linewidth=3.6, alpha=0.35, solid_capstyle="butt", zorder=2,
                        label="theory (exact): broad pale line, in the regime's colour" if first.pop("exact", False) else None)
                if "theory/prediction_se" in rec and _designs(meta) >= 2:
                    s = bands.se_interval(rec["theory/prediction_se"], _designs(meta)) / scale
                    style.band(ax, g, p, s, st["color"], alpha=0.08)
            if "theory/bound" in rec:
                ax.plot(g, rec["theory/bound"] / scale, color=st["color"], linestyle=(0, (1, 2)), linewidth=1.0,
                        label=f"{label(meta)}: proven bound" + (r" $\pi^2/6\cdot v$" if meta["config"]["regime"]["name"] == "accumulate" else ""))
            if "theory/paper_claim" in rec:
                ax.plot(g, rec["theory/paper_claim"] / scale, color=st["color"], linestyle=(0, (6, 2, 1, 2)), linewidth=1.0,
                        label="paper's claim (ToEdit Thm 1)" if first.pop("claim", False) else None)
        w = runs[0][1]["config"]["world"]
        ax.set_xlabel("generation (0 = fitted on real data)")
        err_label = r"test error $\|\hat w_n - w^*\|^2_\Sigma$"
        ax.set_ylabel(err_label + "\n" + r"(units of $v=\sigma^2 d/(T-d-1)$)" if units_known else err_label)
        ax.set_title(f"Linear regression, d={w['d']}, T={w['T']}, σ={w['sigma']:g}, {w['design']} design;\n"
                     f"Monte Carlo {bands.describe(seeds)}", fontsize=8.5)
        style.figure_legend(fig, [ax], first=[label(m) for _, m in runs])
        style.integer_generations(ax)
        ax.set_xlim(0, max(rec["test_error"].shape[1] for rec, _ in runs) - 1)
        ax.set_ylim(bottom=0)
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "regression-world runs", argv)


if __name__ == "__main__":
    main()
