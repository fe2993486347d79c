"""Linear-regression world (Dohmatob et al. 2024, arXiv 2402.07712; Gerstgrasser
et al. 2024, arXiv 2404.01413).

Features x ~ N(0, Σ) in d dimensions, Σ = diag(λ) (isotropic, or a power law
λ_i ∝ i^-power normalised to tr Σ = d), labels y = xᵀw* + ε with ε ~ N(0, σ²)
and w* ~ N(0, I/d).  One training set is T rows.  With ``design="fixed"`` (the
default, as in Gerstgrasser et al. and ToEdit §4.2) the same design X is reused
in every generation and synthetic labels are X ŵ_{n-1} + fresh noise; with
``design="fresh"`` every training set draws new features.

Fit: weighted ridge, ŵ = (XᵀWX + λ n I)⁺ XᵀW y with n = Σ weights (λ = 0 is
OLS; a rank-deficient Gram matrix gives the minimum-norm solution).  Test error
is exact, E_test(ŵ) = (ŵ − w*)ᵀ Σ (ŵ − w*), the excess risk of all three papers.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator import linalg
from collapse_sim.simulator.world import World

DESIGNS = ("fixed", "fresh")
SPECTRA = ("isotropic", "power_law")


@dataclasses.dataclass
class RegressionConfig:
    """d features, T rows per training set, label noise standard deviation sigma,
    ridge penalty (0 = OLS), design fixed|fresh, spectrum isotropic|power_law."""

    name: str = "regression"
    d: int = 10
    T: int = 40
    sigma: float = 1.0
    ridge: float = 0.0
    design: str = "fixed"
    spectrum: str = "isotropic"
    power: float = 1.0

    def __post_init__(self):
        validate(self)


def validate(cfg: RegressionConfig) -> None:
    if not (isinstance(cfg.d, int) and cfg.d >= 1):
        raise ValueError(f"world.d={cfg.d!r} must be a positive whole number of features")
    if not (isinstance(cfg.T, int) and cfg.T >= 1):
        raise ValueError(f"world.T={cfg.T!r} must be a positive whole number of rows")
    if cfg.design not in DESIGNS:
        raise ValueError(f"world.design={cfg.design!r} is not known; allowed: {', '.join(DESIGNS)}")
    if cfg.spectrum not in SPECTRA:
        raise ValueError(f"world.spectrum={cfg.spectrum!r} is not known; allowed: {', '.join(SPECTRA)}")
    if not (cfg.sigma >= 0 and math.isfinite(cfg.sigma)):
        raise ValueError(f"world.sigma={cfg.sigma!r} must be a finite number >= 0")
    if not (cfg.ridge >= 0 and math.isfinite(cfg.ridge)):
        raise ValueError(f"world.ridge={cfg.ridge!r} must be a finite number >= 0")
    if cfg.ridge == 0 and cfg.T <= cfg.d + 1:
        raise ValueError(
            f"world.T={cfg.T} with world.d={cfg.d}: ordinary least squares needs T >= d+2 "
            f"(at T <= d+1 it is singular or its expected test error is infinite); "
            f"use T >= {cfg.d + 2} or a ridge penalty world.ridge > 0"
        )
    if cfg.ridge == 0 and cfg.T <= cfg.d + 3:
        warnings.warn(
            f"world.T={cfg.T} <= d+3={cfg.d + 3}: the OLS test error has a finite mean but an "
            "infinite variance, so Monte Carlo confidence intervals are not valid here",
            stacklevel=3,
        )


def spectrum(cfg: RegressionConfig) -> np.ndarray:
    """Eigenvalues of Σ (diagonal), normalised to tr Σ = d."""
    if cfg.spectrum == "isotropic":
        return np.ones(cfg.d)
    lam = np.arange(1, cfg.d + 1, dtype=float) ** (-cfg.power)
    return lam * cfg.d / lam.sum()


def make_world(cfg: RegressionConfig) -> World:
    validate(cfg)
    d, T, sigma, ridge = cfg.d, cfg.T, cfg.sigma, cfg.ridge
    fixed = cfg.design == "fixed"
    dtype = jnp.result_type(float)
    lam = jnp.asarray(spectrum(cfg), dtype)

    def features(key):
        return jax.random.normal(key, (T, d), dtype) * jnp.sqrt(lam)

    def labels(key, x, w):
        return x @ w + sigma * jax.random.normal(key, (T,), dtype)

    def init(key):
        k_w, k_x = jax.random.split(key)
        w_star = jax.random.normal(k_w, (d,), dtype) / jnp.sqrt(d)
        return {"w_star": w_star, "x": features(k_x)}

    def table(x, y):
        return {"x": x, "y": y, "weight": jnp.ones((T,), dtype)}

    def draw(key, truth, w):
        if fixed:
            return table(truth["x"], labels(key, truth["x"], w))
        k_x, k_y = jax.random.split(key)
        x = features(k_x)
        return table(x, labels(k_y, x, w))

    def real(key, truth, g):
        return draw(key, truth, truth["w_star"])

    def sample(key, truth, params, g):
        return draw(key, truth, params["w"])

    def edit(key, truth, params, rows, eligible):
        """ToEdit's regression model (§4.2): eligible rows get a fresh label from
        the current model, x ŵ + ε; the others keep theirs."""
        y_new = labels(key, rows["x"], params["w"])
        out = {**rows, "y": jnp.where(eligible, y_new, rows["y"])}
        share = jnp.mean(eligible.astype(dtype))
        return out, {"edited_share": share}

    def fit(key, rows, base):
        w = rows["weight"]
        x, y = rows["x"], rows["y"]
        n = jnp.sum(w)
        gram = x.T @ (w[:, None] * x)
        evals, evecs = linalg.eigh(gram)
        if ridge > 0:
            inv = 1.0 / (evals + ridge * n)
        else:
            cutoff = jnp.max(evals) * d * jnp.finfo(dtype).eps
            inv = jnp.where(evals > cutoff, 1.0 / jnp.where(evals > cutoff, evals, 1.0), 0.0)
        w_hat = evecs @ (inv * (evecs.T @ (x.T @ (w * y))))
        return {"w": w_hat, "gram_min_eig": evals[0] / n}

    def evaluate(truth, params):
        e = params["w"] - truth["w_star"]
        return {
            "test_error": jnp.sum(lam * e * e),
            "param_error": jnp.sum(e * e),
            "gram_min_eig": params["gram_min_eig"],
        }

    return World("regression", T, init, real, fit, sample, evaluate, edit)
Config = RegressionConfig
