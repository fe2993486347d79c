"""Categorical world: refit empirical frequencies to samples of the previous fit
(Shumailov et al. 2024, "discrete distributions with exact approximation"; Kazdan et al.
2024, arXiv 2410.16713, ``fit_discrete_distributions``; theory/derivations.md §14).

Truth: a distribution p* over V outcomes, ``uniform``, ``zipf`` (p_k ∝ k^-zipf_s,
k = 1..V) or ``given`` (``probs``, positive, summing to 1).  One row is one
outcome x (an int in 0..V-1).  Generation g draws M_g outcomes (see
``sample_sizes``).

Fit: p̂_k = (c_k + α) / (n + α V), c_k the weighted count of outcome k, n = Σ w,
α = ``smoothing`` (0: the empirical frequencies, a Wright–Fisher chain whose
only absorbing states are point masses; α > 0 keeps every outcome alive).

Metrics:

- ``test_error`` = ``tv``: total variation ½ Σ |p̂_k − p*_k|;
- ``kl``: KL(p̂ ‖ p*) in nats (this direction stays finite when outcomes are
  lost; KL(p* ‖ p̂) is infinite from the first loss);
- ``entropy`` (nats) and ``heterozygosity`` 1 − Σ p̂²;
- ``support``: outcomes with p̂_k > 0; ``absorbed``: 1 when the support is a
  single outcome (the absorption generation of a seed is the first g with
  absorbed = 1);
- ``tail_mass``: Σ p̂_k over the tail, the outcomes whose true probability lies
  strictly below the ``tail_quantile`` quantile of p* (empty for uniform);
- ``tail_lost``: Σ p*_k over the tail outcomes with p̂_k = 0 (true tail mass
  lost); ``lost_mass``: the same over all outcomes;
- ``probs`` (V,) when ``record_probs``: the fitted distribution.

Sampling temperature τ (``temperature``): synthetic rows are drawn from
normalise(p̂^{1/τ}) (τ < 1 sharpens towards the argmax, τ > 1 flattens towards
uniform on the support; theory/temperature.py ``tempered``); real rows are never
tempered, and τ = 1 draws exactly what an untempered world draws.  For curation a
row's point is its outcome's index k (one coordinate).
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from collapse_sim.simulator import traced
from collapse_sim.simulator.world import World, check_temperature
from collapse_sim.simulator.worlds import checks, sample_sizes

DISTS = ("uniform", "zipf", "given")


@dataclasses.dataclass
class CategoricalConfig:
    """V outcomes; truth dist uniform|zipf (exponent zipf_s)|given (probs); M
    samples per generation (or M_schedule); additive smoothing; tail_quantile
    defines the tail; record_probs records p̂ (V,) every generation; temperature:
    τ of the synthetic draws normalise(p̂^{1/τ}), a finite number > 0."""

    name: str = "categorical"
    V: int = 6
    M: int = 1000
    M_schedule: Optional[List[int]] = None
    dist: str = "uniform"
    zipf_s: float = 1.0
    probs: Optional[List[float]] = None
    smoothing: float = 0.0
    tail_quantile: float = 0.5
    record_probs: bool = False
    temperature: float = 1.0

    # Arguments of the compiled run (simulator/traced.py); τ = 1 samples p̂ itself, a code
    # path of its own (``structure``).  The truth (dist, zipf_s, probs) and the tail set
    # (tail_quantile) are built in numpy at start, so they stay static.
    TRACED = ("smoothing", "temperature")

    def __post_init__(self):
        validate(self)
        check_temperature(self.temperature)

    def structure(self) -> dict:
        return {"tempered": self.temperature != 1.0}


def validate(cfg: CategoricalConfig) -> None:
    if isinstance(cfg.V, bool) or not isinstance(cfg.V, (int, np.integer)) or cfg.V < 2:
        raise ValueError(f"world.V={cfg.V!r} is too small a vocabulary; allowed: a whole number of outcomes >= 2")
    if cfg.dist not in DISTS:
        raise ValueError(f"world.dist={cfg.dist!r} is not known; allowed: {', '.join(DISTS)}")
    sample_sizes.validate(cfg.M, cfg.M_schedule, 1, "frequencies need a sample")
    if not (cfg.zipf_s >= 0 and math.isfinite(cfg.zipf_s)):
        raise ValueError(f"world.zipf_s={cfg.zipf_s!r} must be a finite number >= 0")
    if not (cfg.smoothing >= 0 and math.isfinite(cfg.smoothing)):
        raise ValueError(f"world.smoothing={cfg.smoothing!r} must be a finite number >= 0")
    if not (0 < cfg.tail_quantile <= 1):
        raise ValueError(f"world.tail_quantile={cfg.tail_quantile!r} must lie in (0, 1]")
    if cfg.dist == "given":
        if cfg.probs is None:
            raise ValueError("world.dist=given needs world.probs, a list of V probabilities summing to 1")
        p = np.asarray(cfg.probs, float)
        if p.ndim != 1 or p.size != cfg.V:
            raise ValueError(f"world.probs has {p.size} entries but world.V={cfg.V}; give one probability per outcome")
        if not np.all(np.isfinite(p)) or np.any(p <= 0):
            k = int(np.argmin(np.where(np.isfinite(p), p, -np.inf)))
            raise ValueError(
                f"world.probs[{k}]={cfg.probs[k]!r} is not allowed; every probability must be a finite number > 0 "
                "(drop outcomes of probability 0: they are outside the support)"
            )
        if abs(p.sum() - 1.0) > 1e-6:
            raise ValueError(f"world.probs sums to {p.sum():.6g}; a given distribution must sum to 1 (within 1e-6)")


def true_distribution(cfg: CategoricalConfig) -> np.ndarray:
    """p* (V,) as numpy."""
    if cfg.dist == "uniform":
        return np.full(cfg.V, 1.0 / cfg.V)
    if cfg.dist == "zipf":
        w = np.arange(1, cfg.V + 1, dtype=float) ** (-float(cfg.zipf_s))
        return w / w.sum()
    p = np.asarray(cfg.probs, float)
    return p / p.sum()


def tail_set(cfg: CategoricalConfig) -> np.ndarray:
    """Boolean (V,): outcomes whose true probability is strictly below the tail_quantile quantile."""
    p = true_distribution(cfg)
    return p < np.quantile(p, cfg.tail_quantile)


def make_world(cfg: CategoricalConfig) -> World:
    """The world's functions; ``cfg`` may hold tracers in its ``TRACED`` fields
    (``simulator/traced.py``), which are then used in ``jnp`` arithmetic only."""
    V, alpha = cfg.V, cfg.smoothing
    dtype = jnp.result_type(float)
    if not traced.is_traced(cfg):
        validate(cfg)
        checks.representable("smoothing", alpha, dtype, power=1, factor=V, what="the smoothed total n + smoothing · V")
    n_rows = sample_sizes.n_rows(cfg.M, cfg.M_schedule)
    weights = sample_sizes.make_weights(cfg.M, cfg.M_schedule, dtype)
    p_star = jnp.asarray(true_distribution(cfg), dtype)
    tail = jnp.asarray(tail_set(cfg))

    # the same index either way; comparing with every entry is 2x faster than the binary search
    # on the CPU for a few outcomes, and far slower for many (measured: V = 10 and V = 100)
    search = "compare_all" if V <= 16 else "scan"

    def draw(key, p_V, g):
        # Inverse CDF, O(N log V) (Gumbel-max would cost O(N V)); u < 1 scaled by the total keeps
        # every draw on an outcome of positive probability, and the clip guards rounding.
        cdf_V = jnp.cumsum(p_V)
        u_N = jax.random.uniform(key, (n_rows,), dtype) * cdf_V[-1]
        last = V - 1 - jnp.argmax(p_V[::-1] > 0)
        x_N = jnp.minimum(jnp.searchsorted(cdf_V, u_N, side="right", method=search), last)
        return {"x": x_N.astype(jnp.int32), "weight": weights(g)}

    def init(key):
        return {"p": p_star}

    def real(key, truth, g):
        return draw(key, truth["p"], g)

    tau = cfg.temperature
    tempered_draws = traced.structure(cfg)["tempered"]

    def tempered(p_V):
        """normalise(p^{1/τ}), in log space; outcomes of probability 0 stay at 0."""
        logp_V = jnp.where(p_V > 0, jnp.log(jnp.where(p_V > 0, p_V, 1.0)) / tau, -jnp.inf)
        q_V = jnp.exp(logp_V - jnp.max(logp_V))
        return q_V / jnp.sum(q_V)

    def sample(key, truth, params, g):
        return draw(key, tempered(params["p"]) if tempered_draws else params["p"], g)

    def point(rows):
        return rows["x"][:, None].astype(dtype)

    def summarize(rows):
        """Weighted counts per outcome, their total and the rows of positive weight: additive over
        rows, so ``accumulate`` keeps their running sums (whole numbers: exact in any order)."""
        w_N = rows["weight"]
        counts_V = jnp.zeros((V,), dtype).at[rows["x"]].add(w_N)
        return {"counts": counts_V, "n": jnp.sum(w_N), "rows": jnp.sum(w_N > 0).astype(dtype)}

    def fit_summary(key, summary, params0):
        """Additive smoothing, p̂ = (counts + α) / (n + α V)."""
        return {"p": (summary["counts"] + alpha) / (summary["n"] + alpha * V)}

    def fit(key, rows, params0):
        return fit_summary(key, summarize(rows), params0)

    def evaluate(truth, params):
        p, q = params["p"], truth["p"]
        lost = p <= 0
        support = jnp.sum(~lost).astype(jnp.int32)
        out = {
            "test_error": 0.5 * jnp.sum(jnp.abs(p - q)),
            "tv": 0.5 * jnp.sum(jnp.abs(p - q)),
            "kl": jnp.sum(xlogy(p, p) - xlogy(p, q)),
            "entropy": -jnp.sum(xlogy(p, p)),
            "heterozygosity": 1.0 - jnp.sum(p * p),
            "support": support,
            "absorbed": (support == 1).astype(jnp.int32),
            "tail_mass": jnp.sum(jnp.where(tail, p, 0.0)),
            "tail_lost": jnp.sum(jnp.where(tail & lost, q, 0.0)),
            "lost_mass": jnp.sum(jnp.where(lost, q, 0.0)),
        }
        if cfg.record_probs:
            out["probs"] = p
        return out

    return World("categorical", n_rows, init, real, fit, sample, evaluate, point=point,
                 summarize=summarize, fit_summary=fit_summary)


Config = CategoricalConfig
