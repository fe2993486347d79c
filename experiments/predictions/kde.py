"""Theory attached to kernel-density runs: the sample variance's drift under replace
(``theory/kde.py``, theory/derivations.md §13)."""

from __future__ import annotations

from collapse_sim.experiments.predictions.common import none
from collapse_sim.simulator.worlds.sample_sizes import sizes as _sizes


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.simulator.worlds.kde import true_moments
    from collapse_sim.theory import kde as tk

    G, d, h = run_cfg.n_generations, world_cfg.d, world_cfg.h
    if regime_cfg.name != "replace":
        return none(f"no closed form for the kde world under {regime_cfg.name}; Monte Carlo only")
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
