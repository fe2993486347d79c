"""Theory attached to regression runs: replace, mix, accumulate, accumulate_subsample
(``theory/regression_run.py``), token editing (``theory/token_edit.py``), the weighted regime
(``theory/weighting.py``) and strong collapse (``theory/strong_collapse.py``).

Curve names: ``prediction`` (expected test error), ``prediction_se`` (its standard error when it
is averaged over sampled designs), ``bound`` (a proven bound), and for token editing the paper's
own lines ``paper_claim``, ``paper_bound_2v`` and ``paper_bound_geometric`` (shown, not asserted).
"""

from __future__ import annotations

import numpy as np

from collapse_sim.experiments.predictions.common import curated, none, out


def regression_theory(world_cfg, regime_cfg, G: int, *, n_designs: int, seed: int) -> dict:
    """``theory.regression_run.expected_test_error`` for a regression world config and a regime
    config: the world's sizes, noise, design and spectrum, and the regime's own fields."""
    from collapse_sim.simulator.worlds.regression import spectrum
    from collapse_sim.theory import regression_run as th

    fields = {k: v for k, v in regime_cfg.numbers().items() if k in th.REGIME_FIELDS[regime_cfg.name]}
    return th.expected_test_error(
        regime_cfg.name,
        G,
        world_cfg.d,
        world_cfg.T,
        world_cfg.sigma**2,
        design=world_cfg.design,
        lam=world_cfg.ridge,
        cov=np.diag(spectrum(world_cfg)),
        n_designs=n_designs,
        seed=seed,
        **fields,
    )


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.theory import regression as th
    from collapse_sim.theory import token_edit as te

    d, T, G = world_cfg.d, world_cfg.T, run_cfg.n_generations
    sigma2 = world_cfg.sigma**2
    units = {"v": th.ols_error(sigma2, d, T)} if world_cfg.ridge == 0 else {}
    if curated(regime_cfg):
        return none("no closed form for curated regression data (Yi et al.'s one-round formula is not encoded, "
                    "theory/curation.md §9); Monte Carlo only", units)
    if getattr(world_cfg, "shift_share", 0.0) > 0:
        return strong_collapse(world_cfg, regime_cfg, run_cfg)
    if regime_cfg.name == "weighted":
        return weighted_regression(world_cfg, regime_cfg, run_cfg)
    if regime_cfg.name == "token_edit" and world_cfg.design != "fixed":
        return none("ToEdit's model (§4.2) edits the labels of a fixed design", units)
    if regime_cfg.name == "token_edit" and regime_cfg.prior != "previous":
        return none("the exact recursion covers edits by model n-1 (regime.prior=previous)", units)
    exact = regression_theory(world_cfg, regime_cfg, G, n_designs=run_cfg.theory_designs, seed=run_cfg.seed)
    curves = {}
    for name in ("prediction", "prediction_se", "bound", "paper_claim"):
        if exact.get(name) is not None:
            curves[name] = np.broadcast_to(np.asarray(exact[name], float), (G + 1,)).copy()
    if regime_cfg.name == "token_edit":
        curves["paper_bound_2v"] = np.full(G + 1, te.paper_bound_2v(d, T, sigma2))
        if regime_cfg.schedule == "disjoint":
            curves["paper_bound_geometric"] = np.full(G + 1, te.geometric_bound(d, T, sigma2, regime_cfg.k, regime_cfg.eta))
    return {"kind": exact["kind"], "source": exact["source"], "units": units, "curves": curves}


def strong_collapse(world_cfg, regime_cfg, run_cfg) -> dict:
    """Strong model collapse (one fit on real and shifted rows): ``mixture_error`` at g = 0."""
    from collapse_sim.theory import strong_collapse as sc

    d, T, G = world_cfg.d, world_cfg.T, run_cfg.n_generations
    sigma2, shift_sq = world_cfg.sigma**2, world_cfg.shift_norm**2
    n_shift = int(round(world_cfg.shift_share * T))
    units = {"n_shifted": n_shift, "shift_sq": shift_sq, "plateau_limit": float(sc.plateau(1 - n_shift / T, shift_sq))}
    if G != 0:
        return none("strong collapse is exact for the single fit on the mixture (run.n_generations=0); "
                     "later generations have no closed form", units)
    if world_cfg.ridge != 0:
        return none("the exact mixture error is for OLS (world.ridge=0)", units)
    value = sc.mixture_error(T, T - n_shift, d, sigma2, sigma2, shift_sq)
    return out(
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
        return none("the weighted-fit recursion is exact for OLS (world.ridge=0)", units)
    if world_cfg.design == "fixed" and m > T and m % T:
        return none(f"on a fixed design {m} synthetic rows repeat a {T}-row design unevenly; no closed form", units)
    if (world_cfg.design == "fresh" or m <= T) and m < d + 2:
        return none(f"{m} synthetic rows: OLS needs at least d+2 = {d + 2} for a finite expected error", units)
    v_real = th.ols_error(sigma2, d, T)
    # Fixed design: m <= T rows are a subset of it, m = r·T the design r times (error / r); fresh: m new rows.
    v_syn = th.ols_error(sigma2, d, T) / (m // T) if (world_cfg.design == "fixed" and m > T) else th.ols_error(sigma2, d, m)
    units.update(v_real=v_real, v_syn=v_syn, limit=float(tw.error_limit(w, v_real, v_syn)))
    return out(
        {"prediction": tw.error_curve(G, w, v_real, v_syn)},
        {"prediction": "exact"},
        "exact, theory/weighting.py error_curve: e_{g+1} = w^2 v_real + (1-w)^2 (e_g + v_syn) (He, Xu & Cheng, "
        "arXiv 2502.18049; derivation theory/curation.md §3); units.limit is its g → ∞ value",
        units,
    )
