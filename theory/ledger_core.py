"""The theory ledger's parts: what a row is, how its Monte Carlo is run and scored.

A *formula* (``Formula``) is one closed form of ``theory/`` checked at one setting: its status, its
source, the theory functions it exercises, the engine run it reads (``Run``: a world config, a regime
config, G generations, S seeds) and a ``check`` that turns that run's records into a ``Check``
(theory value and its standard error, Monte Carlo mean and its standard error).  The runs of one
world are traced into one ``jax.jit`` program (``compile_world``), so the ledger compiles once per world
and calls it once.

z = (MC − theory)/√(SE_mc² + SE_theory²).  Flags: ``z>4`` for an exact, exact-one-step or limit row
with |z| > 4; a bound is one-sided (``above bound`` when z > 4, z the excess over the bound, and
``MC<=bound`` when the MC mean lies below it); a paper claim, a paper's bound (one-sided) or an
approximation gets ``approx`` when it is off by more than 4 SE, never counted as a failure of the code.
Axis letters: S seeds, G generations (records have G+1 entries per seed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import zlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

STATUSES = ("exact", "exact one step", "limit", "bound", "paper claim", "paper bound", "approx")
Z_FLAG = 4.0


@dataclasses.dataclass(frozen=True)
class Run:
    """One engine run: ``make_simulate(world, regime, G)`` over S seeds; ``designs``: sampled designs
    for theory that is exact in the noise but averaged over designs (regression)."""

    world: Any
    regime: Any
    G: int
    S: int
    setting: str
    designs: int = 0

    def theory(self, seed: int = 123) -> dict:
        """The curves ``experiments.predictions.predict`` attaches to this run (one wiring for all)."""
        from collapse_sim.experiments.predictions import predict

        return predict(self.world, self.regime, SimpleNamespace(n_generations=self.G, seed=seed,
                                                                theory_designs=max(self.designs, 2)))


@dataclasses.dataclass(frozen=True)
class Check:
    """A row's numbers: theory value and its SE (designs averaged, else 0), MC mean and its SE."""

    theory: float
    theory_se: float
    mc: float
    mc_se: float
    n_seeds: int


@dataclasses.dataclass(frozen=True)
class Formula:
    """One ledger row.  ``check(rec, theory)`` gets the run's records (numpy, (S, G+1, ...)) and a
    callable returning the run's ``predict`` dict; ``run`` is None where the engine has no
    counterpart (``note`` says why; the row then has no z)."""

    id: str
    formula: str
    status: str
    source: str
    functions: tuple
    run: str | None = None
    check: Callable | None = None
    at: str = ""
    note: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"formula {self.id}: status={self.status!r} is not known; allowed: {', '.join(STATUSES)}")
        if (self.run is None) != (self.check is None):
            raise ValueError(f"formula {self.id}: give both run and check, or neither (a theory-only row)")


@dataclasses.dataclass(frozen=True)
class WorldLedger:
    """A world's engine runs (by id) and its rows, in table order."""

    name: str
    runs: dict
    formulas: tuple


@dataclasses.dataclass(frozen=True)
class Result:
    world: str
    formula: Formula
    setting: str
    check: Check | None
    z: float | None
    flag: str

    @property
    def flagged(self) -> bool:
        return self.flag in ("z>4", "above bound")


# --------------------------------------------------------------------------- scoring


def z_score(c: Check) -> float:
    se = math.hypot(c.mc_se, c.theory_se)
    diff = c.mc - c.theory
    if se == 0 or not math.isfinite(se):
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / se


def flag(z: float | None, status: str) -> str:
    """The flag of a row (module docstring); bounds say which side of the bound the MC lies."""
    if z is None:
        return ""
    if status == "bound":
        return "above bound" if z > Z_FLAG else ("MC<=bound" if z <= 0 else "")
    if status == "paper bound":
        return "approx" if z > Z_FLAG else ("MC<=bound" if z <= 0 else "")
    if status in ("paper claim", "approx"):
        return "approx" if abs(z) > Z_FLAG else ""
    return "z>4" if abs(z) > Z_FLAG else ""


def mean_se(samples_S, resolution: float = 0.0) -> tuple[float, float]:
    """Mean over seeds and its standard error; ``resolution`` in quadrature (an indicator whose seeds
    all agree has SE 0 while its mean moves in steps of 1/S)."""
    x = np.asarray(samples_S, float).ravel()
    se = x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else math.inf
    return float(x.mean()), float(math.hypot(se, resolution))


def median_se(samples_S) -> tuple[float, float]:
    """Sample median and its asymptotic SE √(p(1−p)/S)/f, f from the quantile spacing at 0.5 ± 0.02."""
    x = np.asarray(samples_S, float).ravel()
    lo, hi = np.quantile(x, [0.48, 0.52])
    return float(np.median(x)), float((hi - lo) / 0.04 * 0.5 / math.sqrt(x.size))


def at_g(metric, g: int, theory: Callable, theory_se: Callable | None = None, resolution: float = 0.0) -> Callable:
    """A check of record ``metric`` at generation g (``metric`` may be a function of the records
    giving (S, G+1) per-seed values) against ``theory(th)``, ``th()`` the run's ``predict`` dict."""

    def check(rec, th):
        x = (metric(rec) if callable(metric) else rec[metric])[:, g]
        mc, se = mean_se(x, resolution)
        th_se = float(theory_se(th)) if theory_se is not None else 0.0
        return Check(float(theory(th)), th_se, mc, se, x.shape[0])

    return check


def curve(metric: str, g: int, name: str | None = None, resolution: float = 0.0) -> Callable:
    """The predicted curve ``name`` (default: the record's own name) against record ``metric`` at g;
    a curve with a ``<name>_se`` companion (designs averaged) carries its SE."""
    name = name or metric

    def value(th):
        return th()["curves"][name][g]

    def se(th):
        c = th()["curves"]
        return c[f"{name}_se"][g] if f"{name}_se" in c else 0.0

    return at_g(metric, g, value, se, resolution)


def conditional(metric, g: int, expect: Callable) -> Callable:
    """A one-step check: record ``metric`` at generation g against ``expect(rec)``, its per-seed
    conditional expectation given model g−1 (exact at any sample size).  Theory is the seeds' mean of
    the conditional expectations; the SE is that of the paired residuals x − E[x | model g−1].
    ``metric`` is a record's name or a function of the records giving (S, G+1) values."""

    def check(rec, th):
        x = (metric(rec) if callable(metric) else rec[metric])[:, g]
        want = np.asarray(expect(rec), float)
        _, se = mean_se(x - want)
        return Check(float(want.mean()), 0.0, float(x.mean()), se, x.shape[0])

    return check


def median_at(metric: str, g: int, name: str) -> Callable:
    """The seeds' median of ``metric`` at g against the predicted median curve ``name``."""

    def check(rec, th):
        x = rec[metric][:, g]
        mc, se = median_se(x)
        return Check(float(th()["curves"][name][g]), 0.0, mc, se, x.shape[0])

    return check


# --------------------------------------------------------------------------- the engine


def run_key(root, run_id: str):
    """Each run's root key: fold_in(key(seed), crc32(run id)), independent of the registry's order."""
    import jax

    return jax.random.fold_in(root, zlib.crc32(run_id.encode()) & 0x7FFFFFFF)


# XLA's CPU backend at LLVM -O0: the ledger's programs spend far longer compiling than running, and
# this halves the compile time at the cost of a slower run (measured: the same numbers to within 1e-13).
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@contextlib.contextmanager
def float64():
    """Run a block with JAX's x64 mode on (the ledger's Monte Carlo is float64), restoring it after."""
    import jax

    was = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", was)


@dataclasses.dataclass
class Program:
    """A world's runs as one compiled program with its seed keys."""

    compiled: Any
    keys: dict
    compile_s: float

    def __call__(self) -> tuple[dict, float]:
        """({run id: records (S, G+1, ...) numpy}, seconds) of one call."""
        import jax

        t0 = time.perf_counter()
        out = jax.block_until_ready(self.compiled(self.keys))
        records = {rid: {k: np.asarray(v) for k, v in rec.items()} for rid, rec in out.items()}
        return records, time.perf_counter() - t0


def compile_world(ledger: WorldLedger, seed: int = 0, max_seeds: int | None = None) -> Program:
    """Every run of the world traced into one jitted program (each body is
    ``simulator.loop.make_simulate``'s) and compiled once.  Call it inside ``float64()``.
    ``max_seeds`` caps every run's seeds (a quick look; the ledger's numbers use the runs' own S)."""
    import jax

    from collapse_sim.simulator.loop import make_simulate, seed_keys
    from collapse_sim.simulator.regimes import make_regime
    from collapse_sim.simulator.worlds import make_world

    t0 = time.perf_counter()
    sims, keys = {}, {}
    root = jax.random.key(seed)
    for rid, r in ledger.runs.items():
        world = make_world(r.world)
        sims[rid] = make_simulate(world, make_regime(r.regime, world, r.G), r.G)
        n = r.S if max_seeds is None else min(r.S, max_seeds)
        keys[rid] = seed_keys(run_key(root, rid), range(n))
    program = jax.jit(lambda keys_by_run: {rid: sims[rid](keys_by_run[rid]) for rid in sims})
    compiled = program.lower(keys).compile(FAST_COMPILE if jax.default_backend() == "cpu" else None)
    return Program(compiled, keys, time.perf_counter() - t0)


def run_world(ledger: WorldLedger, seed: int = 0, max_seeds: int | None = None) -> tuple[dict, dict]:
    """(records by run id, {"compile": s, "run": s}): ``compile_world`` then one call, in float64."""
    with float64():
        program = compile_world(ledger, seed, max_seeds)
        records, run_s = program()
    return records, {"compile": program.compile_s, "run": run_s}


def evaluate(ledger: WorldLedger, records: dict, theory_seed: int = 123) -> list[Result]:
    """One Result per formula of the world, from its runs' records (theory computed once per run)."""
    cache: dict = {}

    def theory_of(rid):
        if rid not in cache:
            cache[rid] = ledger.runs[rid].theory(theory_seed)
        return cache[rid]

    out = []
    for f in ledger.formulas:
        if f.run is None:
            out.append(Result(ledger.name, f, f.at, None, None, ""))
            continue
        run = ledger.runs[f.run]
        c = f.check(records[f.run], lambda rid=f.run: theory_of(rid))
        z = z_score(c)
        setting = f"{run.setting}; {f.at}" if f.at else run.setting
        out.append(Result(ledger.name, f, setting, c, z, flag(z, f.status)))
    return out

