"""Per-sequence perplexity of each generation's training text under the generation-0 model.

Shumailov et al. 2024 (Nature 631:755), Fig. 1b-c; ToEdit (Zhu et al. 2024) §3.2, Fig. 10.  One
panel per regime (columns: no real text kept; 10% kept) and sampling temperature (rows); one
histogram per generation, pooled over seeds, on log-spaced bins shared by every panel; generation
0 is the real training text.  The paper's shape (five-way beam search): the mass moves toward low
perplexity (the models produce what generation 0 finds likely) while a long high-perplexity tail
grows (errors the later models add).  The record is
``train_seq_ppl_gen0`` (simulator/worlds/text.py); a markdown table of quantiles is written
alongside.  Draws the runs of experiment=lm_ppl_histograms (and text-world runs made by no
experiment config).

    python -m collapse_sim.figures.lm_ppl_histograms RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import cli, lm_runs, style

STEM = "lm_ppl_histograms"
EXPERIMENTS = ("lm_ppl_histograms", "")
SHOWS = ("regime.", "world.temperature", "world.edit_threshold")  # figures/render.py: a panel per run
MAX_RUNS = 12
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
# Generation g's line: later is darker; the dash pattern differs too (greyscale-safe), and the
# last generation is solid black.
DASHES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2))]


def table(runs) -> str:
    head = " | ".join(f"q{int(100 * q)}" if q < 1 else "max" for q in QUANTILES)
    lines = [f"| regime | temperature | generation | sequences | {head} |", "|---|---|---|---|" + "---|" * len(QUANTILES)]
    for rec, meta in runs:
        ppl = rec["train_seq_ppl_gen0"]
        for g in range(ppl.shape[1]):
            x = ppl[:, g].reshape(-1)
            qs = " | ".join(f"{v:.2f}" for v in np.quantile(x, QUANTILES))
            lines.append(f"| {lm_runs.label(meta)} | {meta['config']['world']['temperature']:g} | {g} | {x.size} | {qs} |")
    return "\n".join(lines) + "\n"


def applies(meta: dict) -> bool:
    return lm_runs.made_by(meta, EXPERIMENTS)


def plot(run_dirs, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    runs = [r for r in lm_runs.select(run_dirs, EXPERIMENTS) if "train_seq_ppl_gen0" in r[0]]
    if not runs:
        return []
    allv = np.concatenate([r["train_seq_ppl_gen0"].reshape(-1) for r, _ in runs])
    lo, hi = np.log10(max(allv.min(), 1e-3)), np.log10(allv.max())
    bins = np.logspace(lo - 0.02, hi + 0.02, 40)
    temps = sorted({m["config"]["world"]["temperature"] for _, m in runs}, reverse=True)
    regimes = list(dict.fromkeys(lm_runs.label(m) for _, m in runs))
    with plt.rc_context(style.RC):
        fig, axes = style.subplots(len(temps), len(regimes), figsize=(3.5 * len(regimes) + 1.6, 2.5 * len(temps) + 0.5),
                                 sharex=True, sharey=True, squeeze=False)
        for ax in axes.flat:
            ax.set_visible(False)
        for rec, meta in runs:
            ax = axes[temps.index(meta["config"]["world"]["temperature"]), regimes.index(lm_runs.label(meta))]
            ax.set_visible(True)
            ppl = rec["train_seq_ppl_gen0"]
            G = ppl.shape[1] - 1
            for g in range(G + 1):
                x = ppl[:, g].reshape(-1)
                share, _ = np.histogram(x, bins=bins)
                share = share / x.size
                grey = 0.75 * (1 - g / max(G, 1))
                dash = "-" if g in (0, G) else DASHES[g % len(DASHES)]
                ax.stairs(share, bins, color=(grey, grey, grey), linestyle=dash, linewidth=1.1 if g else 1.8,
                          label=f"generation {g}" + (" (real text)" if g == 0 else ""))
            ax.set_xscale("log")
            ticks = [t for t in (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000) if bins[0] <= t <= bins[-1]]
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_formatter(plt.NullFormatter())
            ax.set_title(f"{lm_runs.label(meta)},\nsampling temperature {meta['config']['world']['temperature']:g}",
                         loc="left", fontsize=8)
        fig.supxlabel("per-sequence perplexity under the generation-0 model (per byte, log scale)", fontsize=9)
        for ax in axes[:, 0]:
            ax.set_ylabel("share of training sequences")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, frameon=False, loc="outside right center")
        S, n = runs[0][0]["train_seq_ppl_gen0"].shape[0], runs[0][0]["train_seq_ppl_gen0"].shape[2]
        lm_runs.suptitle(fig, f"{lm_runs.world_label(runs[0][1])}; {S} seeds × {n} sequences per generation")
        paths = style.save(fig, out_dir, STEM)
    md = Path(out_dir) / f"{STEM}.md"
    md.write_text(f"# Per-sequence perplexity under generation 0: {lm_runs.world_label(runs[0][1])}\n\n" + table(runs))
    return paths + [md]


def main(argv=None) -> None:
    cli.main(plot, __doc__, "runs of this figure's experiment", argv)


if __name__ == "__main__":
    main()
