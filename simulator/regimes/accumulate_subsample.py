"""``accumulate_subsample``: a fixed-size uniform subsample of the growing pool of
real and synthetic data (Kazdan et al. 2024, arXiv 2410.16713, §3)."""

from __future__ import annotations

import dataclasses

from collapse_sim.simulator import rows as R
from collapse_sim.simulator.regimes.accumulate import grow, pool_of, pool_stats
from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig, split_keys
from collapse_sim.simulator.world import World


@dataclasses.dataclass
class AccumulateSubsampleConfig(RegimeConfig):
    """No fields: each generation trains on T rows drawn uniformly without
    replacement from the rows the pool holds."""

    NAME = "accumulate_subsample"
    name: str = "accumulate_subsample"


def make(cfg: AccumulateSubsampleConfig, world: World, n_generations: int) -> Regime:
    T = world.n_rows

    def init(key, truth, real, params0):
        return pool_of(real, n_generations)

    def step(key, pool, truth, params, g):
        k_sample, _, k_mask = split_keys(key)
        pool = grow(world, k_sample, pool, truth, params, g)
        return R.subsample(k_mask, pool, T), pool, pool_stats(pool)

    return Regime(cfg.name, init, step)


Config = AccumulateSubsampleConfig  # every regime module names its config Config
