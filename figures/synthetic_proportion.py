"""Real-test perplexity and training loss against the share of synthetic text (ToEdit §3.1).

ToEdit (Zhu et al. 2024, arXiv 2412.14689), Table 1 and Fig. 7: a student trained from scratch at
a fixed token budget on a share alpha of real text and 1 - alpha of a fixed teacher's text.  Here
the teacher is the generation-0 model and the student generation 1 of regime mix with the real
rows kept fixed (experiments/conf/experiment/synthetic_proportion.yaml); one line per temperature
the teacher wrote at.  Left: the student's real-test perplexity (per byte) against the synthetic
share 1 - alpha, mean over seeds with its 95% Student-t interval (figures/bands.py), and the teacher's as a dotted line.  Right:
the student's mean loss on its own training set (nats per byte).  The paper: test perplexity rises with the synthetic share, with a
jump at 100%, while the training loss falls.  A markdown table is written alongside.

    python -m collapse_sim.figures.synthetic_proportion RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, lm_runs, style

STEM = "synthetic_proportion"
EXPERIMENTS = ("synthetic_proportion",)
SHOWS = ("regime.real_fraction", "world.temperature")  # figures/render.py: x = share, a line per temperature
MAX_RUNS = None


def applies(meta: dict) -> bool:
    return lm_runs.made_by(meta, EXPERIMENTS) and meta["config"]["regime"]["name"] == "mix"


def points(runs):
    """{teacher temperature: [(share, test ppl (S,), train loss (S,) or None, teacher ppl (S,))] by share}."""
    out = {}
    for rec, meta in runs:
        share = 1.0 - meta["config"]["regime"]["real_fraction"]
        loss = rec["train_loss"][:, 1] if "train_loss" in rec else None
        temp = meta["config"]["world"]["temperature"]
        out.setdefault(temp, []).append((share, rec["test_ppl"][:, 1], loss, rec["test_ppl"][:, 0]))
    return {t: sorted(p, key=lambda q: q[0]) for t, p in sorted(out.items(), reverse=True)}


def table(curves) -> str:
    lines = [
        "| teacher temperature | synthetic share | real share | seeds | student real-test ppl (± 95% t-interval) | student training loss (nats/byte) | teacher real-test ppl |",
        "|---|---|---|---|---|---|---|",
    ]
    for temp, pts in curves.items():
        for share, ppl, loss, teacher in pts:
            m, h = bands.mean_interval(ppl)
            lt = "–" if loss is None else "{:.4f} ± {:.4f}".format(*bands.mean_interval(loss))
            mt, ht = bands.mean_interval(teacher)
            lines.append(f"| {temp:g} | {share:.0%} | {1 - share:.0%} | {ppl.size} | {m:.3f} ± {h:.3f} | {lt} | {mt:.3f} ± {ht:.3f} |")
    return "\n".join(lines) + "\n"


def plot(run_dirs, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    runs = [
        r for r in lm_runs.select(run_dirs, EXPERIMENTS)
        if r[1]["config"]["regime"]["name"] == "mix" and r[0]["test_ppl"].shape[1] >= 2
    ]
    if not runs:
        return []
    curves = points(runs)
    with plt.rc_context(style.RC):
        fig, (ax, axl) = style.subplots(1, 2, figsize=(7.6, 3.4))
        teacher = np.concatenate([p[3] for pts in curves.values() for p in pts])
        ax.axhline(teacher.mean(), color="0.4", linestyle=":", linewidth=1.0, label="teacher (generation 0, real text)")
        ticks = set()
        for i, (temp, pts) in enumerate(curves.items()):
            st = style.series(i)
            x = np.array([100 * p[0] for p in pts])
            ticks |= set(x.tolist())
            m = np.array([bands.mean_interval(p[1]) for p in pts])
            ax.errorbar(x, m[:, 0], yerr=m[:, 1], **st, capsize=2, label=f"student; teacher text at temperature {temp:g}")
            if all(p[2] is not None for p in pts):
                lm = np.array([bands.mean_interval(p[2]) for p in pts])
                axl.errorbar(x, lm[:, 0], yerr=lm[:, 1], **st, capsize=2)
        if not axl.lines:
            axl.text(0.5, 0.5, "no train_loss record\n(world.record_train_loss=true)", ha="center", va="center", transform=axl.transAxes)
        for a in (ax, axl):
            a.set_xlabel("synthetic share of the training text (%)")
            a.set_xticks(sorted(ticks))
        ax.set_ylabel("real-test perplexity (per byte)")
        axl.set_ylabel("training loss (nats per byte)")
        axl.set_title("student's loss on its own training text", loc="left", fontsize=8)
        ax.set_title("student's perplexity on real test text", loc="left", fontsize=8)
        fig.legend(loc="outside lower center", ncols=3, frameon=False)
        seeds = [p[1].size for pts in curves.values() for p in pts]
        lm_runs.suptitle(fig, f"{lm_runs.world_label(runs[0][1])}; {bands.describe(seeds)}")
        paths = style.save(fig, out_dir, STEM)
    md = Path(out_dir) / f"{STEM}.md"
    md.write_text(f"# Synthetic share at a fixed token budget: {lm_runs.world_label(runs[0][1])}\n\n" + table(curves))
    return paths + [md]


def main(argv=None) -> None:
    cli.main(plot, __doc__, "runs of this figure's experiment", argv)


if __name__ == "__main__":
    main()
