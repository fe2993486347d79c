"""``accumulate``: the real data plus every earlier generation's synthetic data
(Gerstgrasser et al. 2024, arXiv 2404.01413).  The pool is preallocated for
every generation, (G+1)·T rows, and masked by row weights."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from collapse_sim.simulator import rows as R
from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig, split_keys
from collapse_sim.simulator.world import World


@dataclasses.dataclass
class AccumulateConfig(RegimeConfig):
    """No fields: the pool keeps every row."""

    NAME = "accumulate"
    name: str = "accumulate"


def pool_of(real: dict, n_generations: int) -> dict:
    """The preallocated pool of G+1 training sets with the real rows in place."""
    return R.write(R.empty_pool(real, (n_generations + 1) * R.n_rows(real)), real, 0)


def grow(world: World, key, pool: dict, truth, params, g) -> dict:
    """Write model g-1's samples into rows [g T, (g+1) T) of the pool."""
    return R.write(pool, world.sample(key, truth, params, g), g * world.n_rows)


def pool_stats(pool: dict) -> dict:
    return {"pool_rows": jnp.sum(pool["weight"] > 0).astype(jnp.float32)}


def make(cfg: AccumulateConfig, world: World, n_generations: int) -> Regime:
    def initial_train(real):
        return pool_of(real, n_generations)

    def init(key, truth, real, params0):
        return pool_of(real, n_generations)

    def step(key, pool, truth, params, g):
        k_sample, _, _ = split_keys(key)
        pool = grow(world, k_sample, pool, truth, params, g)
        return pool, pool, pool_stats(pool)

    return Regime(cfg.name, init, step, initial_train)


Config = AccumulateConfig  # every regime module names its config Config
