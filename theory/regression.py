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

REGIMES = ("replace", "accumulate", "accumulate_subsample", "mix", "token_edit")
DESIGNS = ("fixed", "fresh")
REAL_SOURCES = ("fresh", "original")


# --------------------------------------------------------------------------- checks


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


def _check_G(G) -> int:
    if not (isinstance(G, (int, np.integer)) and G >= 0):
        raise ValueError(f"G={G!r} must be a whole number of generations >= 0")
    return int(G)


def _check_sigma2(sigma2) -> float:
    if not (np.isscalar(sigma2) and math.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2={sigma2!r} must be a finite number >= 0")
    return float(sigma2)


def _check_fraction(name: str, p) -> float:
    if p is None or not (np.isscalar(p) and math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"{name}={p!r} must be a number in [0, 1]")
    return float(p)


def _check_choice(name: str, value, allowed) -> str:
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


def real_row_count(p: float, T: int) -> int:
    """m = round(p·T) real rows in a mixed training set (Python's round, half to even)."""
    return int(round(_check_fraction("real_fraction", p) * T))


# --------------------------------------------------------------------------- closed forms


def ols_error(sigma2: float, d: int, T: int) -> float:
    """v = σ² d/(T−d−1): E‖ŵ−w*‖²_Σ of OLS on T rows with x ~ N(0, Σ), any Σ ≻ 0
    (Dohmatob et al. 2024, arXiv 2402.07712; theory/derivations.md §1)."""
    check_sizes(d, T)
    return _check_sigma2(sigma2) * d / (T - d - 1)


def replace_curve(G: int, d: int, T: int, sigma2: float) -> np.ndarray:
    """Replace: E_g = v·(g+1), exact for fixed or fresh design and any Σ ≻ 0
    (Dohmatob et al. 2024 Thm; Gerstgrasser et al. 2024 Thm 2; theory/derivations.md §2)."""
    G = _check_G(G)
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
    G = _check_G(G)
    v = ols_error(sigma2, d, T)
    i = np.arange(1, G + 2, dtype=np.float64)
    if _check_choice("design", design, DESIGNS) == "fixed":
        return v * np.cumsum(1.0 / i**2)
    return _check_sigma2(sigma2) * d * np.cumsum(1.0 / (i * (i * T - d - 1)))


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
    G = _check_G(G)
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
    G = _check_G(G)
    if not T < d:
        raise ValueError(f"the over-parameterised formula needs d > T; got d={d}, T={T}")
    return w0_norm2 * (1 - (T / d) ** np.arange(1, G + 2, dtype=np.float64))


# --------------------------------------------------------------------------- sampled designs


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
    G = _check_G(G)
    check_sizes(d, T)
    sigma2 = _check_sigma2(sigma2)
    m = real_row_count(p, T)
    _check_choice("real_source", real_source, REAL_SOURCES)
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
    G = _check_G(G)
    check_sizes(d, T)
    sigma2 = _check_sigma2(sigma2)
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


def _check_lam(lam) -> float:
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
    G = _check_G(G)
    lam = _check_lam(lam)
    if lam == 0:
        check_sizes(d, T)
    sigma2 = _check_sigma2(sigma2)
    _check_choice("design", design, DESIGNS)
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
    G = _check_G(G)
    lam = _check_lam(lam)
    check_sizes(d, T)
    sigma2 = _check_sigma2(sigma2)
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


def _result(kind, source, prediction=None, prediction_se=None, bound=None, **extra):
    out = {"prediction": prediction, "prediction_se": prediction_se, "bound": bound, "kind": kind, "source": source}
    return out | extra


# The fields each regime's theory takes (those of its config, simulator/regimes/<name>.py).
REGIME_FIELDS = {
    "replace": (),
    "accumulate": (),
    "accumulate_subsample": (),
    "mix": ("real_fraction", "real_source", "resample_real"),
    "token_edit": ("schedule", "edit_source", "q", "k", "eta"),
}


def expected_test_error(
    regime: str,
    G: int,
    d: int,
    T: int,
    sigma2: float,
    *,
    design: str = "fixed",
    lam: float = 0.0,
    cov=None,
    n_designs: int = 400,
    seed: int = 0,
    w_star=None,
    **fields,
) -> dict:
    """Theory for one run of the regression world, indexed g = 0..G.

    ``fields`` are the regime's own settings, named as in its config: mix takes
    ``real_fraction`` (required), ``real_source`` and ``resample_real``; token_edit takes
    ``schedule`` (required), ``edit_source``, ``q``, ``k``, ``eta``; the others take none.
    A field the regime does not have is an error.

    Returns {"prediction": (G+1,) or None, "prediction_se": (G+1,) or None, "bound": (G+1,) or
    None, "kind": "exact" | "exact_in_noise" | "bound" | "none", "source": str}; token_edit also
    returns "paper_claim" and "paper_bound" (the paper's lines, shown but not valid bounds)."""
    _check_choice("regime", regime, REGIMES)
    unknown = sorted(set(fields) - set(REGIME_FIELDS[regime]))
    if unknown:
        has = ", ".join(REGIME_FIELDS[regime]) or "none"
        raise ValueError(f"regime {regime!r} has no field {', '.join(unknown)}; its fields: {has}")
    real_fraction = fields.get("real_fraction")
    real_source = fields.get("real_source", "fresh")
    resample = fields.get("resample_real", True)
    schedule, base = fields.get("schedule"), fields.get("edit_source", "previous")
    q, k, eta = fields.get("q"), fields.get("k"), fields.get("eta")
    G = _check_G(G)
    _check_choice("design", design, DESIGNS)
    lam = _check_lam(lam)
    sigma2 = _check_sigma2(sigma2)
    rng = np.random.default_rng(seed)
    ridge = lam > 0
    if not ridge:
        check_sizes(d, T)

    if regime == "replace":
        if ridge:
            mean, se = ridge_replace_curve(G, d, T, sigma2, lam, n_designs, rng, cov, design=design, w_star=w_star)
            return _result(
                "exact_in_noise",
                "ridge replace, exact conditional on X (theory/regression.py ridge_replace_curve; "
                "Dohmatob et al. 2024 arXiv 2402.07712, theory/derivations.md §3)",
                mean,
                se,
            )
        return _result(
            "exact",
            "v(g+1): Dohmatob et al. 2024 (arXiv 2402.07712) / Gerstgrasser et al. 2024 (arXiv 2404.01413) Thm 2; "
            "theory/derivations.md §2",
            replace_curve(G, d, T, sigma2),
        )

    if ridge:
        return _result("none", f"no closed form for ridge (lam={lam}) under regime {regime!r}")

    bound = np.full(G + 1, accumulate_bound(d, T, sigma2))
    if regime == "accumulate":
        src = (
            "v·Σ_{i≤g+1} 1/i², Gerstgrasser et al. 2024 (arXiv 2404.01413) Thm 2; theory/derivations.md §5"
            if design == "fixed"
            else "σ²d·Σ_{i≤g+1} 1/(i(iT−d−1)), fresh-design accumulate (derived; theory/regression.py); "
            "bound π²/6·v from Gerstgrasser et al. 2024 Thm 2"
        )
        return _result("exact", src, accumulate_curve(G, d, T, sigma2, design), bound=bound)

    if regime == "accumulate_subsample":
        return _result(
            "none",
            "no closed form (Kazdan et al. 2024, arXiv 2410.16713; theory/derivations.md §6): compare medians, "
            "the mean can be infinite near T = d+4",
        )

    if regime == "mix":
        p = _check_fraction("real_fraction", real_fraction)
        _check_choice("real_source", real_source, REAL_SOURCES)
        if design == "fresh" and real_source == "fresh":
            return _result(
                "exact",
                "Theorem M1 (theory/derivations.md §7, derived): β^g v + v(1−β^g)/(1−β)",
                mix_fresh_curve(G, d, T, p, sigma2),
            )
        if design == "fresh":
            mean, se = mix_fresh_design_original_curve(G, d, T, p, sigma2, resample, n_designs, rng, cov)
            src = "original real rows + fresh synthetic features, exact in the noise (theory/regression.py)"
        else:
            mean, se = mix_fixed_design_curve(G, d, T, p, sigma2, real_source, resample, n_designs, rng, cov)
            subset = (
                "subset redrawn each generation (Shumailov et al. 2024)"
                if resample
                else "fixed subset (Theorem M2, theory/derivations.md §8c)"
            )
            src = {
                "fresh": "fixed-design recursion R' = aPRP + κDiag(PRP) + σ²I (theory/derivations.md §8a)",
                "original": f"fixed design, original labels kept, {subset}; exact in the noise (theory/regression.py)",
            }[real_source]
        return _result("exact_in_noise", src, mean, se)

    # token_edit
    from collapse_sim.theory import token_edit as te

    if design != "fixed":
        raise ValueError(
            f"regime 'token_edit' needs design='fixed' (ToEdit §4.2 edits labels of fixed rows); got design={design!r}"
        )
    mean, se = te.exact_curve(G, d, T, sigma2, schedule, base, q=q, k=k, eta=eta, n_designs=n_designs, rng=rng, cov=cov)
    counts = te.edit_counts(G, T, schedule, q=q, k=k, eta=eta)
    paper_bound = np.full(G + 1, te.paper_bound_2v(d, T, sigma2))
    if schedule == "disjoint" and te.check_schedule(schedule, T, q=q, k=k, eta=eta)["eta"] < 1:
        paper_bound = np.full(G + 1, te.geometric_bound(d, T, sigma2, k, eta))
    return _result(
        "exact_in_noise",
        "ToEdit model (Zhu et al. 2024, arXiv 2412.14689 §4.2): exact recursion C' = BCBᵀ + σ²M "
        "(theory/toedit_audit.md §3)",
        mean,
        se,
        paper_claim=te.paper_claim(G, d, T, sigma2, counts),
        paper_bound=paper_bound,
    )
