"""Iterative collapse of a language model: real-test perplexity per generation, one line per regime.

Mean over seeds with its 95% Student-t interval, t_{0.975,S−1}·sd/√S for S seeds (figures/bands.py; Shumailov et al. 2024, Nature 631:755, Fig. 1a; Gerstgrasser
et al. 2024; ToEdit, Zhu et al. 2024).  Perplexity is per byte (the tokens are bytes) on the
held-out test blocks, the same for every generation, regime and seed; generation 0 is fitted on
the real text.  Right: the ratio of the last to the first generation's perplexity per seed, mean
and 95% t-interval.  A markdown table of the numbers is written alongside.  Draws the runs of
experiment=lm_collapse (and text-world runs made by no experiment config).

    python -m collapse_sim.figures.lm_collapse RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, lm_runs, style

STEM = "lm_collapse"
EXPERIMENTS = ("lm_collapse", "")
SHOWS = ("regime.", "world.edit_threshold")  # figures/render.py: one line per variant


def applies(meta: dict) -> bool:
    return lm_runs.made_by(meta, EXPERIMENTS)


def ratio_band(ppl_SxG: np.ndarray):
    """Mean and 95% t-interval half-width over seeds of ppl[last] / ppl[0]."""
    return bands.mean_interval(ppl_SxG[:, -1] / ppl_SxG[:, 0])


def table(runs) -> str:
    lines = [
        "| regime | seeds | generations | test ppl, generation 0 (± 95% t) | test ppl, last generation (± 95% t) | last / first (95% t-interval) |",
        "|---|---|---|---|---|---|",
    ]
    for rec, meta in runs:
        ppl = rec["test_ppl"]
        m0, h0 = bands.mean_interval(ppl[:, 0])
        m1, h1 = bands.mean_interval(ppl[:, -1])
        r, hr = ratio_band(ppl)
        lines.append(
            f"| {lm_runs.label(meta)} | {ppl.shape[0]} | {ppl.shape[1] - 1} | {m0:.3f} ± {h0:.3f} | {m1:.3f} ± {h1:.3f} | "
            f"{r:.3f} ({r - hr:.3f}–{r + hr:.3f}) |"
        )
    return "\n".join(lines) + "\n"


def plot(run_dirs, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    runs = [r for r in lm_runs.select(run_dirs, EXPERIMENTS) if "test_ppl" in r[0]]
    if not runs:
        return []
    with plt.rc_context(style.RC):
        fig, (ax, axr) = style.subplots(1, 2, figsize=(7.2, 3.4), gridspec_kw={"width_ratios": [2.2, 1]})
        seeds = [rec["test_ppl"].shape[0] for rec, _ in runs]
        for i, (rec, meta) in enumerate(runs):
            ppl = rec["test_ppl"]
            g = np.arange(ppl.shape[1])
            m, half = bands.mean_interval(ppl)
            st = style.series(i)
            style.band(ax, g, m, half, st["color"], label=f"{bands.describe(seeds)} (shaded)" if i == 0 else None)
            ax.plot(g, m, **st, label=lm_runs.label(meta))
            r, hr = ratio_band(ppl)
            axr.errorbar([r], [i], xerr=[hr], color=st["color"], marker=st["marker"], capsize=2, linestyle="none")
        axr.axvline(1.0, color="0.5", linewidth=0.8, linestyle=":")
        axr.set_yticks(range(len(runs)))
        axr.set_yticklabels([lm_runs.label(m).split(" (")[0] for _, m in runs])
        axr.invert_yaxis()
        G = runs[0][0]["test_ppl"].shape[1] - 1
        axr.set_xlabel(f"test perplexity ratio,\ngeneration {G} / generation 0")
        axr.set_ylabel("regime")
        ax.set_xlabel("generation (0 = trained on real text)")
        ax.set_ylabel("real-test perplexity (per byte)")
        lm_runs.suptitle(fig, f"{lm_runs.world_label(runs[0][1])}; {bands.describe(seeds)}")
        style.integer_generations(ax)
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
        ax.set_xlim(left=0)
        paths = style.save(fig, out_dir, STEM)
    md = Path(out_dir) / f"{STEM}.md"
    md.write_text(f"# Iterative collapse: {lm_runs.world_label(runs[0][1])}\n\n" + table(runs))
    return paths + [md]


def main(argv=None) -> None:
    cli.main(plot, __doc__, "runs of this figure's experiment", argv)


if __name__ == "__main__":
    main()
