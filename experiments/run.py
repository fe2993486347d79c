"""Run one (world, regime) experiment and save it: the code behind the entry point.

Takes typed config objects (never a DictConfig) so it can be called from
Python and tests as well as from hydra.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import time
from pathlib import Path

import jax
import numpy as np

from simulator import results
from simulator.loop import make_simulate, seed_keys
from simulator.regimes import make_regime
from simulator.worlds import make_world


def set_precision(precision: str) -> None:
    """float64 needs JAX's x64 mode; it must be set before any array is made."""
    jax.config.update("jax_enable_x64", precision == "float64")


def versions() -> dict:
    import flax
    import optax

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
    }


def run_experiment(config, out_dir) -> Path:
    """Simulate ``config.run.n_seeds`` seeds for ``config.run.n_generations``
    generations, attach the theory, save to ``out_dir`` and return it."""
    from experiments.predictions import predict

    run = config.run
    set_precision(run.precision)
    world = make_world(config.world)
    regime = make_regime(config.regime, world, run.n_generations)
    simulate = make_simulate(world, regime, run.n_generations)
    keys = seed_keys(jax.random.key(run.seed), np.arange(run.n_seeds))

    t0 = time.perf_counter()
    compiled = simulate.lower(keys).compile()
    t1 = time.perf_counter()
    records = jax.block_until_ready(compiled(keys))
    t2 = time.perf_counter()

    records = {k: np.asarray(v) for k, v in records.items()}
    bad = {k: np.where(~np.isfinite(v).reshape(v.shape[0], v.shape[1], -1).all(-1)) for k, v in records.items()}
    bad = {k: v for k, v in bad.items() if v[0].size}
    if bad:
        k, (seeds, gens) = next(iter(bad.items()))
        raise FloatingPointError(
            f"record {k!r} is not finite at generation {int(gens[0])} for seeds {sorted(set(seeds.tolist()))[:10]}"
        )

    theory = predict(config.world, config.regime, run)
    for name, curve in theory.pop("curves", {}).items():
        records[f"theory/{name}"] = np.asarray(curve)

    meta = {
        "config": {
            "world": dataclasses.asdict(config.world),
            "regime": dataclasses.asdict(config.regime),
            "run": dataclasses.asdict(run),
        },
        "theory": theory,
        "compile_seconds": t1 - t0,
        "run_seconds": t2 - t1,
        "device": str(jax.devices()[0]),
        "platform": jax.default_backend(),
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return results.save(out_dir, records, meta)
