"""Ledger rows of the regression world: OLS and ridge chains, mixing, token editing (ToEdit),
weighted fresh data and strong model collapse.  Theory values come from the curves that
``experiments.predictions.predict`` attaches to the same run, or from the named function of
``theory/`` directly where the row checks a formula ``predict`` does not attach."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds.regression import RegressionConfig
from collapse_sim.theory import regression as th
from collapse_sim.theory import strong_collapse as sc
from collapse_sim.theory import token_edit as te
from collapse_sim.theory import weighting as tw
from collapse_sim.theory.ledger_core import Formula as F
from collapse_sim.theory.ledger_core import Run, WorldLedger, at_g, curve

S = 2000  # seeds of a run unless it says otherwise
DESIGNS = 1000  # sampled designs of the theory that is exact in the noise


def W(**kw) -> RegressionConfig:
    return RegressionConfig(**kw)


def TE(schedule, base="previous", **kw):
    return regime_config("token_edit", schedule=schedule, edit_source=base, **kw)


RUNS = {
    "replace": Run(W(d=5, T=20, spectrum="power_law", power=1.5), regime_config("replace"), 4, S,
                   "d=5 T=20 power-law Σ, replace"),
    "accumulate": Run(W(d=5, T=20), regime_config("accumulate"), 4, S, "d=5 T=20, accumulate"),
    "mix_fresh": Run(W(d=5, T=20, design="fresh"), regime_config("mix", real_fraction=0.3, real_source="fresh"),
                     10, S, "d=5 T=20 fresh design, mix fresh p=0.3"),
    "mix_fixed": Run(W(d=4, T=16), regime_config("mix", real_fraction=0.25, real_source="fresh"), 4, S,
                     "d=4 T=16 fixed design, mix fresh p=0.25", DESIGNS),
    "mix_kept": Run(W(d=4, T=16, spectrum="power_law"),
                    regime_config("mix", real_fraction=0.5, real_source="original", resample_real=False), 4, S,
                    "d=4 T=16 fixed design, mix original p=0.5, one kept subset", DESIGNS),
    "mix_fresh_original": Run(W(d=4, T=16, design="fresh"),
                              regime_config("mix", real_fraction=0.25, real_source="original"), 4, S,
                              "d=4 T=16 fresh design, mix original p=0.25", DESIGNS),
    "ridge": Run(W(d=5, T=20, ridge=0.1), regime_config("replace"), 4, S, "d=5 T=20 ridge λ=0.1, replace", DESIGNS),
    "overparam": Run(W(d=20, T=10, sigma=0.0, ridge=1e-9, design="fresh"), regime_config("replace"), 3, S,
                     "d=20 T=10 σ=0 fresh design, ridge λ=1e-9 (min-norm), replace"),
    "te_bernoulli": Run(W(d=5, T=20), TE("bernoulli", q=0.3), 4, S, "d=5 T=20, token_edit bernoulli q=0.3",
                        DESIGNS),
    "te_original": Run(W(d=4, T=16, sigma=0.7, spectrum="power_law", power=1.5), TE("bernoulli", "original", q=0.5),
                       4, S, "d=4 T=16 power-law Σ σ=0.7, token_edit bernoulli q=0.5 edit_source=original", DESIGNS),
    "te_disjoint": Run(W(d=8, T=24), TE("disjoint", k=12, eta=0.5), 4, S,
                       "d=8 T=24, token_edit disjoint k=12 η=0.5", DESIGNS),
    "te_fixed": Run(W(d=4, T=40), TE("fixed", k=4), 6, S, "d=4 T=40, token_edit fixed k=4", DESIGNS),
    "weighted": Run(W(d=5, T=30), regime_config("weighted", weight=0.5), 8, S, "d=5 T=30, weighted w=0.5 m=T"),
    "strong": Run(W(d=8, T=40, shift_share=0.25, shift_norm=1.5), regime_config("replace"), 0, 4000,
                  "n=40 (n₂=10 shifted) d=8 √(δᵀΣδ)=1.5, one fit"),
    "strong_large": Run(W(d=2, T=8000, shift_share=0.25, shift_norm=1.5), regime_config("replace"), 0, 400,
                        "n=8000 (n₂=2000 shifted) d=2 √(δᵀΣδ)=1.5, one fit"),
}

FORMULAS = (
    F("regression.replace", "E_g = v(g+1), v = σ²d/(T−d−1)", "exact",
      "Dohmatob et al. arXiv 2402.07712 Thm; Gerstgrasser et al. arXiv 2404.01413 Thm 2; theory/derivations.md §1–2",
      ("regression.replace_curve", "ols.ols_error"), "replace", curve("test_error", 4, "prediction"), "g=4"),
    F("regression.accumulate", "E_g = v Σ_{i=1}^{g+1} 1/i² (fixed design)", "exact",
      "Gerstgrasser et al. arXiv 2404.01413 Thm 2; theory/derivations.md §5",
      ("regression.accumulate_curve",), "accumulate", curve("test_error", 4, "prediction"), "g=4"),
    F("regression.accumulate_bound", "E_g ≤ (π²/6) v", "bound",
      "Gerstgrasser et al. arXiv 2404.01413 Thm 2; theory/derivations.md §5",
      ("regression.accumulate_bound",), "accumulate", curve("test_error", 4, "bound"), "g=4"),
    F("regression.mix_fresh", "E_g = β^g v + v(1−β^g)/(1−β) (Theorem M1)", "exact",
      "theory/derivations.md §7 (Theorem M1)", ("regression.mix_fresh_curve", "regression.mix_beta",
                                                 "regression.real_row_count"),
      "mix_fresh", curve("test_error", 3, "prediction"), "g=3"),
    F("regression.mix_fresh_limit", "E_∞ = v/(1−β)", "limit", "theory/derivations.md §7 (Theorem M1)",
      ("regression.mix_fresh_limit",), "mix_fresh",
      at_g("test_error", 10, lambda t: th.mix_fresh_limit(5, 20, 0.3, 1.0)), "g=10 (β^10 ≈ 0.004)"),
    F("regression.mix_fixed_design", "labels' second moment propagated exactly given X (fresh real rows)", "exact",
      "theory/derivations.md §8", ("regression.mix_fixed_design_curve", "ols.averaged_mask_curve"),
      "mix_fixed", curve("test_error", 4, "prediction"), "g=4"),
    F("regression.mix_kept_subset", "e' = Be + G⁻¹X_RᵀE_R + G⁻¹X_SᵀE' (Theorem M2)", "exact",
      "theory/derivations.md §8c (Theorem M2)", ("regression.mix_fixed_design_curve",),
      "mix_kept", curve("test_error", 4, "prediction"), "g=4"),
    F("regression.mix_fresh_design_original", "original rows + fresh-design synthetic rows, exact given X₀",
      "exact", "theory/derivations.md §8", ("regression.mix_fresh_design_original_curve",),
      "mix_fresh_original", curve("test_error", 4, "prediction"), "g=4"),
    F("regression.ridge_replace", "ŵ_g = S_g ŵ_{g−1} + A_g E_g, exact given the designs", "exact",
      "Dohmatob et al. arXiv 2402.07712; theory/derivations.md §3",
      ("regression.ridge_replace_curve", "regression.check_lam"), "ridge", curve("test_error", 4, "prediction"),
      "g=4"),
    F("regression.overparam_noise_free", "E_g = ‖w₀‖²(1 − (T/d)^{g+1})", "exact",
      "Dohmatob et al. arXiv 2402.07712 (claim); mechanism theory/derivations.md §4",
      ("regression.overparam_noise_free_curve",), "overparam",
      at_g("test_error", 3, lambda t: th.overparam_noise_free_curve(3, 20, 10, 1.0)[3]), "g=3, E‖w*‖² = 1"),
    F("regression.ridge_downstream", "OLS chain of g generations, then a ridge fit on fresh data", "exact",
      "Dohmatob et al. arXiv 2402.07712; theory/derivations.md §3", ("regression.ridge_downstream_curve",),
      note="no engine counterpart: the engine refits the same estimator every generation"),
    # ---- token editing (ToEdit, Zhu et al. arXiv 2412.14689)
    F("token_edit.bernoulli", "C' = C − q(QC+CQ) + q²QCQ + q(1−q)Diag(QCQ) + qσ²I", "exact",
      "theory/toedit_audit.md §3", ("token_edit.bernoulli_previous_curve", "token_edit.exact_curve",
                                    "ols.sample_designs", "ols.ols_operators", "ols.weighted_trace",
                                    "ols.mean_se", "ols.design_control", "ols.quad_diag"),
      "te_bernoulli", curve("test_error", 4, "prediction"), "g=4"),
    F("token_edit.original", "r' = MPr + ME' + (I−M)r₀ (edit_source=original)", "exact",
      "theory/derivations.md §9", ("token_edit.exact_curve", "ols.averaged_mask_curve"),
      "te_original", curve("test_error", 4, "prediction"), "g=4"),
    F("token_edit.disjoint", "C' = BCBᵀ + σ²M, B = I − MQ, masks sampled", "exact",
      "theory/toedit_audit.md §3", ("token_edit.masked_curve", "token_edit.edit_masks", "token_edit.check_schedule"),
      "te_disjoint", curve("test_error", 4, "prediction"), "g=4"),
    F("token_edit.edit_counts", "k_i = ⌊k η^{i−1}⌋ rows edited in round i", "exact",
      "ToEdit arXiv 2412.14689 Thm 2; theory/toedit_audit.md §1", ("token_edit.edit_counts",),
      "te_disjoint", at_g("edited_share", 2, lambda t: te.edit_counts(4, 24, "disjoint", k=12, eta=0.5)[1] / 24),
      "g=2, share of rows"),
    F("token_edit.paper_claim", "v(1 + Σ_{i≤g} k_i/T) (drops −AM(I−P)r)", "paper claim",
      "ToEdit arXiv 2412.14689 Thm 1, App. A.2 Eq. 35–36; audit theory/toedit_audit.md §1–2",
      ("token_edit.paper_claim",), "te_disjoint", curve("test_error", 4, "paper_claim"), "g=4"),
    F("token_edit.paper_bound_2v", "E_g ≤ 2v", "paper bound",
      "ToEdit arXiv 2412.14689 Thm 2 Eq. 6; fails: theory/toedit_audit.md §4", ("token_edit.paper_bound_2v",),
      "te_disjoint", curve("test_error", 4, "paper_bound_2v"), "g=4"),
    F("token_edit.geometric_bound", "E_g ≤ v(1 + (k₁/T)/(1−η))", "paper bound",
      "ToEdit arXiv 2412.14689 Thm 2 Eq. 42; theory/toedit_audit.md §1", ("token_edit.geometric_bound",),
      "te_disjoint", curve("test_error", 4, "paper_bound_geometric"), "g=4"),
    F("token_edit.one_edit", "v[1 + k/T + k(T−k)(T−d)/(T(T−1)(T+2))]", "exact", "theory/toedit_audit.md §3",
      ("token_edit.one_edit_exact",), "te_fixed", at_g("test_error", 1, lambda t: te.one_edit_exact(4, 40, 4, 1.0)),
      "g=1"),
    F("token_edit.fixed_mask_limit", "Cov(e_∞) = σ²[(X_RᵀX_R)⁻¹ + Σ_j B^j G⁻¹X_SᵀX_S G⁻¹ (B^j)ᵀ]", "limit",
      "theory/derivations.md §8c (Theorem M2)", ("token_edit.fixed_mask_limit",), "te_fixed",
      at_g("test_error", 6, lambda t: _fixed_limit()[0], lambda t: _fixed_limit()[1]), "g=6 (g → ∞)"),
    # ---- weighted fresh data (He, Xu & Cheng arXiv 2502.18049)
    F("weighting.ols_curve", "e_{g+1} = w²v_real + (1−w)²(e_g + v_syn)", "exact",
      "He, Xu & Cheng arXiv 2502.18049; theory/curation.md §3", ("weighting.ols_curve",), "weighted",
      at_g("test_error", 2, lambda t: tw.ols_curve(8, 0.5, 5, 30, 30)[2]), "g=2"),
    F("weighting.ols_limit", "e_∞ = [w²v_real + (1−w)²v_syn]/(w(2−w))", "limit",
      "He, Xu & Cheng arXiv 2502.18049; theory/curation.md §3", ("weighting.ols_limit",), "weighted",
      at_g("test_error", 8, lambda t: tw.ols_limit(0.5, 5, 30, 30)), "g=8 ((1−w)^16 ≈ 1.5e-5)"),
    # ---- strong model collapse (Dohmatob, Feng, Subramonian & Kempe arXiv 2410.04840)
    F("strong_collapse.mixture_error", "(p₁σ₁² + p₂σ₂²)d/(n−d−1) + β(n₁,n,d)δᵀΣδ", "exact",
      "arXiv 2410.04840 Cor. 1 (finite-n form); theory/curation.md §4",
      ("strong_collapse.mixture_error", "strong_collapse.shift_factor", "strong_collapse.shift_norm2"), "strong",
      at_g("test_error", 0, lambda t: sc.mixture_error(40, 30, 8, 1.0, 1.0, sc.shift_norm2(np.eye(8)[0] * 1.5))),
      "g=0"),
    F("strong_collapse.mixture_error_curve", "mixture_error at n₁ = round(p₁n)", "exact",
      "arXiv 2410.04840 Cor. 1; theory/curation.md §4", ("strong_collapse.mixture_error_curve",), "strong_large",
      at_g("test_error", 0, lambda t: sc.mixture_error_curve(np.array([8000]), 0.75, 2, 1.0, 1.0, 2.25)[0]), "g=0"),
    F("strong_collapse.plateau", "lim_n E = p₂² δᵀΣδ", "limit", "arXiv 2410.04840 Cor. 1; theory/curation.md §4",
      ("strong_collapse.plateau",), "strong_large", at_g("test_error", 0, lambda t: sc.plateau(0.75, 2.25)),
      "g=0 (n → ∞)"),
)


@functools.cache
def _fixed_limit():
    """(mean, SE) of the fixed schedule's g → ∞ error over sampled designs."""
    r = RUNS["te_fixed"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return te.fixed_mask_limit(r.world.d, r.world.T, r.regime.k, r.world.sigma**2, n_designs=DESIGNS,
                                   rng=np.random.default_rng(123))


LEDGER = WorldLedger("regression", RUNS, FORMULAS)
