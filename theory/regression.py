"""Expected test error of iterated least squares: closed forms and exact recursions.

Linear-regression world (theory/derivations.md §1–9): x ~ N(0, Σ) in d dimensions, y = xᵀw* + ε,
ε ~ N(0, σ²), T rows per training set, test error E‖ŵ_g − w*‖²_Σ (excess risk).

Convention (the simulator's): generation 0 is the fit on the real data; generation
g ≥ 1 is fitted on the training set the regime builds from model g−1.  Every curve
has length G+1 and is indexed by g.  v := σ² d/(T−d−1) is the error of one OLS fit
on T real rows, so replace gives v(g+1).

Two kinds of result:
- closed forms in (d, T, σ², p), valid for every Σ ≻ 0 (they depend on Σ only
  through E tr(Σ(XᵀX)⁻¹) = d/(T−d−1), Dohmatob et al. Lemma);
- "exact in the noise": the second moment of the labels is propagated exactly,
  conditional on the design X (and on fixed masks); only X is sampled.  These
  return (mean, standard error) over ``n_designs`` sampled designs.

Array names carry their axes: N designs, T rows, D features, G generations.
"""

from __future__ import annotations

import math

import numpy as np

from collapse_sim.theory.checks import (  # noqa: F401 (re-exported: the checks of this module's arguments)
    check_choice,
    check_cov,
    check_fraction,
    check_G,
    check_sigma2,
    check_sizes,
)
from collapse_sim.theory.ols import (  # noqa: F401 (re-exported for callers of the regression theory)
    averaged_mask_curve,
    design_control,
    mean_se,
    ols_error,
    ols_operators,
    sample_designs,
    weighted_trace,
)

REGIMES = ("replace", "accumulate", "accumulate_subsample", "mix", "token_edit")
DESIGNS = ("fixed", "fresh")
REAL_SOURCES = ("fresh", "original")


# --------------------------------------------------------------------------- checks


def real_row_count(p: float, T: int) -> int:
    """m = round(p·T) real rows in a mixed training set (Python's round, half to even)."""
    return int(round(check_fraction("real_fraction", p) * T))


# --------------------------------------------------------------------------- closed forms


def replace_curve(G: int, d: int, T: int, sigma2: float) -> np.ndarray:
    """Replace: E_g = v·(g+1), exact for fixed or fresh design and any Σ ≻ 0
    (Dohmatob et al. 2024 Thm; Gerstgrasser et al. 2024 Thm 2; theory/derivations.md §2)."""
    G = check_G(G)
    return ols_error(sigma2, d, T) * np.arange(1, G + 2, dtype=np.float64)


def accumulate_curve(G: int, d: int, T: int, sigma2: float, design: str = "fixed") -> np.ndarray:
    """Accumulate (real set plus synthetic sets 1..g, stacked, refit by OLS).

    Both designs obey e_g = e_{g−1} + H_g⁻¹ X_gᵀ E_g with H_g = Σ_{i≤g} X_iᵀX_i, so
    E_g = σ² Σ_{i=0}^{g} E tr(Σ H_i⁻¹ X_iᵀX_i H_i⁻¹).
    - fixed design: H_i = (i+1)XᵀX, E_g = v Σ_{i=1}^{g+1} 1/i²
      (Gerstgrasser et al. 2024, arXiv 2404.01413, Thm 2; theory/derivations.md §5).
    - fresh design: by exchangeability of the i+1 Wishart blocks of H_i,
      E tr(Σ H_i⁻¹X_iᵀX_iH_i⁻¹) = E tr(Σ H_i⁻¹)/(i+1), so
      E_g = σ² d Σ_{i=1}^{g+1} 1/(i (iT − d − 1))  [derived here, checked by MC].
    """
    G = check_G(G)
    v = ols_error(sigma2, d, T)
    i = np.arange(1, G + 2, dtype=np.float64)
    if check_choice("design", design, DESIGNS) == "fixed":
        return v * np.cumsum(1.0 / i**2)
    return check_sigma2(sigma2) * d * np.cumsum(1.0 / (i * (i * T - d - 1)))


def accumulate_bound(d: int, T: int, sigma2: float) -> float:
    """π²/6 · v, the limit of the fixed-design accumulate curve and a bound for both
    designs (Gerstgrasser et al. 2024 Thm 2; theory/derivations.md §5)."""
    return math.pi**2 / 6 * ols_error(sigma2, d, T)


def mix_beta(d: int, T: int, p: float) -> float:
    """β of Theorem M1 (E[BᵀΣB] = βΣ; derived in theory/derivations.md §7) with k = round(pT) real rows:
    β = (1−p)² + p(1−p)[2/(T+2) + T(T+1)(d−1)/((T−1)(T+2)(T−d−1))], p = k/T."""
    check_sizes(d, T)
    p = real_row_count(p, T) / T
    return (1 - p) ** 2 + p * (1 - p) * (2 / (T + 2) + T * (T + 1) * (d - 1) / ((T - 1) * (T + 2) * (T - d - 1)))


def mix_fresh_curve(G: int, d: int, T: int, p: float, sigma2: float) -> np.ndarray:
    """Mix, fresh real data, fresh design (Theorem M1, derived in theory/derivations.md §7): each generation
    draws T fresh rows; m = round(pT) get real labels, T−m labels from model g−1, OLS on all.
    E_g = β^g v + v(1 − β^g)/(1 − β), E_0 = v; any Σ ≻ 0.  (β = 1 at p = 0: replace.)"""
    G = check_G(G)
    v = ols_error(sigma2, d, T)
    beta = mix_beta(d, T, p)
    g = np.arange(G + 1, dtype=np.float64)
    if beta == 1.0:
        return v * (g + 1)
    return beta**g * v + v * (1 - beta**g) / (1 - beta)


def mix_fresh_limit(d: int, T: int, p: float, sigma2: float) -> float:
    """lim_g of Theorem M1: v/(1 − β) (∞ at p = 0)."""
    beta = mix_beta(d, T, p)
    v = ols_error(sigma2, d, T)
    return math.inf if beta == 1.0 else v / (1 - beta)


def overparam_noise_free_curve(G: int, d: int, T: int, w0_norm2: float = 1.0) -> np.ndarray:
    """Over-parameterised (d > T), noise-free, Σ = I, fresh design, min-norm OLS:
    each fit projects onto a random T-dim subspace, E_g = ‖w0‖²(1 − (T/d)^{g+1})
    (g+1 fits; Dohmatob et al. 2024 claim, mechanism derived in theory/derivations.md §4)."""
    G = check_G(G)
    if not T < d:
        raise ValueError(f"the over-parameterised formula needs d > T; got d={d}, T={T}")
    return w0_norm2 * (1 - (T / d) ** np.arange(1, G + 2, dtype=np.float64))


# --------------------------------------------------------------------------- sampled designs


def _subset_moments(n_sel: int, T: int):
    """(a, κ) for a uniformly random n_sel-subset of T rows: a = E s_i s_j (i≠j) =
    c(cT−1)/(T−1), κ = E s_i − a = c(1−c)T/(T−1), c = n_sel/T."""
    c = n_sel / T
    return c * (c * T - 1) / (T - 1), c * (1 - c) * T / (T - 1)


def _fixed_subset_curve(G, X_NxTxD, cov, sigma2, real_NxT):
    """Fixed design, a FIXED set R of real rows keeping their generation-0 labels, the others
    relabelled by the previous model each generation (Theorem M2, theory/derivations.md §8c), in d-space:
        e' = B e + G⁻¹X_RᵀE_R + G⁻¹X_SᵀE',  B = G⁻¹X_SᵀX_S,
        U := E[e E_Rᵀ] (D×T, zero outside R): U_0 = σ² A·1_R,  U' = B U + σ² A·1_R,
        V' = B V Bᵀ + σ² G⁻¹ + B U X G⁻¹ + (B U X G⁻¹)ᵀ,   V_0 = σ² G⁻¹."""
    A, Ginv = ols_operators(X_NxTxD)
    Xt = np.swapaxes(X_NxTxD, 1, 2)
    syn = 1.0 - real_NxT
    B = Ginv @ (Xt * syn[:, None, :]) @ X_NxTxD
    Bt = np.swapaxes(B, 1, 2)
    AR = sigma2 * A * real_NxT[:, None, :]
    U, V = AR, sigma2 * Ginv
    vals = [weighted_trace(cov, V)]
    for _ in range(G):
        cross = B @ U @ X_NxTxD @ Ginv
        V = B @ V @ Bt + sigma2 * Ginv + cross + np.swapaxes(cross, 1, 2)
        U = B @ U + AR
        vals.append(weighted_trace(cov, V))
    return np.stack(vals, 1)


def _random_subsets(rng, n_designs: int, T: int, m: int) -> np.ndarray:
    """N×T 0/1 indicators of uniformly random m-subsets of the T rows."""
    ranks = np.argsort(rng.random((n_designs, T)), axis=1)
    return (ranks < m).astype(np.float64)


def mix_fixed_design_curve(
    G: int,
    d: int,
    T: int,
    p: float,
    sigma2: float,
    real_source: str = "fresh",
    resample: bool = True,
    n_designs: int = 2000,
    rng=None,
    cov=None,
):
    """Mix with a fixed design X: m = round(pT) real rows, T−m rows labelled Xŵ_{g−1} + noise.

    - real_source="fresh": the m real rows are a uniformly random subset of the fixed rows,
      redrawn each generation, with fresh labels xᵀw* + fresh noise (theory/derivations.md §8a recursion
      R' = a PRP + κ Diag(PRP) + σ²I, with c = 1 − m/T).  ``resample`` is ignored.
    - real_source="original", resample=True: the real rows keep their generation-0 labels and
      the subset is redrawn each generation (Shumailov et al. "10% preserved"); exact mask-averaged
      recursion of ``averaged_mask_curve`` with the cross-moment term.
    - real_source="original", resample=False: one uniformly random subset for the whole run
      (Theorem M2 = ToEdit fixed mask); recursion of ``_fixed_subset_curve``.
    Exact in the noise (and in the subset when redrawn), averaged over X ~ N(0, cov) rows and
    (resample=False) the subset.  Returns (mean, se), each of shape (G+1,)."""
    G = check_G(G)
    check_sizes(d, T)
    sigma2 = check_sigma2(sigma2)
    m = real_row_count(p, T)
    check_choice("real_source", real_source, REAL_SOURCES)
    cov = check_cov(cov, d)
    rng = np.random.default_rng(rng)
    X = sample_designs(n_designs, T, d, rng, cov)
    if real_source == "original" and not resample:
        real = _random_subsets(rng, n_designs, T, m)
        return mean_se(_fixed_subset_curve(G, X, cov, sigma2, real), *design_control(X, cov))
    a, kappa = _subset_moments(T - m, T)
    vals = averaged_mask_curve(G, X, cov, sigma2, a, kappa, cross=real_source == "original")
    return mean_se(vals, *design_control(X, cov))


def mix_fresh_design_original_curve(
    G: int, d: int, T: int, p: float, sigma2: float, resample: bool = True, n_designs: int = 2000, rng=None, cov=None
):
    """Mix with a fresh design and real_source="original": each generation trains on m = round(pT)
    rows of the ORIGINAL real set (X_0, Y_0) (a subset redrawn each generation if ``resample``,
    else one fixed subset) plus T−m rows with fresh features labelled by model g−1.
    Exact in the noise, conditional on all designs and subsets [derived here]:
        e_g = B_g e_{g−1} + G_g⁻¹X_0ᵀ1_R E_0 + G_g⁻¹X_SᵀE',  B_g = G_g⁻¹X_SᵀX_S,
        U_g := E[e_g E_0ᵀ] = B_g U_{g−1} + σ² G_g⁻¹X_0ᵀ1_R,  U_0 = σ² A_0,
        V_g = B_g V B_gᵀ + σ² G_g⁻¹ + C + Cᵀ,  C = B_g U_{g−1} 1_R X_0 G_g⁻¹.
    Returns (mean, se) over sampled designs."""
    G = check_G(G)
    check_sizes(d, T)
    sigma2 = check_sigma2(sigma2)
    m = real_row_count(p, T)
    cov = check_cov(cov, d)
    rng = np.random.default_rng(rng)
    X0 = sample_designs(n_designs, T, d, rng, cov)
    X0t = np.swapaxes(X0, 1, 2)
    A0, Ginv0 = ols_operators(X0)
    U, V = sigma2 * A0, sigma2 * Ginv0
    real = _random_subsets(rng, n_designs, T, m)
    vals = [weighted_trace(cov, V)]
    for _ in range(G):
        if resample:
            real = _random_subsets(rng, n_designs, T, m)
        XS = sample_designs(n_designs, T - m, d, rng, cov) if T > m else np.zeros((n_designs, 0, d))
        syn_gram = np.swapaxes(XS, 1, 2) @ XS
        XRt = X0t * real[:, None, :]
        Ginv = np.linalg.inv(XRt @ X0 + syn_gram)
        B = Ginv @ syn_gram
        C = B @ (U * real[:, None, :]) @ X0 @ Ginv
        V = B @ V @ np.swapaxes(B, 1, 2) + sigma2 * Ginv + C + np.swapaxes(C, 1, 2)
        U = B @ U + sigma2 * Ginv @ XRt
        vals.append(weighted_trace(cov, V))
    return mean_se(np.stack(vals, 1), *design_control(X0, cov))


# --------------------------------------------------------------------------- ridge


def _ridge_w_moment(w_star, d):
    """Ω = E[w* w*ᵀ]: the given w* (d,), or the simulator world's prior N(0, I/d) if None."""
    if w_star is None:
        return np.eye(d) / d
    w = np.asarray(w_star, dtype=np.float64)
    if w.shape != (d,):
        raise ValueError(f"w_star must have shape ({d},); got {w.shape}")
    return np.outer(w, w)


def check_lam(lam) -> float:
    if not (np.isscalar(lam) and math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam={lam!r} must be a finite number >= 0")
    return float(lam)


def ridge_replace_curve(
    G: int,
    d: int,
    T: int,
    sigma2: float,
    lam: float,
    n_designs: int = 2000,
    rng=None,
    cov=None,
    *,
    design: str = "fixed",
    w_star=None,
):
    """Replace with ridge in every generation, ŵ = (XᵀX + λT I)⁻¹Xᵀy (penalty λ·T, T rows, as
    the simulator's world normalises it).  With S_g = (X_gᵀX_g + λT I)⁻¹X_gᵀX_g and
    A_g = (X_gᵀX_g + λT I)⁻¹X_gᵀ, ŵ_g = S_g ŵ_{g−1} + A_g E_g (ŵ_{−1} := w*), so conditional
    on the designs
        E‖ŵ_g − w*‖²_Σ = tr(Σ (Π_g − I) Ω (Π_g − I)ᵀ) + tr(Σ V_g),
        Π_g = S_g ⋯ S_0,   V_g = S_g V_{g−1} S_gᵀ + σ² A_g A_gᵀ,   V_{−1} = 0,
    with Ω = w* w*ᵀ (or I/d, the world's prior w* ~ N(0, I/d), if w_star is None).  design
    "fixed" uses one X for all g, "fresh" a new X each generation.  This is the exact
    conditional version of theory/derivations.md §3 (ridge); λ = 0 is OLS replace.  Returns (mean, se)."""
    G = check_G(G)
    lam = check_lam(lam)
    if lam == 0:
        check_sizes(d, T)
    sigma2 = check_sigma2(sigma2)
    check_choice("design", design, DESIGNS)
    cov = check_cov(cov, d)
    omega = _ridge_w_moment(w_star, d)
    rng = np.random.default_rng(rng)
    eye = np.eye(d)

    def operators():
        X = sample_designs(n_designs, T, d, rng, cov)
        Xt = np.swapaxes(X, 1, 2)
        A = np.linalg.solve(Xt @ X + lam * T * eye, Xt)
        return X, A @ X, A @ np.swapaxes(A, 1, 2)

    X0, S, N = operators()
    Pi = np.broadcast_to(eye, S.shape)
    V = np.zeros_like(S)
    vals = []
    for g in range(G + 1):
        if g > 0 and design == "fresh":
            _, S, N = operators()
        Pi = S @ Pi
        V = S @ V @ np.swapaxes(S, 1, 2) + sigma2 * N
        bias = (Pi - eye) @ omega @ np.swapaxes(Pi - eye, 1, 2)
        vals.append(weighted_trace(cov, bias + V))
    return mean_se(np.stack(vals, 1), *design_control(X0, cov))


def ridge_downstream_curve(
    G: int, d: int, T: int, sigma2: float, lam: float, n_designs: int = 2000, rng=None, cov=None, *, w_star=None
):
    """Dohmatob et al. 2024 setting (ridge downstream, derived in theory/derivations.md §3): an OLS
    chain of g synthetic generations (T rows, noise σ², designs independent of the downstream one) followed by a
    downstream ridge fit (XᵀX + λT I)⁻¹Xᵀy on T fresh rows:
        E_g = E_X[clean ridge error] + g σ²/(T−d−1) · E_X tr(SᵀΣSΣ⁻¹),  S = (XᵀX+λTI)⁻¹XᵀX,
    clean ridge error | X = tr(Σ(S−I)Ω(S−I)ᵀ) + σ² tr(Σ A Aᵀ).  Returns (mean, se)."""
    G = check_G(G)
    lam = check_lam(lam)
    check_sizes(d, T)
    sigma2 = check_sigma2(sigma2)
    cov = check_cov(cov, d)
    omega = _ridge_w_moment(w_star, d)
    X = sample_designs(n_designs, T, d, rng, cov)
    Xt = np.swapaxes(X, 1, 2)
    A = np.linalg.solve(Xt @ X + lam * T * np.eye(d), Xt)
    S = A @ X
    St = np.swapaxes(S, 1, 2)
    bias = (S - np.eye(d)) @ omega @ np.swapaxes(S - np.eye(d), 1, 2)
    clean = weighted_trace(cov, bias + sigma2 * A @ np.swapaxes(A, 1, 2))
    factor = weighted_trace(np.linalg.inv(cov), St @ cov @ S)
    g = np.arange(G + 1, dtype=np.float64)
    return mean_se(clean[:, None] + g * sigma2 / (T - d - 1) * factor[:, None], *design_control(X, cov))


# --------------------------------------------------------------------------- dispatcher


