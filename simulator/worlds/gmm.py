"""Gaussian-mixture world: refit a K-component mixture by EM to samples of the previous fit
(Shumailov et al. 2024, Nature 631:755, SI §4.1 and Fig. 6: two Gaussians, 1000 samples per
generation, sklearn ``GaussianMixture``; Kazdan et al. 2024, arXiv 2410.16713).

Truth: ``true_K`` isotropic components N(μ*_j, spread² I) in d dimensions with
weights ``true_weights`` (equal by default).  The means sit on a circle of
radius ``separation`` in the first two coordinates (on a line from −separation
to +separation when d = 1; at 0 when true_K = 1).  One row is one point x (D,).

Fit: EM written in JAX, ``em_iters`` iterations under ``lax.scan`` (no
convergence test, so shapes and cost are static), from a k-means start as
sklearn's ``init_params="kmeans"``: k-means++ seeds (Arthur & Vassilvitskii
2007: first centre ∝ w, each next one ∝ w · squared distance to the nearest
centre), ``kmeans_iters`` weighted Lloyd iterations, then the M-step of the
hard assignment.  Weighted E and M steps (row weights multiply the
responsibilities).  One start per fit (sklearn's default ``n_init=1``): on
small samples EM can settle on a local optimum that covers two modes with one
component, which is part of the collapse it models.

Guards (recorded, never NaN):

- covariance floor: every fitted covariance is Σ_k + reg·I (sklearn's
  ``reg_covar``); ``em_singular`` counts the components of the returned model
  whose unfloored covariance has an eigenvalue <= reg (degenerate: fewer than
  d+1 effective points, or collapsed data);
- empty component: a component whose responsibility mass N_k is <= 1e-8·n
  (n = Σ w) is re-seeded at a worst-explained point (the present row of lowest
  mixture likelihood; several empty components take distinct rows), with the
  data's covariance and weight 1/n; ``em_empty`` counts re-seeds over the
  k-means start and all EM iterations of the fit.

Metrics:

- ``test_error`` = ``l2sq``: ∫(p̂ − p*)² in closed form, Σ_ab a_a b_b N(μ_a − μ_b; 0, Σ_a + Σ_b)
  summed over the pairs of p̂p̂, p*p* and (−2) p̂p* (the metric of Shumailov's
  released notebook);
- ``modes_kept``: true modes j with a fitted component of weight >= ``mode_weight``
  whose mean lies within ``mode_radius`` of μ*_j;
- ``tail_share``: mass of the fit farther than ``tail_k``·spread from every true
  mean, estimated with ``tail_points`` fixed standard-normal draws per component
  (the same draws in every generation and seed, so changes are not MC noise);
- ``loglik``: mean log-likelihood of the training rows under the fit;
- ``minority_weight``: the fitted weight of the components whose mean lies nearest
  the true mode of smallest weight (the first of several; with equal true weights,
  mode 0): the share of the minority mode a curated loop can lose;
- ``weights`` (K,), ``means`` (K, D), ``covs`` (K, D, D) when ``record_params``:
  the fitted model, for density snapshots (component order is arbitrary).
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from collapse_sim.simulator import linalg, normal, traced
from collapse_sim.simulator.world import World
from collapse_sim.simulator.worlds import checks, sample_sizes

EMPTY_MASS = 1e-8  # a component with responsibility mass <= EMPTY_MASS * n is empty


@dataclasses.dataclass
class GMMConfig:
    """d dimensions; K fitted components; truth: true_K components of sd spread on a
    circle of radius separation; M samples per generation (or M_schedule); EM
    with em_iters iterations and covariance floor reg; mode_weight, mode_radius:
    when a true mode counts as kept; tail_k, tail_points: the tail share."""

    name: str = "gmm"
    d: int = 2
    K: int = 3
    true_K: int = 3
    separation: float = 3.0
    spread: float = 1.0
    true_weights: Optional[List[float]] = None
    M: int = 200
    M_schedule: Optional[List[int]] = None
    kmeans_iters: int = 10
    em_iters: int = 50
    reg: float = 1e-6
    mode_weight: float = 0.05
    mode_radius: float = 1.0
    tail_k: float = 2.0
    tail_points: int = 1024
    record_params: bool = True

    # Arguments of the compiled run (simulator/traced.py); the true means are separation
    # times a fixed layout.  true_K and true_weights (which mode is the minority) are static.
    TRACED = ("separation", "spread", "reg", "mode_weight", "mode_radius", "tail_k")

    def __post_init__(self):
        validate(self)


def _whole(name, value, minimum, what) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"world.{name}={value!r} must be a whole number of {what} >= {minimum}")


def _positive(name, value) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
        raise ValueError(f"world.{name}={value!r} must be a finite number > 0")


def validate(cfg: GMMConfig) -> None:
    _whole("d", cfg.d, 1, "dimensions")
    _whole("K", cfg.K, 1, "components")
    _whole("true_K", cfg.true_K, 1, "components")
    _whole("em_iters", cfg.em_iters, 1, "iterations")
    _whole("kmeans_iters", cfg.kmeans_iters, 0, "iterations")
    _whole("tail_points", cfg.tail_points, 1, "points")
    sample_sizes.validate(cfg.M, cfg.M_schedule, 2, "a covariance needs 2 points")
    fewest = int(sample_sizes.schedule(cfg.M, cfg.M_schedule).min())
    if cfg.K > fewest:
        where = "world.M" if cfg.M_schedule is None else "the smallest entry of world.M_schedule"
        raise ValueError(
            f"world.K={cfg.K} components with {where}={fewest} samples: EM needs at least one sample per "
            f"component; allowed: K <= {fewest} (K·(d+1) = {cfg.K * (cfg.d + 1)} samples give every component "
            f"a full-rank covariance; with fewer the world floors singular components and counts them in em_singular)"
        )
    for name in ("spread", "reg", "mode_radius", "tail_k"):
        _positive(name, getattr(cfg, name))
    if not (cfg.separation >= 0 and math.isfinite(cfg.separation)):
        raise ValueError(f"world.separation={cfg.separation!r} must be a finite number >= 0")
    if not (0 <= cfg.mode_weight <= 1):
        raise ValueError(f"world.mode_weight={cfg.mode_weight!r} must be a weight in [0, 1]")
    if cfg.true_weights is not None:
        w = np.asarray(cfg.true_weights, float)
        if w.shape != (cfg.true_K,):
            raise ValueError(
                f"world.true_weights has {w.size} entries but world.true_K={cfg.true_K}; give one weight per true component"
            )
        if np.any(~np.isfinite(w)) or np.any(w <= 0) or abs(w.sum() - 1) > 1e-6:
            raise ValueError(f"world.true_weights={list(cfg.true_weights)!r} must be positive and sum to 1")


def check_precision(cfg: GMMConfig, dtype) -> None:
    """The run's precision must hold the squared distances and variances the world forms."""
    checks.representable("spread", cfg.spread, dtype, small=True, what="variances spread²")
    checks.representable("separation", cfg.separation, dtype, factor=4.0, what="squared distances (2·separation)²")
    checks.representable("reg", cfg.reg, dtype, power=1, small=True, what="the covariance floor reg")
    checks.representable("mode_radius", cfg.mode_radius, dtype, what="mode_radius²")
    checks.representable("tail_k", cfg.tail_k, dtype, factor=cfg.spread**2, what="(tail_k · spread)²")


def true_mixture(cfg: GMMConfig):
    """(weights (J,), means (J, D), sd) of the truth, as numpy arrays."""
    J, d, r = cfg.true_K, cfg.d, cfg.separation
    given = getattr(cfg, "true_weights", None)  # the kde world reuses this truth with equal weights
    w = np.full(J, 1.0 / J) if given is None else np.asarray(given, float)
    mu = np.zeros((J, d))
    if J > 1 and d == 1:
        mu[:, 0] = np.linspace(-r, r, J)
    elif J > 1:
        angle = 2 * np.pi * np.arange(J) / J
        mu[:, 0], mu[:, 1] = r * np.cos(angle), r * np.sin(angle)
    return w, mu, cfg.spread


def true_means_array(cfg: GMMConfig, dtype) -> jax.Array:
    """The true means of :func:`true_mixture` as separation × the layout at separation 1, in
    ``jnp`` (``separation`` may be traced); equal to them up to rounding."""
    J, d = cfg.true_K, cfg.d
    unit = np.zeros((J, d))
    if J > 1 and d == 1:
        unit[:, 0] = np.linspace(-1.0, 1.0, J)
    elif J > 1:
        angle = 2 * np.pi * np.arange(J) / J
        unit[:, 0], unit[:, 1] = np.cos(angle), np.sin(angle)
    return cfg.separation * jnp.asarray(unit, dtype)


# ----------------------------------------------------------------------------- mixture algebra

def log_normal(x_NxD, mu_KxD, cov_KxDxD) -> jax.Array:
    """log N(x_n; μ_k, Σ_k), (N, K); eigh-based so a near-singular Σ gives a finite value."""
    D = x_NxD.shape[-1]
    lam_KxD, vec_KxDxD = linalg.eigh(cov_KxDxD)
    lam_KxD = jnp.maximum(lam_KxD, jnp.finfo(lam_KxD.dtype).tiny)
    proj_NxKxD = jnp.einsum("nkd,kde->nke", x_NxD[:, None, :] - mu_KxD[None], vec_KxDxD)
    maha_NxK = jnp.sum(proj_NxKxD**2 / lam_KxD[None], -1)
    return -0.5 * (maha_NxK + jnp.sum(jnp.log(lam_KxD), -1)[None] + D * jnp.log(2 * jnp.pi))


def overlap(mu_AxD, cov_AxDxD, mu_BxD, cov_BxDxD) -> jax.Array:
    """∫ N(x; μ_a, Σ_a) N(x; μ_b, Σ_b) dx = N(μ_a − μ_b; 0, Σ_a + Σ_b), (A, B)."""

    def row(mu_D, cov_DxD):  # N(μ_a; μ_b, Σ_a + Σ_b) for every b
        return log_normal(mu_D[None], mu_BxD, cov_DxD[None] + cov_BxDxD)[0]

    return jnp.exp(jax.vmap(row)(mu_AxD, cov_AxDxD))


def l2sq(p, q) -> jax.Array:
    """∫(p − q)² between two mixtures given as (weights, means, covs), closed form."""

    def cross(a, b):
        return a[0] @ overlap(a[1], a[2], b[1], b[2]) @ b[0]

    return jnp.maximum(cross(p, p) + cross(q, q) - 2 * cross(p, q), 0.0)


# ----------------------------------------------------------------------------- EM

def kmeanspp(key, x_NxD, w_N, K: int) -> jax.Array:
    """K initial centres (K, D) by weighted k-means++ seeding."""
    keys = jax.random.split(key, K)
    p_N = w_N / jnp.sum(w_N)
    first = x_NxD[jax.random.categorical(keys[0], jnp.log(p_N))]
    d2_N = jnp.sum((x_NxD - first) ** 2, -1)
    centres = [first]
    for k in range(1, K):
        score_N = w_N * d2_N
        total = jnp.sum(score_N)
        # all present points on the centres already (duplicated data): fall back to uniform
        prob_N = jnp.where(total > 0, score_N / jnp.where(total > 0, total, 1.0), p_N)
        c = x_NxD[jax.random.categorical(keys[k], jnp.log(prob_N))]
        d2_N = jnp.minimum(d2_N, jnp.sum((x_NxD - c) ** 2, -1))
        centres.append(c)
    return jnp.stack(centres)


def weighted_cov(x_NxD, w_N) -> jax.Array:
    n = jnp.sum(w_N)
    mu = (w_N @ x_NxD) / n
    xc = x_NxD - mu
    return (xc * w_N[:, None]).T @ xc / n


def m_step(x_NxD, w_N, r_NxK, badness_N, reg):
    """Weighted M-step from responsibilities r (N, K) (rows already multiplied by their weight).

    Covariances get the floor reg·I.  A component with mass <= EMPTY_MASS·n is re-seeded at a
    distinct present row of highest ``badness`` (the worst-explained points), with the data's
    covariance and weight 1/n.  Returns (model, number of re-seeded components).
    """
    N, D = x_NxD.shape
    K = r_NxK.shape[1]
    n = jnp.sum(w_N)
    eye = jnp.eye(D, dtype=x_NxD.dtype)
    mass_K = jnp.sum(r_NxK, 0)
    empty_K = mass_K <= EMPTY_MASS * n
    safe_K = jnp.where(empty_K, 1.0, mass_K)
    mu_KxD = (r_NxK.T @ x_NxD) / safe_K[:, None]
    xc_NxKxD = x_NxD[:, None, :] - mu_KxD[None]
    cov_KxDxD = jnp.einsum("nk,nkd,nke->kde", r_NxK, xc_NxKxD, xc_NxKxD) / safe_K[:, None, None]
    _, worst_K = jax.lax.top_k(jnp.where(w_N > 0, badness_N, -jnp.inf), min(K, N))
    rank_K = jnp.clip(jnp.cumsum(empty_K) - 1, 0, worst_K.shape[0] - 1)
    mu_KxD = jnp.where(empty_K[:, None], x_NxD[worst_K[rank_K]], mu_KxD)
    cov_KxDxD = jnp.where(empty_K[:, None, None], weighted_cov(x_NxD, w_N), cov_KxDxD) + reg * eye
    weights_K = jnp.where(empty_K, 1.0 / n, mass_K / n)
    model = {"weights": weights_K / jnp.sum(weights_K), "means": mu_KxD, "covs": cov_KxDxD}
    return model, jnp.sum(empty_K, dtype=jnp.int32)


def kmeans_init(key, x_NxD, w_N, K: int, n_iter: int, reg):
    """Initial model: k-means++ seeds, ``n_iter`` weighted Lloyd iterations, then the M-step of
    the hard assignment (as sklearn's ``init_params="kmeans"``).  Returns (model, re-seeds)."""

    def assign(centres_KxD):
        d2_NxK = jnp.sum((x_NxD[:, None] - centres_KxD[None]) ** 2, -1)
        return jax.nn.one_hot(jnp.argmin(d2_NxK, 1), K, dtype=x_NxD.dtype) * w_N[:, None], jnp.min(d2_NxK, 1)

    def lloyd(centres_KxD, _):
        r_NxK, _ = assign(centres_KxD)
        mass_K = jnp.sum(r_NxK, 0)
        moved_KxD = (r_NxK.T @ x_NxD) / jnp.where(mass_K > 0, mass_K, 1.0)[:, None]
        return jnp.where((mass_K > 0)[:, None], moved_KxD, centres_KxD), None

    centres_KxD, _ = jax.lax.scan(lloyd, kmeanspp(key, x_NxD, w_N, K), None, length=n_iter)
    r_NxK, d2_N = assign(centres_KxD)
    return m_step(x_NxD, w_N, r_NxK, d2_N, reg)


def em(x_NxD, w_N, init: dict, n_iter: int, reg) -> dict:
    """``n_iter`` EM iterations from ``init`` = {"weights", "means", "covs"}; returns the
    model plus ``em_empty`` (re-seeds), ``em_singular`` (floored components) and
    ``loglik`` (mean log-likelihood of the rows under the returned model)."""
    n = jnp.sum(w_N)

    def loglik_rows(model):
        logp_NxK = log_normal(x_NxD, model["means"], model["covs"]) + jnp.log(model["weights"])[None]
        return logp_NxK, logsumexp(logp_NxK, axis=1)

    def step(carry, _):
        model, n_empty = carry
        logp_NxK, ll_N = loglik_rows(model)
        r_NxK = jnp.exp(logp_NxK - ll_N[:, None]) * w_N[:, None]
        model, empty = m_step(x_NxD, w_N, r_NxK, -ll_N, reg)
        return (model, n_empty + empty), None

    (model, n_empty), _ = jax.lax.scan(step, (init, jnp.zeros((), jnp.int32)), None, length=n_iter)
    unfloored_min_K = linalg.eigvalsh(model["covs"])[:, 0] - reg
    _, ll_N = loglik_rows(model)
    return {
        **model,
        "em_empty": n_empty,
        "em_singular": jnp.sum(unfloored_min_K <= reg).astype(jnp.int32),
        "loglik": jnp.sum(w_N * ll_N) / n,
    }


# ----------------------------------------------------------------------------- world

def make_world(cfg: GMMConfig) -> World:
    """The world's functions; ``cfg`` may hold tracers in its ``TRACED`` fields
    (``simulator/traced.py``), which are then used in ``jnp`` arithmetic only."""
    d, K = cfg.d, cfg.K
    dtype = jnp.result_type(float)
    if not traced.is_traced(cfg):
        validate(cfg)
        check_precision(cfg, dtype)
    n_rows = sample_sizes.n_rows(cfg.M, cfg.M_schedule)
    weights = sample_sizes.make_weights(cfg.M, cfg.M_schedule, dtype)
    J = cfg.true_K
    w_star = np.full(J, 1.0 / J) if cfg.true_weights is None else np.asarray(cfg.true_weights, float)
    spread = cfg.spread  # true_mixture's weights and sd, without its numpy means
    eye = jnp.eye(d, dtype=dtype)
    truth_mix = (
        jnp.asarray(w_star, dtype),
        true_means_array(cfg, dtype),
        jnp.broadcast_to(spread**2 * eye, (cfg.true_K, d, d)),
    )
    z_TxD = jnp.asarray(np.random.default_rng(0).standard_normal((cfg.tail_points, d)), dtype)
    reg = cfg.reg
    minority = int(np.argmin(w_star))

    def draw(key, w_K, mu_KxD, root_KxDxD, g):
        k_c, k_z = jax.random.split(key)
        c_N = jax.random.categorical(k_c, jnp.log(w_K), shape=(n_rows,))
        z_NxD = normal.normal(k_z, (n_rows, d), dtype)
        x_NxD = mu_KxD[c_N] + jnp.einsum("nde,ne->nd", root_KxDxD[c_N], z_NxD)
        return {"x": x_NxD, "weight": weights(g)}

    def roots(covs_KxDxD):
        lam, vec = linalg.eigh(covs_KxDxD)
        return vec * jnp.sqrt(jnp.clip(lam, 0.0))[:, None, :]

    def init(key):
        w, mu, cov = truth_mix
        return {"weights": w, "means": mu, "covs": cov}

    def real(key, truth, g):
        return draw(key, truth["weights"], truth["means"], roots(truth["covs"]), g)

    def sample(key, truth, params, g):
        return draw(key, params["weights"], params["means"], roots(params["covs"]), g)

    def point(rows):
        return rows["x"]

    def minority_weight(w_K, mu_KxD, true_mu_JxD):
        nearest_K = jnp.argmin(jnp.sum((mu_KxD[:, None] - true_mu_JxD[None]) ** 2, -1), axis=1)
        return jnp.sum(jnp.where(nearest_K == minority, w_K, 0.0))

    def fit(key, rows, params0):
        x_NxD, w_N = rows["x"], rows["weight"]
        start, empty = kmeans_init(key, x_NxD, w_N, K, cfg.kmeans_iters, reg)
        out = em(x_NxD, w_N, start, cfg.em_iters, reg)
        return {**out, "em_empty": out["em_empty"] + empty}

    def evaluate(truth, params):
        w_K, mu_KxD, cov_KxDxD = params["weights"], params["means"], params["covs"]
        model = (w_K, mu_KxD, cov_KxDxD)
        dist = l2sq(model, (truth["weights"], truth["means"], truth["covs"]))
        near_KxJ = jnp.sum((mu_KxD[:, None] - truth["means"][None]) ** 2, -1) <= cfg.mode_radius**2
        kept_J = jnp.any(near_KxJ & (w_K >= cfg.mode_weight)[:, None], 0)
        x_KxTxD = mu_KxD[:, None] + jnp.einsum("kde,te->ktd", roots(cov_KxDxD), z_TxD)
        d2_KxTxJ = jnp.sum((x_KxTxD[:, :, None] - truth["means"][None, None]) ** 2, -1)
        outside_KxT = jnp.all(d2_KxTxJ > (cfg.tail_k * spread) ** 2, -1)
        out = {
            "test_error": dist,
            "l2sq": dist,
            "modes_kept": jnp.sum(kept_J).astype(jnp.int32),
            "tail_share": w_K @ jnp.mean(outside_KxT, 1),
            "loglik": params["loglik"],
            "em_empty": params["em_empty"],
            "em_singular": params["em_singular"],
            "minority_weight": minority_weight(w_K, mu_KxD, truth["means"]),
        }
        if cfg.record_params:
            out.update(weights=w_K, means=mu_KxD, covs=cov_KxDxD)
        return out

    return World("gmm", n_rows, init, real, fit, sample, evaluate, point=point)


Config = GMMConfig
