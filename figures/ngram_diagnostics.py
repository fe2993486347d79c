"""Real against synthetic against token-edited text: n-gram diagnostics (ToEdit §3.2, App. G.5).

From the training text each generation recorded (``train_tokens``, experiment=ngram_diagnostics;
positions 1..W-1 of each block, the scored ones), with simulator/diagnostics.py.  The reference
is the second half of the real blocks; a generation's text is the first half of its blocks, so
generation 0 compares real text with other real text of the same size: the floor that sampling
alone gives every measure.

(a) "feature over-concentration" (ToEdit Fig. 11): bi-grams hashed into 10,000 buckets; the
    share of each text's bi-grams that falls in its k fullest buckets (a concentrated text climbs
    faster and stops at fewer buckets), seed 0; the legend gives the KL divergence
    KL(real || text) (empty buckets smoothed by 1e-10, diagnostics.kl_divergence) and the total
    variation to the real text's histogram, mean over seeds;
(b) the real text's 20 most frequent bi-grams and their frequency in each text (ToEdit Figs. 12-13),
    pooled over seeds;
(c) survival (Shumailov et al. 2024, "tails disappear first"): the share of the real text's rare
    words and rare byte bi-grams (count at most the 25% quantile of the real counts) that still
    occur in generation g's text of the same size, and of all its words, divided by the same share
    for the other half of the real text (generation 0, = 1), mean over seeds; a word is a run of
    bytes between spaces, tabs and newlines;
(d) the prior's token probabilities on the real text in ten bins (ToEdit Table 6 / Fig. 5,
    U-shaped for Llama-scale priors), from the token-editing run's ``prior_prob_hist`` at
    generation 1, beside ToEdit's Table 6.

A markdown table of every measure per generation (KL, TV, distinct-1/2/3, type-token ratio,
unigram entropy, Zipf exponents, survival of bytes, bi-grams and words) is written alongside.

    python -m collapse_sim.figures.ngram_diagnostics RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import cli, lm_runs, style
from collapse_sim.simulator import diagnostics as D

STEM = "ngram_diagnostics"
EXPERIMENTS = ("ngram_diagnostics",)
SHOWS = ("regime.", "world.edit_threshold")  # figures/render.py: one line or bar per variant
MAX_RUNS = len(style.SERIES) - 1  # style.series(0) is the real text's
RARE_Q = 0.25
TOP_K = 20
# ToEdit Table 6 (Zhu et al. 2024, arXiv 2412.14689): share of tokens per prior-probability bin [0, 0.1), ..., [0.9, 1].
TOEDIT_TABLE6 = np.array([34.7, 8.1, 5.4, 4.4, 3.8, 3.6, 3.7, 4.0, 5.2, 27.1])


def texts(rec) -> np.ndarray:
    """(S, G+1, n, W-1): the scored positions of the recorded training blocks."""
    return rec["train_tokens"][..., 1:]


def halves(rec):
    """(reference (S, n/2, W-1): the second half of the real blocks; texts (S, G+1, n/2, W-1): the
    first half of every generation's blocks)."""
    X = texts(rec)
    h = X.shape[2] // 2
    return X[:, 0, h:], X[:, :, :h]


def measures(real: np.ndarray, text: np.ndarray, words: bool = True) -> dict:
    """Every diagnostic of one text against the real text of the same seed."""
    out = {}
    for n, name in ((1, "uni"), (2, "bi")):
        p, q = D.hashed_histogram(real, n), D.hashed_histogram(text, n)
        out[f"KL_{name}"] = D.kl_divergence(p, q)
        out[f"TV_{name}"] = D.total_variation(p, q)
    for n in (1, 2, 3):
        out[f"distinct_{n}"] = D.distinct_n(text, n)
    out["TTR"] = D.type_token_ratio(text)
    out["entropy"] = D.entropy(text)
    out["zipf_bytes"] = D.zipf_fit(text).exponent
    s1, s2 = D.survival(real, text, 1, RARE_Q), D.survival(real, text, 2, RARE_Q)
    out |= {"types_all": s1.all, "types_rare": s1.rare, "bigrams_all": s2.all, "bigrams_rare": s2.rare}
    if words:
        (rw, w), V = D.to_words(real, text)
        sw = D.survival(rw, w, 1, RARE_Q, vocab_size=V)
        out |= {"words_all": sw.all, "words_rare": sw.rare, "zipf_words": D.zipf_fit(w, vocab_size=V).exponent}
    return out


def all_measures(rec) -> dict:
    """name -> (S, G+1) array of every measure for one run."""
    ref, X = halves(rec)
    S, G1 = X.shape[:2]
    rows = [[measures(ref[s], X[s, g]) for g in range(G1)] for s in range(S)]
    return {k: np.array([[rows[s][g][k] for g in range(G1)] for s in range(S)]) for k in rows[0][0]}


COLUMNS = [
    ("KL_bi", "KL bi (nats)", "{:.3f}"), ("TV_bi", "TV bi", "{:.3f}"), ("KL_uni", "KL uni (nats)", "{:.4f}"),
    ("TV_uni", "TV uni", "{:.3f}"), ("distinct_1", "distinct-1", "{:.4f}"), ("distinct_2", "distinct-2", "{:.4f}"),
    ("distinct_3", "distinct-3", "{:.4f}"), ("TTR", "TTR", "{:.4f}"), ("entropy", "unigram entropy (nats)", "{:.4f}"),
    ("zipf_bytes", "Zipf s (bytes)", "{:.3f}"), ("zipf_words", "Zipf s (words)", "{:.3f}"),
    ("types_all", "byte types kept", "{:.3f}"), ("types_rare", "rare byte types kept", "{:.3f}"),
    ("bigrams_all", "bi-grams kept", "{:.3f}"), ("bigrams_rare", "rare bi-grams kept", "{:.3f}"),
    ("words_all", "words kept", "{:.3f}"), ("words_rare", "rare words kept", "{:.3f}"),
]


def table(runs, ms) -> str:
    head = " | ".join(c[1] for c in COLUMNS)
    lines = [f"| text | generation | {head} |", "|---|---|" + "---|" * len(COLUMNS)]
    for i, ((rec, meta), m) in enumerate(zip(runs, ms)):
        G1 = m["TTR"].shape[1]
        for g in range(G1):
            name = "real (other half)" if g == 0 else lm_runs.label(meta)
            if g == 0 and i > 0:  # generation 0 is the same real text in every run
                continue
            cells = " | ".join(fmt.format(m[k][:, g].mean()) for k, _, fmt in COLUMNS)
            lines.append(f"| {name} | {g} | {cells} |")
    return "\n".join(lines) + "\n"


def applies(meta: dict) -> bool:
    return lm_runs.made_by(meta, EXPERIMENTS)


def plot(run_dirs, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    runs = [r for r in lm_runs.select(run_dirs, EXPERIMENTS) if "train_tokens" in r[0]]
    if not runs:
        return []
    ms = [all_measures(rec) for rec, _ in runs]
    ref0, X0 = halves(runs[0][0])
    S, G1 = X0.shape[:2]
    G = G1 - 1
    real_all = texts(runs[0][0])[:, 0].reshape(-1, X0.shape[-1])
    with plt.rc_context(style.RC):
        fig, axes = style.subplots(2, 2, figsize=(8.6, 8.0), gridspec_kw={"height_ratios": [1.25, 1]})
        (ax_h, ax_t), (ax_s, ax_p) = axes

        # (a) sorted hashed bi-gram bucket shares
        def cumulative(x):
            c = np.cumsum(np.sort(D.hashed_histogram(x, 2))[::-1])
            return np.where(np.r_[True, c[1:] < 1 - 1e-12], c, np.nan)  # stop where the buckets run out

        real_h = cumulative(ref0[0])
        k = np.arange(1, real_h.size + 1)
        ax_h.semilogx(k, real_h, color="0.55", linewidth=2.2, label="real text (reference half)")
        m0 = ms[0]
        ax_h.semilogx(k, cumulative(X0[0, 0]), color="0.55", linewidth=0.9, linestyle=":",
                      label=f"real, other half: KL {m0['KL_bi'][:, 0].mean():.3f} nats, TV {m0['TV_bi'][:, 0].mean():.3f}")
        for i, ((rec, meta), m) in enumerate(zip(runs, ms)):
            st = style.series(i + 1)
            ax_h.semilogx(k, cumulative(halves(rec)[1][0, G]), color=st["color"], linestyle=st["linestyle"],
                        label=f"{lm_runs.label(meta).split(' (')[0]}, gen {G}: KL {m['KL_bi'][:, G].mean():.3f} nats, TV {m['TV_bi'][:, G].mean():.3f}")
        ax_h.set_xlabel("k fullest buckets (bi-grams hashed into 10,000 buckets)")
        ax_h.set_ylabel("share of all bi-grams in them")
        ax_h.set_ylim(0, 1.02)
        ax_h.set_xlim(0.8, 1.25 * D.DEFAULT_BUCKETS)  # every bucket: the real text fills a tenth
        ax_h.set_title("(a) concentration of hashed bi-gram features", loc="left")
        ax_h.legend(frameon=False, loc="lower right", fontsize=6.5)

        # (b) top-K real bi-grams: real against each text at generation G
        top = D.top_k(real_all, 2, TOP_K)
        y = np.arange(TOP_K)
        n_bars = 1 + len(runs)
        hgt = 0.8 / n_bars
        hatches = [None, "////", "....", "xxxx", "\\\\\\\\"]
        ax_t.barh(y - 0.4 + hgt / 2, 100 * top.shares, height=hgt, color="0.6", label="real (generation 0)")
        for i, (rec, meta) in enumerate(runs):
            st = style.series(i + 1)
            txt = texts(rec)[:, G].reshape(-1, X0.shape[-1])
            ax_t.barh(y - 0.4 + hgt * (i + 1.5), 100 * D.shares_of(txt, top.codes, 2), height=hgt, color="white",
                      edgecolor=st["color"], hatch=hatches[(i + 1) % len(hatches)], linewidth=0.6,
                      label=f"{lm_runs.label(meta).split(' (')[0]}, gen {G}")
        ax_t.set_yticks(y)
        ax_t.set_yticklabels([D.label(c, 2) for c in top.codes], fontfamily="monospace", fontsize=7)
        ax_t.set_ylabel(f"the real text's {TOP_K} most frequent bi-grams")
        ax_t.invert_yaxis()
        ax_t.set_xlabel("frequency among all bi-grams (%)")
        ax_t.set_title(f"(b) the real text's top {TOP_K} bi-grams (␣ space, ↵ newline)", loc="left")
        ax_t.legend(frameon=False, loc="lower right", fontsize=6.5)

        # (c) survival over generations, relative to real text against real text (generation 0)
        g = np.arange(G1)
        rare = f"count ≤ {RARE_Q:.0%} quantile"
        measures_c = (("words_rare", "-", f"rare words ({rare})"), ("words_all", ":", "all words"),
                      ("bigrams_rare", "--", f"rare byte bi-grams ({rare})"))
        for i, ((rec, meta), m) in enumerate(zip(runs, ms)):
            st = style.series(i + 1)
            for key, ls, what in measures_c:
                rel = m[key] / m[key][:, :1]
                ax_s.plot(g, rel.mean(0), color=st["color"], marker=st["marker"], linestyle=ls,
                          label=f"(c) {lm_runs.label(meta).split(' (')[0]}: {what}")
        ax_s.set_ylim(0, 1.12)
        ax_s.axhline(1.0, color="0.7", linewidth=0.6)
        ax_s.set_xlabel("generation")
        ax_s.set_ylabel("types present, relative to real text")
        ax_s.set_title("(c) survival of the real text's types", loc="left")
        fig.legend(*ax_s.get_legend_handles_labels(), frameon=False, loc="outside lower left", ncols=2, fontsize=6.5)

        # (d) the prior's token-probability histogram on the real text
        edits = [(rec, meta) for rec, meta in runs if "prior_prob_hist" in rec]
        centers = np.arange(10)
        ax_p.bar(centers + 0.2, TOEDIT_TABLE6, width=0.4, color="white", edgecolor="0.3", hatch="////", linewidth=0.6,
                 label="ToEdit Table 6 (prior on a biomedicine corpus)")
        if edits:
            rec, meta = edits[0]
            hist = 100 * rec["prior_prob_hist"][:, 1].mean(0)
            prior = {"generation0": "generation-0 model", "base": "pretrained base model"}.get(
                meta["config"]["regime"].get("prior"), "model 0 (= model n−1 at n=1)")
            ax_p.bar(centers - 0.2, hist, width=0.4, color="0.25", label=f"{prior} on the real training text")
        ax_p.set_ylim(0, 1.3 * max([TOEDIT_TABLE6.max()] + [b.get_height() for b in ax_p.patches]))
        ax_p.set_xticks(centers)
        ax_p.set_xticklabels([f"{b / 10:.1f}" for b in range(10)], fontsize=7)
        ax_p.set_xlabel("prior probability of the token, bin start (bins of width 0.1)")
        ax_p.set_ylabel("share of tokens (%)")
        ax_p.set_title("(d) token probabilities under the prior", loc="left")
        ax_p.legend(frameon=False, loc="upper center", fontsize=6.5)

        lm_runs.suptitle(fig, f"{lm_runs.world_label(runs[0][1])}; {S} seeds, {2 * X0.shape[2]} blocks per generation, compared by halves")
        style.integer_generations(ax_s)
        paths = style.save(fig, out_dir, STEM)
    md = Path(out_dir) / f"{STEM}.md"
    md.write_text(
        f"# n-gram diagnostics: {lm_runs.world_label(runs[0][1])}\n\nMeans over {S} seeds; every measure of the first "
        f"half of a generation's blocks against the second half of the real blocks ({X0.shape[2]} blocks of "
        f"{X0.shape[3]} scored bytes each; generation 0 is real against real); rare = count at most the "
        f"{RARE_Q:.0%} quantile of the real counts.\n\n" + table(runs, ms)
    )
    return paths + [md]


def main(argv=None) -> None:
    cli.main(plot, __doc__, "runs of this figure's experiment", argv)


if __name__ == "__main__":
    main()
