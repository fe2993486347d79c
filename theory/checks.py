"""Argument checks shared by the regression and token-editing theory: each raises
ValueError naming the argument, its value and what is allowed."""

from __future__ import annotations

import math

import numpy as np


def check_sizes(d: int, T: int) -> str | None:
    """Raise for T ≤ d+1 (OLS singular or E‖ŵ−w*‖² = ∞); return a warning text for
    T ≤ d+3 (finite mean, infinite variance: CLT tolerances are invalid), else None.
    theory/derivations.md §1."""
    if not (isinstance(d, (int, np.integer)) and d >= 1):
        raise ValueError(f"d={d!r} must be a positive whole number of features")
    if not (isinstance(T, (int, np.integer)) and T >= 1):
        raise ValueError(f"T={T!r} must be a positive whole number of rows")
    if T <= d + 1:
        raise ValueError(
            f"T must be at least d+2 for a finite expected OLS error; got T={T}, d={d} (need T >= {d + 2})"
        )
    if T <= d + 3:
        return (
            f"T={T} <= d+3={d + 3}: the OLS test error has a finite mean but an infinite variance; "
            "Monte Carlo standard errors are not reliable"
        )
    return None


def check_G(G) -> int:
    if isinstance(G, bool) or not (isinstance(G, (int, np.integer)) and G >= 0):
        raise ValueError(f"G={G!r} must be a whole number of generations >= 0")
    return int(G)


def check_sigma2(sigma2) -> float:
    if not (np.isscalar(sigma2) and math.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2={sigma2!r} must be a finite number >= 0")
    return float(sigma2)


def check_fraction(name: str, p) -> float:
    if p is None or not (np.isscalar(p) and math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"{name}={p!r} must be a number in [0, 1]")
    return float(p)


def check_choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not known; allowed: {', '.join(allowed)}")
    return value


def check_cov(cov, d: int) -> np.ndarray:
    """Σ as a (d, d) positive definite array; None means I_d."""
    if cov is None:
        return np.eye(d)
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (d, d) or not np.allclose(cov, cov.T):
        raise ValueError(f"cov must be a symmetric ({d}, {d}) array; got shape {cov.shape}")
    if np.linalg.eigvalsh(cov)[0] <= 0:
        raise ValueError("cov must be positive definite")
    return cov
