"""Run one (world, regime) experiment and save it: the host-side driver.

``run_saved(config, out_dir)`` takes typed config objects (``config.world``,
``config.regime``, ``config.run``; never a DictConfig, no hydra here) so the
command line, the benchmark and the tests all call the same function.  Generations run in chunks of
``run.chunk_generations``; after each chunk everything needed to continue is
checkpointed atomically, so running the same command again resumes from the
last complete chunk with bit-identical results.  Seeds are sharded over all
local devices.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator import checkpoint, results
from collapse_sim.simulator.loop import make_generation, seed_keys
from collapse_sim.simulator.regimes import make_regime
from collapse_sim.simulator.sharding import padded_seed_count, seed_mesh, shard_seeds
from collapse_sim.simulator.worlds import make_world

# Settings that do not change any number of a run, left out of its hash.
PRESENTATION_FIELDS = ("figure", "out_dir", "progress", "resume", "experiment")


def set_precision(precision: str) -> None:
    """float64 needs JAX's x64 mode; it must be set before any array is made."""
    jax.config.update("jax_enable_x64", precision == "float64")


def versions() -> dict:
    import flax
    import optax

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
    }


def resolved(config) -> dict:
    return {
        "world": dataclasses.asdict(config.world),
        "regime": dataclasses.asdict(config.regime),
        "run": dataclasses.asdict(config.run),
    }


def run_key(config) -> str:
    c = resolved(config)
    c["run"] = {k: v for k, v in c["run"].items() if k not in PRESENTATION_FIELDS}
    return checkpoint.config_hash(c)


class Progress:
    """A tqdm bar on a terminal, plain log lines otherwise, nothing if disabled."""

    def __init__(self, enabled: bool, total: int, done: int, n_seeds: int, label: str):
        self.enabled, self.total, self.n_seeds, self.label = enabled, total, n_seeds, label
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=label, unit="gen", dynamic_ncols=True)

    def update(self, done: int, step: int, seconds: float) -> None:
        rate = step * self.n_seeds / max(seconds, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix(seeds=self.n_seeds, seed_gens_per_s=f"{rate:,.0f}")
            self.bar.update(step)
        elif self.enabled:
            print(f"[collapse-sim] {self.label}: generation {done}/{self.total}, {self.n_seeds} seeds, "
                  f"{rate:,.0f} seed-generations/s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _first_bad(records: dict, g0: int):
    """(name, generation, seeds) of the first non-finite record entry, or None."""
    for name, v in records.items():
        if not np.issubdtype(v.dtype, np.floating):
            continue
        ok = np.isfinite(v).reshape(v.shape[0], v.shape[1], -1).all(-1)
        if not ok.all():
            seeds, gens = np.where(~ok)
            g = int(gens.min())
            return name, g0 + g, sorted(set(seeds[gens == g].tolist()))
    return None


def _bad_state(carry_host, generation: int):
    """:func:`_first_bad` over the carried state (models, pools): each leaf, named by its
    path, as a record of one generation."""
    leaves = jax.tree_util.tree_leaves_with_path(carry_host)
    return _first_bad({jax.tree_util.keystr(p): v[:, None] for p, v in leaves if v.ndim}, generation)


def _stopped(what: str, seeds: list, out_dir, done: int) -> FloatingPointError:
    return FloatingPointError(
        f"{what} for seeds {seeds[:10]}; generations 0..{done} are saved in {out_dir}; change the config "
        f"(e.g. run.precision=float64) and run again, or run the same command to retry from generation {done}"
    )


def to_host(tree):
    """Numpy copies of (possibly multi-host sharded) arrays, gathered on every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def _save_checkpoint(out_dir, key, generation, carry_host, records) -> None:
    if jax.process_index() == 0:  # every process gathered the carry; process 0 writes
        checkpoint.save(out_dir, key, generation, carry_host, records)


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}


def run_saved(config, out_dir) -> Path:
    """Simulate ``config.run.n_seeds`` seeds for ``config.run.n_generations``
    generations (resuming a checkpoint of the same config if there is one),
    attach the theory, save to ``out_dir`` and return it."""
    from collapse_sim.experiments.predictions import predict

    run = config.run
    out_dir = Path(out_dir)
    set_precision(run.precision)
    if run.distributed and not jax.distributed.is_initialized():
        jax.distributed.initialize()
    world = make_world(config.world)
    G = run.n_generations
    regime = make_regime(config.regime, world, G)
    gen = make_generation(world, regime)
    key = run_key(config)
    label = f"{config.world.name}/{config.regime.name}"

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

    if run.resume and checkpoint.is_complete(out_dir, key) and (out_dir / results.RECORDS).is_file():
        print(f"[collapse-sim] {label}: already complete in {out_dir} (run.resume=false to redo it)", file=sys.stderr)
        return out_dir

    t0 = time.perf_counter()
    state = None
    if run.resume:
        carry_like, _ = jax.eval_shape(first_one, keys)
        state = checkpoint.load(out_dir, key, carry_like)
        if state is None and checkpoint.stored_hash(out_dir) not in (None, key):
            print(f"[collapse-sim] {out_dir} holds a checkpoint of another config; starting afresh", file=sys.stderr)
    if state is not None:
        done, carry, recs = state
        carry = shard_seeds(jax.tree.map(jnp.asarray, carry), mesh)
        parts = [recs]
        if run.progress:
            print(f"[collapse-sim] {label}: resuming from generation {done} ({out_dir})", file=sys.stderr, flush=True)
    else:
        carry, rec0 = first(keys)
        parts = [{k: v[:, None] for k, v in to_host(rec0).items()}]
        done = 0
        bad = _first_bad(parts[0], 0)
        if bad:
            raise FloatingPointError(f"record {bad[0]!r} is not finite at generation 0 for seeds {bad[2][:10]}")
        carry_host = to_host(carry)
        bad = _bad_state(carry_host, 0)
        if bad:
            raise FloatingPointError(f"the carried state {bad[0]} is not finite at generation 0 for seeds {bad[2][:10]}")
        _save_checkpoint(out_dir, key, 0, carry_host, parts[0])
    t_first = time.perf_counter() - t0

    step = run.chunk_generations or G
    progress = Progress(run.progress, G, done, run.n_seeds, label)
    t_sim = 0.0
    try:
        while done < G:
            n = min(step, G - done)
            t = time.perf_counter()
            carry, recs = chunk(carry, keys, jnp.arange(done + 1, done + n + 1, dtype=jnp.int32))
            recs = to_host(recs)  # (S, n) per record
            bad = _first_bad(recs, done + 1)
            if bad:
                name, g, seeds = bad
                raise _stopped(f"record {name!r} is not finite at generation {g}", seeds, out_dir, done)
            carry_host = to_host(carry)
            bad = _bad_state(carry_host, done + n)
            if bad:
                path, g, seeds = bad
                raise _stopped(f"the carried state {path} is not finite after generation {g}", seeds, out_dir, done)
            parts.append(recs)
            done += n
            _save_checkpoint(out_dir, key, done, carry_host, _concat(parts))
            dt = time.perf_counter() - t
            t_sim += dt
            progress.update(done, n, dt)
    except KeyboardInterrupt:
        progress.close()
        print(
            f"[collapse-sim] {label}: interrupted; generations 0..{done} are saved in {out_dir}; "
            f"run the same command to resume from generation {done}",
            file=sys.stderr,
            flush=True,
        )
        raise
    finally:
        progress.close()

    records = {k: v[: run.n_seeds] for k, v in _concat(parts).items()}
    theory = predict(config.world, config.regime, run)
    for name, curve in theory.pop("curves", {}).items():
        records[f"theory/{name}"] = np.asarray(curve)
    meta = {
        "config": resolved(config),
        "config_hash": key,
        "theory": theory,
        "first_generation_seconds": t_first,
        "run_seconds": t_sim,
        "devices": [str(d) for d in mesh.devices.flat],
        "device": str(jax.devices()[0]),
        "platform": jax.default_backend(),
        "precision": run.precision,
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if jax.process_index() == 0:  # one writer when a run spans several hosts
        results.save(out_dir, records, meta)
        checkpoint.mark_complete(out_dir, key, G)
    return out_dir
