"""The benchmark's numpy references (experiments/bench_reference.py) compute the same
statistics as the engine: mean test error per generation agrees within Monte Carlo
error.  Correctness only; timing lives in ``collapse-bench``, never in the test suite."""

import jax
import numpy as np
import pytest

from experiments import bench_reference as ref
from simulator.loop import make_simulate, seed_keys
from simulator.regimes import make_regime
from simulator.worlds import make_world

WORKLOADS = [("regression", r) for r in ref.REGRESSION_REGIMES] + [("gaussian", "replace"), ("categorical", "replace")]
Z_MAX = 4.5  # ~60 z-scores in all: a false alarm has probability ~1e-3


def engine_test_error(wl, n_seeds):
    world_cfg, regime_cfg = ref.engine_configs(wl)
    world = make_world(world_cfg)
    simulate = make_simulate(world, make_regime(regime_cfg, world, wl.G), wl.G)
    records = simulate(seed_keys(jax.random.key(0), np.arange(n_seeds)))
    return np.asarray(records["test_error"])


@pytest.mark.parametrize("world,regime", WORKLOADS, ids=[f"{w}-{r}" for w, r in WORKLOADS])
def test_references_match_engine(world, regime):
    wl = ref.make_workload(world, regime, d=3, G=3)
    engine = engine_test_error(wl, 2000)
    batched = ref.batched_reference(wl, 2000, chunk=512)
    loop = ref.loop_reference(wl, 300)
    assert engine.shape == batched.shape == (2000, 4) and loop.shape == (300, 4)
    assert np.all(np.isfinite(batched)) and np.all(np.isfinite(loop))
    for other in (batched, loop):
        agreement = ref.compare_means(engine, other)
        assert agreement["max_abs_z"] < Z_MAX, agreement


def test_batched_reference_does_not_depend_on_chunking_shape():
    wl = ref.make_workload("regression", "accumulate_subsample", d=2, G=2)
    a = ref.batched_reference(wl, 40, chunk=40)
    assert a.shape == (40, 3) and np.all(np.isfinite(a))
    assert ref.batched_reference(wl, 40, chunk=16).shape == (40, 3)


def test_unknown_workload_is_rejected():
    with pytest.raises(ValueError, match="regime"):
        ref.make_workload("gaussian", "accumulate", d=2)
    with pytest.raises(ValueError, match="world"):
        ref.make_workload("kde", "replace", d=2)
