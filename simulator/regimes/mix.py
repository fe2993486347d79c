"""``mix``: a share of each training set is real, the rest synthetic from model n-1.

``real_source=fresh`` draws new real data every generation (He, Xu & Cheng
2025, arXiv 2502.18049); ``real_source=original`` keeps rows of the original
real data (Shumailov et al. 2024: "10% of the original data preserved").
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from collapse_sim.simulator import curation, traced
from collapse_sim.simulator import rows as R
from collapse_sim.simulator.curation import CurationConfig
from collapse_sim.simulator.regimes.regime import (
    Regime,
    RegimeConfig,
    check_choice,
    check_real,
    curated_numbers,
    split_keys,
)
from collapse_sim.simulator.world import World

REAL_SOURCES = ("fresh", "original")


@dataclasses.dataclass
class MixConfig(RegimeConfig):
    """real_fraction: share p of the T training rows that are real (m = round(p T)
    rows), the rest synthetic from model n-1.
    real_source: ``fresh`` (new real data each generation; on a fixed design,
    fresh labels on the chosen rows) or ``original`` (rows of the original data).
    resample_real: ``original`` only; draw a new subset of the original rows every
    generation (True, Shumailov) or keep one subset for the whole run (False).
    curation: how the synthetic rows are curated (``simulator/curation.py``; rule
    ``none`` by default); the real rows are never curated."""

    NAME = "mix"
    name: str = "mix"
    real_fraction: float = 0.2
    real_source: str = "fresh"
    resample_real: bool = True
    curation: CurationConfig = dataclasses.field(default_factory=CurationConfig)

    TRACED = ("real_fraction",)  # an argument of the compiled run (simulator/traced.py)

    def validate(self) -> None:
        check_choice("real_source", self.real_source, REAL_SOURCES)
        check_real("real_fraction", self.real_fraction, 0.0, 1.0)

    def numbers(self) -> dict:
        out = dataclasses.asdict(self)
        if self.real_source == "fresh":
            del out["resample_real"]  # fresh rows are drawn anew every generation either way
        return curated_numbers(self, out)


def make(cfg: MixConfig, world: World, n_generations: int) -> Regime:
    T = world.n_rows
    live = T if world.rows is None else world.rows  # a padded grid's rows (simulator/padding.py)
    m = traced.count(cfg.real_fraction, live)  # a traced count: the mask below has T entries either way

    def subset(key):
        return R.random_subset_mask(key, T, m, world.rows)

    def share(mask):  # over the live rows of a padded grid
        return jnp.mean(mask) if world.rows is None else jnp.mean(mask, where=jnp.arange(T) < live)
    fresh = cfg.real_source == "fresh"
    redraw = fresh or cfg.resample_real
    src = curation.source(cfg.curation, world)

    def init(key, truth, real, params0):
        real = R.without_fixed(real, world)  # a fixed design's x is the truth's
        return {"real": real, "mask": subset(key), "curation": src.init(params0)}

    def step(key, state, truth, params, g):
        k_sample, k_real, k_mask = split_keys(key)
        synthetic, stats = src.draw(k_sample, state["curation"], truth, params, g)
        real = world.real(k_real, truth, g) if fresh else R.with_fixed(state["real"], world, truth)
        mask = subset(k_mask) if redraw else state["mask"]
        train = R.where(mask, real, synthetic)
        return train, state, curation.train_stats(src, train, {"real_share": share(mask), **stats})

    return Regime(cfg.name, init, step)


Config = MixConfig  # every regime module names its config Config
