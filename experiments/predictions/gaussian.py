"""Theory attached to Gaussian-world runs: the refit chains of replace and accumulate
(``theory/gaussian.py``), fresh real data at a sampling temperature (``theory/temperature.py``),
the weighted mean (``theory/weighting.py``) and curation rules (``theory/curation.py``).

A curve named like a record is that record's expectation over seeds (``mean_error``,
``trace_ratio``, ``std``, ...), or its limit or bound where ``curve_kinds`` says so;
``prediction`` is the expectation of ``test_error``; other names say what they are
(``var_median``, ``*_approx``, ``*_bound``).  Generation 0 is the fit on real data, so
generation g is the result of g+1 fits.
"""

from __future__ import annotations

import numpy as np

from collapse_sim.experiments.predictions.common import curated, none, out
from collapse_sim.simulator.worlds.sample_sizes import sizes as _sizes


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.simulator.worlds.gaussian import true_covariance_diag
    from collapse_sim.theory import gaussian as tg

    special = _special(world_cfg, regime_cfg, run_cfg)  # curated, tempered, weighted
    if special is not None:
        return special

    G, d, est = run_cfg.n_generations, world_cfg.d, world_cfg.estimator
    M = _sizes(world_cfg.M, world_cfg.M_schedule, G)
    trace = float(true_covariance_diag(world_cfg).sum())
    sigma2 = world_cfg.sigma**2
    units = {"sigma2": sigma2, "trace": trace}
    if regime_cfg.name == "replace":
        curves = {
            "mean_error": tg.replace_mean_sq_error(M, trace=trace, estimator=est),
            "trace_ratio": tg.replace_trace_ratio(M, estimator=est),
            "logdet_change": tg.replace_logdet_change(M, d=d, estimator=est),
        }
        source = (
            "exact, theory/gaussian.py (theory/derivations.md §10): E||mu_g - mu||^2, E tr ratio, "
            "E log det change (Bartlett)"
        )
        if d == 1:
            w2 = tg.replace_w2sq(M, sigma2=sigma2, estimator=est)
            curves.update(
                prediction=w2,
                w2sq=w2,
                var=sigma2 * curves["trace_ratio"],
                std=tg.replace_std_mean(M, sigma=np.sqrt(sigma2), estimator=est),
                var_median=tg.replace_var_median(M, sigma2=sigma2, estimator=est),
            )
            source += "; 1-D: exact E W2^2, E sigma, E sigma^2, median sigma^2"
            if est == "unbiased":
                curves["w2sq_approx"] = tg.shumailov_w2sq_approx(M, sigma2=sigma2)
                source += "; w2sq_approx = (3/2) sigma^2 sum 1/M_i, Shumailov SI Eq. 6 (first order in 1/M)"
        return {"kind": "exact", "source": source, "units": units, "curves": curves}
    if regime_cfg.name == "accumulate":
        curves = {
            "trace_ratio": tg.accumulate_trace_ratio(M, estimator=est),
            "mean_error": tg.accumulate_mean_sq_error(M, trace=trace, estimator=est),
            "mean_error_approx": tg.accumulate_mean_sq_error_approx(M, trace=trace),
        }
        if world_cfg.M_schedule is None:
            curves["mean_error_bound"] = np.full(G + 1, tg.accumulate_mean_sq_error_bound(world_cfg.M, trace=trace))
        if d == 1:
            curves["var"] = sigma2 * curves["trace_ratio"]
        return {
            "kind": "exact",
            "source": "exact pooled-fit recursions, theory/gaussian.py (theory/derivations.md §11); "
            "mean_error_approx freezes "
            "the covariance at the truth; mean_error_bound = (pi^2/6) tr Sigma / M (Kazdan et al.; Dey & Donoho)",
            "units": units,
            "curves": curves,
        }
    return none(f"no closed form for the gaussian world under {regime_cfg.name}; Monte Carlo only", units)


def _sizes_of(world_cfg):
    from collapse_sim.simulator.worlds.gaussian import true_covariance_diag

    diag = true_covariance_diag(world_cfg)
    return float(diag.sum()), float(diag.sum() / world_cfg.d), world_cfg.M


def _special(world_cfg, regime_cfg, run_cfg):
    """The Gaussian world's curated / tempered / weighted cases, or None when none applies
    (the caller then uses the uncurated closed forms at temperature 1)."""
    tau = getattr(world_cfg, "temperature", 1.0)
    name = regime_cfg.name
    if name == "weighted":
        return _weighted(world_cfg, regime_cfg, run_cfg)
    if curated(regime_cfg):
        return _curated(world_cfg, regime_cfg, run_cfg)
    if name == "mix" and regime_cfg.real_source == "fresh":
        return _tempered_mix(world_cfg, regime_cfg, run_cfg)
    if tau != 1.0:
        return none(f"no closed form for the gaussian world at temperature {tau:g} under {name} "
                     "(theory/temperature.py covers mix with fresh real data); Monte Carlo only")
    return None


def _tempered_mix(world_cfg, regime_cfg, run_cfg):
    from collapse_sim.theory import temperature as tt

    trace, mean_var, M = _sizes_of(world_cfg)
    G, tau = run_cfg.n_generations, float(getattr(world_cfg, "temperature", 1.0))
    m = int(round(regime_cfg.real_fraction * M))
    if world_cfg.estimator != "mle" or world_cfg.M_schedule is not None or m == 0:
        why = ("the recursion is for the MLE refit (world.estimator=mle)" if world_cfg.estimator != "mle" else
               "the recursion needs a constant M (no world.M_schedule)" if world_cfg.M_schedule is not None else
               "no real rows (round(real_fraction M) = 0)")
        if tau == 1.0:
            return None if world_cfg.estimator != "mle" else none(f"no closed form: {why}; Monte Carlo only")
        return none(f"no closed form for the tempered fresh-data loop: {why}; Monte Carlo only")
    a = m / M
    E, v = tt.moment_curve(G, a, tau, M, 1.0)
    rho = float(tt.spectral_radius(a, tau, M))
    units = {"real_share": a, "spectral_radius": rho, "critical_temperature": float(np.sqrt(tt.critical_temperature_sq(a, M)))}
    if rho < 1:
        E_inf, v_inf = tt.fixed_point(a, tau, M, 1.0)
        units.update(trace_ratio_limit=E_inf, mean_error_limit=trace * v_inf)
    curves = {"var": mean_var * E, "trace_ratio": E, "trace_cov": trace * E, "mean_error": trace * v}
    return out(
        curves,
        {k: "exact" for k in curves},
        "exact (α, τ) moment recursion of the MLE refit on αM fresh real and (1-α)M synthetic rows drawn at "
        "temperature τ, theory/temperature.py moment_curve (theory/curation.md §1), per coordinate; stable iff "
        "the spectral radius < 1 (units.critical_temperature)",
        units,
    )


def _weighted(world_cfg, regime_cfg, run_cfg):
    from collapse_sim.theory import weighting as tw

    trace, mean_var, M = _sizes_of(world_cfg)
    G = run_cfg.n_generations
    if world_cfg.estimator != "unbiased" or world_cfg.M_schedule is not None or getattr(world_cfg, "temperature", 1.0) != 1.0:
        return none("the weighted-mean curve is exact for the unbiased refit (E Σ_t = Σ* at every t) at "
                     "temperature 1 with a constant M; Monte Carlo only")
    m, w = regime_cfg.synthetic_rows(M), regime_cfg.resolved_weight(M)
    k = M / m
    ones = np.ones(G + 1)
    curves = {"mean_error": trace * tw.gaussian_mean_curve(G, w, k, M, 1.0), "trace_ratio": ones,
              "var": mean_var * ones, "trace_cov": trace * ones}
    units = {"weight": w, "real_to_synthetic": k, "mean_error_limit": trace * float(tw.gaussian_mean_limit(w, k, M, 1.0))}
    return out(
        curves,
        {c: "exact" for c in curves},
        "exact, theory/weighting.py gaussian_mean_curve: E||mu_g - mu||^2 for mu_g = w mu_real + (1-w) mu_syn "
        "(He, Xu & Cheng, arXiv 2502.18049; theory/curation.md §3); the unbiased refit keeps E Σ_t = Σ*, so the "
        "synthetic fit's error is tr Σ*/m exactly",
        units,
    )


def _curated(world_cfg, regime_cfg, run_cfg):
    from collapse_sim.theory import curation as tc

    cur = regime_cfg.curation
    G, d, M = run_cfg.n_generations, world_cfg.d, world_cfg.M
    sigma2 = world_cfg.sigma**2
    why = None
    if regime_cfg.name != "replace":
        why = f"the curation theory is for replace (here {regime_cfg.name})"
    elif d != 1:
        why = "the curation theory is one-dimensional (world.d=1)"
    elif world_cfg.M_schedule is not None or getattr(world_cfg, "temperature", 1.0) != 1.0:
        why = "the curation theory needs a constant M at temperature 1"
    if why:
        return none(f"no closed form: {why}; Monte Carlo only")
    c_est = (M - 1) / M if world_cfg.estimator == "mle" else 1.0
    s2_0 = c_est * sigma2  # E var of the generation-0 fit
    sign = 1.0
    if cur.reward == "linear":
        direction = float(np.ravel(cur.direction)[0])
        sign = np.sign(direction)
    rule, units = cur.rule, {"s2_0": s2_0}
    if rule == "best_of_k" and cur.reward == "linear":
        _, v_K = tc.max_normal_moments(cur.K)
        var = s2_0 * (c_est * v_K) ** np.arange(G + 1)
        if world_cfg.estimator == "mle":
            bound = tc.best_of_k_mean_bound(G, cur.K, M, 0.0, s2_0)
        else:  # E Q = v_K: Jensen gives E√Q <= √v_K, the n → ∞ series
            bound = tc.best_of_k_mean_curve(G, cur.K, 0.0, s2_0)
        curves = {"var": var, "trace_ratio": var / sigma2, "reward_mean_bound": abs(direction) * bound}
        kinds = {"var": "exact", "trace_ratio": "exact", "reward_mean_bound": "bound"}
        units["saturation_limit"] = abs(direction) * tc.best_of_k_saturation(cur.K, 0.0, s2_0)
        source = ("best-of-K by a linear reward: E s_g^2 = s_0^2 (c v_K)^g exact (theory/curation.py "
                  "best_of_k_variance_curve, theory/curation.md §6); reward_mean_bound: Jensen's upper bound on the "
                  "kept rows' mean reward (the record is 0 at generation 0)")
        return out(curves, kinds, source, units)
    if rule == "top_fraction" and cur.reward == "linear":
        mu, var = tc.top_fraction_curve(G, cur.keep_fraction, 0.0, s2_0)
        curves = {"var": var, "trace_ratio": var / sigma2, "mean": sign * mu}
        return out(curves, {c: "limit" for c in curves},
                    "top fraction by a linear score, the n → ∞ LIMIT (theory/curation.py top_fraction_curve, "
                    "theory/curation.md §8): the kept rows are order statistics at finite n", units)
    if rule == "preference":
        if cur.reward == "linear":
            mu, var = tc.tilt_linear_curve(G, 0.0, s2_0, cur.beta * direction)
        elif cur.beta > 0:
            mu, var = tc.tilt_quadratic_curve(G, 0.0, s2_0, float(np.ravel(cur.target)[0]), 1.0 / (2 * cur.beta))
        else:
            return none("preference with a quadratic reward needs beta > 0 for the K → ∞ tilt; Monte Carlo only")
        curves = {"var": var, "trace_ratio": var / sigma2, "mean": mu}
        return out(curves, {c: "limit" for c in curves},
                    "preference curation, the K → ∞ and n → ∞ LIMIT p_{g+1} ∝ p_g e^{β r} (Ferbach et al., arXiv "
                    "2407.09499; theory/curation.py tilt_*_curve, theory/curation.md §7); finite K lies between "
                    "no curation and the tilt", units)
    if rule == "verifier" and world_cfg.d == 1:
        mu, var = tc.window_curve(G, 0.0, s2_0, cur.centre, cur.half_width)
        curves = {"var": var, "trace_ratio": var / sigma2, "mean": mu}
        return out(curves, {c: "limit" for c in curves},
                    "verifier window, the N → ∞ LIMIT of the truncated-normal map (theory/curation.py window_curve, "
                    "theory/curation.md §5); only its one-step moments are exact at finite N", units)
    return none(f"no closed form for {rule} with a {cur.reward} reward; Monte Carlo only "
                 "(theory/curation.py best_of_k_quadratic_step gives one exact step)")
