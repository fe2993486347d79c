"""Run one (world, regime) experiment and save it: the host-side driver.

``run_saved(config, out_dir)`` takes typed config objects (``config.world``,
``config.regime``, ``config.run``; never a DictConfig, no hydra here) so the
command line, the benchmark and the tests all call the same function.
Generations run in chunks of ``run.chunk_generations``; after each chunk
everything needed to continue is checkpointed (``simulator/checkpoint.py``),
so running the same command again resumes from the last complete chunk with
bit-identical results.  Seeds are sharded over all local devices.

What a run guarantees about its folder: one run at a time (``simulator/lock.py``);
"already complete" only when every result file matches the checksum recorded
at the end; a file that does not load is set aside and the run continues from
the last chunk that does; a failed write keeps every earlier chunk; an
interrupt says what is on disk (``simulator/interrupts.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib.util
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator import checkpoint, compute, interrupts, results
from collapse_sim.simulator.compute import set_precision, to_host  # noqa: F401 (set_precision re-exported)
from collapse_sim.simulator.lock import RunLock
from collapse_sim.simulator.progress import Progress, say
from collapse_sim.simulator.provenance import CompileClock, enable_compile_cache, provenance, versions  # noqa: F401

# Settings that do not change any number of a run, left out of its hash.
PRESENTATION_FIELDS = ("figure", "out_dir", "progress", "resume", "experiment", "compile_cache")


def resolved(config) -> dict:
    return {
        "world": dataclasses.asdict(config.world),
        "regime": dataclasses.asdict(config.regime),
        "run": dataclasses.asdict(config.run),
    }


def run_key(config) -> str:
    c = resolved(config)
    if hasattr(config.regime, "numbers"):  # only the fields that can change the numbers
        c["regime"] = config.regime.numbers()
    c["run"] = {k: v for k, v in c["run"].items() if k not in PRESENTATION_FIELDS}
    for field, default in (("common_random_numbers", True), ("compile_effort", "auto")):
        if c["run"].get(field, default) == default:
            c["run"].pop(field, None)  # the default: runs made before the field existed keep their hash
    return checkpoint.config_hash(c)


def _first_bad(records: dict, g0: int):
    """(name, generation, seeds) of the first non-finite record entry, or None."""
    for name, v in records.items():
        if not np.issubdtype(v.dtype, np.floating) or v.size == 0:  # a chunk of no generations (G = 0)
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


def chunk_error(rec0, recs: dict, carry_host, done: int, n: int, out_dir) -> FloatingPointError | None:
    """What stops a run after a chunk of ``n`` generations from ``done + 1`` on: a non-finite
    record of generation 0 (``rec0``, the first chunk only, else None), of the chunk, or in
    the carried state after it; None when every number is finite."""
    if rec0 is not None:
        bad = _first_bad(rec0, 0)
        if bad:
            return FloatingPointError(f"record {bad[0]!r} is not finite at generation 0 for seeds {bad[2][:10]}")
    bad = _first_bad(recs, done + 1)
    if bad:
        name, g, seeds = bad
        return _stopped(f"record {name!r} is not finite at generation {g}", seeds, out_dir, done, rec0 is None)
    bad = _bad_state(carry_host, done + n)
    if bad:
        path, g, seeds = bad
        return _stopped(f"the carried state {path} is not finite after generation {g}", seeds, out_dir, done,
                        rec0 is None)
    return None


def _stopped(what: str, seeds: list, out_dir, done: int, saved: bool = True) -> FloatingPointError:
    if not saved:  # the first chunk: generation 0 runs with it, so nothing is on disk yet
        return FloatingPointError(f"{what} for seeds {seeds[:10]}; nothing of this run is saved in {out_dir}; "
                                  "change the config (e.g. run.precision=float64) and run again")
    return FloatingPointError(
        f"{what} for seeds {seeds[:10]}; generations 0..{done} are saved in {out_dir}; change the config "
        f"(e.g. run.precision=float64) and run again, or run the same command to retry from generation {done}"
    )


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}


def _check_folder(out_dir: Path) -> None:
    """The run folder is (or can be made) a folder this process can write, else an OSError naming it."""
    for p in (out_dir, *out_dir.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == out_dir else f"lies under {p}, which is a file"
                raise NotADirectoryError(f"the run folder {out_dir} {where}, not a folder; choose another run.out_dir")
            break
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir) as probe:
            probe.write(b"collapse-sim")
            probe.flush()
    except OSError as e:
        raise type(e)(f"cannot write into the run folder {out_dir}: {e.strerror or e} "
                      f"({results.free_space(out_dir)} free there); choose another run.out_dir") from None


def _preflight(config, out_dir: Path, writer: bool) -> None:
    """Start-of-run checks, before anything is compiled (new start-of-run checks go here):
    the run folder can be written (by the process that writes), and the memory estimate
    of ``simulator/memory.py`` where that module exists."""
    if writer:
        _check_folder(out_dir)
    if importlib.util.find_spec("collapse_sim.simulator.memory") is not None:
        from collapse_sim.simulator import memory

        memory.check(config)


def run_saved(config, out_dir, label: str | None = None) -> Path:
    """Simulate ``config.run.n_seeds`` seeds for ``config.run.n_generations``
    generations (resuming a checkpoint of the same config if there is one),
    attach the theory, save to ``out_dir`` and return it.  ``label`` names the run
    in its messages (default ``world/regime``; a sweep's job adds its overrides)."""
    run = config.run
    out_dir = Path(out_dir)
    set_precision(run.precision)
    cache = enable_compile_cache(getattr(run, "compile_cache", True), say)
    if run.distributed and not jax.distributed.is_initialized():
        jax.distributed.initialize()
    key = run_key(config)
    label = label or f"{config.world.name}/{config.regime.name}"
    interrupts.running(label, out_dir, key)
    writer = jax.process_index() == 0  # one writer when a run spans several hosts
    _preflight(config, out_dir, writer)  # before the world is made, which allocates its arrays
    # The clock counts everything compiled (or loaded from the persistent cache) from here on.
    # The lock is named to the interrupt handler before it is taken: an interrupt while it is
    # being taken (its PID written and synced) still empties it.
    lock = RunLock(out_dir, say) if writer else None
    interrupts.holding(lock)
    with CompileClock() as clock, (lock if lock is not None else contextlib.nullcontext()):
        prog = compute.build(config, store=cache is not None)  # world and regime checks raise here
        for name, size in checkpoint.remove_stale_temporaries(out_dir) if writer else []:
            say(f"{out_dir}: removed {name} ({size / 1e6:.1f} MB), a partial file of a run that was killed")
        try:
            return _run(config, out_dir, prog, key, label, writer, cache, clock)
        except KeyboardInterrupt:
            say(interrupts.saved_message(label, out_dir, key))
            raise
        except results.WriteError as e:
            g = checkpoint.saved_generation(out_dir, key)
            kept = f"generations 0..{g} are saved in {out_dir}" if g is not None else "nothing of this run is saved"
            e.note = f"; {kept}; make room (or fix the folder) and run the same command to continue"
            raise


def _run(config, out_dir: Path, prog, key: str, label: str, writer: bool, cache, clock) -> Path:
    run = config.run
    if run.resume and checkpoint.check_complete(out_dir, key, say):
        say(f"{label}: already complete in {out_dir} (checksums match; run.resume=false to redo it)")
        return out_dir
    return _simulate(config, out_dir, prog, key, label, writer, cache, clock)


def _simulate(config, out_dir, prog, key, label, writer, cache, clock) -> Path:
    run = config.run
    G = run.n_generations
    mesh = prog.mesh

    def save(generation, carry_host, recs):
        if writer:
            with interrupts.critical():
                checkpoint.save(out_dir, key, generation, carry_host, recs)

    state = checkpoint.restore(out_dir, key, prog.carry_like, say) if run.resume else None
    done = state[0] if state is not None else 0
    progress = Progress(run.progress, G, done, run.n_seeds, label)
    t0 = time.perf_counter()
    t_first, t_sim, compute_s = 0.0, 0.0, 0.0  # t_first stays 0 on a resumed run
    try:
        if state is not None:
            done, carry, recs = state
            carry = jax.device_put(jax.tree.map(jnp.asarray, carry), prog.keys.sharding)
            parts, start = [recs], False
            if run.progress:
                say(f"{label}: resuming from generation {done} ({out_dir})")
        else:
            carry, parts, start = prog.blank(), [], True
        if prog.compile(carry, start, check_only=True):
            progress.stage(f"compiling generation 0 and chunks of {prog.length} generations (one program)"
                           if start else f"compiling chunks of {prog.length} generations")
            prog.compile(carry, start)
        calls = list(compute.generations(done, G, prog.length))
        if start and not calls:
            calls = [(np.zeros(prog.length, np.int32), 0)]  # generation 0 only
        for gens, n in calls:
            t, c = time.perf_counter(), clock.seconds
            what = f"generations {'0' if start else done + 1}..{done + n}"
            progress.stage(f"running {what}")
            carry, rec0, recs = prog.step(carry, gens, start)
            recs = {k: v[:, :n] for k, v in to_host(recs).items()}  # (S, n) per record
            if start:
                parts.append({k: v[:, None] for k, v in to_host(rec0).items()})
            carry_host = to_host(carry)
            error = chunk_error(parts[0] if start else None, recs, carry_host, done, n, out_dir)
            if error is not None:
                raise error
            if n:
                parts.append(recs)
            save(done + n, carry_host, _concat(parts))
            dt = time.perf_counter() - t - (clock.seconds - c)
            if start:
                t_first = time.perf_counter() - t0  # compile included, as before
            t_sim += dt  # compute only: generation 0 runs with the first chunk
            start = False
            compute_s += dt
            done += n
            progress.update(done, n, dt)
    finally:
        progress.close()

    timings = {"first_generation_seconds": t_first, "run_seconds": t_sim, "compute_seconds": compute_s}
    return finish(config, out_dir, key, _concat(parts), timings, mesh, cache, clock, writer)


def finish(config, out_dir, key: str, records: dict, timings: dict, mesh, cache, clock, writer: bool,
           extra: dict | None = None) -> Path:
    """Attach the theory, write ``records.npz`` and ``results.json`` (config, timings, compile
    counts, devices, provenance; ``extra`` added), then mark the run complete."""
    run = config.run
    records, meta = compute.attach_theory(config, records)
    meta = {
        "config": meta["config"],
        "config_hash": key,
        "theory": meta["theory"],
        **timings,
        "compile_seconds": clock.seconds,
        "compile": {"programs": clock.programs, "cache_hits": clock.cache_hits, "cache_misses": clock.cache_misses,
                    "cache_dir": cache},
        "devices": [str(d) for d in mesh.devices.flat],
        "device": str(jax.devices()[0]),
        "platform": jax.default_backend(),
        "precision": run.precision,
        **(extra or {}),
        **provenance(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if writer:
        with interrupts.critical():  # results, then the marker: an interrupt sees all or none
            checksums = results.save(out_dir, records, meta)
            checkpoint.mark_complete(out_dir, key, run.n_generations, checksums)
    return out_dir
