"""``replace``: generation n trains on model n-1's samples only (Shumailov et al.
2024, Nature 631; Dohmatob et al. 2024, arXiv 2402.07712)."""

from __future__ import annotations

import dataclasses

from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig, split_keys
from collapse_sim.simulator.world import World


@dataclasses.dataclass
class ReplaceConfig(RegimeConfig):
    """No fields: every training row is synthetic."""

    NAME = "replace"
    name: str = "replace"


def make(cfg: ReplaceConfig, world: World, n_generations: int) -> Regime:
    def init(key, truth, real, params0):
        return ()

    def step(key, state, truth, params, g):
        k_sample, _, _ = split_keys(key)
        return world.sample(k_sample, truth, params, g), state, {}

    return Regime(cfg.name, init, step)


Config = ReplaceConfig  # every regime module names its config Config
