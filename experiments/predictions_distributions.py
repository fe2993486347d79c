"""Theory curves for the distribution worlds (gaussian, gmm, kde, categorical).

Each predictor maps ``(world_cfg, regime_cfg, run_cfg)`` onto ``theory/`` and
returns ``{"kind", "source", "units", "curves": {name: array(G+1)}}`` (the
format of ``collapse_sim.experiments.predictions``).  A curve named like a record is that
record's expectation over seeds (``mean_error``, ``trace_ratio``, ``std``,
...); ``prediction`` is the expectation of ``test_error``; other names say
what they are (``var_median``, ``*_approx``, ``*_bound``).  A curve is
attached only where its closed form holds for that world and regime; the
rest get none (``kind: "none"`` when nothing applies).

Generations follow the project convention of ``theory/``: generation 0 is the
fit on real data, so generation g is the result of g+1 fits.
"""

from __future__ import annotations

import numpy as np

from collapse_sim.simulator.worlds.sample_sizes import sizes as _sizes

NONE = {"kind": "none", "source": None, "units": {}, "curves": {}}
# Cost cap (multiply-adds) for the exact categorical curves, O(U M^2 G).
CATEGORICAL_COST_CAP = 5e9


def _none(source: str, units=None) -> dict:
    return {**NONE, "source": source, "units": units or {}}


def gaussian(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.experiments import predictions_curation
    from collapse_sim.simulator.worlds.gaussian import true_covariance_diag
    from collapse_sim.theory import gaussian as tg

    special = predictions_curation.gaussian(world_cfg, regime_cfg, run_cfg)  # curated, tempered, weighted
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
    return _none(f"no closed form for the gaussian world under {regime_cfg.name}; Monte Carlo only", units)


def gmm(world_cfg, regime_cfg, run_cfg) -> dict:
    """No closed form (curated or not)."""
    return _none("no closed form for EM-fitted mixtures; Monte Carlo only")


def kde(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.simulator.worlds.kde import true_moments
    from collapse_sim.theory import kde as tk

    G, d, h = run_cfg.n_generations, world_cfg.d, world_cfg.h
    if regime_cfg.name != "replace":
        return _none(f"no closed form for the kde world under {regime_cfg.name}; Monte Carlo only")
    M = _sizes(world_cfg.M, world_cfg.M_schedule, G)
    _, trace = true_moments(world_cfg)
    var = tk.kde_variance_curve(tk.expected_biased_variance(trace, int(M[0])), M, h=h, dim=d)
    curves = {"var": var, "kde_var": var + d * h**2}
    units = {"h": h, "true_var": trace}
    if world_cfg.M_schedule is None:
        units["var_limit"] = tk.kde_variance_limit(world_cfg.M, h=h, dim=d)
    return {
        "kind": "exact",
        "source": "theory/kde.py (theory/derivations.md §13, derived): "
        "E s2_{g+1} = (1 - 1/M)(E s2_g + d h^2) -> (M-1) d h^2",
        "units": units,
        "curves": curves,
    }


def categorical(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.experiments import predictions_curation
    from collapse_sim.simulator.worlds.categorical import tail_set, true_distribution
    from collapse_sim.theory import categorical as tc

    special = predictions_curation.categorical(world_cfg, regime_cfg, run_cfg)  # curated or tempered
    if special is not None:
        return special

    G = run_cfg.n_generations
    p, tail = true_distribution(world_cfg), tail_set(world_cfg)
    units = {"true_tail_mass": float(p[tail].sum())}
    if regime_cfg.name != "replace" or world_cfg.smoothing != 0:
        why = "smoothing > 0" if regime_cfg.name == "replace" else regime_cfg.name
        return _none(f"no closed form for the categorical world under {why}; Monte Carlo only", units)
    M = _sizes(world_cfg.M, world_cfg.M_schedule, G)
    values, index = np.unique(p, return_inverse=True)
    cost = values.size * float(M.max()) ** 2 * (G + 1)
    if cost > CATEGORICAL_COST_CAP:
        return _none(
            f"exact curves skipped: {values.size} distinct probabilities x M^2 x (G+1) = {cost:.2g} "
            f"exceeds the cap {CATEGORICAL_COST_CAP:.0e}",
            units,
        )
    zero_VxG = tc.zero_count_curves(values, M)[index]
    curves = {
        "support": tc.expected_support_curve(p, M),
        "entropy": tc.expected_entropy_curve(p, M),
        "heterozygosity": tc.expected_heterozygosity_curve(p, M),
        "absorbed": tc.absorption_probability_curve(p, M),
        "tail_mass": np.full(G + 1, units["true_tail_mass"]),
        "tail_lost": (p * tail) @ zero_VxG,
        "lost_mass": p @ zero_VxG,
    }
    if world_cfg.M_schedule is None and world_cfg.M <= 2000:
        units["absorption_time_exact"] = tc.absorption_time_exact(p, world_cfg.M)
        units["absorption_time_wright_fisher_approx"] = tc.absorption_time_wright_fisher(p, world_cfg.M)
    return {
        "kind": "exact",
        "source": "neutral Wright-Fisher chain, exact via the binomial marginal chains (theory/categorical.py, "
        "theory/derivations.md §14); tail_mass is a martingale; "
        "absorption time: exact (fits until a point mass) and the "
        "Wright-Fisher diffusion APPROXIMATION -2M sum (1-p) ln(1-p)",
        "units": units,
        "curves": curves,
    }


PREDICTORS = {"gaussian": gaussian, "gmm": gmm, "kde": kde, "categorical": categorical}
