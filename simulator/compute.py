"""The compute path every run takes: one compiled program per run, its traced numbers
as arguments, seeds in batches, grid points vmapped beside the seeds.

The saved driver (``driver.py``) and the in-memory ``simulate`` both build their
program here, so a seed's numbers do not depend on which one ran it.

- One program: ``Generation.run`` (``loop.py``) fits generation 0 when asked and then
  runs a chunk of generations, so generation 0 and every later chunk (the last one
  padded with skipped generations) are one compiled program.
- Traced numbers (``simulator/traced.py``): the fields a world or regime config lists
  in ``TRACED`` are arguments of the program, so runs that differ only in them share
  it.  Programs are cached in this process by the configs' skeletons (traced fields
  blanked), so a sweep over such fields compiles once; the program store
  (``program_store.py``, with JAX's persistent cache) makes a rerun compile nothing and
  trace nothing.
- A grid (``build(exp, points)``): experiments with one skeleton run as one call, the
  grid axis vmapped outside the seeds' (PureJaxRL's vmap over hyperparameters); points
  that differ in the regression world's T too, padded to the largest (``padding.py``).

Keys: seed s of a point gets ``fold_in(root, s)`` (``loop.seed_keys``) with root
``key(run.seed)``: common random numbers, every point of a grid (and a separate run of
it) sees the same draws.  With ``run.common_random_numbers=false`` the root is
``fold_in(key(run.seed), h)``, h a 32-bit hash of the point's traced numbers, so points
draw apart and a separate run still equals its grid point.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from collapse_sim.simulator import normal, padding, program_store, traced
from collapse_sim.simulator.loop import make_generation, seed_keys, zeros_like
from collapse_sim.simulator.regimes import make_regime
from collapse_sim.simulator.sharding import padded_seed_count, seed_mesh
from collapse_sim.simulator.worlds import make_world, world_module

# Run fields that change neither the program nor its inputs' shapes (the seed and the
# common-random-numbers switch only change the keys passed in).
_RUN_ARGUMENTS = ("seed", "common_random_numbers", "theory_designs", "figure", "out_dir", "progress", "resume",
                  "experiment", "compile_cache")
_CACHE_SIZE = 8
# compile_effort=fast: LLVM's optimisations off (most of a small run's wall time is LLVM
# optimising the threefry kernels of its random draws).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
CLOSED_FORM_WORLDS = ("regression", "gaussian", "kde", "categorical")
AUTO_FAST_SEED_GENERATIONS = 65_536


def compile_options(exp) -> dict:
    """XLA options of ``run.compile_effort`` (``auto``: fast for a closed-form world at up to
    AUTO_FAST_SEED_GENERATIONS seed-generations a point, so a grid point and a separate run
    of it compile alike)."""
    effort = getattr(exp.run, "compile_effort", "full")
    if effort == "auto":
        size = exp.run.n_seeds * (exp.run.n_generations + 1)
        fast = exp.world.name in CLOSED_FORM_WORLDS and size <= AUTO_FAST_SEED_GENERATIONS
        effort = "fast" if fast else "full"
    return dict(FAST_COMPILE) if effort == "fast" else {}


def set_precision(precision: str) -> None:
    """float64 needs JAX's x64 mode; it must be set before any array is made."""
    jax.config.update("jax_enable_x64", precision == "float64")


def skeleton(exp, blank_rows: bool = False) -> str:
    """What decides the compiled program: world and regime with their traced numbers
    blanked, and the run settings that set shapes (``blank_rows``: the world's rows too)."""
    run = {k: v for k, v in vars(exp.run).items() if k not in _RUN_ARGUMENTS}
    world = traced.skeleton(exp.world)
    if blank_rows:
        world["T"] = None
    return traced.key_of({"world": world, "regime": traced.skeleton(exp.regime), "run": run})


def group_key(exp) -> str:
    """Experiments with one group key run as one grid call: one skeleton, or, where a grid
    may be padded to its largest point's rows (``padding.py``), one skeleton but for T."""
    return skeleton(exp, blank_rows=padding.paddable(exp))


def point_numbers(exp) -> dict:
    return {"world": traced.numbers(exp.world), "regime": traced.numbers(exp.regime)}


def root_key(exp) -> jax.Array:
    """The point's root key: ``key(run.seed)``, with the hash of its traced numbers folded in
    when ``run.common_random_numbers`` is off."""
    key = jax.random.key(exp.run.seed)
    if getattr(exp.run, "common_random_numbers", True):
        return key
    from collapse_sim.simulator.checkpoint import config_hash

    return jax.random.fold_in(key, np.uint32(int(config_hash(point_numbers(exp))[:8], 16)))


class _Compiled:
    """The traced function of one skeleton and its compiled executables, by argument shapes."""

    def __init__(self, template, grid: bool, world_static, padded: bool = False):
        G = template.run.n_generations
        self.world = world_static

        def parts(nums):
            world = world_static
            if padded:  # each point's own rows among the template's (padding.py)
                world = world_module(template.world.name).make_world(
                    traced.with_numbers(template.world, nums["world"]), rows=nums["rows"]["n"])
            elif world is None:
                world = make_world(traced.with_numbers(template.world, nums["world"]))
            regime = make_regime(traced.with_numbers(template.regime, nums["regime"]), world, G)
            return make_generation(world, regime)

        def per_seed(nums, carry, key, gens, start):
            return parts(nums).run(carry, key, gens, start)

        def first(nums, key):
            return parts(nums).first(key)[0]

        fn = jax.vmap(per_seed, in_axes=(None, 0, 0, None, None))
        first = jax.vmap(first, in_axes=(None, 0))
        if grid:
            fn = jax.vmap(fn, in_axes=(0, 0, 0, None, None))
            first = jax.vmap(first, in_axes=(0, 0))
        self.fn = jax.jit(fn, donate_argnums=1)
        self.first = first
        self.executables: dict[str, Any] = {}
        self.carry_shapes: dict[str, Any] = {}  # the carried state's shapes, by argument shapes


_PROGRAMS: collections.OrderedDict[str, _Compiled] = collections.OrderedDict()


_PROGRAMS_LOCK = threading.Lock()  # programs may be built on several threads (sweep.precompile)


def _cached(key: str, template, grid: bool, padded: bool = False) -> _Compiled:
    with _PROGRAMS_LOCK:
        if key in _PROGRAMS:
            _PROGRAMS.move_to_end(key)
            return _PROGRAMS[key]
    static = not traced.traced_fields(template.world) and not padded
    world_static = make_world(template.world) if static else None
    with _PROGRAMS_LOCK:
        out = _PROGRAMS.setdefault(key, _Compiled(template, grid, world_static, padded))
        while len(_PROGRAMS) > _CACHE_SIZE:
            _PROGRAMS.popitem(last=False)
    return out


class Program(NamedTuple):
    """``step(carry, gens, start) -> (carry, record0, records)`` runs every seed (of every
    grid point) through one compiled call per seed batch: generation 0 first when ``start``
    (``carry`` then a placeholder, :attr:`blank`), then the generations in ``gens`` (an int
    array of ``length`` entries; entries < 1 are skipped).  Leading axes: seeds (S), or
    grid points then seeds (P, S).  ``compile(carry, start)`` compiles it now (True) or finds it
    compiled in this process (False) for a call on ``carry``; ``check_only=True`` only says
    which."""

    step: Callable
    blank: Callable
    carry_like: Any
    keys: jax.Array
    n_pad: int
    length: int
    compile: Callable
    mesh: object
    n_points: int | None


def chunk_length(run) -> int:
    """Generations per compiled call (0 for a run of generation 0 only)."""
    return min(run.chunk_generations or run.n_generations, run.n_generations)


def check(exp, world=None):
    """Build the world and regime of ``exp`` from its concrete config (their start-of-run
    checks raise here, before anything is compiled); returns the world."""
    world = world if world is not None else make_world(exp.world)
    make_regime(exp.regime, world, exp.run.n_generations)
    return world


def _shapes(tree) -> str:
    return traced.key_of(jax.tree.map(lambda a: (a.shape, str(a.dtype)), tree))


def build(exp, points=None, store: bool = False) -> Program:
    """The program of ``exp``, or of the grid ``points`` (experiments whose skeleton is
    ``exp``'s; ``exp`` is then the first of them).  ``store``: keep compiled programs on disk
    and take them from there (``simulator/program_store.py``: a rerun neither traces nor
    compiles)."""
    run = exp.run
    set_precision(run.precision)
    grid = points is not None
    exps = list(points) if grid else [exp]
    rows = padding.sizes(exps) if grid else None  # each point's rows, when a padded grid runs them
    if rows is not None:
        exp = padding.template(exps)
    same = group_key if rows is not None else skeleton
    for e in exps:
        if same(e) != same(exp):
            raise ValueError("the points of a grid must differ only in traced numbers (simulator/traced.py) "
                             f"and, where padding.py pads them, in world.T; {e.world} / {e.regime} / {e.run} does not")
    prog_key = f"{skeleton(exp)}|grid={grid}" + ("|padded" if rows is not None else "")
    prog = _cached(prog_key, exp, grid, padded=rows is not None)
    for e in exps:
        check(e, prog.world)
    dtype = jnp.result_type(float)
    nums = [traced.as_arrays(point_numbers(e) | ({"rows": {"n": n}} if rows is not None else {}), dtype)
            for e, n in zip(exps, rows or [None] * len(exps))]
    nums = jax.tree.map(lambda *xs: jnp.stack(xs), *nums) if grid else nums[0]
    mesh = seed_mesh()
    batch = padded_seed_count(min(run.seed_batch or run.n_seeds, run.n_seeds), mesh.size)
    n_pad = padded_seed_count(run.n_seeds, batch)
    keys = jnp.stack([seed_keys(root_key(e), np.arange(n_pad)) for e in exps]) if grid else \
        seed_keys(root_key(exp), np.arange(n_pad))
    axis = 1 if grid else 0
    sharding = NamedSharding(mesh, PartitionSpec(*([None] * axis), "seeds"))
    keys = jax.device_put(keys, sharding)
    inputs = _shapes((nums, keys))
    if inputs not in prog.carry_shapes:
        def carry_shapes():
            return jax.eval_shape(prog.first, nums, keys)

        prog.carry_shapes[inputs] = (program_store.shapes(f"{prog_key}|{inputs}", carry_shapes) if store
                                     else carry_shapes())
    carry_like = prog.carry_shapes[inputs]
    length = chunk_length(run)
    options = compile_options(exp)

    def slices(tree):
        if n_pad == batch:
            return [tree]
        return [jax.tree.map(lambda a: jax.lax.slice_in_dim(a, i, i + batch, axis=axis), tree)
                for i in range(0, n_pad, batch)]

    def args_of(carry, gens, start):
        gens = jnp.asarray(gens, jnp.int32)
        start = jnp.asarray(start, bool)
        # one placement for every call (seed axis over the devices), so one executable serves all
        return [(nums, jax.device_put(c, sharding), jax.device_put(k, sharding), gens, start)
                for c, k in zip(slices(carry), slices(keys))]

    def executable(args):
        shapes = traced.key_of([options, _shapes(args)])
        exe = prog.executables.get(shapes)
        if exe is None and store:
            exe = program_store.load(f"{prog_key}|{shapes}")
            if exe is not None:
                prog.executables[shapes] = exe
        return exe, shapes

    def compiled(args, shapes):
        with normal.xla_erfinv(bool(options)):  # LLVM's optimisations off: XLA's own normal draws
            lowered = prog.fn.lower(*args)
        # only the program's own compile inside: a small program that tracing compiles may be
        # served by JAX's cache, which says nothing of this one
        with program_store.compiling() if store else contextlib.nullcontext([]) as fresh:
            exe = prog.executables[shapes] = lowered.compile(options)
        if store and all(fresh):
            program_store.save(f"{prog_key}|{shapes}", exe)
        return exe

    def blank():
        return jax.device_put(zeros_like(carry_like), sharding)

    def compile_now(carry, start, check_only: bool = False) -> bool:
        """Compile the program for a call on ``carry`` now (True), or find it compiled (False);
        ``check_only``: only say whether it would compile."""
        args = args_of(carry, np.zeros(length, np.int32), start)[0]
        exe, shapes = executable(args)
        if exe is not None or check_only:
            return exe is None
        compiled(args, shapes)
        return True

    def step(carry, gens, start):
        outs = []
        for args in args_of(carry, gens, start):
            exe, shapes = executable(args)
            if exe is None:
                exe = compiled(args, shapes)
            outs.append(exe(*args))
        if len(outs) == 1:
            return outs[0]
        return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=axis), *outs)

    return Program(step, blank, carry_like, keys, n_pad, length, compile_now, mesh, len(exps) if grid else None)


def to_host(tree):
    """Numpy copies of (possibly multi-host sharded) arrays, gathered on every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def generations(done: int, n_generations: int, length: int):
    """The int arrays of generation indices each call runs, from ``done + 1`` on, each padded
    with zeros (skipped generations) to ``length`` entries."""
    while done < n_generations:
        n = min(length, n_generations - done)
        gens = np.zeros(length, np.int32)
        gens[:n] = np.arange(done + 1, done + n + 1)
        yield gens, n
        done += n


def run_all(prog: Program, n_generations: int) -> dict:
    """Every generation of a fresh run, nothing written: records (…, G+1) on the host."""
    carry, start, parts = prog.blank(), True, []
    axis = 2 if prog.n_points is not None else 1  # the generation axis, after (points,) seeds
    calls = list(generations(0, n_generations, prog.length)) or [(np.zeros(0, np.int32), 0)]
    for gens, n in calls:
        carry, rec0, recs = prog.step(carry, gens, start)
        if start:  # a record of several values (a vector per seed) keeps them after the generation axis
            parts.append({k: np.expand_dims(v, axis) for k, v in to_host(rec0).items()})
            start = False
        if n:
            parts.append({k: np.take(v, np.arange(n), axis=axis) for k, v in to_host(recs).items()})
    return {k: np.concatenate([p[k] for p in parts], axis=axis) for k in parts[0]}


def attach_theory(exp, records) -> tuple[dict, dict]:
    """(records of the run's seeds with its theory curves as ``theory/<name>``, meta with the
    resolved config, the theory's description and the precision): what ``simulate`` returns
    and the driver saves."""
    from collapse_sim.experiments.predictions import predict
    from collapse_sim.simulator.driver import resolved

    records = {k: v[: exp.run.n_seeds] for k, v in records.items()}
    theory = predict(exp.world, exp.regime, exp.run)
    for name, curve in theory.pop("curves", {}).items():
        records[f"theory/{name}"] = np.asarray(curve)
    return records, {"config": resolved(exp), "theory": theory, "precision": exp.run.precision}


def simulate_in_memory(exp) -> tuple[dict, dict]:
    """(records with theory curves, meta) of a whole run, nothing written."""
    prog = build(exp)
    return attach_theory(exp, run_all(prog, exp.run.n_generations))


def simulate_grid(exps: list) -> list[tuple[dict, dict]]:
    """:func:`simulate_in_memory` of every experiment, one compiled call per group of
    experiments that share a skeleton (their grid vmapped beside the seeds)."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(exps):
        groups.setdefault(group_key(e), []).append(i)
    out: list = [None] * len(exps)
    for members in groups.values():
        points = [exps[i] for i in members]
        records = run_all(build(points[0], points), points[0].run.n_generations)
        for j, i in enumerate(members):
            out[i] = attach_theory(exps[i], {k: v[j] for k, v in records.items()})
    return out
