"""OLS building blocks shared by the regression and token-editing theory: the one-fit
error v = σ²d/(T−d−1), sampled Gaussian designs, the operators A = (XᵀX)⁻¹Xᵀ, and the
exact-in-noise recursion of a randomly relabelled subset of rows, averaged over designs
with a control variate (theory/derivations.md §1, §8).

Axis letters: N designs, T rows, D features, G generations."""

from __future__ import annotations

import math

import numpy as np

from collapse_sim.theory.checks import check_cov, check_sigma2, check_sizes


def ols_error(sigma2: float, d: int, T: int) -> float:
    """v = σ² d/(T−d−1): E‖ŵ−w*‖²_Σ of OLS on T rows with x ~ N(0, Σ), any Σ ≻ 0
    (Dohmatob et al. 2024, arXiv 2402.07712; theory/derivations.md §1)."""
    check_sizes(d, T)
    return check_sigma2(sigma2) * d / (T - d - 1)


def sample_designs(n_designs: int, T: int, d: int, rng, cov=None) -> np.ndarray:
    """X_NxTxD with i.i.d. N(0, cov) rows."""
    if not (isinstance(n_designs, (int, np.integer)) and n_designs >= 2):
        raise ValueError(f"n_designs={n_designs!r} must be a whole number >= 2 (for a standard error)")
    chol = np.linalg.cholesky(check_cov(cov, d))
    return np.random.default_rng(rng).standard_normal((n_designs, T, d)) @ chol.T


def ols_operators(X_NxTxD: np.ndarray):
    """A = (XᵀX)⁻¹Xᵀ (N, D, T) and (XᵀX)⁻¹ (N, D, D)."""
    gram = np.swapaxes(X_NxTxD, 1, 2) @ X_NxTxD
    A = np.linalg.solve(gram, np.swapaxes(X_NxTxD, 1, 2))
    return A, A @ np.swapaxes(A, 1, 2)


def weighted_trace(cov_DxD: np.ndarray, W_NxDxD: np.ndarray) -> np.ndarray:
    """tr(Σ W) per design: the test error of an error with second moment W."""
    return np.einsum("ij,nji->n", cov_DxD, W_NxDxD)


def mean_se(vals_NxG: np.ndarray, control_N: np.ndarray | None = None, control_mean: float | None = None):
    """Mean over designs and its standard error, per column.

    With a control variate c (per design, known mean μ) the estimate is regression-adjusted,
    mean(y − b(c − μ)) with b = cov(y, c)/var(c) fitted per column; its SE is that of the
    adjusted values.  We use c = tr(Σ(XᵀX)⁻¹), μ = d/(T−d−1): it carries most of the
    design-to-design variation, so the SE drops several-fold at no cost (bias O(1/N))."""
    vals = np.asarray(vals_NxG, dtype=np.float64)
    n = vals.shape[0]
    if control_N is not None:
        cc = control_N - control_N.mean()
        b = cc @ (vals - vals.mean(0)) / (cc @ cc)
        vals = vals - np.multiply.outer(control_N - control_mean, b)
    return vals.mean(0), vals.std(0, ddof=1) / math.sqrt(n)


def design_control(X_NxTxD: np.ndarray, cov_DxD: np.ndarray):
    """Control variate (c_N, μ): c = tr(Σ(XᵀX)⁻¹), μ = E c = d/(T−d−1) (Dohmatob et al. Lemma).
    (None, None) when T ≤ d+3, where c has no finite variance (plain means are used there)."""
    T, d = X_NxTxD.shape[1:]
    if T <= d + 3:
        return None, None
    _, Ginv = ols_operators(X_NxTxD)
    return weighted_trace(cov_DxD, Ginv), d / (T - d - 1)


def quad_diag(X_NxTxD, W_NxDxD):
    """u_i = x_iᵀ W x_i, i.e. Diag(X W Xᵀ)."""
    return np.einsum("ntd,nde,nte->nt", X_NxTxD, W_NxDxD, X_NxTxD)


def averaged_mask_curve(G, X_NxTxD, cov, sigma2, a, kappa, cross):
    """Exact-in-noise curve, per design, when each generation relabels a random set S of
    rows (indicator s) with E s_i s_j = a (i ≠ j), E s_i = a + κ, independent of the past;
    r := Ỹ − Xw*, R_0 = σ²I, W := A R Aᵀ (so E_test = tr(Σ W)).

    Synthetic rows: r_i = (P r)_i + fresh noise.  Other rows:
    - cross=False ("fresh" real labels): fresh noise,
        R' = a PRP + κ Diag(PRP) + σ² I   (theory/derivations.md §8a)
    - cross=True (the ORIGINAL labels r_0 are kept): with K = E[r r_0ᵀ],
        K' = E[S] P K + E[I−S] σ², and since P K_0 = σ² P, P K_n = σ² P for all n, so
        R' = a PRP + κ Diag(PRP) + σ² I + 2κσ²(P − Diag P)  [derived here].
    Both close in d-space because A P = A, A Aᵀ = (XᵀX)⁻¹ and PRP = X W Xᵀ:
        W' = a W + κ A Diag(u) Aᵀ + σ²(XᵀX)⁻¹ [+ 2κσ²((XᵀX)⁻¹ − A Diag(h) Aᵀ)],
    u_i = x_iᵀ W x_i, h_i = P_ii.  Returns the N×(G+1) per-design errors."""
    A, Ginv = ols_operators(X_NxTxD)
    At = np.swapaxes(A, 1, 2)
    if cross:
        h = np.einsum("ntd,ndt->nt", X_NxTxD, A)
        extra = 2 * kappa * sigma2 * (Ginv - (A * h[:, None, :]) @ At)
    W = sigma2 * Ginv
    vals = [weighted_trace(cov, W)]
    for _ in range(G):
        u = quad_diag(X_NxTxD, W)
        W = a * W + kappa * ((A * u[:, None, :]) @ At) + sigma2 * Ginv
        if cross:
            W = W + extra
        vals.append(weighted_trace(cov, W))
    return np.stack(vals, 1)
