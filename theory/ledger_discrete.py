"""Ledger rows of the kernel-density and categorical worlds: the KDE variance drift, the neutral
Wright–Fisher chain of refitted frequencies (loss, fixation, absorption, exact curves) and sampling
at a temperature.  Theory values come from the curves ``experiments.predictions.predict`` attaches
to the same run, or from the named function of ``theory/`` where ``predict`` attaches none."""

from __future__ import annotations

import numpy as np

from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds import categorical, kde
from collapse_sim.theory import categorical as tcat
from collapse_sim.theory import kde as tk
from collapse_sim.theory import temperature as tt
from collapse_sim.theory.ledger_core import Formula as F
from collapse_sim.theory.ledger_core import Run, WorldLedger, at_g, conditional, curve

# ----------------------------------------------------------------------------- KDE

KDE_RUNS = {
    "replace": Run(kde.Config(d=2, M=10, h=0.5, true_K=2, separation=1.0, n_test=16), regime_config("replace"),
                   60, 2000, "d=2 M=10 h=0.5, two-component truth, replace"),
}

KDE_FORMULAS = (
    F("kde.variance_curve", "E s²_{g+1} = (1 − 1/M)(E s²_g + d h²)", "exact",
      "Kazdan et al. arXiv 2410.16713 (KDE world); derived theory/derivations.md §13",
      ("kde.kde_variance_curve", "kde.expected_biased_variance"), "replace", curve("var", 3), "g=3"),
    F("kde.variance_limit", "lim_g E s²_g = (M − 1) d h²", "limit", "theory/derivations.md §13",
      ("kde.kde_variance_limit",), "replace", at_g("var", 60, lambda t: tk.kde_variance_limit(10, h=0.5, dim=2)),
      "g=60 (0.9^60 ≈ 2e-3)"),
)

KDE = WorldLedger("kde", KDE_RUNS, KDE_FORMULAS)

# ----------------------------------------------------------------------------- categorical

P = [0.5, 0.3, 0.15, 0.05]
M, G_CHAIN, S_CHAIN = 10, 200, 2000  # P(a seed not absorbed by g = 200) ~ 0.9^200
ZIPF = {"V": 4, "dist": "zipf", "record_probs": True}
ALPHA_STEP, TAU_STEP, M_STEP = 0.25, 0.5, 40  # αM = 10 fresh real rows

CAT_RUNS = {
    "chain": Run(categorical.Config(V=4, M=M, dist="given", probs=P, record_probs=True, tail_quantile=0.5),
                 regime_config("replace"), G_CHAIN, S_CHAIN, "V=4 p=(.5,.3,.15,.05) M=10, replace"),
    "tempered_replace": Run(categorical.Config(M=5000, temperature=0.8, **ZIPF), regime_config("replace"), 3, 100,
                            "V=4 Zipf M=5000 τ=0.8, replace"),
    "tempered_mix": Run(categorical.Config(M=5000, temperature=1.5, **ZIPF),
                        regime_config("mix", real_fraction=0.2, real_source="fresh"), 10, 100,
                        "V=4 Zipf M=5000 τ=1.5, mix fresh α=0.2"),
    "tempered_step": Run(categorical.Config(M=M_STEP, temperature=TAU_STEP, **ZIPF),
                         regime_config("mix", real_fraction=ALPHA_STEP, real_source="fresh"), 1, 2000,
                         "V=4 Zipf M=40 τ=0.5, mix fresh α=0.25"),
}
R = 1.0 / S_CHAIN  # resolution of an indicator's mean over the chain's seeds


def _p_star(run: str) -> np.ndarray:
    return categorical.true_distribution(CAT_RUNS[run].world)


def _lost_smallest(rec):
    return (rec["probs"][:, :, 3] == 0).astype(float)


def _fixed_first(rec):
    return (rec["probs"][:, :, 0] == 1).astype(float)


def _fits_to_absorption(rec):
    if not rec["absorbed"][:, -1].all():
        raise RuntimeError(f"some seeds are not absorbed by generation {G_CHAIN}; the absorption time needs all")
    return (rec["absorbed"].argmax(1) + 1.0)[:, None]  # generation 0 is the first fit


def _prob0(rec):
    return rec["probs"][:, :, 0]


def _step_prob0(rec):
    return tt.categorical_step(rec["probs"][:, 0], _p_star("tempered_step"), ALPHA_STEP, TAU_STEP)[:, 0]


SHUMAILOV = "Shumailov et al. Nature 2024 (arXiv 2305.17493) §4.1"
WF = "theory/derivations.md §14"

CAT_FORMULAS = (
    F("categorical.loss_probability", "P(outcome of prob. q unseen) = (1 − q)^M", "exact", SHUMAILOV,
      ("categorical.loss_probability",), "chain",
      at_g(_lost_smallest, 0, lambda t: tcat.loss_probability(P[3], M), resolution=R), "g=0, q=0.05"),
    F("categorical.surviving_categories", "E #support_0 = Σ_k 1 − (1 − p_k)^M", "exact", WF,
      ("categorical.expected_surviving_categories",), "chain",
      at_g("support", 0, lambda t: tcat.expected_surviving_categories(P, M), resolution=R), "g=0"),
    F("categorical.lost_mass", "E lost mass = Σ_k p_k(1 − p_k)^M", "exact", WF, ("categorical.expected_lost_mass",),
      "chain", at_g("lost_mass", 0, lambda t: tcat.expected_lost_mass(P, M)), "g=0"),
    F("categorical.lost_mass_curve", "E lost mass_g = Σ_k p_k P(X_{k,g} = 0), marginal chains", "exact", WF,
      ("categorical.zero_count_curves",), "chain", curve("lost_mass", 5), "g=5"),
    F("categorical.support_curve", "E #support_g via the binomial marginal chains", "exact", WF,
      ("categorical.expected_support_curve",), "chain", curve("support", 5, resolution=R), "g=5"),
    F("categorical.entropy_curve", "E H(p̂_g) via the binomial marginal chains", "exact", WF,
      ("categorical.expected_entropy_curve",), "chain", curve("entropy", 5), "g=5"),
    F("categorical.heterozygosity_curve", "E H_g = H(p) Π_{i≤g}(1 − 1/M_i)", "exact", WF,
      ("categorical.expected_heterozygosity_curve",), "chain", curve("heterozygosity", 5), "g=5"),
    F("categorical.absorption_curve", "P(point mass at g) = Σ_k P(X_{k,g} = M)", "exact", WF,
      ("categorical.absorption_probability_curve",), "chain", curve("absorbed", 10, resolution=R), "g=10"),
    F("categorical.tail_mass_martingale", "E tail mass(p̂_g) = tail mass(p*)", "exact", WF,
      ("categorical.tail_mass",), "chain", curve("tail_mass", 10), "g=10"),
    F("categorical.fixation", "P(fixation on k) = p_k", "exact", f"{SHUMAILOV}; {WF}",
      ("categorical.fixation_probabilities",), "chain",
      at_g(_fixed_first, G_CHAIN, lambda t: tcat.fixation_probabilities(P)[0], resolution=R), "g=200, k=0"),
    F("categorical.absorption_time", "E fits to a point mass, exact first-passage sums", "exact", WF,
      ("categorical.absorption_time_exact",), "chain",
      at_g(_fits_to_absorption, 0, lambda t: tcat.absorption_time_exact(P, M)), "all seeds absorbed by g=200"),
    F("categorical.wright_fisher_time", "E fits ≈ −2M Σ_k (1−p_k) ln(1−p_k)", "approx",
      f"Kimura–Ohta; Littler 1975 (diffusion limit); {WF}", ("categorical.absorption_time_wright_fisher",), "chain",
      at_g(_fits_to_absorption, 0, lambda t: tcat.absorption_time_wright_fisher(P, M)), "M=10"),
    F("temperature.categorical_replace", "p_g ∝ p*^{τ^{−g}}", "limit", "theory/curation.md §2",
      ("temperature.categorical_replace_curve",), "tempered_replace",
      curve(_prob0, 3, "prob_0"), "g=3, p_g[0] (M → ∞)"),
    F("temperature.categorical_curve", "p_{g+1} = αp* + (1−α) normalise(p_g^{1/τ})", "limit",
      "theory/curation.md §2", ("temperature.categorical_curve",), "tempered_mix",
      curve(_prob0, 2, "prob_0"), "g=2, p_g[0] (M → ∞)"),
    F("temperature.categorical_fixed_point", "p = αp* + (1−α) normalise(p^{1/τ})", "limit", "theory/curation.md §2",
      ("temperature.categorical_fixed_point",), "tempered_mix",
      at_g(_prob0, 10, lambda t: tt.categorical_fixed_point(_p_star("tempered_mix"), 0.2, 1.5)[0]),
      "g=10, p[0] (M, g → ∞)"),
    F("temperature.categorical_step", "E[p' | p] = αp* + (1−α) normalise(p^{1/τ})", "exact one step",
      "theory/curation.md §2", ("temperature.categorical_step", "temperature.tempered"), "tempered_step",
      conditional(_prob0, 1, _step_prob0), "g=1 | model 0, p[0]"),
)

CATEGORICAL = WorldLedger("categorical", CAT_RUNS, CAT_FORMULAS)
