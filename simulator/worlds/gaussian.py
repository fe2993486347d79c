"""Gaussian world: refit N(μ, Σ) to samples of the previous fit (Shumailov et al. 2024,
Nature 631:755, Thm 3.1; Kazdan et al. 2024, arXiv 2410.16713, ``fit_gaussians``).

The truth is N(0, Σ*) in d dimensions with Σ* = σ² diag(λ), λ isotropic or a
power law λ_i ∝ i^-power normalised to mean 1 (tr Σ* = d σ²).  One row is one
point x (D,).  Generation g draws M_g points (see ``sample_sizes``) from the
previous fit, or from the truth at generation 0.

Fit: the weighted mean and covariance, μ̂ = Σ w x / n and Σ̂ = Σ w (x−μ̂)(x−μ̂)ᵀ / m
with n = Σ w and m = n − 1 (``estimator="unbiased"``, Shumailov) or m = n
(``"mle"``, Kazdan's ``np.cov(bias=True)``).  Under accumulate the pool is
fitted as one sample, as in Kazdan et al.  A model keeps Σ̂'s eigendecomposition,
computed once by the fit: its sampler's square root, its log-determinant and (isotropic
Σ*, where the eigenvalues of Σ*^½ Σ̂ Σ*^½ are σ² times Σ̂'s) its W₂ all read it.

Metrics (against the truth, i.e. the data of generation 0; Kazdan's Σ_0):

- ``test_error`` = ``w2sq``: W₂²(N(μ̂, Σ̂), N(0, Σ*)) = ||μ̂||² + tr(Σ̂ + Σ* − 2(Σ*^½ Σ̂ Σ*^½)^½)
  (Gelbrich / Dowson–Landau; exact between Gaussians);
- ``mean_error`` = ||μ̂ − μ*||²;
- ``trace_ratio`` = tr Σ̂ / tr Σ*, ``logdet_change`` = log det Σ̂ − log det Σ*;
- ``var`` = tr Σ̂ / d and ``std`` = √var (in 1-D: σ̂² and σ̂);
- ``tail_share``: mass of the fit beyond k true standard deviations, averaged
  over coordinates, mean_j P(|x_j − μ*_j| > k σ*_j) under the fitted marginal
  N(μ̂_j, Σ̂_jj) (exact; the truth has 2Φ(−k));
- ``trace_cov`` = tr Σ̂ (the diversity a curated loop loses) and ``mean`` = the
  average coordinate of μ̂ (in 1-D: μ̂).

Sampling temperature τ (``temperature``): synthetic rows are drawn from N(μ̂, τ²Σ̂)
(τ < 1 the quality-biased sampling of Alemohammad et al., arXiv 2307.01850; τ > 1
the flattening of Marchi et al., arXiv 2404.02325; theory/temperature.py); real rows
are never tempered, and τ = 1 draws exactly what an untempered world draws.

Numerical range: under replace the fitted covariance shrinks unevenly, its
condition number growing geometrically in g, the faster the smaller M − d is
compared with d.  Once it passes
1/eps (about 1e16 in float64, 1e7 in float32) the smallest eigenvalues are lost
to rounding, ``logdet_change`` becomes NaN and the run stops with a message.
In d = 10 that happens near generation 70 at M = 32; keep M well above d for
long runs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from collapse_sim.simulator import linalg, normal, traced
from collapse_sim.simulator.world import World, check_temperature
from collapse_sim.simulator.worlds import checks, sample_sizes

ESTIMATORS = ("unbiased", "mle")
SPECTRA = ("isotropic", "power_law")
SPECTRUM_COND_MAX = 1e8  # largest allowed condition number of Σ*, d^power
COND_TOL = 1e-2  # largest d^power · eps a precision is asked to resolve


@dataclasses.dataclass
class GaussianConfig:
    """d dimensions; M samples per generation (or M_schedule, see ``sample_sizes``);
    estimator unbiased|mle; truth N(0, sigma² diag(spectrum)); tail_k: the k of
    the tail share; temperature: τ of the synthetic draws N(μ̂, τ²Σ̂), a finite
    number > 0."""

    name: str = "gaussian"
    d: int = 1
    M: int = 100
    M_schedule: Optional[List[int]] = None
    estimator: str = "unbiased"
    sigma: float = 1.0
    spectrum: str = "isotropic"
    power: float = 1.0
    tail_k: float = 2.0
    temperature: float = 1.0

    @property
    def TRACED(self) -> tuple:
        """Arguments of the compiled run (simulator/traced.py): numbers that set no shape
        (power only where the power-law spectrum reads it)."""
        return ("sigma", "tail_k", "temperature") + (("power",) if self.spectrum == "power_law" else ())

    def __post_init__(self):
        validate(self)
        check_temperature(self.temperature)


def validate(cfg: GaussianConfig) -> None:
    if isinstance(cfg.d, bool) or not isinstance(cfg.d, int) or cfg.d < 1:
        raise ValueError(f"world.d={cfg.d!r} must be a whole number of dimensions >= 1")
    if cfg.estimator not in ESTIMATORS:
        raise ValueError(f"world.estimator={cfg.estimator!r} is not known; allowed: {', '.join(ESTIMATORS)}")
    if cfg.spectrum not in SPECTRA:
        raise ValueError(f"world.spectrum={cfg.spectrum!r} is not known; allowed: {', '.join(SPECTRA)}")
    # A covariance from M points has rank <= M-1: d+1 points make it invertible, and the
    # unbiased divisor M-1 needs M >= 2.
    need = max(2, cfg.d + 1)
    why = (
        "a variance needs 2 points; the unbiased estimator divides by M-1"
        if cfg.d == 1
        else f"a {cfg.d}-dimensional covariance needs d+1 points to be invertible"
    )
    sample_sizes.validate(cfg.M, cfg.M_schedule, need, why)
    checks.number("sigma", cfg.sigma, low=0, low_open=True)
    checks.number("power", cfg.power, low=0)
    checks.number("tail_k", cfg.tail_k, low=0, low_open=True)
    if cfg.spectrum == "power_law" and cfg.d > 1 and cfg.power > max_power(cfg.d, SPECTRUM_COND_MAX):
        raise ValueError(
            f"world.power={cfg.power!r} with world.d={cfg.d}: the power-law spectrum's eigenvalues would span "
            f"d^power (more than {SPECTRUM_COND_MAX:.0e}); allowed: 0 <= world.power <= "
            f"log({SPECTRUM_COND_MAX:.0e}) / log(d) = {max_power(cfg.d, SPECTRUM_COND_MAX):.4g} at d={cfg.d}"
        )


def max_power(d: int, cond: float) -> float:
    """Largest power whose spectrum has condition number d^power <= cond."""
    return math.inf if d <= 1 else math.log(cond) / math.log(d)


def check_precision(cfg: GaussianConfig, dtype) -> None:
    """The run's precision must hold σ² (and the data's squares) and resolve Σ*'s smallest
    eigenvalue next to its largest: d^power · eps <= COND_TOL, since the fitted covariance's
    eigenvalues (logdet_change, w2sq) are only that accurate."""
    checks.representable("sigma", cfg.sigma, dtype, small=True, factor=cfg.d,
                         what="squares of size d · sigma²")
    eps = float(np.finfo(dtype).eps)
    if cfg.spectrum == "power_law" and cfg.d > 1 and cfg.power > max_power(cfg.d, COND_TOL / eps):
        name = np.dtype(dtype).name
        raise ValueError(
            f"world.power={cfg.power!r} with world.d={cfg.d} in {name}: Σ*'s eigenvalues span d^power = "
            f"{float(cfg.d) ** cfg.power:.3g}, more than run.precision={name} resolves ({COND_TOL / eps:.3g}); "
            f"allowed: world.power <= {max_power(cfg.d, COND_TOL / eps):.4g} in {name} at d={cfg.d}, "
            f"or run.precision=float64"
        )


def true_covariance_diag(cfg: GaussianConfig) -> np.ndarray:
    """Diagonal of Σ* = σ² diag(λ), λ normalised to mean 1."""
    return cfg.sigma**2 * _unit_spectrum(cfg)


def _unit_spectrum(cfg) -> np.ndarray:
    """diag(λ) of Σ* at σ = 1, as numpy (:func:`_unit_spectrum_array` in ``jnp``)."""
    if cfg.spectrum == "isotropic":
        return np.ones(cfg.d)
    lam = np.arange(1, cfg.d + 1, dtype=float) ** (-cfg.power)
    return lam * cfg.d / lam.sum()


def _unit_spectrum_array(cfg, dtype) -> jax.Array:
    """:func:`_unit_spectrum` in ``jnp`` (``power`` may be traced), equal to it up to rounding."""
    if cfg.spectrum == "isotropic":
        return jnp.ones((cfg.d,), dtype)
    lam = jnp.arange(1, cfg.d + 1, dtype=dtype) ** (-cfg.power)
    return lam * cfg.d / jnp.sum(lam)


def psd_sqrt(cov_DxD: jax.Array) -> jax.Array:
    """Symmetric square root by eigh (eigenvalues clipped at 0): robust where Cholesky fails."""
    return _root(*linalg.eigh(cov_DxD))


def _root(evals_D, evecs_DxD) -> jax.Array:
    return (evecs_DxD * jnp.sqrt(jnp.clip(evals_D, 0.0))) @ evecs_DxD.T


def w2sq(mu_D, cov_DxD, mu_star_D, cov_star_diag_D, evals_D=None) -> jax.Array:
    """W₂² between N(mu, cov) and N(mu*, diag(cov*)), closed form (Gelbrich).  ``evals_D``,
    cov's eigenvalues, spare an eigendecomposition where cov* is isotropic (cov* = s I: the
    eigenvalues of cov*^½ cov cov*^½ are s·evals; pass them only then)."""
    root = jnp.sqrt(cov_star_diag_D)
    if evals_D is None:
        cross_tr = jnp.sum(jnp.sqrt(jnp.clip(linalg.eigvalsh(root[:, None] * cov_DxD * root[None, :]), 0.0)))
    else:
        cross_tr = root[0] * jnp.sum(jnp.sqrt(jnp.clip(evals_D, 0.0)))
    tr = jnp.trace(cov_DxD) + jnp.sum(cov_star_diag_D) - 2.0 * cross_tr
    return jnp.sum((mu_D - mu_star_D) ** 2) + jnp.maximum(tr, 0.0)


def spectral(params) -> tuple:
    """(eigenvalues, eigenvectors) of a model's covariance: those its fit stored (one
    eigendecomposition a model serves its metrics and its sampler), else computed."""
    if "evecs" in params:
        return params["evals"], params["evecs"]
    return linalg.eigh(params["cov"])


def model(mu_D, cov_DxD) -> dict:
    """A fitted model: mean, covariance and the covariance's eigendecomposition."""
    evals_D, evecs_DxD = linalg.eigh(cov_DxD)
    return {"mu": mu_D, "cov": cov_DxD, "evals": evals_D, "evecs": evecs_DxD}


def make_world(cfg: GaussianConfig) -> World:
    """The world's functions; ``cfg`` may hold tracers in its ``TRACED`` fields
    (``simulator/traced.py``), which are then used in ``jnp`` arithmetic only."""
    d = cfg.d
    dtype = jnp.result_type(float)
    if not traced.is_traced(cfg):
        validate(cfg)
        check_precision(cfg, dtype)
    n_rows = sample_sizes.n_rows(cfg.M, cfg.M_schedule)
    weights = sample_sizes.make_weights(cfg.M, cfg.M_schedule, dtype)
    unbiased = cfg.estimator == "unbiased"
    cov_star_D = cfg.sigma**2 * _unit_spectrum_array(cfg, dtype)  # σ² diag(λ), as true_covariance_diag
    k = cfg.tail_k
    tau = cfg.temperature
    tiny = jnp.finfo(dtype).tiny
    isotropic = cfg.spectrum == "isotropic"

    def draw(key, mu_D, root_DxD, g):
        z_NxD = normal.normal(key, (n_rows, d), dtype)
        return {"x": mu_D + z_NxD @ root_DxD.T, "weight": weights(g)}

    def init(key):
        return {"mu": jnp.zeros((d,), dtype), "cov_diag": cov_star_D}

    def real(key, truth, g):
        return draw(key, truth["mu"], jnp.diag(jnp.sqrt(truth["cov_diag"])), g)

    def sample(key, truth, params, g):
        root = _root(*spectral(params))
        return draw(key, params["mu"], tau * root, g)  # τ = 1: exactly root

    def point(rows):
        return rows["x"]

    def average(w, a, b):
        """The model w·a + (1−w)·b: mean and covariance averaged (regime weighted)."""
        return model(w * a["mu"] + (1 - w) * b["mu"], w * a["cov"] + (1 - w) * b["cov"])

    def fit(key, rows, params0):
        w_N, x_NxD = rows["weight"], rows["x"]
        n = jnp.sum(w_N)
        mu_D = (w_N @ x_NxD) / n
        xc_NxD = x_NxD - mu_D
        scatter_DxD = (xc_NxD * w_N[:, None]).T @ xc_NxD
        return model(mu_D, scatter_DxD / (n - 1.0 if unbiased else n))

    def evaluate(truth, params):
        mu_D, cov_DxD = params["mu"], params["cov"]
        mu_star, cov_star = truth["mu"], truth["cov_diag"]
        evals = spectral(params)[0]
        var = jnp.trace(cov_DxD) / d
        sd_D = jnp.maximum(jnp.sqrt(jnp.clip(jnp.diagonal(cov_DxD), 0.0)), tiny)
        edge_D, off_D = k * jnp.sqrt(cov_star), mu_D - mu_star
        tail_D = ndtr((-edge_D - off_D) / sd_D) + ndtr((off_D - edge_D) / sd_D)
        dist = w2sq(mu_D, cov_DxD, mu_star, cov_star, evals if isotropic else None)
        return {
            "test_error": dist,
            "w2sq": dist,
            "mean_error": jnp.sum((mu_D - mu_star) ** 2),
            "trace_ratio": jnp.trace(cov_DxD) / jnp.sum(cov_star),
            "logdet_change": jnp.sum(jnp.log(evals)) - jnp.sum(jnp.log(cov_star)),
            "var": var,
            "std": jnp.sqrt(var),
            "tail_share": jnp.mean(tail_D),
            "trace_cov": jnp.trace(cov_DxD),
            "mean": jnp.mean(mu_D),
        }

    return World("gaussian", n_rows, init, real, fit, sample, evaluate, point=point, average=average)


Config = GaussianConfig
