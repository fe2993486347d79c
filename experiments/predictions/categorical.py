"""Theory attached to categorical-world runs: the neutral Wright–Fisher chain of replace
(``theory/categorical.py``) and sampling at a temperature, alone or with fresh real data
(``theory/temperature.py``, an M → ∞ limit).  Curated categorical data has no closed form.
"""

from __future__ import annotations

import numpy as np

from collapse_sim.experiments.predictions.common import curated, none, out
from collapse_sim.simulator.worlds.sample_sizes import sizes as _sizes

# Cost cap (multiply-adds) for the exact categorical curves, O(U M^2 G).
CATEGORICAL_COST_CAP = 5e9
MAX_PROB_CURVES = 16  # one prob_k curve per outcome up to this many outcomes


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.simulator.worlds.categorical import tail_set, true_distribution
    from collapse_sim.theory import categorical as tc

    special = _tempered(world_cfg, regime_cfg, run_cfg)  # curated or tempered
    if special is not None:
        return special

    G = run_cfg.n_generations
    p, tail = true_distribution(world_cfg), tail_set(world_cfg)
    units = {"true_tail_mass": float(p[tail].sum())}
    if regime_cfg.name != "replace" or world_cfg.smoothing != 0:
        why = "smoothing > 0" if regime_cfg.name == "replace" else regime_cfg.name
        return none(f"no closed form for the categorical world under {why}; Monte Carlo only", units)
    M = _sizes(world_cfg.M, world_cfg.M_schedule, G)
    values, index = np.unique(p, return_inverse=True)
    cost = values.size * float(M.max()) ** 2 * (G + 1)
    if cost > CATEGORICAL_COST_CAP:
        return none(
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


def _tempered(world_cfg, regime_cfg, run_cfg):
    """The categorical world's tempered or curated cases, or None (uncurated, temperature 1)."""
    from collapse_sim.simulator.worlds.categorical import tail_set, true_distribution
    from collapse_sim.theory import temperature as tt

    tau = float(getattr(world_cfg, "temperature", 1.0))
    if curated(regime_cfg):
        return none("no closed form for curated categorical data; Monte Carlo only")
    if tau == 1.0:
        return None
    p, tail = true_distribution(world_cfg), tail_set(world_cfg)
    G, M = run_cfg.n_generations, world_cfg.M
    if world_cfg.smoothing != 0 or world_cfg.M_schedule is not None:
        return none("the tempered categorical map is for empirical frequencies (smoothing 0) and a constant M")
    if regime_cfg.name == "replace":
        probs = tt.categorical_replace_curve(G, p, tau)
        source = "p_g ∝ p*^(τ^-g)"
    elif regime_cfg.name == "mix" and regime_cfg.real_source == "fresh" and round(regime_cfg.real_fraction * M) > 0:
        probs = tt.categorical_curve(G, p, p, round(regime_cfg.real_fraction * M) / M, tau)
        source = "p_{g+1} = α p* + (1-α) normalise(p_g^(1/τ))"
    else:
        return none(f"no closed form for the tempered categorical world under {regime_cfg.name}; Monte Carlo only")
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=1)
    curves = {"entropy": entropy, "tail_mass": probs[:, tail].sum(axis=1)}
    if p.size <= MAX_PROB_CURVES:
        for k in range(p.size):
            curves[f"prob_{k}"] = probs[:, k]
    return out(curves, {c: "limit" for c in curves},
                f"sampling at temperature τ, the M → ∞ LIMIT {source} (theory/temperature.py, theory/curation.md §2); "
                "prob_k is the limit of outcome k's fitted probability (records: probs)")
