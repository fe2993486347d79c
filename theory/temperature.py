"""Refitting on fresh real data mixed with synthetic data sampled at a temperature (theory/curation.md §1–§2).

Gaussian world, MLE refit.  Each generation draws α·n fresh real rows from the truth N(μ, σ²) and
(1−α)·n synthetic rows from the previous model sampled at temperature τ, N(μ_t, τ²Σ_t), and refits
the mean and the MLE variance (divisor n) on all n rows.  Generation 0 is the fit on n real rows.
Names and the papers' symbols: ``real_share`` = α (the fresh-real share; 1 − λ in replace-fraction
codes), ``temperature`` = τ (τ < 1 is the quality-biased sampling of Alemohammad et al., arXiv
2307.01850; τ > 1 the "heat death" regime of Marchi et al., arXiv 2404.02325).  c = (n−1)/n.

Categorical world: sampling at temperature τ is p ↦ normalise(p^{1/τ}); with a fresh-real share α
and infinitely many samples the model follows p_{t+1} = α p* + (1−α) normalise(p_t^{1/τ}).

Every result states its STATUS: exact, exact one step, large-sample limit, bound or paper approximation.
"""

from __future__ import annotations

import math

import numpy as np

from collapse_sim.theory.checks import check_G


# --------------------------------------------------------------------------- checks


def _check_share(real_share):
    a = np.asarray(real_share, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a > 1):
        raise ValueError(f"real_share={real_share!r} must be in (0, 1] (the share of fresh real rows)")
    return a


def _check_temperature(temperature):
    t = np.asarray(temperature, dtype=np.float64)
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"temperature={temperature!r} must be a finite number > 0")
    return t


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n={n!r} must be a whole number of rows >= 2")
    return int(n)


def _check_sigma2(sigma2) -> float:
    if not (np.isscalar(sigma2) and math.isfinite(sigma2) and sigma2 > 0):
        raise ValueError(f"sigma2={sigma2!r} must be a finite number > 0")
    return float(sigma2)


# --------------------------------------------------------------------------- Gaussian


def transition(real_share, temperature, n):
    """(M, b/σ²) of the linear map (E, v) ↦ M (E, v) + b, theory/curation.md §1:

        E_{t+1} = c(ασ² + (1−α)τ² E_t) + α(1−α) v_t
        v_{t+1} = ασ²/n + (1−α)τ² E_t/n + (1−α)² v_t

    M = [[(1−α)cτ², α(1−α)], [(1−α)τ²/n, (1−α)²]], b = σ²(cα, α/n).  E_t = E[Σ_t], v_t = Var(μ_t)
    (E μ_t = μ).  STATUS: exact (for α·n a whole number of real rows; the engine's share is round(αn)/n)."""
    a = float(_check_share(real_share))
    t2 = float(_check_temperature(temperature)) ** 2
    n = _check_n(n)
    c = (n - 1) / n
    M = np.array([[(1 - a) * c * t2, a * (1 - a)], [(1 - a) * t2 / n, (1 - a) ** 2]])
    return M, np.array([c * a, a / n])


def moment_curve(G, real_share, temperature, n, sigma2=1.0, E0=None, v0=None):
    """(E_g, v_g) for g = 0..G, per coordinate: the recursion of ``transition`` from the
    generation-0 fit on n real rows, E_0 = cσ², v_0 = σ²/n (or the given E0, v0).
    For a d-dimensional Gaussian the same recursion holds entrywise for E[Σ_t] and Cov(μ_t).
    Derivation: theory/curation.md §1 (within- and between-group sums of squares of the two row
    groups).  STATUS: exact."""
    G = check_G(G)
    sigma2 = _check_sigma2(sigma2)
    M, b = transition(real_share, temperature, n)
    c = (n - 1) / n
    x = np.array([c * sigma2 if E0 is None else float(E0), sigma2 / n if v0 is None else float(v0)])
    out = [x]
    for _ in range(G):
        x = M @ x + sigma2 * b
        out.append(x)
    out = np.stack(out)
    return out[:, 0], out[:, 1]


def spectral_radius(real_share, temperature, n):
    """ρ(M) of the 2×2 map of ``transition``, vectorised over real_share and temperature:
    ρ = (tr + √(tr² − 4 det))/2 with tr = (1−α)cτ² + (1−α)², det = (1−α)²τ²[(1−α)c − α/n]
    (M has positive off-diagonal entries, so both eigenvalues are real).  The moments converge
    iff ρ < 1.  theory/curation.md §1.  STATUS: exact."""
    a = _check_share(real_share)
    t2 = _check_temperature(temperature) ** 2
    n = _check_n(n)
    c = (n - 1) / n
    tr = (1 - a) * c * t2 + (1 - a) ** 2
    det = (1 - a) ** 2 * t2 * ((1 - a) * c - a / n)
    return (tr + np.sqrt(np.maximum(tr**2 - 4 * det, 0.0))) / 2


def critical_temperature_sq(real_share, n):
    """τ²_crit(α, n) = n(2−α) / ((1−α)(n(2−α) − 1)), the solution of ρ = 1 (det(I − M) = 0, linear
    in τ²), vectorised over real_share; ∞ at α = 1.  ρ < 1 iff τ² < τ²_crit, since ρ grows with τ²
    and ρ = (1−α)² < 1 at τ = 0.  As α → 0 it tends to 2n/(2n−1); at α = 0 (replace) no τ is stable
    because Var(μ_t) is a random walk.  theory/curation.md §1.  STATUS: exact."""
    a = _check_share(real_share)
    n = _check_n(n)
    with np.errstate(divide="ignore"):
        out = n * (2 - a) / ((1 - a) * (n * (2 - a) - 1))
    return np.where(a == 1, np.inf, out)


def phase_boundary(n, real_shares=None):
    """The (α, τ) phase boundary for a phase map: returns (α grid, τ_crit(α)) with τ_crit the
    square root of ``critical_temperature_sq``; the default grid is 199 points in (0, 1).
    theory/curation.md §1.  STATUS: exact."""
    a = np.linspace(0.005, 0.995, 199) if real_shares is None else _check_share(real_shares)
    return a, np.sqrt(critical_temperature_sq(a, n))


def fixed_point(real_share, temperature, n, sigma2=1.0):
    """(E_∞, v_∞) = (I − M)⁻¹ b when ρ < 1, else (∞, ∞) (all entries of M and b are ≥ 0, so the
    moments diverge).  At τ = 1: E_∞ = (1 − 1/D)σ², v_∞ = σ²/D, D = 1 − α + αn(2 − α), and
    E_∞ + v_∞ = σ² (``fixed_point_tau1``).  theory/curation.md §1.  STATUS: exact (limit g → ∞)."""
    sigma2 = _check_sigma2(sigma2)
    M, b = transition(real_share, temperature, n)
    if spectral_radius(real_share, temperature, n) >= 1:
        return math.inf, math.inf
    E, v = np.linalg.solve(np.eye(2) - M, sigma2 * b)
    return float(E), float(v)


def fixed_point_tau1(real_share, n, sigma2=1.0):
    """τ = 1 closed form: D = 1 − α + αn(2 − α), E_∞ = (1 − 1/D)σ², v_∞ = σ²/D (vectorised over α).
    Derivation: theory/curation.md §1 (v-equation gives α(2−α)n v = ασ² + (1−α)E; E = σ² − v solves
    the E-equation).  STATUS: exact (limit g → ∞)."""
    a = _check_share(real_share)
    n = _check_n(n)
    sigma2 = _check_sigma2(sigma2)
    D = 1 - a + a * n * (2 - a)
    return (1 - 1 / D) * sigma2, sigma2 / D


# --------------------------------------------------------------------------- categorical


def _check_probs(name, p):
    p = np.asarray(p, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] < 2 or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must hold probabilities >= 0 over at least 2 outcomes (last axis)")
    if not np.allclose(p.sum(-1), 1.0, atol=1e-9):
        raise ValueError(f"{name} must sum to 1 over its last axis; sums are {p.sum(-1)}")
    return p


def tempered(p, temperature):
    """normalise(p^{1/τ}) over the last axis, computed in log space (zeros stay zero).  τ < 1
    sharpens towards the argmax, τ > 1 flattens towards uniform on the support.
    theory/curation.md §2.  STATUS: exact (the sampling distribution at temperature τ)."""
    p = _check_probs("p", p)
    t = float(_check_temperature(temperature))
    with np.errstate(divide="ignore"):
        logp = np.log(p) / t
    logp = logp - logp.max(-1, keepdims=True)
    q = np.exp(logp)
    return q / q.sum(-1, keepdims=True)


def categorical_step(p, p_star, real_share, temperature):
    """p' = α p* + (1−α) normalise(p^{1/τ}).  With M rows a generation (αM real from p*, the rest
    sampled from the model at temperature τ) this is E[p_{t+1} | p_t] exactly, so the one-step
    conditional mean is exact at any M.  theory/curation.md §2.  STATUS: exact one step."""
    a = float(_check_share(real_share))
    return a * _check_probs("p_star", p_star) + (1 - a) * tempered(p, temperature)


def categorical_curve(G, p0, p_star, real_share, temperature):
    """p_g for g = 0..G under the map of ``categorical_step`` (shape (G+1, V)), from p0.
    The refit on finitely many samples makes the iterated map exact only as M → ∞.
    With no real data (α = 0, not accepted here) p_g ∝ p0^{τ^{−g}}: ``categorical_replace_curve``.
    theory/curation.md §2.  STATUS: large-sample limit (M → ∞)."""
    G = check_G(G)
    p = _check_probs("p0", p0)
    out = [p]
    for _ in range(G):
        p = categorical_step(p, p_star, real_share, temperature)
        out.append(p)
    return np.stack(out)


def categorical_replace_curve(G, p0, temperature):
    """No real data: p_g ∝ p0^{τ^{−g}} (g-fold tempering composes exponents), shape (G+1, V); the
    argmax mass for τ < 1, uniform on the support of p0 for τ > 1, as g → ∞.
    theory/curation.md §2.  STATUS: large-sample limit (M → ∞)."""
    G = check_G(G)
    t = float(_check_temperature(temperature))
    p0 = _check_probs("p0", p0)
    return np.stack([tempered(p0, t**g) for g in range(G + 1)])


def categorical_fixed_point(p_star, real_share, temperature, p0=None, tol=1e-13, max_iter=100_000):
    """A fixed point p = α p* + (1−α) normalise(p^{1/τ}), by iterating the map from p0 (default p*).
    For τ < 1 the map can have several fixed points (it sharpens towards the largest entries); the
    iteration returns the one reached from p0.  Raises RuntimeError if it has not converged (max
    change > tol) after max_iter steps.  theory/curation.md §2.  STATUS: large-sample limit (M → ∞),
    computed numerically."""
    p = _check_probs("p_star", p_star) if p0 is None else _check_probs("p0", p0)
    for _ in range(max_iter):
        q = categorical_step(p, p_star, real_share, temperature)
        if np.max(np.abs(q - p)) <= tol:
            return q
        p = q
    raise RuntimeError(
        f"the categorical temperature map did not converge in {max_iter} steps "
        f"(real_share={real_share}, temperature={temperature}); pass a larger max_iter or tol"
    )
