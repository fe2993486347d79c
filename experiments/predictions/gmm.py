"""Gaussian-mixture runs: EM-fitted mixtures have no closed form (curated or not)."""

from __future__ import annotations

from collapse_sim.experiments.predictions.common import none


def predict(world_cfg, regime_cfg, run_cfg) -> dict:
    return none("no closed form for EM-fitted mixtures; Monte Carlo only")
