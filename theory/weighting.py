"""Weighted fresh data: averaging a fit on fresh real data with a fit on synthetic data
(He, Xu & Cheng, arXiv 2502.18049; theory/curation.md §3).

Every generation t ≥ 1 fits θ_t = w·θ̂_real + (1−w)·θ̂_syn, where θ̂_real is fitted on n fresh real
rows and θ̂_syn on m synthetic rows drawn from θ_{t−1} (a parameter average, not pooling the rows).
Generation 0 is the fit on n real rows.  Names and symbols: ``weight`` = w (the weight on the real
fit), ``real_to_synthetic`` = k = n/m (He et al.'s k).  Pooling the n + m rows instead is the
weight k/(1+k).

Both settings here reduce to one scalar recursion in e_t, the expected error of θ_t:

    e_{t+1} = w² v_real + (1−w)² (e_t + v_syn),   e_0 = v_real,

with v_real (v_syn) the expected error of one fit on the real (synthetic) rows: because the synthetic
fit is unbiased for θ_{t−1} and its noise, the real fit's noise and e_t are independent.
- Gaussian mean, variance σ² known: v_real = σ²/n, v_syn = σ²/m = kσ²/n.
- OLS, x ~ N(0, Σ), T real rows, m synthetic rows labelled x ᵀθ_{t−1} + noise: v = σ²d/(rows − d − 1)
  in the test norm ‖·‖_Σ, for a fixed design (one design per source for all generations, expectation
  over it) or a fresh one.
"""

from __future__ import annotations

import math

import numpy as np

from collapse_sim.theory.checks import check_G
from collapse_sim.theory.ols import ols_error


def _check_weight(weight):
    w = np.asarray(weight, dtype=np.float64)
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w > 1):
        raise ValueError(f"weight={weight!r} must be in [0, 1] (the weight on the fit to real data)")
    return w


def _check_ratio(real_to_synthetic):
    k = np.asarray(real_to_synthetic, dtype=np.float64)
    if k.size == 0 or not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError(f"real_to_synthetic={real_to_synthetic!r} must be a finite number > 0 (k = n/m)")
    return k


def _check_positive(name, x) -> float:
    if not (np.isscalar(x) and math.isfinite(x) and x > 0):
        raise ValueError(f"{name}={x!r} must be a finite number > 0")
    return float(x)


# --------------------------------------------------------------------------- generic recursion


def error_curve(G, weight, v_real, v_syn):
    """e_g, g = 0..G: e_0 = v_real, e_{g+1} = w² v_real + (1−w)²(e_g + v_syn); closed form
    e_g = a^g e_0 + b(1 − a^g)/(1 − a), a = (1−w)², b = w² v_real + (1−w)² v_syn (w = 0: e_0 + g v_syn).
    theory/curation.md §3.  STATUS: exact."""
    G = check_G(G)
    w = float(_check_weight(weight))
    v_real, v_syn = _check_positive("v_real", v_real), _check_positive("v_syn", v_syn)
    g = np.arange(G + 1, dtype=np.float64)
    if w == 0:
        return v_real + g * v_syn
    a = (1 - w) ** 2
    b = w**2 * v_real + a * v_syn
    return a**g * v_real + b * (1 - a**g) / (1 - a)


def error_limit(weight, v_real, v_syn):
    """lim_g e_g = [w² v_real + (1−w)² v_syn] / (w(2−w)) (∞ at w = 0), vectorised over weight.
    theory/curation.md §3.  STATUS: exact (limit g → ∞)."""
    w = _check_weight(weight)
    v_real, v_syn = _check_positive("v_real", v_real), _check_positive("v_syn", v_syn)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (w**2 * v_real + (1 - w) ** 2 * v_syn) / (w * (2 - w))
    return np.where(w == 0, np.inf, out)


def golden_weight(real_to_synthetic):
    """w*(k) = (√(k² + 4k) − k)/2, the root in (0, 1) of w² + kw − k = 0, which minimises the
    stationary error [w² + k(1−w)²]/(w(2−w)); there the error equals w*·v_real exactly
    (k = 1: w* = (√5 − 1)/2).  He, Xu & Cheng, arXiv 2502.18049; derivation theory/curation.md §3.
    For OLS pass k = v_syn/v_real.  Written as 2k/(k + √(k² + 4k)) to avoid cancellation at large k.
    STATUS: exact."""
    k = _check_ratio(real_to_synthetic)
    return 2 * k / (k + np.sqrt(k**2 + 4 * k))


def pooling_weight(real_to_synthetic):
    """k/(1+k) = n/(n+m): the weight on the real rows when the n + m rows are pooled into one fit
    (the Gaussian mean; OLS only when both designs are the same kind, as E[XᵀX] ∝ rows).
    theory/curation.md §3.  STATUS: exact."""
    k = _check_ratio(real_to_synthetic)
    return k / (1 + k)


# --------------------------------------------------------------------------- Gaussian mean


def gaussian_mean_curve(G, weight, real_to_synthetic, n, sigma2=1.0):
    """E(μ_g − μ)², g = 0..G, for the weighted Gaussian-mean loop with known variance σ²:
    ``error_curve`` with v_real = σ²/n, v_syn = kσ²/n.  theory/curation.md §3.  STATUS: exact."""
    k = float(_check_ratio(real_to_synthetic))
    n = _check_positive("n", n)
    sigma2 = _check_positive("sigma2", sigma2)
    return error_curve(G, weight, sigma2 / n, k * sigma2 / n)


def gaussian_mean_limit(weight, real_to_synthetic, n, sigma2=1.0):
    """E(μ_∞ − μ)² = (σ²/n)[k(1−w)² + w²]/(w(2−w)) (He, Xu & Cheng, arXiv 2502.18049; derivation
    theory/curation.md §3).  At w = w*(k) it equals w*σ²/n.  STATUS: exact (limit g → ∞)."""
    k = float(_check_ratio(real_to_synthetic))
    n = _check_positive("n", n)
    sigma2 = _check_positive("sigma2", sigma2)
    return error_limit(weight, sigma2 / n, k * sigma2 / n)


# --------------------------------------------------------------------------- fixed-design OLS


def _ols_errors(d, T, m, sigma2):
    if isinstance(m, (int, np.integer)) and isinstance(d, (int, np.integer)) and m < d + 2:
        raise ValueError(f"m={m} synthetic rows must be at least d+2={d + 2} for a finite expected OLS error")
    return ols_error(sigma2, d, T), ols_error(sigma2, d, m)


def ols_curve(G, weight, d, T, m, sigma2=1.0):
    """E‖ŵ_g − w*‖²_Σ, g = 0..G, for OLS with the two fits averaged: ŵ_g = w·OLS(T real rows,
    fresh labels) + (1−w)·OLS(m rows labelled x ᵀŵ_{g−1} + noise): ``error_curve`` with
    v_real = σ²d/(T−d−1), v_syn = σ²d/(m−d−1) (fixed or fresh design, any Σ ≻ 0; k = 1 with one
    shared design is m = T).  theory/curation.md §3.  STATUS: exact."""
    v_real, v_syn = _ols_errors(d, T, m, _check_positive("sigma2", sigma2))
    return error_curve(G, weight, v_real, v_syn)


def ols_limit(weight, d, T, m, sigma2=1.0):
    """lim_g E‖ŵ_g − w*‖²_Σ = [w² v_real + (1−w)² v_syn]/(w(2−w)); with m = T (k = 1)
    v[(1−w)² + w²]/(w(2−w)), minimum w*v = 0.618 v at w* = 0.618.  The optimal weight for general m
    is golden_weight(v_syn/v_real).  theory/curation.md §3.  STATUS: exact (limit g → ∞)."""
    v_real, v_syn = _ols_errors(d, T, m, _check_positive("sigma2", sigma2))
    return error_limit(weight, v_real, v_syn)
