"""Many saved runs as one compiled call: the jobs of a sweep that differ only in traced numbers.

``run_saved_grid(jobs)`` takes the jobs of a sweep (typed configs, their folders and
labels), groups those that share a program (``compute.group_key``: the same world and
regime with their traced numbers blanked, the same run shapes; T too where ``padding.py``
pads it) and runs each group of two or more as one call of ``compute.build(exp, points)``,
the points vmapped beside the seeds.
Each job's folder then holds what ``driver.run_saved`` would have written: after every
chunk its checkpoint, at the end its records (equal to a separate run's, seed for seed:
``tests/test_sweep.py``) and its ``results.json`` with the grid named (``grid``: the
points, the shared compile and compute seconds).

A job joins a group only when its world is closed-form (``GRID_WORLDS``: a text world's
sweep is a few long jobs whose memory a grid would multiply) and it starts from nothing: a
job already complete (with ``run.resume``) or with a checkpoint to resume from, a job alone
in its group, and a group whose points together need more memory than the machine has, are
left to ``run_saved``, one by one (they still share one program per skeleton in this
process).  A sweep
interrupted during its grid call leaves a checkpoint in every folder; the same command
then resumes each job from it.

``precompile(jobs)``: the programs of the jobs left to run one by one are compiled first,
several at a time on threads (XLA's compiler releases Python's lock), so that one compiles
while the next is traced; each job then finds its program compiled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from collapse_sim.simulator import checkpoint, compute, driver, interrupts, results
from collapse_sim.simulator.lock import RunLock
from collapse_sim.simulator.progress import Progress, say
from collapse_sim.simulator.provenance import CompileClock, enable_compile_cache


class Job(NamedTuple):
    """One run of a sweep: its typed config (world, regime, run), its folder, its label."""

    config: Any
    out_dir: Path
    label: str


# The worlds whose sweeps run as grids: a text world's sweep is a few long jobs, each holding
# models and optimiser states, whose memory a grid would multiply; they run one by one.
GRID_WORLDS = ("regression", "gaussian", "gmm", "kde", "categorical")

_DONE: dict[tuple[str, str], Any] = {}  # (folder, run key) -> the folder written, or the error to raise


def outcome(config, out_dir):
    """What the grid call did for this job: its folder (written), an exception (raise it as the
    job's own), or None (not run in a grid: run it with ``driver.run_saved``)."""
    return _DONE.pop((str(Path(out_dir).resolve()), driver.run_key(config)), None)


def _record(job: Job, key: str, value) -> None:
    _DONE[(str(Path(job.out_dir).resolve()), key)] = value


def _complete(job: Job, key: str) -> bool:
    """The job's folder holds its finished run (and ``run.resume`` would find it)."""
    return job.config.run.resume and (Path(job.out_dir) / results.META).exists() and \
        checkpoint.check_complete(job.out_dir, key, None, fix=False)


def _fresh(job: Job, key: str) -> bool:
    """The job starts from nothing: resume off, or neither complete nor checkpointed."""
    if not job.config.run.resume:
        return True
    return not _complete(job, key) and checkpoint.saved_generation(job.out_dir, key) is None


def _fits(points: list) -> bool:
    """The grid's points together pass the memory check of one run of all their seeds."""
    from collapse_sim.simulator import memory

    config = max(points, key=lambda p: getattr(p.config.world, "T", 0)).config  # a padded grid's largest
    together = dataclasses.replace(config.run, n_seeds=config.run.n_seeds * len(points))
    try:
        memory.check(config._replace(run=together) if hasattr(config, "_replace")
                     else dataclasses.replace(config, run=together))
    except ValueError:
        return False
    return True


def _valid(job: Job) -> bool:
    """The world's and regime's start-of-run checks pass (a job that fails them is left to its
    own run, which says what is wrong)."""
    try:
        compute.set_precision(job.config.run.precision)
        compute.check(job.config)
    except ValueError:
        return False
    return True


def groups(jobs: list[Job]) -> list[list[int]]:
    """Indices of the jobs that run together: fresh jobs with one group key (``compute.group_key``),
    two or more."""
    by_skeleton: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.config.world.name not in GRID_WORLDS or job.config.run.distributed or \
                not _fresh(job, driver.run_key(job.config)):
            continue
        by_skeleton.setdefault(compute.group_key(job.config), []).append(i)
    return [members for members in by_skeleton.values() if len(members) > 1]


def precompile(jobs: list[Job], skip=()) -> int:
    """Compile the programs of the jobs that will run one by one (one per skeleton, the jobs'
    order), two at a time, so that one program compiles while the next is traced: XLA's
    compiler releases Python's lock.  Only jobs with one precision (it is a process-wide
    setting) and with the store on (so a job's own run finds its program: in this process's
    cache, or on disk if evicted there).  Returns the number of programs compiled."""
    from concurrent.futures import ThreadPoolExecutor

    todo: dict[str, Job] = {}
    for i, job in enumerate(jobs):
        run = job.config.run
        if i in skip or job.config.world.name not in GRID_WORLDS or run.distributed or \
                not getattr(run, "compile_cache", True):
            continue
        if _complete(job, driver.run_key(job.config)):
            continue
        if _valid(job):
            todo.setdefault(compute.skeleton(job.config), job)
    todo_jobs = list(todo.values())[: compute._CACHE_SIZE]
    if len(todo_jobs) < 2 or len({j.config.run.precision for j in todo_jobs}) > 1:
        return 0
    compute.set_precision(todo_jobs[0].config.run.precision)
    if enable_compile_cache(True, say) is None:
        return 0

    # the programs found compiled (in this process or the store) need nothing
    progs = [(job, prog) for job in todo_jobs
             for prog in [compute.build(job.config, store=True)] if prog.compile(prog.blank(), True, check_only=True)]
    workers = min(len(progs), os.cpu_count() or 1, 4)
    if workers < 2:
        return 0
    tell = any(job.config.run.progress for job, _ in progs)
    if tell:
        names = ", ".join(f"{job.config.world.name}/{job.config.regime.name}" for job, _ in progs)
        say(f"compiling the programs of {len(progs)} jobs, {workers} at a time ({names})")
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        compiled = sum(pool.map(lambda item: item[1].compile(item[1].blank(), True), progs))
    if tell:
        say(f"compiled {compiled} programs in {time.perf_counter() - t:.1f} s")
    return compiled


def run_saved_grid(jobs: list[Job]) -> list[int]:
    """Run every group of :func:`groups` as one compiled call and save each job; returns the
    indices of the jobs it ran (their :func:`outcome` is then their folder or their error)."""
    ran: list[int] = []
    for members in groups(jobs):
        members = [i for i in members if _valid(jobs[i])]
        points = [jobs[i] for i in members]
        if len(points) < 2 or not _fits(points):
            continue
        ran += [members[i] for i in _run_group(points)]
    return ran


def _run_group(points: list[Job]) -> list[int]:
    """Run ``points`` as one grid call; returns the indices of the points it ran (a point whose
    folder cannot be written or is locked is left to its own run, which says so)."""
    first = points[0].config
    compute.set_precision(first.run.precision)
    cache = enable_compile_cache(getattr(first.run, "compile_cache", True), say)
    live = []  # (index, job, run key) of the points whose folders are ready and locked
    locks = [RunLock(Path(p.out_dir), say) for p in points]
    interrupts.holding(*locks)  # named before they are taken (driver.run_saved says why)
    with contextlib.ExitStack() as stack, CompileClock() as clock:
        for i, (p, lock) in enumerate(zip(points, locks)):
            try:
                driver._check_folder(Path(p.out_dir))
                stack.enter_context(lock)
            except OSError:
                continue
            live.append((i, p, driver.run_key(p.config)))
        if len(live) < 2:
            return []
        for _, p, _ in live:
            for name, size in checkpoint.remove_stale_temporaries(p.out_dir):
                say(f"{p.out_dir}: removed {name} ({size / 1e6:.1f} MB), a partial file of a run that was killed")
        runs = [(p.label, p.out_dir, key) for _, p, key in live]
        interrupts.running(*runs[0], *runs[1:])  # an interrupt reports on every job of the call
        try:
            _simulate([(p, key) for _, p, key in live], clock, cache)
        except KeyboardInterrupt:
            for _, p, key in live:
                say(interrupts.saved_message(p.label, p.out_dir, key))
            raise
    return [i for i, _, _ in live]


def _point(tree, j: int):
    return jax.tree.map(lambda a: a[j], tree)


def _simulate(live: list, clock: CompileClock, cache) -> None:
    configs = [p.config for p, _ in live]
    run = configs[0].run
    G, P = run.n_generations, len(live)
    prog = compute.build(configs[0], configs, store=cache is not None)
    label = f"{configs[0].world.name}/{configs[0].regime.name} [{P} jobs, one grid call]"
    progress = Progress(run.progress, G, 0, run.n_seeds * P, label)
    parts: list[list[dict]] = [[] for _ in live]
    failed: dict[int, Exception] = {}
    t0, t_first, compute_s = time.perf_counter(), 0.0, 0.0
    try:
        carry, start = prog.blank(), True
        if prog.compile(carry, start, check_only=True):
            progress.stage(f"compiling generation 0 and chunks of {prog.length} generations for {P} grid points "
                           "(one program)")
            prog.compile(carry, start)
        calls = list(compute.generations(0, G, prog.length)) or [(np.zeros(prog.length, np.int32), 0)]
        done = 0
        for gens, n in calls:
            t, c = time.perf_counter(), clock.seconds
            progress.stage(f"running generations {'0' if start else done + 1}..{done + n}")
            carry, rec0, recs = prog.step(carry, gens, start)
            recs = {k: v[:, :, :n] for k, v in driver.to_host(recs).items()}  # (P, S, n) per record
            rec0 = driver.to_host(rec0) if start else None
            carry_host = driver.to_host(carry)
            for j, (p, key) in enumerate(live):
                if j in failed:
                    continue
                mine = {k: v[j] for k, v in recs.items()}
                if start:
                    parts[j].append({k: v[j][:, None] for k, v in rec0.items()})
                state = _point(carry_host, j)
                error = driver.chunk_error(parts[j][0] if start else None, mine, state, done, n, p.out_dir)
                if error is not None:
                    failed[j] = error
                    continue
                if n:
                    parts[j].append(mine)
                with interrupts.critical():
                    checkpoint.save(p.out_dir, key, done + n, state, driver._concat(parts[j]))
            dt = time.perf_counter() - t - (clock.seconds - c)
            if start:
                t_first = time.perf_counter() - t0
            start = False
            compute_s += dt
            done += n
            progress.update(done, n, dt)
    finally:
        progress.close()
    timings = {"first_generation_seconds": t_first, "run_seconds": compute_s, "compute_seconds": compute_s}
    for j, (p, key) in enumerate(live):
        grid = {"points": P, "point": j,
                "note": "compile and compute seconds are those of the one grid call that ran every point"}
        if j in failed:
            _record(p, key, failed[j])
            continue
        try:
            _record(p, key, driver.finish(p.config, Path(p.out_dir), key, driver._concat(parts[j]), timings,
                                          prog.mesh, cache, clock, True, {"grid": grid}))
        except OSError as e:
            _record(p, key, e)

