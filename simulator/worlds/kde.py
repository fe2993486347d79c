"""Kernel-density world: the model is a Gaussian KDE of its training points (Kazdan et al.
2024, arXiv 2410.16713, KDE setting; theory/derivations.md §13).

Truth: the mixture of ``gmm.true_mixture`` (``true_K`` isotropic components of
sd ``spread``; the default true_K = 1 is N(0, spread² I)).  One row is one
point x (D,).  Fit keeps the (weighted) points x_1..x_n; the model is
p̂ = Σ_i w_i N(x_i, h² I) / Σ w, and a draw is x' = x_J + h z with J drawn
∝ w and z ~ N(0, I).

Static shapes.  The points kept grow with the accumulate pool, but the loop
carries the model with a fixed shape, so ``fit`` stores a fixed-size summary
that loses nothing the world uses:

- ``centres`` (n_rows, D): the kernel centres x_J of the next generation's
  draws, J drawn i.i.d. ∝ w at fit time (with the fit key).  ``sample`` adds
  h z with its own key, so a synthetic set has exactly the law of n_rows KDE
  draws; two ``sample`` calls on one fit share the centres (no regime calls
  it twice per generation);
- ``mean`` and ``s2``: the weighted mean and biased variance (trace; divisor
  Σ w) of all kept points;
- ``log_density`` (n_test,): log p̂ on a fixed test set of n_test points drawn
  once from the truth (numpy seed 0; the same points for every seed and
  generation; ``separation`` and ``spread`` move and scale the same draws).

Metrics:

- ``test_error`` = ``kl``: KL(p* ‖ p̂) estimated on the test set,
  mean_t [log p*(x_t) − log p̂(x_t)] (Kazdan et al. report the test NLL; this
  is the NLL minus the truth's entropy estimated on the same points, so it is
  a distance: 0 only at p̂ = p*);
- ``test_nll`` = −mean_t log p̂(x_t);
- ``var`` = s2, the biased sample variance of the kept points (theory/derivations.md §13:
  E s2_{g+1} = (1 − 1/M)(E s2_g + d h²) → (M−1) d h² under replace);
- ``kde_var`` = s2 + d h², the variance of the KDE itself;
- ``mean_error`` = ||mean − μ*||² with μ* the true mean.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from collapse_sim.simulator import normal, traced
from collapse_sim.simulator.world import World
from collapse_sim.simulator.worlds import checks, sample_sizes
from collapse_sim.simulator.worlds.gmm import true_means_array, true_mixture


@dataclasses.dataclass
class KDEConfig:
    """d dimensions; bandwidth h; M samples per generation (or M_schedule); truth:
    true_K components of sd spread (separation as in the gmm world); n_test:
    fixed test points for the KL and NLL."""

    name: str = "kde"
    d: int = 1
    M: int = 100
    M_schedule: Optional[List[int]] = None
    h: float = 0.5
    true_K: int = 1
    separation: float = 3.0
    spread: float = 1.0
    n_test: int = 512

    # Arguments of the compiled run (simulator/traced.py).  The test set's draws (component
    # and standard-normal noise, numpy seed 0) are fixed; separation and spread only move
    # and scale them, in jnp.
    TRACED = ("h", "separation", "spread")

    def __post_init__(self):
        validate(self)


def validate(cfg: KDEConfig) -> None:
    for name, what in (("d", "dimensions"), ("true_K", "components"), ("n_test", "test points")):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"world.{name}={v!r} must be a whole number of {what} >= 1")
    if not (isinstance(cfg.h, (int, float)) and cfg.h > 0 and math.isfinite(cfg.h)):
        raise ValueError(f"world.h={cfg.h!r} is not a valid bandwidth; allowed: a finite number > 0")
    if not (cfg.spread > 0 and math.isfinite(cfg.spread)):
        raise ValueError(f"world.spread={cfg.spread!r} must be a finite number > 0")
    if not (cfg.separation >= 0 and math.isfinite(cfg.separation)):
        raise ValueError(f"world.separation={cfg.separation!r} must be a finite number >= 0")
    sample_sizes.validate(cfg.M, cfg.M_schedule, 2, "a sample variance needs 2 points")


def check_precision(cfg: KDEConfig, dtype) -> None:
    """The run's precision must hold the kernel's h² and the data's squared distances."""
    checks.representable("h", cfg.h, dtype, small=True, what="the kernel variance h²")
    checks.representable("spread", cfg.spread, dtype, small=True, what="variances spread²")
    checks.representable("separation", cfg.separation, dtype, factor=4.0, what="squared distances (2·separation)²")


def true_moments(cfg: KDEConfig) -> tuple[np.ndarray, float]:
    """(mean (D,), trace of the covariance) of the true mixture."""
    w, mu, sd = true_mixture(cfg)
    mean = w @ mu
    return mean, cfg.d * sd**2 + float(w @ np.sum((mu - mean) ** 2, 1))


def _mixture_logpdf(x_TxD, w_J, mu_JxD, sd) -> jax.Array:
    """log of the isotropic mixture Σ_j w_j N(x; μ_j, sd² I) at each row ((T,); ``mu`` and ``sd``
    may be traced)."""
    d2 = jnp.sum((x_TxD[:, None] - mu_JxD[None]) ** 2, -1)
    logk = -0.5 * d2 / sd**2 - 0.5 * x_TxD.shape[1] * jnp.log(2 * jnp.pi * sd**2)
    m = jnp.max(logk, 1, keepdims=True)
    return (m + jnp.log(jnp.exp(logk - m) @ w_J[:, None]))[:, 0]


def make_world(cfg: KDEConfig) -> World:
    """The world's functions; ``cfg`` may hold tracers in its ``TRACED`` fields
    (``simulator/traced.py``), which are then used in ``jnp`` arithmetic only."""
    d, h = cfg.d, cfg.h
    dtype = jnp.result_type(float)
    if not traced.is_traced(cfg):
        validate(cfg)
        check_precision(cfg, dtype)
    n_rows = sample_sizes.n_rows(cfg.M, cfg.M_schedule)
    weights = sample_sizes.make_weights(cfg.M, cfg.M_schedule, dtype)
    w_star, sd = np.full(cfg.true_K, 1.0 / cfg.true_K), cfg.spread  # true_mixture's weights and sd
    mu_star = true_means_array(cfg, dtype)
    w_J = jnp.asarray(w_star, dtype)
    mean_star = w_J @ mu_star

    rng = np.random.default_rng(0)
    comp = rng.choice(len(w_star), size=cfg.n_test, p=w_star)
    x_test = mu_star[comp] + sd * jnp.asarray(rng.standard_normal((cfg.n_test, d)), dtype)
    logp_test = _mixture_logpdf(x_test, w_J, mu_star, sd)
    log_norm = -0.5 * d * jnp.log(2 * math.pi * h**2)

    def draw_true(key, g):
        k_c, k_z = jax.random.split(key)
        c_N = jax.random.categorical(k_c, jnp.log(w_J), shape=(n_rows,))
        z_NxD = normal.normal(k_z, (n_rows, d), dtype)
        return {"x": mu_star[c_N] + sd * z_NxD, "weight": weights(g)}

    def init(key):
        return {"mean": mean_star, "x_test": x_test, "logp_test": logp_test}

    def real(key, truth, g):
        return draw_true(key, g)

    def sample(key, truth, params, g):
        z_NxD = normal.normal(key, (n_rows, d), dtype)
        return {"x": params["centres"] + h * z_NxD, "weight": weights(g)}

    def log_density(x_NxD, logw_N):
        def one(t_D):
            return logsumexp(logw_N - 0.5 * jnp.sum((x_NxD - t_D) ** 2, -1) / h**2)

        # bounded memory whatever the pool size: test points in batches
        return jax.lax.map(one, x_test, batch_size=64) + log_norm

    def fit(key, rows, params0):
        w_N, x_NxD = rows["weight"], rows["x"]
        n = jnp.sum(w_N)
        logw_N = jnp.log(w_N / n)
        mean_D = (w_N @ x_NxD) / n
        s2 = jnp.sum(w_N * jnp.sum((x_NxD - mean_D) ** 2, -1)) / n
        pick_N = jax.random.categorical(key, logw_N, shape=(n_rows,))
        return {"centres": x_NxD[pick_N], "mean": mean_D, "s2": s2, "log_density": log_density(x_NxD, logw_N)}

    def evaluate(truth, params):
        kl = jnp.mean(truth["logp_test"] - params["log_density"])
        return {
            "test_error": kl,
            "kl": kl,
            "test_nll": -jnp.mean(params["log_density"]),
            "var": params["s2"],
            "kde_var": params["s2"] + d * h**2,
            "mean_error": jnp.sum((params["mean"] - truth["mean"]) ** 2),
        }

    return World("kde", n_rows, init, real, fit, sample, evaluate)


Config = KDEConfig
