"""The compute path every run takes: compiled first generation, compiled chunks of
generations, seeds in batches.  The saved driver (``driver.py``) and the in-memory
``simulate`` both build their programs here, so a seed's numbers do not depend on
which one ran it.

Keys: seed s gets ``fold_in(root, s)`` (``loop.seed_keys``); a batch of seeds is
vmapped, batches run one after another, and generations run ``chunk`` at a time.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator.loop import make_generation, seed_keys
from collapse_sim.simulator.regimes import make_regime
from collapse_sim.simulator.sharding import padded_seed_count, seed_mesh, shard_seeds
from collapse_sim.simulator.worlds import make_world


def set_precision(precision: str) -> None:
    """float64 needs JAX's x64 mode; it must be set before any array is made."""
    jax.config.update("jax_enable_x64", precision == "float64")


class Program(NamedTuple):
    """first(keys) -> (carry, record0); chunk(carry, keys, gens) -> (carry, records).
    ``keys`` holds ``n_pad`` seed keys (the run's seeds, padded to fill the devices and
    batches); ``first_one`` is the compiled per-batch first generation."""

    first: Callable
    chunk: Callable
    first_one: Callable
    keys: jax.Array
    n_pad: int
    mesh: object


def build(exp) -> Program:
    run = exp.run
    set_precision(run.precision)
    world = make_world(exp.world)
    regime = make_regime(exp.regime, world, run.n_generations)
    gen = make_generation(world, regime)
    mesh = seed_mesh()
    batch = padded_seed_count(min(run.seed_batch or run.n_seeds, run.n_seeds), mesh.size)
    n_pad = padded_seed_count(run.n_seeds, batch)
    keys = shard_seeds(seed_keys(jax.random.key(run.seed), np.arange(n_pad)), mesh)
    first_one = jax.jit(jax.vmap(gen.first))
    chunk_one = jax.jit(jax.vmap(gen.chunk, in_axes=(0, 0, None)), donate_argnums=0)

    def batched(fn, *args):
        """Apply ``fn`` to seed batches of ``batch`` seeds (leading axis) one after another."""
        if n_pad == batch:
            return fn(*args)
        outs = [fn(*[jax.tree.map(lambda a: a[i : i + batch], x) for x in args]) for i in range(0, n_pad, batch)]
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outs)

    def first(keys):
        return batched(first_one, keys)

    def chunk(carry, keys, gens):
        return batched(lambda c, k: chunk_one(c, k, gens), carry, keys)

    return Program(first, chunk, first_one, keys, n_pad, mesh)


def to_host(tree):
    """Numpy copies of (possibly multi-host sharded) arrays, gathered on every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def generations(done: int, n_generations: int, chunk_generations: int):
    """The int arrays of generation indices each chunk runs, from ``done + 1`` on."""
    step = chunk_generations or n_generations
    while done < n_generations:
        n = min(step, n_generations - done)
        yield jnp.arange(done + 1, done + n + 1, dtype=jnp.int32)
        done += n


def simulate_in_memory(exp) -> tuple[dict, dict]:
    """(records with theory curves, meta) of a whole run, nothing written."""
    from collapse_sim.experiments.predictions import predict
    from collapse_sim.simulator.driver import resolved

    prog = build(exp)
    carry, rec0 = prog.first(prog.keys)
    parts = [{k: v[:, None] for k, v in to_host(rec0).items()}]
    for gens in generations(0, exp.run.n_generations, exp.run.chunk_generations):
        carry, recs = prog.chunk(carry, prog.keys, gens)
        parts.append(to_host(recs))
    records = {k: np.concatenate([p[k] for p in parts], axis=1)[: exp.run.n_seeds] for k in parts[0]}
    theory = predict(exp.world, exp.regime, exp.run)
    for name, curve in theory.pop("curves", {}).items():
        records[f"theory/{name}"] = np.asarray(curve)
    return records, {"config": resolved(exp), "theory": theory, "precision": exp.run.precision}
