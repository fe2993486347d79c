"""Helpers shared by the distribution-world tests (tests/test_world_*.py): run the engine over
vmapped seeds and compare Monte Carlo means with theory within a number of standard errors.

Axis letters: S seeds, G generations (G+1 records), V outcomes, K components, D features.
"""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from experiments.predictions import predict
from simulator.loop import make_generation, make_simulate, seed_keys
from simulator.regimes import RegimeConfig, make_regime
from simulator.worlds import make_world

# Every regime of the engine that needs nothing from the world beyond fit/sample
# (token_edit needs ``world.edit``), with both readings of mix.
REGIMES = [
    RegimeConfig(name="replace"),
    RegimeConfig(name="mix", real_fraction=0.25, real_source="original"),
    RegimeConfig(name="mix", real_fraction=0.25, real_source="fresh"),
    RegimeConfig(name="accumulate"),
    RegimeConfig(name="accumulate_subsample"),
]


def regime_id(r: RegimeConfig) -> str:
    return f"{r.name}-{r.real_source}" if r.name == "mix" else r.name


def simulate(world_cfg, regime, G: int, S: int, seed: int = 0):
    """(records as numpy (S, G+1, ...), theory curves) of one jitted engine run."""
    regime_cfg = RegimeConfig(name=regime) if isinstance(regime, str) else regime
    world = make_world(world_cfg)
    run = make_simulate(world, make_regime(regime_cfg, world, G), G)
    records = run(seed_keys(jax.random.key(seed), range(S)))
    curves = predict(world_cfg, regime_cfg, SimpleNamespace(n_generations=G, seed=seed, theory_designs=2))["curves"]
    return {k: np.asarray(v) for k, v in records.items()}, curves


def simulate_eager(world_cfg, regime_cfg, G: int, seed: int = 0) -> dict:
    """One seed, G generations, without jit (cheap for a smoke run: no compile): records (G+1, ...)."""
    world = make_world(world_cfg)
    gen = make_generation(world, make_regime(regime_cfg, world, G))
    key = jax.random.fold_in(jax.random.key(seed), 0)
    with jax.disable_jit():
        carry, first = gen.first(key)
        _, rest = gen.chunk(carry, key, jnp.arange(1, G + 1))
    return {k: np.concatenate([np.asarray(first[k])[None], np.asarray(rest[k])]) for k in first}


def z_scores(samples_SxG, theory_G, resolution: float = 0.0):
    """(MC mean - theory) / SE, SE from the seeds.  ``resolution`` is added in quadrature: for an
    indicator whose seeds all agree the SE is 0 while the mean can only move in steps of 1/S."""
    samples_SxG = np.asarray(samples_SxG, float)
    se_G = samples_SxG.std(0, ddof=1) / np.sqrt(samples_SxG.shape[0])
    return (samples_SxG.mean(0) - theory_G) / np.sqrt(se_G**2 + resolution**2)


def assert_mc_matches(samples_SxG, theory_G, what: str, n_se: float = 4.0, resolution: float = 0.0):
    """|MC mean - theory| <= n_se standard errors (from the seeds) at every generation."""
    z = z_scores(samples_SxG, theory_G, resolution)
    assert np.all(np.abs(z) <= n_se), f"{what}: MC {np.mean(samples_SxG, 0)} vs theory {theory_G}, z = {z}"
