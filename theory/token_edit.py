"""Token-edited regression (ToEdit, Zhu et al. 2024, arXiv 2412.14689 v3 §4.2–4.3, App. A),
with the audit of theory/toedit_audit.md.

Fixed design X (T×d, rows N(0, Σ)), real labels Ỹ_0 = Xw* + E_0, ŵ_g = X⁺Ỹ_g, and
    Ỹ_{g+1} = M_g (X ŵ_g + E_{g+1}) + (I − M_g) Base_g,
Base_g = Ỹ_g (base="previous", the paper's model) or Ỹ_0 (base="original").  M_g is the 0/1
diagonal edit mask of round i = g+1.  Generation g has had g edit rounds; curves have length G+1.

Mask schedules (the engine's JAX masks must use the same definitions; it can call
``edit_counts`` for the per-round counts):
- "bernoulli": each row independently with probability q, every round.
- "disjoint": round i edits k_i = floor(k·η^{i−1}) rows (η ∈ (0, 1]; η = 1 gives equal blocks);
  the sets are consecutive blocks of ONE uniformly random permutation of the rows.  Once the
  rows run out, the round that overruns edits only the rows that are left and later rounds
  edit none (k_i = 0).
- "fixed": the same uniformly random k rows every round.
- "full": every row every round (M = I, which is replace).
"""

from __future__ import annotations

import math

import numpy as np

from collapse_sim.theory.checks import check_choice, check_cov, check_G, check_sigma2, check_sizes
from collapse_sim.theory.ols import (
    averaged_mask_curve,
    design_control,
    mean_se,
    ols_error,
    ols_operators,
    sample_designs,
    weighted_trace,
)

SCHEDULES = ("bernoulli", "disjoint", "fixed", "full")
BASES = ("previous", "original")


def _check_k(k, T) -> int:
    if k is None or not (np.isscalar(k) and float(k) == int(k) and 0 <= k <= T):
        raise ValueError(f"k={k!r} must be a whole number of rows in [0, T={T}]")
    return int(k)


def check_schedule(schedule: str, T: int, *, q=None, k=None, eta=None) -> dict:
    """Validate only the parameters the schedule uses; return them as a dict."""
    check_choice("schedule", schedule, SCHEDULES)
    if schedule == "bernoulli":
        if q is None or not (np.isscalar(q) and math.isfinite(q) and 0 <= q <= 1):
            raise ValueError(f"q={q!r} must be an edit probability in [0, 1]")
        return {"q": float(q)}
    if schedule == "full":
        return {}
    out = {"k": _check_k(k, T)}
    if schedule == "disjoint":
        eta = 1.0 if eta is None else eta
        if not (np.isscalar(eta) and math.isfinite(eta) and 0 < eta <= 1):
            raise ValueError(f"eta={eta!r} must be a decay ratio in (0, 1] (1 = equal blocks)")
        out["eta"] = float(eta)
    return out


def edit_counts(G: int, T: int, schedule: str, *, q=None, k=None, eta=None) -> np.ndarray:
    """Rows edited in rounds i = 1..G (array of length G; the expectation qT for bernoulli).
    disjoint: k_i = floor(k η^{i−1}) (+1e-9 against round-off), cut so that Σ k_i ≤ T."""
    G = check_G(G)
    par = check_schedule(schedule, T, q=q, k=k, eta=eta)
    if schedule == "bernoulli":
        return np.full(G, par["q"] * T)
    if schedule == "full":
        return np.full(G, float(T))
    if schedule == "fixed":
        return np.full(G, float(par["k"]))
    raw = np.floor(par["k"] * par["eta"] ** np.arange(G) + 1e-9)
    used = np.concatenate([[0.0], np.cumsum(raw)[:-1]])
    return np.clip(np.minimum(raw, T - used), 0, None)


def edit_masks(G: int, T: int, schedule: str, rng, *, q=None, k=None, eta=None, n_masks: int = 1) -> np.ndarray:
    """Boolean masks (n_masks, G, T): row t is edited in round g+1 (producing generation g+1)."""
    G = check_G(G)
    par = check_schedule(schedule, T, q=q, k=k, eta=eta)
    rng = np.random.default_rng(rng)
    if schedule == "bernoulli":
        return rng.random((n_masks, G, T)) < par["q"]
    if schedule == "full":
        return np.ones((n_masks, G, T), bool)
    rank = np.argsort(rng.random((n_masks, T)), axis=1)  # rank[n, t]: position of row t in the permutation
    if schedule == "fixed":
        return np.broadcast_to((rank < par["k"])[:, None, :], (n_masks, G, T)).copy()
    counts = edit_counts(G, T, schedule, k=k, eta=eta)
    start = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    return (rank[:, None, :] >= start[None, :, None]) & (rank[:, None, :] < (start + counts)[None, :, None])


# --------------------------------------------------------------------------- the paper's lines


def paper_claim(G: int, d: int, T: int, sigma2: float, k_counts) -> np.ndarray:
    """Paper-implied value v·(1 + Σ_{i≤g} k_i/T), g = 0..G (ToEdit Thm 1 / App. A.2 Eq. 35–36
    as read in theory/toedit_audit.md §1).  Not exact: it drops −A M (I−P) r."""
    G = check_G(G)
    k_counts = np.asarray(k_counts, dtype=np.float64)
    if k_counts.shape[0] < G:
        raise ValueError(f"k_counts has {k_counts.shape[0]} rounds; need at least G={G}")
    return ols_error(sigma2, d, T) * (1 + np.concatenate([[0.0], np.cumsum(k_counts[:G])]) / T)


def paper_bound_2v(d: int, T: int, sigma2: float) -> float:
    """2v = 2σ²d/(T−d−1), ToEdit Thm 2 Eq. 6 (fails in the paper's own model, theory/toedit_audit.md §4)."""
    return 2 * ols_error(sigma2, d, T)


def geometric_bound(d: int, T: int, sigma2: float, k1: int, eta: float) -> float:
    """v·(1 + (k1/T)/(1−η)), ToEdit Thm 2 Eq. 42 with edit counts shrinking by η (theory/toedit_audit.md §1)."""
    if not (np.isscalar(eta) and 0 < eta < 1):
        raise ValueError(f"eta={eta!r} must be in (0, 1) for the geometric bound")
    return ols_error(sigma2, d, T) * (1 + (_check_k(k1, T) / T) / (1 - eta))


# --------------------------------------------------------------------------- exact results


def one_edit_exact(d: int, T: int, k: int, sigma2: float) -> float:
    """E_test after one edit of a uniformly random k-row set (derived in theory/toedit_audit.md §3):
    v·[1 + k/T + k(T−k)(T−d)/(T(T−1)(T+2))]."""
    k = _check_k(k, T)
    return ols_error(sigma2, d, T) * (1 + k / T + k * (T - k) * (T - d) / (T * (T - 1) * (T + 2)))


def masked_curve(G, X_NxTxD, cov, sigma2, masks_NxGxT, base):
    """Per-design errors N×(G+1), exact in the noise given X and the masks; r := Ỹ − Xw*,
    C = E[r rᵀ], C_0 = σ²I, Q = I − P, E_test = tr(Σ A C Aᵀ).
    previous:  C' = B C Bᵀ + σ² M,  B = I − M Q   (theory/toedit_audit.md §3)
    original:  r' = M P r + M E' + (I−M) r_0, with K := E[r r_0ᵀ] (K_0 = σ²I):
               C' = M PCP M + σ² I + M P K (I−M) + (I−M) Kᵀ P M,  K' = M P K + σ²(I−M)."""
    A, _ = ols_operators(X_NxTxD)
    At, Xt = np.swapaxes(A, 1, 2), np.swapaxes(X_NxTxD, 1, 2)
    n, T = X_NxTxD.shape[:2]
    eye = np.eye(T)
    C = np.broadcast_to(sigma2 * eye, (n, T, T)).copy()
    K = C.copy()
    vals = [weighted_trace(cov, A @ C @ At)]
    for g in range(G):
        m = masks_NxGxT[:, g, :].astype(np.float64)
        mc, mr = m[:, :, None], m[:, None, :]
        if base == "previous":
            QC = C - X_NxTxD @ (A @ C)
            QCQ = QC - (QC @ X_NxTxD) @ A
            mQC = mc * QC
            C = C - mQC - np.swapaxes(mQC, 1, 2) + mc * QCQ * mr + sigma2 * mc * eye
        else:
            PCP = X_NxTxD @ (A @ C @ At) @ Xt
            PK = X_NxTxD @ (A @ K)
            cross = mc * PK * (1 - mr)
            C = mc * PCP * mr + sigma2 * eye + cross + np.swapaxes(cross, 1, 2)
            K = mc * PK + sigma2 * (1 - mc) * eye
        vals.append(weighted_trace(cov, A @ C @ At))
    return np.stack(vals, 1)


def bernoulli_previous_curve(G, X_NxTxD, cov, sigma2, q):
    """Mask-averaged recursion for i.i.d. Bernoulli(q) edits, base="previous" (theory/toedit_audit.md §3):
    C' = C − q(QC + CQ) + q² QCQ + q(1−q) Diag(QCQ) + qσ² I."""
    A, _ = ols_operators(X_NxTxD)
    At = np.swapaxes(A, 1, 2)
    n, T = X_NxTxD.shape[:2]
    eye = np.eye(T)
    C = np.broadcast_to(sigma2 * eye, (n, T, T)).copy()
    vals = [weighted_trace(cov, A @ C @ At)]
    for _ in range(G):
        QC = C - X_NxTxD @ (A @ C)
        QCQ = QC - (QC @ X_NxTxD) @ A
        diag = np.einsum("ntt->nt", QCQ)
        C = C - q * (QC + np.swapaxes(QC, 1, 2)) + q**2 * QCQ
        C = C + (q * (1 - q) * diag)[:, :, None] * eye + q * sigma2 * eye
        vals.append(weighted_trace(cov, A @ C @ At))
    return np.stack(vals, 1)


def exact_curve(
    G: int,
    d: int,
    T: int,
    sigma2: float,
    schedule: str,
    base: str = "previous",
    *,
    q=None,
    k=None,
    eta=None,
    n_designs: int = 2000,
    rng=None,
    cov=None,
):
    """Expected test error of the ToEdit model, g = 0..G, exact in the noise, averaged over
    sampled X ~ N(0, cov) rows and masks (theory/toedit_audit.md §3 recursion; base="original" derived
    in theory/derivations.md §9, see ``masked_curve``).  bernoulli uses the exact mask-averaged recursions (previous:
    ``bernoulli_previous_curve``; original: ``averaged_mask_curve`` with E m_i m_j = q²,
    E m_i = q); disjoint/fixed/full sample masks with ``edit_masks``.  Returns (mean, se)."""
    G = check_G(G)
    check_sizes(d, T)
    sigma2 = check_sigma2(sigma2)
    par = check_schedule(schedule, T, q=q, k=k, eta=eta)
    check_choice("base", base, BASES)
    cov = check_cov(cov, d)
    rng = np.random.default_rng(rng)
    X = sample_designs(n_designs, T, d, rng, cov)
    if schedule == "bernoulli":
        q = par["q"]
        if base == "previous":
            vals = bernoulli_previous_curve(G, X, cov, sigma2, q)
        else:
            vals = averaged_mask_curve(G, X, cov, sigma2, q**2, q * (1 - q), cross=True)
    else:
        masks = edit_masks(G, T, schedule, rng, q=q, k=k, eta=eta, n_masks=n_designs)
        vals = masked_curve(G, X, cov, sigma2, masks, base)
    return mean_se(vals, *design_control(X, cov))


def fixed_mask_limit(d: int, T: int, k: int, sigma2: float, n_designs: int = 2000, rng=None, cov=None):
    """lim_g E_test for the fixed schedule (k edited rows, T−k real rows R kept), Theorem M2 of
    theory/derivations.md §8c:
        Cov(e_∞) = σ²[(X_RᵀX_R)⁻¹ + Σ_j B^j G⁻¹X_SᵀX_S G⁻¹ (B^j)ᵀ],  B = G⁻¹X_SᵀX_S.
    With B̃ = G^{-1/2} X_SᵀX_S G^{-1/2} = U diag(λ) Uᵀ the series is
    G^{-1/2} U diag(λ/(1−λ²)) Uᵀ G^{-1/2}.  Needs T−k ≥ d (else the error grows without bound:
    returns inf); the mean is finite for T−k ≥ d+2.  Returns (mean, se) over sampled X."""
    check_sizes(d, T)
    k = _check_k(k, T)
    sigma2 = check_sigma2(sigma2)
    cov = check_cov(cov, d)
    if T - k < d:
        return math.inf, math.nan
    X = sample_designs(n_designs, T, d, rng, cov)  # rows are exchangeable: R = the first T−k rows
    XR, XS = X[:, : T - k], X[:, T - k :]
    gram_R = np.swapaxes(XR, 1, 2) @ XR
    gram_S = np.swapaxes(XS, 1, 2) @ XS
    ev, V = np.linalg.eigh(gram_R + gram_S)
    g_mhalf = (V / np.sqrt(ev)[:, None, :]) @ np.swapaxes(V, 1, 2)
    lam, U = np.linalg.eigh(g_mhalf @ gram_S @ g_mhalf)
    lam = np.clip(lam, 0.0, None)
    series = g_mhalf @ (U * (lam / (1 - lam**2))[:, None, :]) @ np.swapaxes(U, 1, 2) @ g_mhalf
    vals = sigma2 * (weighted_trace(cov, np.linalg.inv(gram_R)) + weighted_trace(cov, series))
    mean, se = mean_se(vals[:, None], *design_control(X, cov))
    return float(mean[0]), float(se[0])
