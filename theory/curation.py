"""Curated, verified and selected synthetic data in the 1-D Gaussian world (theory/curation.md §5–§9).

The model N(μ_t, s_t²) generates candidates; a rule keeps or picks some; the next model is the MLE
refit (mean, variance with divisor n) on n kept rows.  c = (n−1)/n.  φ, Φ: standard normal pdf, cdf.
- verifier window: keep x iff |x − centre| ≤ half_width (the acceptance rule of Yi, Liu, Cheng & Xu,
  arXiv 2510.16657, in one dimension);
- best-of-K: each row is the best of K draws by a reward (Ferbach et al., arXiv 2407.09499, with a
  hard max; Feng et al., arXiv 2406.07515, select by a verifier);
- preference curation as K → ∞: p_{t+1} ∝ p_t e^{r} (Ferbach et al., arXiv 2407.09499);
- top fraction: draw n/α, keep the n with the highest linear score.
Every result states its STATUS: exact, exact one step, large-sample limit, bound or paper approximation.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import integrate, special, stats


# --------------------------------------------------------------------------- checks


def _positive(name, x):
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name}={x!r} must be a finite number > 0")
    return a


def _finite(name, x):
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"{name}={x!r} must be a finite number")
    return a


def _whole(name, x, minimum):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < minimum:
        raise ValueError(f"{name}={x!r} must be a whole number >= {minimum}")
    return int(x)


# --------------------------------------------------------------------------- verifier window (§5)


def window_step(mu, s2, centre, half_width, n_kept=None):
    """One generation of the verifier window, conditional on the model N(μ, s²):
    a = (centre − h − μ)/s, b = (centre + h − μ)/s, Z = Φ(b) − Φ(a) (the acceptance rate),
    C = (φ(b) − φ(a))/Z, θ = 1 − (bφ(b) − aφ(a))/Z − C²; the kept rows are iid N(μ, s²) truncated
    to the window, so  E μ' = μ − sC,  E s'² = ((N−1)/N) s²θ  for the MLE refit on N kept rows
    (n_kept=None: s²θ, the truncated variance).  Vectorised over mu and s2.  Returns a dict with
    "acceptance", "mean", "var".  Loses precision when Z < ~1e-8 (window far in a tail).
    theory/curation.md §5.  STATUS: exact one step."""
    mu, s2 = _finite("mu", mu), _positive("s2", s2)
    centre, h = float(_finite("centre", centre)), float(_positive("half_width", half_width))
    s = np.sqrt(s2)
    a, b = (centre - h - mu) / s, (centre + h - mu) / s
    Z = np.where(a > 0, stats.norm.sf(a) - stats.norm.sf(b), stats.norm.cdf(b) - stats.norm.cdf(a))
    pa, pb = stats.norm.pdf(a), stats.norm.pdf(b)
    C = (pb - pa) / Z
    theta = 1 - (b * pb - a * pa) / Z - C**2
    factor = 1.0 if n_kept is None else (_whole("n_kept", n_kept, 1) - 1) / n_kept
    return {"acceptance": Z, "mean": mu - s * C, "var": factor * s2 * theta}


def window_curve(G, mu0, s2_0, centre, half_width):
    """(μ_g, s²_g), g = 0..G, iterating the N → ∞ map of ``window_step`` from (μ0, s²0): the mean
    creeps to the window's centre and the variance keeps shrinking, even with infinite samples.
    At finite N only the one-step moments are exact.  theory/curation.md §5.
    STATUS: large-sample limit (N → ∞)."""
    G = _whole("G", G, 0)
    mu, s2 = float(_finite("mu0", mu0)), float(_positive("s2_0", s2_0))
    out = [(mu, s2)]
    for _ in range(G):
        step = window_step(mu, s2, centre, half_width)
        mu, s2 = float(step["mean"]), float(step["var"])
        out.append((mu, s2))
    out = np.array(out)
    return out[:, 0], out[:, 1]


# --------------------------------------------------------------------------- best-of-K (§6)


@functools.lru_cache(maxsize=None)
def _max_moments(K):
    def dens(x):
        return K * np.exp(stats.norm.logpdf(x) + (K - 1) * special.log_ndtr(x))

    lo, hi = -12.0, 12.0  # the mass outside is < 1e-30 for any K < 1e20
    mode = math.sqrt(2 * math.log(K)) if K > 1 else 0.0
    kw = dict(epsabs=1e-14, epsrel=1e-13, limit=500, points=[mode])
    e = integrate.quad(lambda x: x * dens(x), lo, hi, **kw)[0]
    v = integrate.quad(lambda x: (x - e) ** 2 * dens(x), lo, hi, **kw)[0]
    return e, v


def max_normal_moments(K):
    """(e_K, v_K): mean and variance of the max of K iid N(0, 1), density Kφ(x)Φ(x)^{K−1}, by adaptive
    quadrature (accurate to ~1e-12; e₂ = 1/√π, v₂ = 1 − 1/π).  theory/curation.md §6.  STATUS: exact."""
    return _max_moments(_whole("K", K, 1))


def best_of_k_variance_curve(G, K, n, s2_0=1.0):
    """E s²_g = s²_0 (c v_K)^g, g = 0..G, for best-of-K by a linear reward r(x) = x: each of the n rows
    is μ_t + s_t M_i with M_i the max of K standard normals, so s²_{t+1} = s²_t Q_t, Q_t the MLE
    variance of n iid M's, independent of the past, E Q = c v_K.  Conditional on s²_0.
    theory/curation.md §6.  STATUS: exact."""
    G, n = _whole("G", G, 0), _whole("n", n, 2)
    _, v = max_normal_moments(K)
    return float(_positive("s2_0", s2_0)) * ((n - 1) / n * v) ** np.arange(G + 1)


def best_of_k_mean_bound(G, K, n, mu0=0.0, s2_0=1.0):
    """Upper bound on E μ_g, g = 0..G, best-of-K by r(x) = x: μ_{t+1} = μ_t + s_t M̄_t exactly, so
    E μ_g = μ0 + e_K s_0 Σ_{j<g} (E √Q)^j, and Jensen (E√Q ≤ √(c v_K)) bounds it by
    μ0 + e_K s_0 Σ_{j<g} (c v_K)^{j/2}.  E√Q (the mean sample s.d. of max-of-K draws) has no closed form.
    theory/curation.md §6.  STATUS: bound (exact upper bound at every n)."""
    G, n = _whole("G", G, 0), _whole("n", n, 2)
    return _mean_series(G, K, (n - 1) / n, mu0, s2_0)


def best_of_k_mean_curve(G, K, mu0=0.0, s2_0=1.0):
    """E μ_g → μ0 + e_K s_0 Σ_{j<g} v_K^{j/2} as n → ∞ (Q → v_K), g = 0..G; the reward saturates at
    ``best_of_k_saturation``.  theory/curation.md §6.  STATUS: large-sample limit (n → ∞)."""
    return _mean_series(_whole("G", G, 0), K, 1.0, mu0, s2_0)


def _mean_series(G, K, c, mu0, s2_0):
    e, v = max_normal_moments(K)
    s0 = math.sqrt(float(_positive("s2_0", s2_0)))
    ratio = math.sqrt(c * v) ** np.arange(G)
    return float(_finite("mu0", mu0)) + e * s0 * np.concatenate([[0.0], np.cumsum(ratio)])


def best_of_k_saturation(K, mu0=0.0, s2_0=1.0):
    """lim_g E μ_g = μ0 + e_K s_0/(1 − √v_K) as n → ∞ (μ0 for K = 1): curation raises the reward by a
    bounded amount while the variance collapses geometrically.  theory/curation.md §6.
    STATUS: large-sample limit (n → ∞, g → ∞)."""
    e, v = max_normal_moments(K)
    s0 = math.sqrt(float(_positive("s2_0", s2_0)))
    return float(_finite("mu0", mu0)) + (0.0 if K == 1 else e * s0 / (1 - math.sqrt(v)))


def best_of_k_quadratic_step(mu, s2, target, K, n=None):
    """One generation of best-of-K by r(x) = −(x − x*)² (keep the draw nearest the target), given the
    model N(μ, s²).  With z = (x − μ)/s and δ = (x* − μ)/s, the kept row's distance R = |z − δ| is the
    min of K iid distances, P(R > r) = S(r)^K with S(r) = Φ(−δ − r) + Φ(δ − r); given R = r the row is
    δ ± r in the ratio φ(δ + r) : φ(δ − r), so E[z − δ | r] = −r tanh(δr).  Hence
        m₁ = δ − E[R tanh(δR)],   m₂ = E R² − (E[R tanh(δR)])²,   E g(R) = ∫₀^∞ g'(r) S(r)^K dr,
    by quadrature, and E μ' = μ + s m₁, E s'² = c s² m₂ for the MLE refit on n rows (n=None: s² m₂).
    There is no closed form in elementary functions, and the iterate depends on (μ, s) only as
    n → ∞.  Returns (E μ', E s'²).  theory/curation.md §6.  STATUS: exact one step (quadrature)."""
    mu, s2, target = float(_finite("mu", mu)), float(_positive("s2", s2)), float(_finite("target", target))
    K = _whole("K", K, 1)
    c = 1.0 if n is None else (_whole("n", n, 2) - 1) / n
    s = math.sqrt(s2)
    d = (target - mu) / s

    def survival(r):  # S(r)^K, in logs so that large K does not underflow early
        return np.exp(K * np.logaddexp(special.log_ndtr(-d - r), special.log_ndtr(d - r)))

    # S(r)^K falls from 1 over r ~ 1/(2Kφ(δ)): break the range at multiples of that scale.
    top = abs(d) + 12.0
    scale = 1.0 / (2 * K * stats.norm.pdf(d) + 1e-300)
    points = [p for p in scale * 4.0 ** np.arange(-2, 40) if p < top][:40]

    def integral(f):
        return integrate.quad(f, 0.0, top, points=points, epsabs=1e-14, epsrel=1e-12, limit=1000)[0]

    r_tanh = integral(lambda r: (np.tanh(d * r) + d * r / np.cosh(d * r) ** 2) * survival(r))
    r_sq = integral(lambda r: 2 * r * survival(r))
    return mu + s * (d - r_tanh), c * s2 * (r_sq - r_tanh**2)


# --------------------------------------------------------------------------- preference tilt (§7)


def tilt_linear_curve(G, mu0, s2_0, beta):
    """K → ∞ preference curation with r(x) = βx: N(μ, s²)·e^{βx} ∝ N(μ + βs², s²), so
    μ_g = μ0 + gβs²_0, s²_g = s²_0 (g = 0..G).  Choosing one of K draws by softmax(r) is
    sampling-importance-resampling and tends to this tilt as K → ∞ (Ferbach et al., arXiv
    2407.09499).  theory/curation.md §7.  STATUS: large-sample limit (K → ∞, n → ∞)."""
    g = np.arange(_whole("G", G, 0) + 1, dtype=np.float64)
    s2 = float(_positive("s2_0", s2_0))
    return float(_finite("mu0", mu0)) + g * float(_finite("beta", beta)) * s2, np.full(g.size, s2)


def tilt_quadratic_curve(G, mu0, s2_0, target, reward_var):
    """K → ∞ preference curation with r(x) = −(x − x*)²/(2τ_r²) (reward_var = τ_r²): a conjugate
    update, precision P_{g+1} = P_g + 1/τ_r², mean μ_{g+1} = (P_g μ_g + x*/τ_r²)/P_{g+1}, so
    P_g = 1/s²_0 + g/τ_r², μ_g = (μ0/s²_0 + g x*/τ_r²)/P_g: the model converges to x* with variance
    ~ τ_r²/g (Ferbach et al., arXiv 2407.09499).  Per coordinate for a diagonal model and an isotropic
    reward.  Returns (μ_g, s²_g), g = 0..G.  theory/curation.md §7.
    STATUS: large-sample limit (K → ∞, n → ∞)."""
    g = np.arange(_whole("G", G, 0) + 1, dtype=np.float64)
    p0, pr = 1.0 / float(_positive("s2_0", s2_0)), 1.0 / float(_positive("reward_var", reward_var))
    P = p0 + g * pr
    return (p0 * float(_finite("mu0", mu0)) + g * pr * float(_finite("target", target))) / P, 1.0 / P


# --------------------------------------------------------------------------- top fraction (§8)


def top_fraction_factors(keep_fraction):
    """Keep the top share α of candidates by a linear score (z = Φ⁻¹(1 − α)): the kept rows are
    N(μ, s²) truncated to x > μ + sz, so the mean shifts by s·φ(z)/α and the variance is multiplied by
    1 + zφ(z)/α − (φ(z)/α)².  Returns (φ(z)/α, factor), vectorised; α = 1 gives (0, 1).
    theory/curation.md §8.  STATUS: large-sample limit (n → ∞; the kept rows are order statistics)."""
    a = np.asarray(keep_fraction, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a > 1):
        raise ValueError(f"keep_fraction={keep_fraction!r} must be in (0, 1] (the share of candidates kept)")
    z = stats.norm.isf(a)
    lam = stats.norm.pdf(z) / a
    with np.errstate(invalid="ignore"):
        z_lam = np.where(a == 1, 0.0, z * lam)
    return lam, 1 + z_lam - lam**2


def top_fraction_curve(G, keep_fraction, mu0=0.0, s2_0=1.0):
    """(μ_g, s²_g), g = 0..G, with the factors of ``top_fraction_factors`` (λ, f) applied every
    generation: s²_g = s²_0 f^g, μ_g = μ0 + λ s_0 Σ_{j<g} f^{j/2}.  theory/curation.md §8.
    STATUS: large-sample limit (n → ∞)."""
    G = _whole("G", G, 0)
    lam, f = (float(x) for x in top_fraction_factors(keep_fraction))
    s2 = float(_positive("s2_0", s2_0))
    steps = math.sqrt(s2) * lam * math.sqrt(f) ** np.arange(G)
    return float(_finite("mu0", mu0)) + np.concatenate([[0.0], np.cumsum(steps)]), s2 * f ** np.arange(G + 1)
