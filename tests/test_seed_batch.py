"""Seed batching changes no seed's numbers beyond float rounding (the tolerance stated in
README.md): the same seeds vmapped all at once and in batches of 2, as the driver runs
``run.seed_batch``, world by world."""


import jax
import numpy as np
import pytest
from engine_mc import precision

from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import make_world, world_module

# |all at once − batched| <= TOL · max(1, |all at once|), per record entry (README.md, Running)
TOL = {"float64": 1e-12, "float32": 1e-5}
TEXT = dict(block_len=17, train_blocks=16, test_blocks=4, reservoir_blocks=32, inspect_blocks=2)
CASES = [
    ("regression", {}, "replace", "float64"),
    ("gaussian", dict(d=3, M=20), "replace", "float64"),
    ("gmm", dict(M=40, em_iters=5, tail_points=64), "accumulate", "float64"),
    ("kde", dict(M=30, n_test=32), "replace", "float64"),
    ("kde", dict(M=30, n_test=32), "replace", "float32"),
    ("categorical", dict(V=20, M=50, dist="zipf"), "replace", "float64"),
    ("ngram", dict(order=2, **TEXT), "accumulate", "float64"),
    # trains in float32 whatever run.precision
    ("transformer", dict(steps=5, batch_size=4, n_layers=1, d_model=16, n_heads=2, **TEXT), "replace", "float32"),
]
G, S, B = 2, 8, 2


@pytest.mark.parametrize("world_name, fields, regime, dtype", CASES, ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in CASES])
def test_batched_seeds_match_all_at_once_within_the_stated_tolerance(world_name, fields, regime, dtype):
    with precision(dtype if world_name != "transformer" else "float64"):
        world = make_world(world_module(world_name).Config(**fields))
        simulate = make_simulate(world, make_regime(regime_config(regime), world, G), G)
        keys = seed_keys(jax.random.key(0), np.arange(S))
        whole = {k: np.asarray(v, np.float64) for k, v in simulate(keys).items()}
        parts = [simulate(keys[i : i + B]) for i in range(0, S, B)]
    for name, a in whole.items():
        b = np.concatenate([np.asarray(p[name], np.float64) for p in parts])
        bound = TOL[dtype] * np.maximum(1.0, np.abs(a))
        worst = float(np.max(np.abs(a - b) / bound))
        assert worst <= 1.0, f"{name}: differs by {worst:.2g} times the tolerance"
