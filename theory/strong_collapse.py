"""Strong model collapse at finite n: OLS on a mixture of real and shifted rows
(Dohmatob, Feng, Subramonian & Kempe, arXiv 2410.04840; exact form theory/curation.md §4).

One (non-iterative) training set of n rows, x ~ N(0, Σ) in d dimensions: n₁ real rows
y = xᵀw₁ + ε₁ (variance σ₁²) and n₂ = n − n₁ shifted ("synthetic") rows y = xᵀ(w₁ + δ) + ε₂
(variance σ₂²); OLS on all n rows; test error on the real task E‖ŵ − w₁‖²_Σ.  p_i = n_i/n.
Paper symbols: p₁, p₂ as here; the paper's label mismatch c² is δᵀΣδ for a fixed shift δ.
"""

from __future__ import annotations

import math

import numpy as np

from collapse_sim.theory.checks import check_cov, check_sizes
from collapse_sim.theory.regression import mix_beta


def _check_variance(name, x) -> float:
    if not (np.isscalar(x) and math.isfinite(x) and x >= 0):
        raise ValueError(f"{name}={x!r} must be a finite number >= 0")
    return float(x)


def _check_real_rows(n_real, n) -> int:
    if isinstance(n_real, bool) or not isinstance(n_real, (int, np.integer)) or not 0 <= n_real <= n:
        raise ValueError(f"n_real={n_real!r} must be a whole number of real rows in [0, n={n}]")
    return int(n_real)


def _check_share(real_share) -> float:
    if not (np.isscalar(real_share) and math.isfinite(real_share) and 0 <= real_share <= 1):
        raise ValueError(f"real_share={real_share!r} must be in [0, 1]")
    return float(real_share)


def shift_norm2(delta, cov=None) -> float:
    """δᵀΣδ for the label shift δ (d,) and Σ (None: I_d)."""
    delta = np.asarray(delta, dtype=np.float64)
    if delta.ndim != 1:
        raise ValueError(f"delta must be a 1-D array of d coefficients; got shape {delta.shape}")
    cov = check_cov(cov, delta.size)
    return float(delta @ cov @ delta)


def shift_factor(n, n_real, d) -> float:
    """β(n₁, n, d) with E[BᵀΣB] = βΣ for B = (XᵀX)⁻¹X₂ᵀX₂ (X₂ the shifted rows):
        β = (1−p)² + p(1−p)[2/(n+2) + n(n+1)(d−1)/((n−1)(n+2)(n−d−1))],  p = n₁/n.
    The same Wishart moment as the mixed-fresh regression recursion, reused from
    theory/regression.py ``mix_beta`` (its p is the real share there too: B is built from the other rows).
    Derivation theory/curation.md §4.  STATUS: exact."""
    check_sizes(d, n)
    n_real = _check_real_rows(n_real, n)
    return mix_beta(d, n, n_real / n)


def mixture_error(n, n_real, d, sigma2_real, sigma2_shift, shift_sq):
    """E‖ŵ − w₁‖²_Σ = (p₁σ₁² + p₂σ₂²)·d/(n−d−1) + β(n₁, n, d)·δᵀΣδ, any Σ ≻ 0 (whitening makes
    both terms free of Σ), n ≥ d+2.  ``shift_sq`` = δᵀΣδ (see ``shift_norm2``).  The small-d/n form
    of arXiv 2410.04840 Cor. 1 is σ²d/n + p₂²c²; this is its exact finite-n OLS counterpart.
    theory/curation.md §4.  STATUS: exact."""
    check_sizes(d, n)
    n_real = _check_real_rows(n_real, n)
    s1, s2 = _check_variance("sigma2_real", sigma2_real), _check_variance("sigma2_shift", sigma2_shift)
    shift_sq = _check_variance("shift_sq", shift_sq)
    p1 = n_real / n
    return (p1 * s1 + (1 - p1) * s2) * d / (n - d - 1) + shift_factor(n, n_real, d) * shift_sq


def mixture_error_curve(ns, real_share, d, sigma2_real, sigma2_shift, shift_sq):
    """``mixture_error`` over an array of total sizes n (each ≥ d+2) at a fixed real share, with
    n₁ = round(real_share·n) real rows (Python's round, as the simulator's mix regime).  Returns an
    array shaped like ``ns``.  As n → ∞ it tends to ``plateau``: the shift term does not vanish.
    theory/curation.md §4.  STATUS: exact (at each n)."""
    p = _check_share(real_share)
    ns = np.asarray(ns)
    if ns.size == 0 or not np.all(ns == np.round(ns)):
        raise ValueError(f"ns={ns!r} must hold whole numbers of rows")
    flat = [mixture_error(int(n), int(round(p * int(n))), d, sigma2_real, sigma2_shift, shift_sq) for n in ns.ravel()]
    return np.asarray(flat, dtype=np.float64).reshape(ns.shape)


def plateau(real_share, shift_sq):
    """lim_{n→∞} E‖ŵ − w₁‖²_Σ = p₂² δᵀΣδ at fixed d and p₂ = 1 − real_share (β → (1−p₁)², the noise
    term → 0): strong model collapse (arXiv 2410.04840 Cor. 1).  theory/curation.md §4.
    STATUS: large-sample limit."""
    p = _check_share(real_share)
    return (1 - p) ** 2 * _check_variance("shift_sq", shift_sq)
