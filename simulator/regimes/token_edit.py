"""``token_edit``: the previous data with only the rows chosen by a schedule
rewritten by a prior model (ToEdit: Zhu et al. 2024, arXiv 2412.14689, §4 and
Alg. 1; the exact error of its linear model is in ``theory/token_edit.py`` and
``theory/toedit_audit.md``)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator import rows as R
from collapse_sim.simulator.regimes.regime import (
    Regime,
    RegimeConfig,
    check_choice,
    check_count,
    check_real,
    split_keys,
)
from collapse_sim.simulator.world import World

EDIT_SOURCES = ("previous", "original")
SCHEDULES = ("bernoulli", "disjoint", "fixed", "full")
PRIORS = ("previous", "generation0", "base")


@dataclasses.dataclass
class TokenEditConfig(RegimeConfig):
    """edit_source: the data each round edits, the previous generation's
    (``previous``, ToEdit Thm 1) or the original real data afresh (``original``).
    schedule: the rows the prior may rewrite each round: ``bernoulli`` (each row
    with probability q), ``disjoint`` (k rows in round 1, then disjoint sets
    shrinking by a factor eta, as ToEdit Thm 2 assumes: k_i = floor(k eta^(i-1)),
    empty once every row was used), ``fixed`` (the same k rows every round) or
    ``full`` (every row: the same numbers as ``replace``).
    prior: the model that rewrites, model n-1 (``previous``, ToEdit's theory), the
    generation-0 model (``generation0``, ToEdit's fixed prior) or the world's
    pretrained base model (``base``, ``truth["base"]``: ToEdit's own setting, a
    pretrained model scoring the text; only a world that has one, e.g.
    world=transformer with world.init=pretrained).
    q: ``bernoulli`` only.  k: ``disjoint`` and ``fixed`` only.  eta: ``disjoint`` only."""

    NAME = "token_edit"
    name: str = "token_edit"
    edit_source: str = "previous"
    schedule: str = "bernoulli"
    q: float = 0.2
    k: int = 10
    eta: float = 0.5
    prior: str = "previous"

    TRACED = ("q",)  # an argument of the compiled run (simulator/traced.py); k and eta set the schedule's counts

    def validate(self) -> None:
        check_choice("edit_source", self.edit_source, EDIT_SOURCES)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("prior", self.prior, PRIORS)
        check_real("q", self.q, 0.0, 1.0)
        check_count("k", self.k)
        check_real("eta", self.eta, 0.0, 1.0, lo_open=True, hi_open=True)

    def numbers(self) -> dict:
        out = dataclasses.asdict(self)
        if self.schedule != "bernoulli":
            del out["q"]
        if self.schedule not in ("disjoint", "fixed"):
            del out["k"]
        if self.schedule != "disjoint":
            del out["eta"]
        return out


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


def has_base(world: World) -> bool:
    """Whether the world's truth holds a base model (``truth["base"]``), read from
    the shapes of ``world.init`` alone (nothing is computed)."""
    truth = jax.eval_shape(world.init, jax.random.key(0))
    return isinstance(truth, dict) and "base" in truth


def make(cfg: TokenEditConfig, world: World, n_generations: int) -> Regime:
    T = world.n_rows
    if world.edit is None:
        raise ValueError(f"regime=token_edit needs a world that can edit its data; world {world.name!r} cannot")
    if cfg.prior == "base" and not has_base(world):
        allowed = ", ".join(p for p in PRIORS if p != "base")
        raise ValueError(
            f"regime.prior='base' needs a world with a pretrained base model (world=transformer with "
            f"world.init=pretrained); world {world.name!r} has none: allowed here are regime.prior={allowed}"
        )
    if cfg.schedule in ("disjoint", "fixed") and cfg.k > T:
        raise ValueError(f"regime.k={cfg.k} exceeds the {T} rows of a training set (k <= T)")
    counts = disjoint_counts(cfg.k, cfg.eta, T, n_generations)
    offsets = jnp.asarray(np.concatenate([[0], np.cumsum(counts)[:-1]]))
    counts_j = jnp.asarray(counts)
    schedule, q, k = cfg.schedule, cfg.q, int(cfg.k)
    from_original = cfg.edit_source == "original"
    fixed_prior = cfg.prior == "generation0"
    base_prior = cfg.prior == "base"

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
        real = R.without_fixed(real, world)  # a fixed design's x is the truth's
        state = {"real": real, "current": real, "rank": rank}
        return state | ({"prior": params0} if fixed_prior else {})

    def step(key, state, truth, params, g):
        k_sample, _, k_mask = split_keys(key)
        data = R.with_fixed(state["real"] if from_original else state["current"], world, truth)
        mask = eligible(k_mask, state["rank"], g)
        prior = truth["base"] if base_prior else state["prior"] if fixed_prior else params
        edited, stats = world.edit(k_sample, truth, prior, data, mask)
        stats = {"eligible_share": jnp.mean(mask), **stats}
        return edited, {**state, "current": R.without_fixed(edited, world)}, stats

    return Regime(cfg.name, init, step)


Config = TokenEditConfig  # every regime module names its config Config
