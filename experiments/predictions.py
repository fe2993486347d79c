"""Attach the closed-form theory to a run: per-generation prediction and bound.

Maps a (world, regime) config onto the functions of ``theory/``.  A world or
regime without a closed form gets ``kind: "none"`` and no curves; nothing is
ever filled in with a number the theory does not give.

Curve names (each an array over generations g = 0..G):
``prediction`` (expected test error), ``prediction_se`` (its standard error
when it is averaged over sampled designs), ``bound`` (a proven bound),
and for token editing the paper's own lines ``paper_claim``,
``paper_bound_2v`` and ``paper_bound_geometric`` (shown, not asserted).
Curated, tempered, weighted and shifted runs (``predictions_curation.py``) also
give ``curve_kinds``: each curve's status, ``exact``, ``limit`` (a large-sample
limit, not the run's expectation) or ``bound``.
"""

from __future__ import annotations

import numpy as np

from collapse_sim.experiments.predictions_distributions import PREDICTORS as _DISTRIBUTIONS


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    """{"kind", "source", "units": {...}, "curves": {name: array(G+1)}}."""
    fn = _PREDICTORS.get(world_cfg.name)
    if fn is None:
        return {"kind": "none", "source": None, "units": {}, "curves": {}}
    return fn(world_cfg, regime_cfg, run_cfg)


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


def _regression(world_cfg, regime_cfg, run_cfg) -> dict:
    from collapse_sim.experiments import predictions_curation as pc
    from collapse_sim.theory import regression as th
    from collapse_sim.theory import token_edit as te

    d, T, G = world_cfg.d, world_cfg.T, run_cfg.n_generations
    sigma2 = world_cfg.sigma**2
    units = {"v": th.ols_error(sigma2, d, T)} if world_cfg.ridge == 0 else {}
    if pc.curated(regime_cfg):
        return {"kind": "none", "units": units, "curves": {},
                "source": "no closed form for curated regression data (Yi et al.'s one-round formula is not encoded, "
                "theory/curation.md §9); Monte Carlo only"}
    if getattr(world_cfg, "shift_share", 0.0) > 0:
        return pc.strong_collapse(world_cfg, regime_cfg, run_cfg)
    if regime_cfg.name == "weighted":
        return pc.weighted_regression(world_cfg, regime_cfg, run_cfg)
    if regime_cfg.name == "token_edit" and world_cfg.design != "fixed":
        return {"kind": "none", "source": "ToEdit's model (§4.2) edits the labels of a fixed design", "units": units, "curves": {}}
    if regime_cfg.name == "token_edit" and regime_cfg.prior != "previous":
        return {"kind": "none", "source": "the exact recursion covers edits by model n-1 (regime.prior=previous)", "units": units, "curves": {}}
    out = regression_theory(world_cfg, regime_cfg, G, n_designs=run_cfg.theory_designs, seed=run_cfg.seed)
    curves = {}
    for name in ("prediction", "prediction_se", "bound", "paper_claim"):
        if out.get(name) is not None:
            curves[name] = np.broadcast_to(np.asarray(out[name], float), (G + 1,)).copy()
    if regime_cfg.name == "token_edit":
        curves["paper_bound_2v"] = np.full(G + 1, te.paper_bound_2v(d, T, sigma2))
        if regime_cfg.schedule == "disjoint":
            curves["paper_bound_geometric"] = np.full(G + 1, te.geometric_bound(d, T, sigma2, regime_cfg.k, regime_cfg.eta))
    return {"kind": out["kind"], "source": out["source"], "units": units, "curves": curves}


_PREDICTORS = {"regression": _regression, **_DISTRIBUTIONS}
