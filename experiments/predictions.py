"""Attach the closed-form theory to a run: per-generation prediction and bound.

Maps a (world, regime) config onto the functions of ``theory/``.  A world or
regime without a closed form gets ``kind: "none"`` and no curves; nothing is
ever filled in with a number the theory does not give.
"""

from __future__ import annotations

import numpy as np


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    """{"kind", "source", "units": {...}, "curves": {name: array(G+1)}}."""
    fn = _PREDICTORS.get(world_cfg.name)
    if fn is None:
        return {"kind": "none", "source": None, "units": {}, "curves": {}}
    return fn(world_cfg, regime_cfg, run_cfg)


def _regression(world_cfg, regime_cfg, run_cfg) -> dict:
    from simulator.worlds.regression import spectrum
    from theory import regression as th

    d, T, G = world_cfg.d, world_cfg.T, run_cfg.n_generations
    sigma2 = world_cfg.sigma**2
    units = {"v": th.ols_error(sigma2, d, T)} if world_cfg.ridge == 0 else {}
    cov = np.diag(spectrum(world_cfg))
    if regime_cfg.name == "token_edit":
        return _token_edit(world_cfg, regime_cfg, run_cfg, units, cov)
    out = th.expected_test_error(
        regime_cfg.name,
        G,
        d,
        T,
        sigma2,
        design=world_cfg.design,
        real_fraction=regime_cfg.real_fraction,
        real_source=regime_cfg.real_source,
        resample=regime_cfg.resample_real,
        lam=world_cfg.ridge,
        cov=cov,
        n_designs=run_cfg.theory_designs,
        seed=run_cfg.seed,
    )
    curves = {}
    for name in ("prediction", "prediction_se", "bound"):
        if out.get(name) is not None:
            curves[name] = np.broadcast_to(np.asarray(out[name], float), (G + 1,)).copy()
    return {"kind": out["kind"], "source": out["source"], "units": units, "curves": curves}


def _token_edit(world_cfg, regime_cfg, run_cfg, units, cov) -> dict:
    from theory import token_edit as te

    d, T, G = world_cfg.d, world_cfg.T, run_cfg.n_generations
    sigma2 = world_cfg.sigma**2
    if world_cfg.design != "fixed" or world_cfg.ridge != 0:
        return {"kind": "none", "source": "ToEdit's model needs a fixed design and OLS", "units": units, "curves": {}}
    mean, se = te.exact_curve(
        G,
        d,
        T,
        sigma2,
        regime_cfg.schedule,
        regime_cfg.base,
        q=regime_cfg.q,
        k=regime_cfg.k,
        eta=regime_cfg.eta,
        n_designs=run_cfg.theory_designs,
        rng=np.random.default_rng(run_cfg.seed),
        cov=cov,
    )
    counts = te.edit_counts(G, T, regime_cfg.schedule, q=regime_cfg.q, k=regime_cfg.k, eta=regime_cfg.eta)
    curves = {
        "prediction": mean,
        "prediction_se": se,
        "paper_claim": te.paper_claim(G, d, T, sigma2, counts),
        "bound": np.full(G + 1, te.paper_bound_2v(d, T, sigma2)),
    }
    return {
        "kind": "exact_in_noise",
        "source": "ToEdit (Zhu et al. 2024, arXiv 2412.14689) model; exact recursion C' = B C B^T + sigma^2 M "
        "(theory/token_edit.py); paper_claim = v(1 + sum k_i/T) from its Theorem 1, bound = its Theorem 2 (2v)",
        "units": units,
        "curves": curves,
    }


_PREDICTORS = {"regression": _regression}
