"""Test error against generation for each regime in the regression world.

Monte Carlo mean over seeds with its 95% band, the theory's prediction (dashed,
with its own band where it is averaged over sampled designs) and bound
(dotted) on the same axes, in units of v = sigma^2 d/(T-d-1).

    python -m collapse_sim.figures.regression RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import cli, style
from collapse_sim.simulator import results

STEM = "regression"


def label(meta: dict) -> str:
    r = meta["config"]["regime"]
    name = r["name"]
    if name == "mix":
        return f"mix ({r['real_source']} real, p={r['real_fraction']:g})"
    if name == "token_edit":
        extra = {"bernoulli": f"q={r['q']:g}", "disjoint": f"k={r['k']}, eta={r['eta']:g}", "fixed": f"k={r['k']}"}
        return f"token_edit ({r['schedule']} {extra.get(r['schedule'], '')})".replace(" )", ")")
    return name


ORDER = ["replace", "mix", "accumulate_subsample", "accumulate", "token_edit"]


def plot(run_dirs, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = [r for r in runs if r[1]["config"]["world"]["name"] == "regression"]
    if not runs:
        return []
    runs.sort(key=lambda r: (ORDER.index(r[1]["config"]["regime"]["name"]), label(r[1])))
    with plt.rc_context(style.RC):
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
        units_known = all("v" in m["theory"].get("units", {}) for _, m in runs)
        for i, (rec, meta) in enumerate(runs):
            scale = meta["theory"]["units"]["v"] if units_known else 1.0
            err = rec["test_error"] / scale
            g = np.arange(err.shape[1])
            m, half = style.mean_band(err)
            st = style.series(i)
            ax.plot(g, m, color=st["color"], linestyle="-", marker=st["marker"], label=f"{label(meta)} (MC)")
            ax.fill_between(g, m - half, m + half, color=st["color"], alpha=0.18, linewidth=0)
            if "theory/prediction" in rec:
                p = rec["theory/prediction"] / scale
                ax.plot(g, p, color=st["color"], linestyle="--", linewidth=1.0, marker=None)
                if "theory/prediction_se" in rec:
                    s = 1.96 * rec["theory/prediction_se"] / scale
                    ax.fill_between(g, p - s, p + s, color=st["color"], alpha=0.08, linewidth=0)
            if "theory/bound" in rec:
                ax.plot(g, rec["theory/bound"] / scale, color=st["color"], linestyle=":", linewidth=1.0)
            if "theory/paper_claim" in rec:
                ax.plot(g, rec["theory/paper_claim"] / scale, color=st["color"], linestyle="-.", linewidth=1.0)
        ax.plot([], [], color="0.3", linestyle="--", label="theory (exact)")
        ax.plot([], [], color="0.3", linestyle=":", label="theory (bound)")
        w = runs[0][1]["config"]["world"]
        s = runs[0][1]["config"]["run"]["n_seeds"]
        ax.set_xlabel("generation (0 = fitted on real data)")
        err_label = r"test error $\|\hat w_n - w^*\|^2_\Sigma$"
        ax.set_ylabel(err_label + r"  (units of $v=\sigma^2 d/(T-d-1)$)" if units_known else err_label)
        ax.set_title(f"Linear regression, d={w['d']}, T={w['T']}, σ={w['sigma']:g}, {w['design']} design, {s} seeds")
        ax.legend(frameon=False, loc="upper left")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "regression-world runs", argv)


if __name__ == "__main__":
    main()
