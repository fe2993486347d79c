"""Curated synthetic data: model n−1 proposes more rows than a generation needs and a rule keeps some.

A regime with ``curation.rule != "none"`` (``replace``, ``mix``, ``accumulate``,
``accumulate_subsample``) draws its synthetic rows through :func:`source` instead of
``world.sample``; everything else about the regime is unchanged.  Rules:

- ``verifier``: keep a proposed row when a verifier accepts it: the window
  ‖p − centre‖ ≤ half_width on the row's point p (``world.point``, or ``world.score``
  read as one coordinate: a text block's perplexity under generation 0, so the window
  is a perplexity band), or the world's own verifier (``world.verify``; regression:
  |y − xᵀθ_v| ≤ γ‖x‖ + √(2/π)σ with the biased belief θ_v = w* + bias·u, Yi, Liu,
  Cheng & Xu, arXiv 2510.16657).  Proposals come in rounds of one training set, at
  most ``rounds`` of them; the first n accepted rows in proposal order are kept, which
  is what refilling round after round until n rows are accepted gives.  If the rounds
  accept fewer than n rows, the set holds the accepted rows and the missing ones are
  absent (weight 0): the model is then fitted on fewer rows, which ``shortfall`` and
  ``train_rows`` record.  One-step moments: ``theory/curation.py`` ``window_step``.
- ``best_of_k``: each row is the best of K proposals by the reward (selection by a
  verifier, Feng et al., arXiv 2406.07515).  Exact E s_t² for a linear reward:
  ``theory/curation.py`` ``best_of_k_variance_curve``.
- ``preference``: each row is one of K proposals drawn with probability
  softmax(β·reward) (Bradley–Terry curation, Ferbach et al., arXiv 2407.09499); as
  K → ∞ the kept rows follow p·e^{β r} (``tilt_linear_curve``, ``tilt_quadratic_curve``).
- ``top_fraction``: propose round(n/α) rows, keep the n of highest reward
  (``top_fraction_curve``, a large-n limit).  On a text world with ``direction=-1`` it
  keeps the proposed blocks of lowest perplexity under generation 0, the quality filter
  of Liu et al., arXiv 2404.07503.

Rewards read a row's point p (D coordinates): ``linear`` r = direction·p, ``quadratic``
r = −‖p − target‖²; ``direction`` and ``target`` are one number (the same on every
coordinate) or a list of D numbers.

Shapes are static: every rule proposes a fixed number of training sets at once (K,
``rounds`` or ⌈1/α⌉) and keeps rows by index and weight.  The numbers a rule reads
(β, α, direction, target, centre, half_width, bias, γ) are traced (``simulator/traced.py``):
a sweep over them runs one compiled program; α's ⌈1/α⌉ proposal sets and the length of a
list direction or target are static (``CurationConfig.structure``).  Records (regime statistics,
zero at generation 0 as every regime's): ``accept_rate`` (kept / proposed rows;
verifier: accepted / proposed over every round), ``reward_mean`` (mean reward of the
kept synthetic rows) and ``reward_proposed`` (of every proposal) for the reward rules,
``shortfall`` (share of the n rows the verifier could not fill) and
``proposal_rounds`` (rounds a refill needed) for the verifier, and ``train_rows``
(rows of positive weight the model is fitted on), added by the regime.

One concept, hence one module over 400 lines: the config (``CurationConfig``, whose
checks name each rule's fields, ``RULE_FIELDS``) and the rules that read those fields,
as a regime module holds its config and its step.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator import traced
from collapse_sim.simulator.world import World

RULES = ("none", "verifier", "best_of_k", "preference", "top_fraction")
REWARDS = ("linear", "quadratic")
# The fields each rule reads (the run hash covers only these); a reward rule also reads
# its reward's own field.
RULE_FIELDS = {
    "none": (),
    "verifier": ("centre", "half_width", "bias", "gamma", "rounds"),
    "best_of_k": ("K", "reward"),
    "preference": ("K", "beta", "reward"),
    "top_fraction": ("keep_fraction", "reward"),
}
REWARD_FIELDS = {"linear": ("direction",), "quadratic": ("target",)}
STATIC_FIELDS = ("K", "rounds", "reward")  # a rule's fields that set shapes or choose code
SHORT_WARNING = 1.0  # warn when rounds × (acceptance of the real rows) is below this
# Scorer worlds whose generation-0 model is cheap to fit and sample once at start (counting), so a
# verifier band is checked against the perplexities of the blocks that model proposes; a
# transformer's fit is a training run, so there a band that accepts nothing shows only in the
# records (shortfall 1, train_rows 0).
PROBED_SCORERS = ("ngram",)


def _bad(field, value, allowed) -> None:
    raise ValueError(f"regime.curation.{field}={value!r} is not allowed; allowed: {allowed}")


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _finite(field, value, *, low=None, low_open=False, high=None, what="a finite number") -> None:
    ok = _is_number(value) and math.isfinite(value)
    ok = ok and (low is None or (value > low if low_open else value >= low)) and (high is None or value <= high)
    if not ok:
        _bad(field, value, what)


def _whole(field, value, minimum, what) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        _bad(field, value, f"a whole number of {what} >= {minimum}")


def _vector(field, value) -> None:
    """One finite number or a non-empty list of finite numbers."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or not all(_is_number(v) and math.isfinite(v) for v in items):
        _bad(field, value, "one finite number (the same on every coordinate) or a list of finite numbers, one per coordinate")


@dataclasses.dataclass
class CurationConfig:
    """rule: none | verifier | best_of_k | preference | top_fraction (module docstring).
    K: proposals per kept row (best_of_k, preference).  beta: the preference's inverse
    temperature β, P(pick) ∝ exp(β·reward).  keep_fraction: α of top_fraction, in (0, 1].
    reward: linear (direction) | quadratic (target).  centre, half_width: the verifier
    window on a row's point.  bias, gamma: the regression verifier's belief θ_v = w* +
    bias·u (u = (1, ..., 1)/√d) and slack γ.  rounds: most proposal rounds of one
    training set the verifier draws."""

    rule: str = "none"
    K: int = 4
    beta: float = 1.0
    keep_fraction: float = 0.5
    reward: str = "linear"
    direction: Any = 1.0
    target: Any = 0.0
    centre: float = 0.0
    half_width: float = 1.0
    bias: float = 0.0
    gamma: float = 0.0
    rounds: int = 4

    def __post_init__(self):
        if isinstance(self.direction, tuple):
            self.direction = list(self.direction)
        if isinstance(self.target, tuple):
            self.target = list(self.target)
        self.validate()

    def validate(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"regime.curation.rule={self.rule!r} is not known; allowed: {', '.join(RULES)}")
        if self.reward not in REWARDS:
            raise ValueError(f"regime.curation.reward={self.reward!r} is not known; allowed: {', '.join(REWARDS)}")
        _whole("K", self.K, 1, "proposals per kept row")
        _whole("rounds", self.rounds, 1, "proposal rounds")
        _finite("beta", self.beta)
        _finite("keep_fraction", self.keep_fraction, low=0, low_open=True, high=1,
                what="a share of the proposals in (0, 1]")
        _vector("direction", self.direction)
        if all(v == 0 for v in (self.direction if isinstance(self.direction, list) else [self.direction])):
            _bad("direction", self.direction, "a direction that is not zero (a zero linear reward ranks nothing)")
        _vector("target", self.target)
        _finite("centre", self.centre)
        _finite("half_width", self.half_width, low=0, low_open=True,
                what="a finite number > 0 (a window of half-width <= 0 accepts nothing)")
        _finite("bias", self.bias)
        _finite("gamma", self.gamma, low=0, what="a finite number >= 0")

    @property
    def active(self) -> bool:
        return self.rule != "none"

    @property
    def TRACED(self) -> tuple:
        """The numbers this rule reads (arguments of the compiled run, simulator/traced.py)."""
        return tuple(f for f in self.fields() if f not in STATIC_FIELDS)

    def structure(self) -> dict:
        """What the traced numbers decide: top_fraction's ⌈1/α⌉ proposal sets, and whether a
        direction / target is one number (0) or a list of that many."""
        out = {"proposal_sets": proposal_sets(self.keep_fraction)} if self.rule == "top_fraction" else {}
        for f in ("direction", "target"):
            if f in self.TRACED:
                value = getattr(self, f)
                out[f"{f}_entries"] = len(value) if isinstance(value, list) else 0
        return out

    def fields(self) -> tuple:
        """The fields this rule reads."""
        own = RULE_FIELDS[self.rule]
        return own + (REWARD_FIELDS[self.reward] if "reward" in own else ())

    def numbers(self) -> dict:
        return {"rule": self.rule, **{f: getattr(self, f) for f in self.fields()}}


def proposal_sets(keep_fraction: float) -> int:
    """⌈1/α⌉ proposal sets of top_fraction (at least 1)."""
    return max(1, math.ceil(1.0 / keep_fraction - 1e-12))


def as_config(value) -> CurationConfig:
    """A CurationConfig from itself, None (no curation) or a dict of its fields."""
    if value is None:
        return CurationConfig()
    if isinstance(value, CurationConfig):
        return value
    if isinstance(value, dict):
        known = [f.name for f in dataclasses.fields(CurationConfig)]
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"regime.curation has no field {', '.join(unknown)}; its fields: {', '.join(known)}")
        return CurationConfig(**value)
    raise ValueError(f"regime.curation={value!r} is not allowed; allowed: a CurationConfig, a dict of its fields or None")


class Source(NamedTuple):
    """Where a regime's synthetic rows come from.  ``init(params0) -> extra``: what the
    source carries in the regime's state (the generation-0 scorer model, or ()).
    ``draw(key, extra, truth, params, g) -> (rows, stats)``: one synthetic training set
    with ``world.sample``'s layout, and the curation statistics ({} without curation)."""

    active: bool
    init: Callable
    draw: Callable


def train_stats(src: Source, train: dict | None, stats: dict, count=None) -> dict:
    """``stats`` plus ``train_rows`` under curation: the rows of positive weight in ``train``,
    or ``count`` where the training set is a summary of its rows."""
    if not src.active:
        return stats
    count = jnp.sum(train["weight"] > 0) if count is None else count
    return {**stats, "train_rows": jnp.asarray(count).astype(jnp.result_type(float))}


def _vec(value, D: int, dtype) -> jax.Array:
    """One number or a list of D (a number, list or traced array) as a (D,) array."""
    return jnp.broadcast_to(jnp.reshape(jnp.asarray(value, dtype), (-1,)), (D,))


def _needs(rule: str, what: str, world: World, has: str) -> ValueError:
    return ValueError(
        f"regime.curation.rule={rule} needs {what}; world {world.name!r} has none ({has}). "
        f"Allowed: {_allowed(rule)}"
    )


def _allowed(rule: str) -> str:
    if rule == "verifier":
        return "a world with a verifier or with points (gaussian, gmm, categorical, regression, ngram, transformer)"
    return "a world whose rows have points (gaussian, gmm, categorical) or scores (ngram, transformer)"


def _probe_rows(world: World):
    """Generation-0 real rows of one seed, eagerly (for checks at start; model-free worlds only)."""
    truth = world.init(jax.random.key(0))
    return truth, world.real(jax.random.key(1), truth, 0)


def source(cfg, world: World) -> Source:
    """The synthetic-data source of a regime for ``cfg`` (a CurationConfig or None).

    Raises ValueError at start when the world lacks what the rule needs, when a list
    ``direction`` / ``target`` does not have one entry per coordinate, or when a verifier
    accepts none of generation 0's real rows (it would accept next to nothing from
    models fitted to them); warns when it accepts so few that ``rounds`` rounds are
    unlikely to fill a training set."""
    cfg = as_config(cfg)
    if not cfg.active:
        return Source(False, lambda params0: (), lambda key, extra, truth, params, g: (world.sample(key, truth, params, g), {}))
    rule = cfg.rule
    own_verifier = rule == "verifier" and world.verify is not None
    if not own_verifier and world.point is None and world.score is None:
        what = "a verifier (world.verify) or row points" if rule == "verifier" else "a reward on its rows (world.point or world.score)"
        has = ("its rows have no point or score; its own verifier serves rule=verifier" if world.verify is not None
               else "no point, score or verifier")
        raise _needs(rule, what, world, has)
    uses_scorer = not own_verifier and world.point is None
    dtype = jnp.result_type(float)

    def coords(extra, rows):
        if world.point is not None:
            return world.point(rows).astype(dtype)
        return world.score(extra, rows).astype(dtype)[:, None]

    D = 1
    if world.point is not None:
        _, probe = _probe_rows(world)
        D = int(world.point(probe).shape[-1])
    for field in REWARD_FIELDS[cfg.reward] if "reward" in cfg.fields() else ():
        value = getattr(cfg, field)
        if isinstance(value, list) and len(value) not in (1, D):
            _bad(field, value, f"one number or a list of {D} numbers (world {world.name!r} has {D} coordinates)")

    if cfg.reward == "linear":
        direction = _vec(cfg.direction, D, dtype)

        def reward(p_NxD):
            return p_NxD @ direction
    else:
        target = _vec(cfg.target, D, dtype)

        def reward(p_NxD):
            return -jnp.sum((p_NxD - target) ** 2, axis=-1)

    if rule == "verifier":
        accept = _verifier(cfg, world, coords, own_verifier, uses_scorer)
        draw = _verify_draw(cfg, world, accept)
    elif rule in ("best_of_k", "preference"):
        draw = _pick_draw(cfg, world, coords, reward)
    else:
        draw = _top_draw(cfg, world, coords, reward)
    init = (lambda params0: params0) if uses_scorer else (lambda params0: ())
    return Source(True, init, draw)


def _proposals(world: World, key, truth, params, g, R: int):
    """R synthetic training sets of model ``params``, leaves (R, N, ...)."""
    return jax.vmap(lambda k: world.sample(k, truth, params, g))(jax.random.split(key, R))


def _flat(sets):
    return jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), sets)


def _proposal_pool(world: World, key, truth, params, g, R: int):
    """R proposal sets flattened into one pool of R·N rows: (pool, template weights (N,)
    of one set, rows a training set needs, N, which pool rows are present)."""
    k_prop, _ = jax.random.split(key)
    sets = _proposals(world, k_prop, truth, params, g, R)
    template_w = sets["weight"][0]
    flat = _flat(sets)
    return flat, template_w, jnp.sum(template_w > 0), sets["weight"].shape[1], flat["weight"] > 0


def _mean_where(x, mask):
    m = mask.astype(x.dtype)
    return jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)


def _place(template_w, rows, n_keep):
    """``rows`` (N) laid into the present slots of the template weights in order: slot j
    (the j-th present row of the template) gets rows[j] for j < n_keep; the rest are absent."""
    present = template_w > 0
    slots = jnp.argsort(~present, stable=True)  # present slots first, in order
    order = jnp.zeros_like(slots).at[slots].set(jnp.arange(slots.shape[0]))  # rank of each slot
    out = jax.tree.map(lambda a: a[order], rows)
    out["weight"] = jnp.where(present & (order < n_keep), template_w, 0.0).astype(template_w.dtype)
    return out


def _pick_draw(cfg: CurationConfig, world: World, coords, reward):
    """best_of_k (argmax) or preference (softmax(β r) draw) among K proposals per row."""
    K, beta, pick_max = cfg.K, cfg.beta, cfg.rule == "best_of_k"

    def draw(key, extra, truth, params, g):
        k_prop, k_pick = jax.random.split(key)
        sets = _proposals(world, k_prop, truth, params, g, K)
        N = sets["weight"].shape[1]
        r_KxN = reward(coords(extra, _flat(sets))).reshape(K, N)
        if pick_max:
            idx_N = jnp.argmax(r_KxN, axis=0)
        else:
            idx_N = jax.random.categorical(k_pick, beta * r_KxN, axis=0)
        rows = jax.tree.map(lambda a: a[idx_N, jnp.arange(N)], sets)
        present = rows["weight"] > 0
        kept_r = r_KxN[idx_N, jnp.arange(N)]
        stats = {
            "accept_rate": jnp.asarray(1.0 / K, r_KxN.dtype),
            "reward_mean": _mean_where(kept_r, present),
            "reward_proposed": _mean_where(r_KxN, sets["weight"] > 0),
        }
        return rows, stats

    return draw


def _top_draw(cfg: CurationConfig, world: World, coords, reward):
    """top_fraction: of round(n/α) proposals (the first present rows of ⌈1/α⌉ sets), the n
    of highest reward."""
    alpha = cfg.keep_fraction  # traced; the proposal sets it needs are static
    R = traced.structure(cfg)["proposal_sets"]

    def draw(key, extra, truth, params, g):
        flat, template_w, n_keep, N, present = _proposal_pool(world, key, truth, params, g, R)
        n_cand = jnp.minimum(jnp.round(n_keep / alpha), jnp.sum(present))
        cand = present & (jnp.cumsum(present) <= n_cand)
        r = reward(coords(extra, flat))
        _, idx = jax.lax.top_k(jnp.where(cand, r, -jnp.inf), N)
        rows = _place(template_w, jax.tree.map(lambda a: a[idx], flat), n_keep)
        kept = jnp.arange(N) < n_keep
        stats = {
            "accept_rate": (n_keep / jnp.maximum(n_cand, 1)).astype(r.dtype),
            "reward_mean": _mean_where(r[idx], kept),
            "reward_proposed": _mean_where(r, cand),
        }
        return rows, stats

    return draw


def _verifier(cfg: CurationConfig, world: World, coords, own: bool, uses_scorer: bool):
    """``accept(extra, truth, rows) -> (N,) bool``, after the checks at start."""
    if own:
        def accept(extra, truth, rows):
            return world.verify(truth, rows, cfg)
    else:
        def accept(extra, truth, rows):
            p = coords(extra, rows)
            return jnp.sqrt(jnp.sum((p - cfg.centre) ** 2, axis=-1)) <= cfg.half_width
    if traced.is_traced(cfg):
        return accept  # the checks below ran on the concrete config, before the run was traced
    if own:
        what = f"regime.curation.bias={cfg.bias}, gamma={cfg.gamma}"
    else:
        what = f"the window |point - {cfg.centre:g}| <= {cfg.half_width:g} (regime.curation.centre, half_width)"
    extra = ()
    if uses_scorer:
        # Text worlds: the point is a perplexity, >= 1, and the scorer exists only once fitted.
        lo, hi = cfg.centre - cfg.half_width, cfg.centre + cfg.half_width
        if hi < 1.0:
            raise ValueError(
                f"regime.curation: the verifier band [{lo:g}, {hi:g}] "
                f"on world {world.name!r} lies below 1, and a perplexity is >= 1, so it accepts nothing; allowed: "
                "centre + half_width >= 1"
            )
        if world.name not in PROBED_SCORERS:
            return accept
        # What the verifier scores at generation 1: blocks the generation-0 model proposes.
        truth, real = _probe_rows(world)
        extra = jax.jit(world.fit)(jax.random.key(2), real, None)
        probe = jax.jit(world.sample, static_argnums=3)(jax.random.key(3), truth, extra, 1)
        ppl = np.asarray(world.score(extra, probe))[np.asarray(probe["weight"]) > 0]
        what = f"the perplexity band [{lo:g}, {hi:g}] (regime.curation.centre ± half_width)"
        rows_seen = (f"blocks the generation-0 model proposes on world {world.name!r} (their perplexities under it lie "
                     f"in [{ppl.min():.3g}, {ppl.max():.3g}])")
    else:
        truth, probe = _probe_rows(world)
        rows_seen = f"real rows of generation 0 on world {world.name!r}"
    ok = np.asarray(accept(extra, truth, probe)) & (np.asarray(probe["weight"]) > 0)
    n = int(np.sum(np.asarray(probe["weight"]) > 0))
    rate = ok.sum() / max(n, 1)
    if ok.sum() == 0:
        raise ValueError(
            f"regime.curation.rule=verifier: {what} accepts none of the {n} {rows_seen}, "
            "so it would keep (almost surely) no synthetic row; widen or move it"
        )
    if rate * cfg.rounds < SHORT_WARNING:
        warnings.warn(
            f"regime.curation.rule=verifier accepts {rate:.3g} of the {rows_seen.split(' (')[0]}; "
            f"{cfg.rounds} rounds (regime.curation.rounds) will likely not fill a training set, so generations "
            "will train on fewer rows (recorded as shortfall and train_rows)",
            stacklevel=3,
        )
    return accept


def _verify_draw(cfg: CurationConfig, world: World, accept):
    """verifier: the first n accepted rows of ``rounds`` proposal sets, in proposal order."""
    R = int(cfg.rounds)

    def draw(key, extra, truth, params, g):
        flat, template_w, n_need, N, present = _proposal_pool(world, key, truth, params, g, R)
        ok = present & accept(extra, truth, flat)
        take = ok & (jnp.cumsum(ok) <= n_need)
        n_kept = jnp.sum(take)
        idx = jnp.argsort(~take, stable=True)[:N]  # taken rows first, in proposal order
        rows = _place(template_w, jax.tree.map(lambda a: a[idx], flat), n_kept)
        last = jnp.max(jnp.where(take, jnp.arange(R * N), -1))
        dtype = jnp.result_type(float)
        stats = {
            "accept_rate": (jnp.sum(ok) / jnp.maximum(jnp.sum(present), 1)).astype(dtype),
            "shortfall": ((n_need - n_kept) / jnp.maximum(n_need, 1)).astype(dtype),
            "proposal_rounds": jnp.where(n_kept >= n_need, last // N + 1, R).astype(dtype),
        }
        return rows, stats

    return draw
