"""Theory attached to curated, tempered, weighted and shifted runs (``theory/curation.md``).

Each function maps ``(world_cfg, regime_cfg, run_cfg)`` onto ``theory/temperature.py``,
``theory/weighting.py``, ``theory/strong_collapse.py`` or ``theory/curation.py`` and returns
the dict of ``collapse_sim.experiments.predictions`` plus ``curve_kinds``: the status of each
curve, ``exact`` (an expectation at the run's sizes), ``limit`` (a large-sample limit: n → ∞,
K → ∞ or M → ∞, shown beside the Monte Carlo, never its expectation) or ``bound``.  ``kind``
is ``exact`` when every curve is exact, else ``limit`` or ``bound``.  A curve named like a
record is that record's expectation (or its limit / bound); ``*_bound`` is a bound on it.
Nothing is attached where no closed form holds (``kind: "none"``).
"""

from __future__ import annotations

import numpy as np

NONE = {"kind": "none", "source": None, "units": {}, "curves": {}}
MAX_PROB_CURVES = 16  # categorical: one prob_k curve per outcome up to this many outcomes


def _none(source: str, units=None) -> dict:
    return {**NONE, "source": source, "units": units or {}}


def _out(curves: dict, kinds: dict, source: str, units=None) -> dict:
    statuses = set(kinds.values())
    kind = "exact" if statuses == {"exact"} else ("limit" if "limit" in statuses else "bound")
    return {"kind": kind, "source": source, "units": units or {}, "curves": curves, "curve_kinds": kinds}


def curated(regime_cfg) -> bool:
    cur = getattr(regime_cfg, "curation", None)
    return cur is not None and cur.active


# --------------------------------------------------------------------------- regression


def strong_collapse(world_cfg, regime_cfg, run_cfg) -> dict:
    """Strong model collapse (one fit on real and shifted rows): ``mixture_error`` at g = 0."""
    from collapse_sim.theory import strong_collapse as sc

    d, T, G = world_cfg.d, world_cfg.T, run_cfg.n_generations
    sigma2, shift_sq = world_cfg.sigma**2, world_cfg.shift_norm**2
    n_shift = int(round(world_cfg.shift_share * T))
    units = {"n_shifted": n_shift, "shift_sq": shift_sq, "plateau_limit": float(sc.plateau(1 - n_shift / T, shift_sq))}
    if G != 0:
        return _none("strong collapse is exact for the single fit on the mixture (run.n_generations=0); "
                     "later generations have no closed form", units)
    if world_cfg.ridge != 0:
        return _none("the exact mixture error is for OLS (world.ridge=0)", units)
    value = sc.mixture_error(T, T - n_shift, d, sigma2, sigma2, shift_sq)
    return _out(
        {"prediction": np.array([value])},
        {"prediction": "exact"},
        "exact finite-n OLS on n1 real and n2 shifted rows, theory/strong_collapse.py mixture_error "
        "(Dohmatob et al., arXiv 2410.04840; derivation theory/curation.md §4); plateau_limit = p2^2 δᵀΣδ, "
        "the n → ∞ limit",
        units,
    )


def weighted_regression(world_cfg, regime_cfg, run_cfg) -> dict:
    """OLS weighted regime: ``error_curve`` with v_real = σ²d/(T−d−1) and the synthetic fit's v."""
    from collapse_sim.theory import regression as th
    from collapse_sim.theory import weighting as tw

    d, T, G, sigma2 = world_cfg.d, world_cfg.T, run_cfg.n_generations, world_cfg.sigma**2
    m, w = regime_cfg.synthetic_rows(T), regime_cfg.resolved_weight(T)
    units = {"weight": w, "synthetic_rows": m}
    if world_cfg.ridge != 0:
        return _none("the weighted-fit recursion is exact for OLS (world.ridge=0)", units)
    if world_cfg.design == "fixed" and m > T and m % T:
        return _none(f"on a fixed design {m} synthetic rows repeat a {T}-row design unevenly; no closed form", units)
    if (world_cfg.design == "fresh" or m <= T) and m < d + 2:
        return _none(f"{m} synthetic rows: OLS needs at least d+2 = {d + 2} for a finite expected error", units)
    v_real = th.ols_error(sigma2, d, T)
    # Fixed design: m <= T rows are a subset of it, m = r·T the design r times (error / r); fresh: m new rows.
    v_syn = th.ols_error(sigma2, d, T) / (m // T) if (world_cfg.design == "fixed" and m > T) else th.ols_error(sigma2, d, m)
    units.update(v_real=v_real, v_syn=v_syn, limit=float(tw.error_limit(w, v_real, v_syn)))
    return _out(
        {"prediction": tw.error_curve(G, w, v_real, v_syn)},
        {"prediction": "exact"},
        "exact, theory/weighting.py error_curve: e_{g+1} = w^2 v_real + (1-w)^2 (e_g + v_syn) (He, Xu & Cheng, "
        "arXiv 2502.18049; derivation theory/curation.md §3); units.limit is its g → ∞ value",
        units,
    )


# --------------------------------------------------------------------------- Gaussian


def _gaussian_sizes(world_cfg):
    from collapse_sim.simulator.worlds.gaussian import true_covariance_diag

    diag = true_covariance_diag(world_cfg)
    return float(diag.sum()), float(diag.sum() / world_cfg.d), world_cfg.M


def gaussian(world_cfg, regime_cfg, run_cfg):
    """The Gaussian world's curated / tempered / weighted cases, or None when none applies
    (the caller then uses the uncurated closed forms at temperature 1)."""
    tau = getattr(world_cfg, "temperature", 1.0)
    name = regime_cfg.name
    if name == "weighted":
        return _gaussian_weighted(world_cfg, regime_cfg, run_cfg)
    if curated(regime_cfg):
        return _gaussian_curated(world_cfg, regime_cfg, run_cfg)
    if name == "mix" and regime_cfg.real_source == "fresh":
        return _gaussian_tempered_mix(world_cfg, regime_cfg, run_cfg)
    if tau != 1.0:
        return _none(f"no closed form for the gaussian world at temperature {tau:g} under {name} "
                     "(theory/temperature.py covers mix with fresh real data); Monte Carlo only")
    return None


def _gaussian_tempered_mix(world_cfg, regime_cfg, run_cfg):
    from collapse_sim.theory import temperature as tt

    trace, mean_var, M = _gaussian_sizes(world_cfg)
    G, tau = run_cfg.n_generations, float(getattr(world_cfg, "temperature", 1.0))
    m = int(round(regime_cfg.real_fraction * M))
    if world_cfg.estimator != "mle" or world_cfg.M_schedule is not None or m == 0:
        why = ("the recursion is for the MLE refit (world.estimator=mle)" if world_cfg.estimator != "mle" else
               "the recursion needs a constant M (no world.M_schedule)" if world_cfg.M_schedule is not None else
               "no real rows (round(real_fraction M) = 0)")
        if tau == 1.0:
            return None if world_cfg.estimator != "mle" else _none(f"no closed form: {why}; Monte Carlo only")
        return _none(f"no closed form for the tempered fresh-data loop: {why}; Monte Carlo only")
    a = m / M
    E, v = tt.moment_curve(G, a, tau, M, 1.0)
    rho = float(tt.spectral_radius(a, tau, M))
    units = {"real_share": a, "spectral_radius": rho, "critical_temperature": float(np.sqrt(tt.critical_temperature_sq(a, M)))}
    if rho < 1:
        E_inf, v_inf = tt.fixed_point(a, tau, M, 1.0)
        units.update(trace_ratio_limit=E_inf, mean_error_limit=trace * v_inf)
    curves = {"var": mean_var * E, "trace_ratio": E, "trace_cov": trace * E, "mean_error": trace * v}
    return _out(
        curves,
        {k: "exact" for k in curves},
        "exact (α, τ) moment recursion of the MLE refit on αM fresh real and (1-α)M synthetic rows drawn at "
        "temperature τ, theory/temperature.py moment_curve (theory/curation.md §1), per coordinate; stable iff "
        "the spectral radius < 1 (units.critical_temperature)",
        units,
    )


def _gaussian_weighted(world_cfg, regime_cfg, run_cfg):
    from collapse_sim.theory import weighting as tw

    trace, mean_var, M = _gaussian_sizes(world_cfg)
    G = run_cfg.n_generations
    if world_cfg.estimator != "unbiased" or world_cfg.M_schedule is not None or getattr(world_cfg, "temperature", 1.0) != 1.0:
        return _none("the weighted-mean curve is exact for the unbiased refit (E Σ_t = Σ* at every t) at "
                     "temperature 1 with a constant M; Monte Carlo only")
    m, w = regime_cfg.synthetic_rows(M), regime_cfg.resolved_weight(M)
    k = M / m
    ones = np.ones(G + 1)
    curves = {"mean_error": trace * tw.gaussian_mean_curve(G, w, k, M, 1.0), "trace_ratio": ones,
              "var": mean_var * ones, "trace_cov": trace * ones}
    units = {"weight": w, "real_to_synthetic": k, "mean_error_limit": trace * float(tw.gaussian_mean_limit(w, k, M, 1.0))}
    return _out(
        curves,
        {c: "exact" for c in curves},
        "exact, theory/weighting.py gaussian_mean_curve: E||mu_g - mu||^2 for mu_g = w mu_real + (1-w) mu_syn "
        "(He, Xu & Cheng, arXiv 2502.18049; theory/curation.md §3); the unbiased refit keeps E Σ_t = Σ*, so the "
        "synthetic fit's error is tr Σ*/m exactly",
        units,
    )


def _gaussian_curated(world_cfg, regime_cfg, run_cfg):
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
        return _none(f"no closed form: {why}; Monte Carlo only")
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
        return _out(curves, kinds, source, units)
    if rule == "top_fraction" and cur.reward == "linear":
        mu, var = tc.top_fraction_curve(G, cur.keep_fraction, 0.0, s2_0)
        curves = {"var": var, "trace_ratio": var / sigma2, "mean": sign * mu}
        return _out(curves, {c: "limit" for c in curves},
                    "top fraction by a linear score, the n → ∞ LIMIT (theory/curation.py top_fraction_curve, "
                    "theory/curation.md §8): the kept rows are order statistics at finite n", units)
    if rule == "preference":
        if cur.reward == "linear":
            mu, var = tc.tilt_linear_curve(G, 0.0, s2_0, cur.beta * direction)
        elif cur.beta > 0:
            mu, var = tc.tilt_quadratic_curve(G, 0.0, s2_0, float(np.ravel(cur.target)[0]), 1.0 / (2 * cur.beta))
        else:
            return _none("preference with a quadratic reward needs beta > 0 for the K → ∞ tilt; Monte Carlo only")
        curves = {"var": var, "trace_ratio": var / sigma2, "mean": mu}
        return _out(curves, {c: "limit" for c in curves},
                    "preference curation, the K → ∞ and n → ∞ LIMIT p_{g+1} ∝ p_g e^{β r} (Ferbach et al., arXiv "
                    "2407.09499; theory/curation.py tilt_*_curve, theory/curation.md §7); finite K lies between "
                    "no curation and the tilt", units)
    if rule == "verifier" and world_cfg.d == 1:
        mu, var = tc.window_curve(G, 0.0, s2_0, cur.centre, cur.half_width)
        curves = {"var": var, "trace_ratio": var / sigma2, "mean": mu}
        return _out(curves, {c: "limit" for c in curves},
                    "verifier window, the N → ∞ LIMIT of the truncated-normal map (theory/curation.py window_curve, "
                    "theory/curation.md §5); only its one-step moments are exact at finite N", units)
    return _none(f"no closed form for {rule} with a {cur.reward} reward; Monte Carlo only "
                 "(theory/curation.py best_of_k_quadratic_step gives one exact step)")


# --------------------------------------------------------------------------- categorical


def categorical(world_cfg, regime_cfg, run_cfg):
    """The categorical world's tempered or curated cases, or None (uncurated, temperature 1)."""
    from collapse_sim.simulator.worlds.categorical import tail_set, true_distribution
    from collapse_sim.theory import temperature as tt

    tau = float(getattr(world_cfg, "temperature", 1.0))
    if curated(regime_cfg):
        return _none("no closed form for curated categorical data; Monte Carlo only")
    if tau == 1.0:
        return None
    p, tail = true_distribution(world_cfg), tail_set(world_cfg)
    G, M = run_cfg.n_generations, world_cfg.M
    if world_cfg.smoothing != 0 or world_cfg.M_schedule is not None:
        return _none("the tempered categorical map is for empirical frequencies (smoothing 0) and a constant M")
    if regime_cfg.name == "replace":
        probs = tt.categorical_replace_curve(G, p, tau)
        source = "p_g ∝ p*^(τ^-g)"
    elif regime_cfg.name == "mix" and regime_cfg.real_source == "fresh" and round(regime_cfg.real_fraction * M) > 0:
        probs = tt.categorical_curve(G, p, p, round(regime_cfg.real_fraction * M) / M, tau)
        source = "p_{g+1} = α p* + (1-α) normalise(p_g^(1/τ))"
    else:
        return _none(f"no closed form for the tempered categorical world under {regime_cfg.name}; Monte Carlo only")
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=1)
    curves = {"entropy": entropy, "tail_mass": probs[:, tail].sum(axis=1)}
    if p.size <= MAX_PROB_CURVES:
        for k in range(p.size):
            curves[f"prob_{k}"] = probs[:, k]
    return _out(curves, {c: "limit" for c in curves},
                f"sampling at temperature τ, the M → ∞ LIMIT {source} (theory/temperature.py, theory/curation.md §2); "
                "prob_k is the limit of outcome k's fitted probability (records: probs)")
