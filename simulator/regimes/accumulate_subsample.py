"""``accumulate_subsample``: a fixed-size uniform subsample of the growing pool of
real and synthetic data (Kazdan et al. 2024, arXiv 2410.16713, §3)."""

from __future__ import annotations

import dataclasses

from collapse_sim.simulator import curation
from collapse_sim.simulator import rows as R
from collapse_sim.simulator.curation import CurationConfig
from collapse_sim.simulator.regimes.accumulate import grow, pool_of, pool_stats, split_state, with_extra
from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig, curated_numbers, split_keys
from collapse_sim.simulator.world import World


@dataclasses.dataclass
class AccumulateSubsampleConfig(RegimeConfig):
    """Each generation trains on T rows drawn uniformly without replacement from the
    rows the pool holds.  curation: how each generation's synthetic rows are curated
    before they join the pool (``simulator/curation.py``; rule ``none`` by default)."""

    NAME = "accumulate_subsample"
    name: str = "accumulate_subsample"
    curation: CurationConfig = dataclasses.field(default_factory=CurationConfig)

    def numbers(self) -> dict:
        return curated_numbers(self, dataclasses.asdict(self))


def make(cfg: AccumulateSubsampleConfig, world: World, n_generations: int) -> Regime:
    T = world.n_rows
    src = curation.source(cfg.curation, world)

    def init(key, truth, real, params0):
        return with_extra(pool_of(real, n_generations), src.init(params0))

    def step(key, state, truth, params, g):
        k_sample, _, k_mask = split_keys(key)
        pool, extra = split_state(state)
        rows, stats = src.draw(k_sample, extra, truth, params, g)
        pool = grow(world, pool, rows, g)
        train = R.subsample(k_mask, pool, T)
        return train, with_extra(pool, extra), curation.train_stats(src, train, {**pool_stats(pool), **stats})

    return Regime(cfg.name, init, step)


Config = AccumulateSubsampleConfig  # every regime module names its config Config
