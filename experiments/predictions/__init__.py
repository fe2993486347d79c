"""Attach the closed-form theory to a run: per-generation prediction and bound.

Maps a (world, regime) config onto the functions of ``theory/``.  A world or
regime without a closed form gets ``kind: "none"`` and no curves; nothing is
ever filled in with a number the theory does not give.

Curve names (each an array over generations g = 0..G):
``prediction`` (expected test error), ``prediction_se`` (its standard error
when it is averaged over sampled designs), ``bound`` (a proven bound),
and for token editing the paper's own lines ``paper_claim``,
``paper_bound_2v`` and ``paper_bound_geometric`` (shown, not asserted).
One module per world holds every case of that world (plain, curated, tempered,
weighted, shifted); ``common.py`` has the format, including ``curve_kinds``, each
curve's status: ``exact``, ``limit`` (a large-sample limit, not the run's
expectation) or ``bound``.
"""

from __future__ import annotations

import importlib

from collapse_sim.experiments.predictions.regression import regression_theory

__all__ = ["predict", "regression_theory"]

WORLDS = ("regression", "gaussian", "gmm", "kde", "categorical")


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    """{"kind", "source", "units": {...}, "curves": {name: array(G+1)}} (``common.py``)."""
    if world_cfg.name not in WORLDS:
        return {"kind": "none", "source": None, "units": {}, "curves": {}}
    module = importlib.import_module(f"{__name__}.{world_cfg.name}")
    return module.predict(world_cfg, regime_cfg, run_cfg)
