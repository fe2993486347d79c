"""``accumulate``: the real data plus every earlier generation's synthetic data
(Gerstgrasser et al. 2024, arXiv 2404.01413).  The pool is preallocated for
every generation, (G+1)·T rows, and masked by row weights; a world with sufficient
statistics (``world.summarize``, ``fit_summary``: regression) carries their running
sum instead, one training set's statistics added a generation, the same fit to float
rounding at a cost that does not grow with the pool."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from collapse_sim.simulator import curation
from collapse_sim.simulator import rows as R
from collapse_sim.simulator.curation import CurationConfig
from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig, curated_numbers, split_keys
from collapse_sim.simulator.world import World


@dataclasses.dataclass
class AccumulateConfig(RegimeConfig):
    """The pool keeps every row.  curation: how each generation's synthetic rows are
    curated before they join the pool (``simulator/curation.py``; rule ``none`` by default)."""

    NAME = "accumulate"
    name: str = "accumulate"
    curation: CurationConfig = dataclasses.field(default_factory=CurationConfig)

    def numbers(self) -> dict:
        return curated_numbers(self, dataclasses.asdict(self))


def pool_of(real: dict, n_generations: int) -> dict:
    """The preallocated pool of G+1 training sets with the real rows in place."""
    return R.write(R.empty_pool(real, (n_generations + 1) * R.n_rows(real)), real, 0)


def grow(world: World, pool: dict, rows: dict, g) -> dict:
    """Write generation g's synthetic rows (model g-1's samples) into rows [g T, (g+1) T) of the pool."""
    return R.write(pool, rows, g * world.n_rows)


def with_extra(pool: dict, extra):
    """The regime's state: the pool, or (pool, extra) when curation carries a scorer model."""
    return pool if isinstance(extra, tuple) and not extra else (pool, extra)


def split_state(state):
    """(pool, extra) of a state made by :func:`with_extra`."""
    return state if isinstance(state, tuple) else (state, ())


def pool_stats(pool: dict) -> dict:
    return {"pool_rows": jnp.sum(pool["weight"] > 0).astype(jnp.float32)}


def make(cfg: AccumulateConfig, world: World, n_generations: int) -> Regime:
    src = curation.source(cfg.curation, world)
    if world.summarize is not None and world.fit_summary is not None and world.inspect is None:  # inspect reads rows
        return _make_summarized(cfg, world, src)

    def initial_train(real):
        return pool_of(real, n_generations)

    def init(key, truth, real, params0):
        return with_extra(pool_of(real, n_generations), src.init(params0))

    def step(key, state, truth, params, g):
        k_sample, _, _ = split_keys(key)
        pool, extra = split_state(state)
        rows, stats = src.draw(k_sample, extra, truth, params, g)
        pool = grow(world, pool, rows, g)
        return pool, with_extra(pool, extra), curation.train_stats(src, pool, {**pool_stats(pool), **stats})

    return Regime(cfg.name, init, step, initial_train)


def _make_summarized(cfg: AccumulateConfig, world: World, src) -> Regime:
    """The pool as the running sum of its training sets' summaries (module docstring); the
    training set a fit sees is that summary, ``train_rows`` its count of rows."""

    def init(key, truth, real, params0):
        return with_extra(world.summarize(real), src.init(params0))

    def step(key, state, truth, params, g):
        k_sample, _, _ = split_keys(key)
        summary, extra = split_state(state)
        rows, stats = src.draw(k_sample, extra, truth, params, g)
        summary = jax.tree.map(jnp.add, summary, world.summarize(rows))
        held = {"pool_rows": summary["rows"].astype(jnp.float32), **stats}
        return summary, with_extra(summary, extra), curation.train_stats(src, None, held, count=summary["rows"])

    return Regime(cfg.name, init, step, fit=world.fit_summary)


Config = AccumulateConfig  # every regime module names its config Config
