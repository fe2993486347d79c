"""``replace``: generation n trains on model n-1's samples only (Shumailov et al.
2024, Nature 631; Dohmatob et al. 2024, arXiv 2402.07712)."""

from __future__ import annotations

import dataclasses

from collapse_sim.simulator import curation
from collapse_sim.simulator.curation import CurationConfig
from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig, curated_numbers, split_keys
from collapse_sim.simulator.world import World


@dataclasses.dataclass
class ReplaceConfig(RegimeConfig):
    """Every training row is synthetic.  curation: how the synthetic rows are
    curated (``simulator/curation.py``; rule ``none`` by default)."""

    NAME = "replace"
    name: str = "replace"
    curation: CurationConfig = dataclasses.field(default_factory=CurationConfig)

    def numbers(self) -> dict:
        return curated_numbers(self, dataclasses.asdict(self))


def make(cfg: ReplaceConfig, world: World, n_generations: int) -> Regime:
    src = curation.source(cfg.curation, world)

    def init(key, truth, real, params0):
        return src.init(params0)

    def step(key, state, truth, params, g):
        k_sample, _, _ = split_keys(key)
        train, stats = src.draw(k_sample, state, truth, params, g)
        return train, state, curation.train_stats(src, train, stats)

    return Regime(cfg.name, init, step)


Config = ReplaceConfig  # every regime module names its config Config
