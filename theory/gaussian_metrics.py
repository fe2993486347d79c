"""Distances and tail masses of Gaussians, plain numpy/scipy: what the Gaussian world measures
of a fitted N(mu_hat, cov_hat) against the truth N(mu, cov) (simulator/worlds/gaussian.py's
``w2sq`` and ``tail_share``; the chains of these fits are in theory/gaussian.py).

- ``w2sq_gaussians``: the squared 2-Wasserstein distance between two Gaussians,
  ||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov2^{1/2} cov1 cov2^{1/2})^{1/2})
  (Dowson & Landau 1982; Gelbrich 1990), closed form.
- ``tail_mass``: the mass of N(mu_hat, cov_hat) outside the true k-sigma ellipsoid,
  a noncentral chi-square when cov_hat is proportional to cov, else a generalised
  chi-square whose tail is Imhof's (1961) inversion integral.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, linalg, stats


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + np.swapaxes(a, -1, -2)) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


def w2sq_gaussians(mu1, cov1, mu2, cov2) -> np.ndarray:
    """W_2^2(N(mu1, cov1), N(mu2, cov2)) = ||mu1-mu2||^2 + tr(cov1 + cov2 - 2 (cov2^{1/2} cov1 cov2^{1/2})^{1/2}).

    Gelbrich / Dowson–Landau formula; symmetric square roots by eigh.
    Shapes (..., D) and (..., D, D), broadcast over leading axes.
    """
    mu1, mu2, cov1, cov2 = (np.asarray(x, dtype=float) for x in (mu1, mu2, cov1, cov2))
    if cov1.ndim < 2 or cov1.shape[-1] != cov1.shape[-2] or cov1.shape[-1] != mu1.shape[-1]:
        raise ValueError(f"cov1 must have shape (..., D, D) matching mu1 (..., D), got {cov1.shape} and {mu1.shape}")
    if cov2.ndim < 2 or cov2.shape[-1] != cov2.shape[-2] or cov2.shape[-1] != mu2.shape[-1]:
        raise ValueError(f"cov2 must have shape (..., D, D) matching mu2 (..., D), got {cov2.shape} and {mu2.shape}")
    root2 = _sqrtm_psd(cov2)
    cross = root2 @ cov1 @ root2
    cross_eigs = np.linalg.eigvalsh((cross + np.swapaxes(cross, -1, -2)) / 2)
    cross_tr = np.sqrt(np.clip(cross_eigs, 0.0, None)).sum(-1)
    tr = np.trace(cov1, axis1=-2, axis2=-1) + np.trace(cov2, axis1=-2, axis2=-1) - 2 * cross_tr
    return np.sum((mu1 - mu2) ** 2, axis=-1) + np.clip(tr, 0.0, None)


def w2sq_gaussians_1d(mu1, var1, mu2, var2) -> np.ndarray:
    """1-D: W_2^2(N(mu1, var1), N(mu2, var2)) = (mu1-mu2)^2 + (sd1-sd2)^2 (broadcasts)."""
    var1, var2 = np.asarray(var1, dtype=float), np.asarray(var2, dtype=float)
    if np.any(var1 < 0) or np.any(var2 < 0):
        raise ValueError(f"variances must be >= 0, got var1={var1!r}, var2={var2!r}")
    return (np.asarray(mu1) - np.asarray(mu2)) ** 2 + (np.sqrt(var1) - np.sqrt(var2)) ** 2


def tail_mass_1d(mu_hat, var_hat, *, k: float, mu: float = 0.0, var: float = 1.0) -> np.ndarray:
    """Mass of N(mu_hat, var_hat) beyond k true standard deviations: P(|x - mu| > k sigma).

    = Phi((mu - k sigma - mu_hat)/sd_hat) + Phi((mu_hat - mu - k sigma)/sd_hat)   (exact).
    The truth itself has 2 Phi(-k); collapse shows as a falling share.
    """
    var_hat = np.asarray(var_hat, dtype=float)
    if np.any(~(var_hat > 0)) or not var > 0:
        raise ValueError(f"variances must be > 0, got var_hat={var_hat!r}, var={var!r}")
    if not k >= 0:
        raise ValueError(f"k must be >= 0, got k={k!r}")
    sd_hat, edge = np.sqrt(var_hat), k * np.sqrt(var)
    offset = np.asarray(mu_hat, dtype=float) - mu
    return stats.norm.cdf((-edge - offset) / sd_hat) + stats.norm.sf((edge - offset) / sd_hat)


def tail_mass(mu_hat, cov_hat, *, k: float, mu, cov) -> float:
    """Mass of N(mu_hat, cov_hat) outside the true k-sigma ellipsoid: P((x-mu)^T cov^{-1} (x-mu) > k^2).

    Whitening by the TRUE covariance gives Q = sum_j l_j (Z_j + b_j)^2 with l_j the
    eigenvalues of A = L^{-1} cov_hat L^{-T} (cov = L L^T).  If A = a I (fitted
    covariance proportional to the truth, always so in 1-D): Q/a ~ noncentral
    chi2_d(||delta||^2/a), exact.  Otherwise Q is a generalised chi-square and
    the tail is Imhof's (1961) inversion integral, exact up to quadrature
    error (absolute, ~1e-10).  Single (unbatched) inputs; 1-D agrees with
    ``tail_mass_1d``.
    """
    mu_hat, mu = np.atleast_1d(np.asarray(mu_hat, dtype=float)), np.atleast_1d(np.asarray(mu, dtype=float))
    d = mu.size
    cov_hat = np.asarray(cov_hat, dtype=float).reshape(d, d)
    cov = np.asarray(cov, dtype=float).reshape(d, d)
    if not k >= 0:
        raise ValueError(f"k must be >= 0, got k={k!r}")
    chol = np.linalg.cholesky(cov)  # raises LinAlgError if cov is not positive definite
    delta = linalg.solve_triangular(chol, mu_hat - mu, lower=True)
    whitened = linalg.solve_triangular(chol, linalg.solve_triangular(chol, cov_hat, lower=True).T, lower=True)
    lam, vecs = np.linalg.eigh((whitened + whitened.T) / 2)
    if not lam[0] > 0:
        raise ValueError(f"cov_hat must be positive definite, got eigenvalues {lam!r}")
    x = float(k) ** 2
    if np.ptp(lam) <= 1e-10 * lam.mean():
        a, nc = lam.mean(), float(delta @ delta) / lam.mean()
        return float(stats.chi2.sf(x / a, d) if nc == 0 else stats.ncx2.sf(x / a, d, nc))
    b2 = (vecs.T @ delta) ** 2 / lam
    return _imhof_sf(x, lam, b2)


def _imhof_sf(x: float, lam: np.ndarray, b2: np.ndarray) -> float:
    """P(sum_j lam_j (Z_j + b_j)^2 > x), lam_j > 0, by Imhof (1961) eq. 3.2.

    P = 1/2 + (1/pi) int_0^inf sin(phi(u) - x u/2) / (u rho(u)) du with the slowly
    varying phi(u) = (1/2) sum [arctan(lam u) + b^2 lam u/(1 + lam^2 u^2)].  Past
    u0 = 1/max(lam) the integrand is split into cos/sin Fourier integrals (QUADPACK
    QAWF), which handles the slowly decaying oscillation; [0, u0] is plain quad.
    """
    if x <= 0:
        return 1.0

    def phase_and_decay(u):
        lu = lam * u
        phi = 0.5 * np.sum(np.arctan(lu) + b2 * lu / (1 + lu**2))
        log_rho = 0.25 * np.sum(np.log1p(lu**2)) + 0.5 * np.sum(b2 * lu**2 / (1 + lu**2))
        return phi, np.exp(-log_rho) / u

    def full(u):
        phi, amp = phase_and_decay(u)
        return np.sin(phi - 0.5 * x * u) * amp

    u0 = 1.0 / lam.max()
    head, _ = integrate.quad(full, 0.0, u0, limit=200, epsabs=1e-12, epsrel=1e-11)
    # sin(phi - w u) = sin(phi) cos(w u) - cos(phi) sin(w u), w = x/2; shift u = u0 + v
    w = 0.5 * x
    c0, s0 = np.cos(w * u0), np.sin(w * u0)

    def a(v):  # coefficient of cos(w v)
        phi, amp = phase_and_decay(u0 + v)
        return amp * (np.sin(phi) * c0 - np.cos(phi) * s0)

    def b(v):  # coefficient of sin(w v)
        phi, amp = phase_and_decay(u0 + v)
        return -amp * (np.sin(phi) * s0 + np.cos(phi) * c0)

    tail_cos, _ = integrate.quad(a, 0.0, np.inf, weight="cos", wvar=w, limlst=200, epsabs=1e-12)
    tail_sin, _ = integrate.quad(b, 0.0, np.inf, weight="sin", wvar=w, limlst=200, epsabs=1e-12)
    return float(np.clip(0.5 + (head + tail_cos + tail_sin) / np.pi, 0.0, 1.0))
