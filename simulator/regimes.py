"""Regimes: how generation n's training set is built from the real data,
model n-1's samples and (where needed) the pool of earlier data.

Each regime is a pair of pure functions closed over its static config and the
world:

- ``init(key, truth, real, params0) -> state`` with ``real`` the generation-0
  (real) training set and ``params0`` the model fitted on it;
- ``step(key, state, truth, params, g) -> (train, state, stats)`` builds the
  training set of generation ``g >= 1`` from ``params`` = model g-1;
- ``first(real) -> train``: generation 0's training set, the real data laid out
  as the regime's later training sets are (``accumulate`` puts it in its pool),
  so every generation's fit sees the same shapes.

Shapes are static: the accumulated pool is preallocated for every generation
and masked by row weights.  Every regime splits its key the same way
(``sample, real, mask``), so ``token_edit`` with the ``full`` schedule draws
exactly the labels ``replace`` draws.

Sources: replace (Shumailov et al. 2024; Dohmatob et al. 2024), accumulate
(Gerstgrasser et al. 2024, arXiv 2404.01413), accumulate_subsample (Kazdan et
al. 2024, arXiv 2410.16713, §3), mix with fresh real data (He, Xu & Cheng 2025,
arXiv 2502.18049) or with original real data kept (Shumailov et al. 2024, "10%
of the original data preserved"), token_edit (Zhu et al. 2024, arXiv
2412.14689, §4 and Alg. 1).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator import rows as R
from collapse_sim.simulator.world import World

REGIMES = ("replace", "mix", "accumulate", "accumulate_subsample", "token_edit")
REAL_SOURCES = ("original", "fresh")
EDIT_BASES = ("previous", "original")
EDIT_SCHEDULES = ("bernoulli", "disjoint", "fixed", "full")
EDIT_PRIORS = ("previous", "generation0")


@dataclasses.dataclass
class RegimeConfig:
    """How each generation's training set is built.

    name: one of ``REGIMES``.
    real_fraction: ``mix`` only; share p of the T training rows that are real
        (m = round(p T) rows), the rest are synthetic from model n-1.
    real_source: ``mix`` only; ``original`` keeps rows of the original real
        data (Shumailov et al.), ``fresh`` draws new real data every generation
        (He, Xu & Cheng).  On a fixed design, fresh real data means fresh real
        labels on the chosen rows.
    resample_real: ``mix`` with ``original`` only; draw a new subset of the
        original rows every generation (True, Shumailov) or keep one subset for
        the whole run (False, equal to ToEdit with a fixed mask).
    base, schedule, q, k, eta, prior: ``token_edit`` only.  ``base``: edit the
        previous generation's data (``previous``, ToEdit Thm 1) or the original
        real data afresh (``original``).  ``schedule`` picks the rows the
        previous model may rewrite each round: ``bernoulli`` (each row with
        probability q), ``disjoint`` (k rows in round 1, then disjoint sets
        shrinking by a factor eta, as ToEdit Thm 2 assumes; k_i =
        floor(k eta^(i-1)), empty once every row was used), ``fixed`` (the same
        k rows every round) or ``full`` (every row: the same as ``replace``).
        ``prior``: the model that rewrites, model n-1 (``previous``, ToEdit's
        theory) or the generation-0 model (``generation0``, ToEdit's fixed prior).
    """

    name: str = "replace"
    real_fraction: float = 0.1
    real_source: str = "original"
    resample_real: bool = True
    base: str = "previous"
    schedule: str = "bernoulli"
    q: float = 0.2
    k: int = 10
    eta: float = 0.5
    prior: str = "previous"

    def __post_init__(self):
        validate(self)


def _allowed(field: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"regime.{field}={value!r} is not known; allowed: {', '.join(allowed)}")


def validate(cfg: RegimeConfig, n_rows: int | None = None) -> None:
    """Raise ValueError naming the offending value and what is allowed."""
    _allowed("name", cfg.name, REGIMES)
    if cfg.name == "mix":
        _allowed("real_source", cfg.real_source, REAL_SOURCES)
        p = cfg.real_fraction
        if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0 and math.isfinite(p)):
            raise ValueError(f"regime.real_fraction={p!r} must be a number in [0, 1]")
    if cfg.name == "token_edit":
        _allowed("base", cfg.base, EDIT_BASES)
        _allowed("schedule", cfg.schedule, EDIT_SCHEDULES)
        _allowed("prior", cfg.prior, EDIT_PRIORS)
        if cfg.schedule == "bernoulli" and not (0.0 <= cfg.q <= 1.0):
            raise ValueError(f"regime.q={cfg.q!r} must be a probability in [0, 1]")
        if cfg.schedule in ("disjoint", "fixed"):
            if int(cfg.k) != cfg.k or cfg.k < 0:
                raise ValueError(f"regime.k={cfg.k!r} must be a whole number of rows >= 0")
            if n_rows is not None and cfg.k > n_rows:
                raise ValueError(f"regime.k={cfg.k} exceeds the {n_rows} rows of a training set (k <= T)")
        if cfg.schedule == "disjoint" and not (0.0 < cfg.eta < 1.0):
            raise ValueError(f"regime.eta={cfg.eta!r} must lie in the open interval (0, 1)")


def _same(real):
    return real


class Regime(NamedTuple):
    name: str
    init: Callable[..., Any]
    step: Callable[..., tuple]
    first: Callable[[dict], dict] = _same


def disjoint_counts(k1: int, eta: float, n_rows: int, n_generations: int) -> np.ndarray:
    """Rows edited in each round g = 0..G (round 0 edits nothing): floor(k1 eta^(g-1)),
    truncated so that the sets stay disjoint within the n_rows rows."""
    counts = np.zeros(n_generations + 1, dtype=np.int64)
    used = 0
    for g in range(1, n_generations + 1):
        c = min(int(math.floor(k1 * eta ** (g - 1) + 1e-12)), n_rows - used)
        counts[g] = c
        used += c
    return counts


def _keys(key):
    k_sample, k_real, k_mask = jax.random.split(key, 3)
    return k_sample, k_real, k_mask


def make_regime(cfg: RegimeConfig, world: World, n_generations: int) -> Regime:
    """Build the regime's (init, step) pair for a world and a run length."""
    validate(cfg, world.n_rows)
    T = world.n_rows
    name = cfg.name

    if name == "replace":

        def init(key, truth, real, params0):
            return ()

        def step(key, state, truth, params, g):
            k_sample, _, _ = _keys(key)
            return world.sample(k_sample, truth, params, g), state, {}

        return Regime(name, init, step)

    if name == "mix":
        m = int(round(cfg.real_fraction * T))
        fresh = cfg.real_source == "fresh"
        redraw = fresh or cfg.resample_real

        def init(key, truth, real, params0):
            return {"real": real, "mask": R.random_subset_mask(key, T, m)}

        def step(key, state, truth, params, g):
            k_sample, k_real, k_mask = _keys(key)
            synthetic = world.sample(k_sample, truth, params, g)
            real = world.real(k_real, truth, g) if fresh else state["real"]
            mask = R.random_subset_mask(k_mask, T, m) if redraw else state["mask"]
            return R.where(mask, real, synthetic), state, {"real_share": jnp.mean(mask)}

        return Regime(name, init, step)

    if name in ("accumulate", "accumulate_subsample"):
        capacity = (n_generations + 1) * T
        subsample = name == "accumulate_subsample"

        def pooled(real):
            return R.write(R.empty_pool(real, capacity), real, 0)

        def init(key, truth, real, params0):
            return pooled(real)

        def step(key, pool, truth, params, g):
            k_sample, _, k_mask = _keys(key)
            pool = R.write(pool, world.sample(k_sample, truth, params, g), g * T)
            train = R.subsample(k_mask, pool, T) if subsample else pool
            return train, pool, {"pool_rows": jnp.sum(pool["weight"] > 0).astype(jnp.float32)}

        return Regime(name, init, step, pooled if not subsample else _same)

    if name == "token_edit":
        if world.edit is None:
            raise ValueError(f"regime.name=token_edit needs a world that can edit its data; world {world.name!r} cannot")
        counts = disjoint_counts(cfg.k, cfg.eta, T, n_generations)
        offsets = jnp.asarray(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        counts_j = jnp.asarray(counts)
        schedule, q, k = cfg.schedule, cfg.q, int(cfg.k)
        from_original = cfg.base == "original"
        fixed_prior = cfg.prior == "generation0"

        def eligible(k_mask, rank, g):
            if schedule == "bernoulli":
                return jax.random.uniform(k_mask, (T,)) < q
            if schedule == "full":
                return jnp.ones((T,), bool)
            if schedule == "fixed":
                return rank < k
            return (rank >= offsets[g]) & (rank < offsets[g] + counts_j[g])

        def init(key, truth, real, params0):
            rank = jnp.argsort(jax.random.permutation(key, T))
            state = {"real": real, "current": real, "rank": rank}
            return state | ({"prior": params0} if fixed_prior else {})

        def step(key, state, truth, params, g):
            k_sample, _, k_mask = _keys(key)
            base = state["real"] if from_original else state["current"]
            mask = eligible(k_mask, state["rank"], g)
            prior = state["prior"] if fixed_prior else params
            edited, stats = world.edit(k_sample, truth, prior, base, mask)
            stats = {"eligible_share": jnp.mean(mask), **stats}
            return edited, {**state, "current": edited}, stats

        return Regime(name, init, step)

    raise AssertionError(name)  # unreachable: validate() rejects unknown names
