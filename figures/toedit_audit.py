"""The ToEdit audit (theory/toedit_audit.md): token-edited regression, one panel per edit schedule.

Each panel shows, in units of v = σ²d/(T−d−1) against the generation g (= edit rounds): the Monte
Carlo mean over seeds with its 95% band; the exact expected error (the corrected recursion
C' = BCBᵀ + σ²M, theory/toedit_audit.md §3, with its 95% band from sampling designs where it is
visible); the paper's value v(1 + Σ_{i≤g} k_i/T) (Zhu et al. 2024, arXiv 2412.14689, Thm 1); its
bound 2v (Thm 2, Eq. 6); and, for geometrically shrinking disjoint edits, its bound
v(1 + (k_1/T)/(1−η)) (Eq. 42).  A markdown table of the same numbers is written alongside.
Only runs of the regression world with regime token_edit are drawn; others are ignored.

    python -m collapse_sim.figures.toedit_audit RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results

STEM = "toedit_audit"
SHOWS = ("regime.", "world.d", "world.T")  # figures/render.py: one panel per run, titled
MAX_RUNS = 12
SCHEDULES = ("bernoulli", "disjoint", "fixed", "full")

# Fixed roles, so a line looks the same in every panel (style.SERIES differ in dash and marker).
MC, EXACT, CLAIM, BOUND_2V, BOUND_GEO = (style.series(i) for i in range(5))


def applies(meta: dict) -> bool:
    c = meta["config"]
    return c["world"]["name"] == "regression" and c["regime"]["name"] == "token_edit"


def schedule_label(regime: dict) -> str:
    s = regime["schedule"]
    par = {
        "bernoulli": f"q={regime['q']:g}",
        "disjoint": f"k={regime['k']}, η={regime['eta']:g}",
        "fixed": f"k={regime['k']}",
        "full": "every row: replace",
    }[s]
    source = _source(regime)
    if source != "previous":
        par += f", edits {source} data"
    if regime.get("prior", "previous") != "previous":
        par += f", prior={regime['prior']}"
    return f"{s} ({par})"


def _source(regime: dict) -> str:
    """The data a round edits: ``edit_source`` (``base`` in results.json of earlier versions)."""
    return regime.get("edit_source", regime.get("base", "previous"))


def _unit(meta: dict) -> float:
    v = meta["theory"].get("units", {}).get("v")
    if v is not None:
        return float(v)
    w = meta["config"]["world"]
    return w["sigma"] ** 2 * w["d"] / (w["T"] - w["d"] - 1)


def _panel(ax, rec: dict, meta: dict) -> None:
    v = _unit(meta)
    err = rec["test_error"] / v
    g = np.arange(err.shape[1])
    m, half = bands.mean_interval(err)
    style.band(ax, g, m, half, MC["color"], alpha=0.2, label=f"Monte Carlo: {bands.describe(err.shape[0])} (shaded)")
    ax.plot(g, m, **MC, linewidth=0.9, markevery=max(1, len(g) // 10), label="Monte Carlo mean")
    if "theory/prediction" in rec:
        p = rec["theory/prediction"] / v
        # On top of the Monte Carlo line, which it should hide where the two agree.
        ax.plot(g, p, color=EXACT["color"], linestyle=EXACT["linestyle"], linewidth=1.6, zorder=4,
                label="exact (corrected recursion)")
        designs = int(meta["config"]["run"].get("theory_designs", 0) or 0)
        if "theory/prediction_se" in rec and designs >= 2:  # averaged over sampled designs
            s = bands.se_interval(rec["theory/prediction_se"], designs) / v
            style.band(ax, g, p, s, EXACT["color"], alpha=0.25)
    if "theory/paper_claim" in rec:
        ax.plot(
            g,
            rec["theory/paper_claim"] / v,
            **CLAIM,
            markevery=max(1, len(g) // 5),
            label=r"paper: $v(1+\sum_{i\leq g} k_i/T)$ (Thm 1)",
        )
    if "theory/paper_bound_2v" in rec:
        ax.axhline(rec["theory/paper_bound_2v"][0] / v, color=BOUND_2V["color"], linestyle=BOUND_2V["linestyle"],
                   label="paper: bound 2v (Thm 2)")
    if "theory/paper_bound_geometric" in rec:
        ax.axhline(rec["theory/paper_bound_geometric"][0] / v, color=BOUND_GEO["color"],
                   linestyle=BOUND_GEO["linestyle"], label=r"paper: geometric bound $v(1+\frac{k_1/T}{1-\eta})$")
    title = schedule_label(meta["config"]["regime"])
    if "theory/prediction" in rec and "theory/paper_bound_2v" in rec:
        worst = float(np.max(rec["theory/prediction"] / rec["theory/paper_bound_2v"]))
        title += f"\nmax exact / 2v = {worst:.2f}"
    ax.set_title(title)
    ax.set_xlim(0, g[-1])
    ax.set_ylim(bottom=0)


def _order(meta: dict):
    r = meta["config"]["regime"]
    return (SCHEDULES.index(r["schedule"]), _source(r), r["k"], r["q"], r["eta"])


def table(runs, gens=(1, 2, 5, 10, 20)) -> str:
    """The figure's numbers as a markdown table, in units of v: per run and generation the
    Monte Carlo mean ± 1 SE and the exact value, then the paper's value at the last generation
    and the largest ratio of the exact error to the paper's bound 2v."""
    G = min(r["test_error"].shape[1] for r, _ in runs) - 1
    gens = [g for g in gens if g <= G]
    head = ["schedule"] + [f"g = {g}: MC ± SE / exact" for g in gens]
    head += [f"paper v(1+Σk_i/T), g = {G}", "max exact / 2v"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec, meta in runs:
        v = _unit(meta)
        err = rec["test_error"] / v
        mc, se = err.mean(0), err.std(0, ddof=1) / np.sqrt(err.shape[0])
        exact = rec.get("theory/prediction", np.full(err.shape[1], np.nan)) / v
        cells = [schedule_label(meta["config"]["regime"])]
        cells += [f"{mc[g]:.3f} ± {se[g]:.3f} / {exact[g]:.3f}" for g in gens]
        claim = rec.get("theory/paper_claim", np.full(err.shape[1], np.nan)) / v
        bound = rec.get("theory/paper_bound_2v", np.full(err.shape[1], np.nan)) / v
        cells += [f"{claim[G]:.3f}", f"{np.max(exact / bound):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw every token_edit run of the regression world in ``run_dirs`` (PDF, PNG, and the
    numbers as ``toedit_audit.md``); [] if there is none."""
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = sorted((r for r in runs if applies(r[1])), key=lambda r: _order(r[1]))
    if not runs:
        return []
    numbers = Path(out_dir) / f"{STEM}.md"
    n = len(runs)
    ncols = 1 if n == 1 else 2 if n in (2, 4) else 3
    nrows = math.ceil(n / ncols)
    worlds = {tuple(sorted(m["config"]["world"].items())) for _, m in runs}
    with plt.rc_context(style.RC):
        fig, axes = style.subplots(nrows, ncols, figsize=(2.9 * ncols + 0.4, 2.5 * nrows + 1.4), squeeze=False, sharex=True)
        for ax, (rec, meta) in zip(axes.flat, runs):
            _panel(ax, rec, meta)
            if len(worlds) > 1:
                w = meta["config"]["world"]
                ax.set_title(ax.get_title() + f"  [d={w['d']}, T={w['T']}]")
        for j in range(ncols):  # the lowest drawn panel of each column
            low = axes[max(i for i in range(nrows) if i * ncols + j < n), j]
            low.set_xlabel("generation g (edit rounds)")
            low.xaxis.set_tick_params(labelbottom=True)
        for ax in axes.flat[:n]:
            ax.set_ylabel(r"test error / $v$")
            style.integer_generations(ax)
        handles, labels = {}, []
        for ax in axes.flat[:n]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        spare = list(axes.flat[n:])
        for ax in spare:
            ax.axis("off")
        if spare:
            spare[0].legend(handles.values(), handles.keys(), frameon=False, loc="center left")
        else:
            fig.legend(handles.values(), handles.keys(), frameon=False, loc="outside lower center", ncols=min(2, len(handles)))
        w, run = runs[0][1]["config"]["world"], runs[0][1]["config"]["run"]
        head = "ToEdit audit: token-edited linear regression"
        if len(worlds) == 1:
            head += f", d={w['d']}, T={w['T']}, σ={w['sigma']:g}, {w['spectrum']} Σ"
        seeds = [rec["test_error"].shape[0] for rec, _ in runs]
        fig.suptitle(head + f";\n{bands.describe(seeds)}; units of $v=\\sigma^2 d/(T-d-1)$", fontsize=9)
        paths = style.save(fig, out_dir, STEM)
    numbers.write_text(table(runs))
    return paths + [numbers]


def main(argv=None) -> None:
    cli.main(plot, __doc__, "token_edit runs of the regression world", argv)


if __name__ == "__main__":
    main()
