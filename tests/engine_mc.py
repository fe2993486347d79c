"""Helpers shared by the distribution-world tests (tests/test_world_*.py): run the engine over
vmapped seeds and compare Monte Carlo means with theory within a number of standard errors.

Axis letters: S seeds, G generations (G+1 records), V outcomes, K components, D features.
"""

import contextlib
from types import SimpleNamespace

import jax
import numpy as np

from collapse_sim.experiments.predictions import predict
from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import make_world

@contextlib.contextmanager
def precision(name):
    """Run a block in float32 or float64 (JAX's x64 flag), restoring the flag after."""
    was = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", name == "float64")
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", was)


# Every regime of the engine that needs nothing from the world beyond fit/sample
# (token_edit needs ``world.edit``), with both readings of mix.
REGIMES = [
    regime_config("replace"),
    regime_config("mix", real_fraction=0.25, real_source="original"),
    regime_config("mix", real_fraction=0.25, real_source="fresh"),
    regime_config("accumulate"),
    regime_config("accumulate_subsample"),
]


def regime_id(r) -> str:
    return f"{r.name}-{r.real_source}" if r.name == "mix" else r.name


def simulate(world_cfg, regime, G: int, S: int, seed: int = 0):
    """(records as numpy (S, G+1, ...), theory curves) of one jitted engine run."""
    regime_cfg = regime_config(regime) if isinstance(regime, str) else regime
    world = make_world(world_cfg)
    run = make_simulate(world, make_regime(regime_cfg, world, G), G)
    records = run(seed_keys(jax.random.key(seed), range(S)))
    curves = predict(world_cfg, regime_cfg, SimpleNamespace(n_generations=G, seed=seed, theory_designs=2))["curves"]
    return {k: np.asarray(v) for k, v in records.items()}, curves


def run_each_regime(world_cfg, regimes=REGIMES, G: int = 2, seed: int = 0) -> dict:
    """{regime id: records (G+1, ...)} of one seed per regime, without scan or vmap.

    The generation step of simulator/loop.py (same keys) driven from Python, with the
    world's functions jitted once and shared by every regime: a training set has the
    same row shape under replace, mix and accumulate_subsample, so they compile once
    (the accumulate pool once more).  The distribution worlds ignore ``base``, so
    ``fit`` gets None.  For smoke-testing regimes; the statistical tests use ``simulate``.
    """
    world = make_world(world_cfg)
    fit = jax.jit(lambda key, rows: world.fit(key, rows, None))
    world = world._replace(real=jax.jit(world.real), sample=jax.jit(world.sample), evaluate=jax.jit(world.evaluate))
    seed_key = seed_keys(jax.random.key(seed), [0])[0]
    out = {}
    for regime_cfg in regimes:
        regime = make_regime(regime_cfg, world, G)
        # as simulator/loop.py: a regime's own fit (accumulate's running summary) where it has one
        fit_g = fit if regime.fit is None else jax.jit(lambda key, train, r=regime: r.fit(key, train, None))
        k_truth, k_real, k_regime, k_fit = jax.random.split(jax.random.fold_in(seed_key, 0), 4)
        truth = world.init(k_truth)
        real = world.real(k_real, truth, 0)
        params = params0 = fit(k_fit, regime.initial_train(real))
        state = regime.init(k_regime, truth, real, params0)
        records = [world.evaluate(truth, params)]
        for g in range(1, G + 1):
            k_regime, k_fit = jax.random.split(jax.random.fold_in(seed_key, g))
            train, state, _ = regime.step(k_regime, state, truth, params, g)
            params = fit_g(k_fit, train)
            records.append(world.evaluate(truth, params))
        out[regime_id(regime_cfg)] = {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}
    return out


def assert_every_regime_runs(world_cfg, G: int = 2) -> dict:
    """Every regime of REGIMES runs on the world: records of static shape (G+1, ...), all finite.
    Returns ``run_each_regime``'s records for further checks."""
    out = run_each_regime(world_cfg, G=G)
    for rid, rec in out.items():
        for name, a in rec.items():
            assert a.shape[0] == G + 1, (rid, name)
            assert np.all(np.isfinite(a)), (rid, name)
    return out


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
