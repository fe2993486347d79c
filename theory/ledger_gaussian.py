"""Ledger rows of the Gaussian world: Shumailov's and Kazdan's refits, sampling temperature, weighted
fresh data (the golden ratio), Bertrand's mixed refit, and curation (best-of-K, verifier window,
preference tilt, top fraction).  Theory values come from the curves ``experiments.predictions.predict``
attaches to the same run, or from the named function of ``theory/`` where ``predict`` attaches none."""

from __future__ import annotations

import numpy as np

from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds import gaussian
from collapse_sim.theory import curation as tc
from collapse_sim.theory import gaussian as tg
from collapse_sim.theory import temperature as tt
from collapse_sim.theory import weighting as tw
from collapse_sim.theory.ledger_core import Formula as F
from collapse_sim.theory.ledger_core import Run, WorldLedger, at_g, conditional, curve, median_at

S = 4000


def mle(**kw) -> gaussian.Config:
    return gaussian.Config(**{"d": 1, "estimator": "mle", **kw})


def curated(**rule):
    return regime_config("replace", curation=rule)


S2_0_BEST = 999 / 1000  # E s_0² of the MLE fit on the best-of-K run's M = 1000 real rows
TAU2 = 0.7  # temperature² of the tempered run, below τ²_crit(0.2, 20)
QUAD = {"rule": "best_of_k", "K": 4, "reward": "quadratic", "target": 1.0}
WINDOW = {"centre": 0.5, "half_width": 1.0}

RUNS = {
    "replace_1d": Run(gaussian.Config(d=1, M=20, sigma=1.5), regime_config("replace"), 5, S,
                      "d=1 M=20 σ=1.5 unbiased, replace"),
    "replace_mle": Run(mle(d=3, M=10, spectrum="power_law"), regime_config("replace"), 4, S,
                       "d=3 M=10 power-law Σ MLE, replace"),
    "accumulate": Run(mle(d=3, M=10, spectrum="power_law"), regime_config("accumulate"), 4, S,
                      "d=3 M=10 power-law Σ MLE, accumulate"),
    "tempered": Run(mle(M=20, temperature=float(np.sqrt(TAU2))),
                    regime_config("mix", real_fraction=0.2, real_source="fresh"), 12, S,
                    "d=1 M=20 MLE τ²=0.7, mix fresh α=0.2"),
    "mix_half": Run(mle(M=20), regime_config("mix", real_fraction=0.5, real_source="fresh"), 10, S,
                    "d=1 M=20 MLE τ=1, mix fresh α=0.5 (λ=1)"),
    "weighted": Run(gaussian.Config(d=1, M=20), regime_config("weighted", real_to_synthetic=1.0), 12, S,
                    "d=1 M=20 unbiased, weighted golden w*, k=1"),
    "best_of_k": Run(mle(M=1000), curated(rule="best_of_k", K=4), 20, 200,
                     "d=1 M=1000 MLE, best-of-4 linear reward"),
    "best_of_k_quadratic": Run(mle(M=20), curated(**QUAD), 1, 600, "d=1 M=20 MLE, best-of-4 r=−(x−1)²"),
    "verifier": Run(mle(M=2000), curated(rule="verifier", rounds=2, **WINDOW), 3, 300,
                    "d=1 M=2000 MLE, verifier window |x−0.5| ≤ 1"),
    "preference": Run(mle(M=200), curated(rule="preference", K=128, beta=0.5), 2, 100,
                      "d=1 M=200 MLE, preference K=128 β=0.5 linear"),
    "preference_quadratic": Run(mle(M=200), curated(rule="preference", K=128, beta=0.5, reward="quadratic",
                                                    target=1.0), 2, 100,
                                "d=1 M=200 MLE, preference K=128 β=0.5 r=−(x−1)²"),
    "top_fraction": Run(mle(M=2000), curated(rule="top_fraction", keep_fraction=0.25), 3, 100,
                        "d=1 M=2000 MLE, top 25% by x"),
}

_QUAD_STEPS: dict = {}  # the records last seen and their steps (two rows read the same quadratures)


def _quadratic_step(rec):
    """Per seed (E μ₁, E s₁²) given generation 0's fit, by quadrature."""
    if _QUAD_STEPS.get("rec") is not rec:
        steps = [tc.best_of_k_quadratic_step(m, v, QUAD["target"], QUAD["K"], n=20)
                 for m, v in zip(rec["mean"][:, 0], rec["var"][:, 0])]
        _QUAD_STEPS.update(rec=rec, steps=np.array(steps))
    return _QUAD_STEPS["steps"]


def _window_step(rec, what):
    return tc.window_step(rec["mean"][:, 0], rec["var"][:, 0], n_kept=2000, **WINDOW)[what]


def _signed_gap(rec):
    """(μ_g − μ*)·sign(μ₀ − μ*), μ* = 0: the gap measured along generation 0's side (known given model 0)."""
    return rec["mean"] * np.sign(rec["mean"][:, :1])


def _bertrand_gap(rec):
    """E[(μ₁ − μ*)·sign(μ₀ − μ*) | model 0] from the infinite-sample map's mean, λ = (1 − α)/α = 1."""
    mu1 = np.array([tg.bertrand_gaussian_step(m, v, 0.0, 1.0, 1.0)[0] for m, v in zip(rec["mean"][:, 0],
                                                                                      rec["var"][:, 0])])
    return mu1 * np.sign(rec["mean"][:, 0])


def _sample_variance(rec):
    return rec["var"] + rec["mean_error"]  # Var of one draw of model g = E σ_g² + E(μ_g − μ)²


def _sat(t):
    return tc.best_of_k_saturation(4, 0.0, S2_0_BEST)


SHUMAILOV = "Shumailov et al. Nature 2024 (arXiv 2305.17493) SI §3.1"
KAZDAN = "Kazdan et al. arXiv 2410.16713 §3.2"
HE = "He, Xu & Cheng arXiv 2502.18049; theory/curation.md §3"
FERBACH = "Ferbach et al. arXiv 2407.09499; theory/curation.md §7"

FORMULAS = (
    F("gaussian.replace_mean_sq_error", "E(μ_g−μ)² = σ² Σ_{i≤g} 1/M_i (unbiased)", "exact",
      f"{SHUMAILOV}; theory/derivations.md §10", ("gaussian.replace_mean_sq_error",), "replace_1d",
      curve("mean_error", 5), "g=5"),
    F("gaussian.replace_variance", "E σ_g² = σ² (a martingale)", "exact",
      f"{SHUMAILOV} Thm 3.1; theory/derivations.md §10",
      ("gaussian.replace_trace_ratio",), "replace_1d", curve("var", 5), "g=5"),
    F("gaussian.replace_std_mean", "E σ_g = σ Π c(M_i−1), c(k) = E√(χ²_k/k)", "exact", "theory/derivations.md §10",
      ("gaussian.replace_std_mean", "gaussian.chi_mean_factor"), "replace_1d", curve("std", 5), "g=5"),
    F("gaussian.replace_w2sq", "E W₂² = E(μ_g−μ)² + E σ_g² − 2σ E σ_g + σ²", "exact",
      f"{SHUMAILOV}; theory/derivations.md §10", ("gaussian.replace_w2sq",), "replace_1d", curve("w2sq", 5), "g=5"),
    F("gaussian.shumailov_w2sq_approx", "E W₂² ≈ (3/2)σ² Σ 1/M_i", "approx",
      f"{SHUMAILOV}.1 Eq. 6 (first order in 1/M)",
      ("gaussian.shumailov_w2sq_approx",), "replace_1d", curve("w2sq", 5, "w2sq_approx"), "g=5"),
    F("gaussian.replace_var_median", "median σ_g² by Gil-Pelaez inversion", "exact", "theory/derivations.md §10",
      ("gaussian.replace_var_median",), "replace_1d", median_at("var", 5, "var_median"), "g=5, median"),
    F("gaussian.replace_sample_variance", "Var x_g = σ²(1 + Σ_{i≤g} 1/M_i)", "exact", f"{SHUMAILOV} Eq. 6",
      ("gaussian.replace_sample_variance",), "replace_1d",
      at_g(_sample_variance, 5, lambda t: tg.replace_sample_variance(20, 5, sigma2=2.25, estimator="unbiased")[5]),
      "g=5, σ_g² + (μ_g−μ)²"),
    F("gaussian.replace_trace_ratio_mle", "E tr Σ_g/tr Σ = ((M−1)/M)^{g+1}", "exact",
      f"{KAZDAN}; theory/derivations.md §10",
      ("gaussian.replace_trace_ratio",), "replace_mle", curve("trace_ratio", 4), "g=4"),
    F("gaussian.replace_logdet_change", "E log det Σ_g/Σ = Σ_i Σ_j [ψ((M_i−j)/2) + log 2 − log m_i]", "exact",
      "Bartlett decomposition; theory/derivations.md §10", ("gaussian.replace_logdet_change",), "replace_mle",
      curve("logdet_change", 4), "g=4"),
    F("gaussian.replace_mean_sq_error_mle", "E‖μ_g−μ‖² = tr Σ Σ_i (1/M_i) Π_{j<i}(M_j−1)/m_j", "exact",
      "theory/derivations.md §10", ("gaussian.replace_mean_sq_error",), "replace_mle", curve("mean_error", 4), "g=4"),
    F("gaussian.accumulate_trace_ratio", "pooled scatter: E[S_g|past] = S_{g−1} + (M_g−1+N_{g−1}/N_g)Σ_{g−1}",
      "exact", "theory/derivations.md §11", ("gaussian.accumulate_trace_ratio",), "accumulate",
      curve("trace_ratio", 4), "g=4"),
    F("gaussian.accumulate_mean_sq_error", "E‖μ_g−μ‖² = tr Σ Σ_i (M_i/N_i²) E tr Σ_{i−1}/tr Σ", "exact",
      "theory/derivations.md §11", ("gaussian.accumulate_mean_sq_error",), "accumulate", curve("mean_error", 4), "g=4"),
    F("gaussian.accumulate_mean_sq_error_approx", "(tr Σ/M) Σ_{k≤g+1} 1/k² (covariance frozen)", "approx",
      f"{KAZDAN}; theory/derivations.md §11", ("gaussian.accumulate_mean_sq_error_approx",), "accumulate",
      curve("mean_error", 4, "mean_error_approx"), "g=4"),
    F("gaussian.accumulate_mean_sq_error_bound", "E‖μ_g−μ‖² ≤ (π²/6) tr Σ/M", "bound",
      "Dey & Donoho arXiv 2410.22812; theory/derivations.md §11", ("gaussian.accumulate_mean_sq_error_bound",),
      "accumulate", curve("mean_error", 4, "mean_error_bound"), "g=4"),
    F("gaussian.bertrand_step", "μ' = (μ* + λμ)/(1+λ) (refit on real + λ·synthetic)", "exact one step",
      "theory/derivations.md §12 (Bertrand et al. arXiv 2310.00429 setting)", ("gaussian.bertrand_gaussian_step",),
      "mix_half", conditional(_signed_gap, 1, _bertrand_gap),
      "g=1 | model 0, gap (μ₁−μ*)·sign(μ₀−μ*); the mean's map is exact at any M"),
    F("gaussian.bertrand_contraction", "‖μ' − μ*‖ = λ/(1+λ) ‖μ − μ*‖", "exact one step", "theory/derivations.md §12",
      ("gaussian.bertrand_contraction",), "mix_half",
      conditional(_signed_gap, 1, lambda rec: tg.bertrand_contraction(1.0) * np.abs(rec["mean"][:, 0])),
      "g=1 | model 0, in the mean"),
    F("gaussian.bertrand_bound", "ρ = λ(α+εL)/(α − λ(α+εL)) ≥ λ/(1+λ)", "paper bound",
      "Bertrand et al. arXiv 2310.00429 Thm; theory/derivations.md §12", ("gaussian.bertrand_bound",),
      note="a bound on the contraction of the infinite-sample map; compared with bertrand_contraction in theory, "
           "no Monte Carlo statistic estimates a contraction factor"),
    # ---- sampling temperature (theory/curation.md §1)
    F("temperature.moment_curve_var", "E_{t+1} = c(ασ² + (1−α)τ²E_t) + α(1−α)v_t", "exact", "theory/curation.md §1",
      ("temperature.moment_curve", "temperature.transition"), "tempered", curve("var", 3), "g=3"),
    F("temperature.moment_curve_mean", "v_{t+1} = ασ²/n + (1−α)τ²E_t/n + (1−α)²v_t", "exact", "theory/curation.md §1",
      ("temperature.moment_curve",), "tempered", curve("mean_error", 3), "g=3"),
    F("temperature.fixed_point", "(E_∞, v_∞) = (I − M)⁻¹b", "limit", "theory/curation.md §1",
      ("temperature.fixed_point",), "tempered",
      at_g("var", 12, lambda t: tt.fixed_point(0.2, np.sqrt(TAU2), 20, 1.0)[0]), "g=12 (ρ=0.67, g → ∞)"),
    F("temperature.fixed_point_tau1", "E_∞ = (1 − 1/D)σ², D = 1 − α + αn(2−α)", "limit", "theory/curation.md §1",
      ("temperature.fixed_point_tau1",), "mix_half",
      at_g("var", 10, lambda t: tt.fixed_point_tau1(0.5, 20, 1.0)[0]), "g=10 (g → ∞)"),
    F("temperature.stability", "ρ(M) < 1 iff τ² < τ²_crit = n(2−α)/((1−α)(n(2−α)−1))", "exact",
      "theory/curation.md §1", ("temperature.spectral_radius", "temperature.critical_temperature_sq",
                                "temperature.phase_boundary"),
      note="the stability of moment_curve's linear map; its moments are checked above, the boundary itself "
           "has no Monte Carlo statistic"),
    # ---- weighted fresh data (golden ratio)
    F("weighting.gaussian_mean_curve", "e_{g+1} = w²σ²/n + (1−w)²(e_g + kσ²/n)", "exact", HE,
      ("weighting.gaussian_mean_curve", "weighting.error_curve"), "weighted", curve("mean_error", 2), "g=2"),
    F("weighting.golden_limit", "at w* = (√(k²+4k) − k)/2: e_∞ = w*σ²/n (k=1: 0.618σ²/n)", "limit", HE,
      ("weighting.golden_weight", "weighting.gaussian_mean_limit", "weighting.error_limit"), "weighted",
      at_g("mean_error", 12, lambda t: tw.gaussian_mean_limit(tw.golden_weight(1.0), 1.0, 20, 1.0)),
      "g=12 ((1−w*)^24 ≈ 1e-10)"),
    F("weighting.pooling_weight", "pooling n + m rows = weight k/(1+k)", "exact", HE, ("weighting.pooling_weight",),
      note="an identity between two estimators; the engine's weighted regime takes any weight"),
    # ---- curation (theory/curation.md §5–§8)
    F("curation.best_of_k_variance", "E s_g² = s_0²(c v_K)^g, v_K = Var max of K N(0,1)", "exact",
      "Feng et al. arXiv 2406.07515 setting; theory/curation.md §6",
      ("curation.best_of_k_variance_curve", "curation.max_normal_moments"), "best_of_k", curve("var", 3), "g=3"),
    F("curation.best_of_k_mean_bound", "E μ_g ≤ μ₀ + e_K s_0 Σ_{j<g}(c v_K)^{j/2} (Jensen)", "bound",
      "theory/curation.md §6", ("curation.best_of_k_mean_bound",), "best_of_k",
      curve("reward_mean", 3, "reward_mean_bound"), "g=3, kept rows' reward"),
    F("curation.best_of_k_mean_curve", "E μ_g → μ₀ + e_K s_0 Σ_{j<g} v_K^{j/2} (n → ∞)", "limit",
      "theory/curation.md §6", ("curation.best_of_k_mean_curve",), "best_of_k",
      at_g("mean", 5, lambda t: tc.best_of_k_mean_curve(5, 4, 0.0, S2_0_BEST)[5]), "g=5"),
    F("curation.best_of_k_saturation", "lim_g E μ_g = μ₀ + e_K s_0/(1 − √v_K)", "limit", "theory/curation.md §6",
      ("curation.best_of_k_saturation",), "best_of_k", at_g("mean", 20, _sat), "g=20 (n, g → ∞)"),
    F("curation.best_of_k_quadratic_mean", "E μ' = μ + s m₁, m₁ = δ − E[R tanh(δR)]", "exact one step",
      "theory/curation.md §6", ("curation.best_of_k_quadratic_step",), "best_of_k_quadratic",
      conditional("mean", 1, lambda rec: _quadratic_step(rec)[:, 0]), "g=1 | model 0, quadrature"),
    F("curation.best_of_k_quadratic_var", "E s'² = c s² (E R² − (E[R tanh(δR)])²)", "exact one step",
      "theory/curation.md §6", ("curation.best_of_k_quadratic_step",), "best_of_k_quadratic",
      conditional("var", 1, lambda rec: _quadratic_step(rec)[:, 1]), "g=1 | model 0, quadrature"),
    F("curation.window_step_mean", "E μ' = μ − sC (truncated normal)", "exact one step",
      "Yi, Liu, Cheng & Xu arXiv 2510.16657 rule; theory/curation.md §5", ("curation.window_step",), "verifier",
      conditional("mean", 1, lambda rec: _window_step(rec, "mean")), "g=1 | model 0"),
    F("curation.window_step_var", "E s'² = ((N−1)/N) s² θ", "exact one step", "theory/curation.md §5",
      ("curation.window_step",), "verifier", conditional("var", 1, lambda rec: _window_step(rec, "var")),
      "g=1 | model 0"),
    F("curation.window_step_acceptance", "acceptance Z = Φ(b) − Φ(a)", "exact one step", "theory/curation.md §5",
      ("curation.window_step",), "verifier", conditional("accept_rate", 1, lambda rec: _window_step(rec, "acceptance")),
      "g=1 | model 0"),
    F("curation.window_curve", "iterated N → ∞ truncated-normal map", "limit", "theory/curation.md §5",
      ("curation.window_curve",), "verifier", curve("var", 3), "g=3"),
    F("curation.tilt_linear", "p ∝ p e^{βx}: μ_g = μ₀ + gβs_0², s_g² = s_0²", "limit", FERBACH,
      ("curation.tilt_linear_curve",), "preference", curve("mean", 2), "g=2 (K, n → ∞)"),
    F("curation.tilt_quadratic", "precision P_g = 1/s_0² + g/τ_r², μ_g → x*", "limit", FERBACH,
      ("curation.tilt_quadratic_curve",), "preference_quadratic", curve("mean", 2), "g=2 (K, n → ∞)"),
    F("curation.top_fraction", "keep top α: mean +sφ(z)/α, var ×(1 + zφ(z)/α − (φ(z)/α)²)", "limit",
      "theory/curation.md §8", ("curation.top_fraction_curve", "curation.top_fraction_factors"), "top_fraction",
      curve("var", 3), "g=3 (n → ∞)"),
)

LEDGER = WorldLedger("gaussian", RUNS, FORMULAS)
