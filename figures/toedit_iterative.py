"""Token editing repeated over generations against replace (ToEdit Table 16).

Left: real-test perplexity (per byte) per generation, mean over seeds with its 95% Student-t interval (figures/bands.py), for
replace and each token-editing variant (ToEdit, Zhu et al. 2024, Alg. 1: the prior resamples the
tokens it gives probability >= p).  Right: the share of all training tokens the prior selected
(probability >= p, solid) and the share it actually changed (a selected token may be redrawn as
itself, dashed), per generation, on a log scale.  A markdown table is written alongside.  Draws
the runs of experiment=toedit_iterative.

    python -m collapse_sim.figures.toedit_iterative RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, lm_runs, style

STEM = "toedit_iterative"
EXPERIMENTS = ("toedit_iterative",)
SHOWS = ("regime.", "world.edit_threshold")  # figures/render.py: one line per variant


def applies(meta: dict) -> bool:
    return lm_runs.made_by(meta, EXPERIMENTS)


def table(runs) -> str:
    lines = [
        "| variant | seeds | test ppl, gen 0 | test ppl, last gen | last / first (± 95% t) | selected share (gens 1..G) | changed share (gens 1..G) |",
        "|---|---|---|---|---|---|---|",
    ]
    for rec, meta in runs:
        ppl = rec["test_ppl"]
        r, hr = bands.mean_interval(ppl[:, -1] / ppl[:, 0])
        sel = chg = "–"
        if "selected_share" in rec:
            sel = ", ".join(f"{100 * v:.2f}%" for v in rec["selected_share"][:, 1:].mean(0))
            chg = ", ".join(f"{100 * v:.3f}%" for v in rec["changed_share"][:, 1:].mean(0))
        lines.append(
            f"| {lm_runs.label(meta)} | {ppl.shape[0]} | {ppl[:, 0].mean():.3f} | {ppl[:, -1].mean():.3f} | "
            f"{r:.3f} ± {hr:.3f} | {sel} | {chg} |"
        )
    return "\n".join(lines) + "\n"


def plot(run_dirs, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    runs = [r for r in lm_runs.select(run_dirs, EXPERIMENTS) if "test_ppl" in r[0]]
    if not runs:
        return []
    with plt.rc_context(style.RC):
        fig, (ax, axs) = style.subplots(1, 2, figsize=(7.4, 3.6), gridspec_kw={"width_ratios": [1.4, 1]})
        seeds = [rec["test_ppl"].shape[0] for rec, _ in runs]
        shares_labelled = False
        for i, (rec, meta) in enumerate(runs):
            st = style.series(i)
            ppl = rec["test_ppl"]
            g = np.arange(ppl.shape[1])
            m, half = bands.mean_interval(ppl)
            style.band(ax, g, m, half, st["color"], label=f"{bands.describe(seeds)} (shaded)" if i == 0 else None)
            ax.plot(g, m, **st, label=lm_runs.label(meta))
            if "selected_share" in rec:
                sel = 100 * rec["selected_share"][:, 1:].mean(0)
                chg = 100 * rec["changed_share"][:, 1:].mean(0)
                gg = g[1:]
                # a share of exactly 0 cannot sit on a log axis: drawn at the floor, marked hollow
                floor = 1e-3
                first = not shares_labelled
                shares_labelled = True
                axs.plot(gg, np.maximum(sel, floor), color=st["color"], marker=st["marker"], linestyle="-",
                         label="right: share selected (prior prob. ≥ p), solid" if first else None)
                axs.plot(gg, np.maximum(chg, floor), color=st["color"], marker=st["marker"], linestyle="--",
                         markerfacecolor="white", label="right: share changed, dashed, hollow" if first else None)
        axs.set_yscale("log")
        axs.set_ylim(bottom=8e-4)
        axs.set_xlabel("generation (edit round)")
        axs.set_ylabel("share of training tokens (%)")
        ax.set_xlabel("generation (0 = trained on real text)")
        ax.set_ylabel("real-test perplexity (per byte)")
        ax.set_xlim(left=0)
        lm_runs.suptitle(fig, f"{lm_runs.world_label(runs[0][1])}; {bands.describe(seeds)}; a share of 0 is drawn at 0.001%")
        style.integer_generations(ax, axs)
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
        paths = style.save(fig, out_dir, STEM)
    md = Path(out_dir) / f"{STEM}.md"
    md.write_text(f"# Iterative token editing: {lm_runs.world_label(runs[0][1])}\n\n" + table(runs))
    return paths + [md]


def main(argv=None) -> None:
    cli.main(plot, __doc__, "runs of this figure's experiment", argv)


if __name__ == "__main__":
    main()
