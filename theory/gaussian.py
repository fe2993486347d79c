"""Closed forms for the Gaussian fitting worlds (theory/derivations.md §10–12), plain numpy/scipy:
the chain of refits over generations (replace, accumulate, Bertrand et al.'s mixing).  The
distance and tail mass of one fitted Gaussian against the truth are in theory/gaussian_metrics.py.

Convention (project-wide).  Generations g = 0..G.  Generation 0 is fitted on
M[0] real samples from the truth N(mu, Sigma); generation g >= 1 is fitted on
M[g] samples drawn from the model of generation g-1.  The model of generation g
is therefore the result of g+1 fits, on sample sets M[0..g].  Curves have
length G+1 and are indexed by g.  ``M`` is an int (same size every generation,
then ``G`` is required) or a sequence of length G+1.

Estimators.  A fit returns the sample mean and the sample covariance with
divisor m:  ``"unbiased"``: m = M-1 (Shumailov et al., Nature 2024, Thm 3.1);
``"mle"``: m = M (Kazdan et al. arXiv 2410.16713, ``fit_gaussians``:
``np.cov(bias=True)``).  With k = M-1 degrees of freedom, Cochran's theorem
gives, conditionally on the previous model (mean mu', covariance S'),

    mean = mu' + S'^{1/2} Z / sqrt(M),   m * cov = S'^{1/2} W S'^{1/2},
    Z ~ N(0, I_d),  W ~ Wishart_d(I, k),  independent.                     (*)

Every exact result here follows from (*) by the tower rule:
E tr W = d k,  E sqrt(chi2_k) = sqrt(2) Gamma((k+1)/2)/Gamma(k/2),
E log det W = sum_{j=1..d} [psi((k+1-j)/2) + log 2]  (Bartlett decomposition).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

ESTIMATORS = ("unbiased", "mle")


# --------------------------------------------------------------------------- helpers

def sample_sizes(M, G=None, *, minimum=2, name="M") -> np.ndarray:
    """Per-generation sample sizes as an int array of length G+1.

    ``M`` is an int (then ``G`` is required) or a sequence of length G+1
    (then ``G``, if given, must match).  Raises ValueError naming the value.
    """
    if np.ndim(M) == 0:
        if G is None:
            raise ValueError(f"G is required when {name} is a single int, got {name}={M!r}")
        if isinstance(G, bool) or int(G) != G or G < 0:
            raise ValueError(f"G must be an integer >= 0, got G={G!r}")
        sizes = np.full(int(G) + 1, M)
    else:
        sizes = np.asarray(M)
        if sizes.ndim != 1 or sizes.size == 0:
            raise ValueError(f"{name} must be an int or a 1-D sequence, got {name}={M!r}")
        if G is not None and sizes.size != int(G) + 1:
            raise ValueError(f"{name} has length {sizes.size} but G={G!r} needs length G+1={int(G) + 1}")
    if sizes.dtype == bool or not np.all(np.isfinite(sizes.astype(float))) or np.any(sizes != np.round(sizes)):
        raise ValueError(f"{name} must hold integers, got {name}={M!r}")
    sizes = sizes.astype(np.int64)
    if np.any(sizes < minimum):
        raise ValueError(f"{name} must be >= {minimum} at every generation, got {name}={M!r}")
    return sizes


def _divisor(sizes: np.ndarray, estimator: str) -> np.ndarray:
    if estimator == "unbiased":
        return sizes - 1.0
    if estimator == "mle":
        return sizes * 1.0
    raise ValueError(f"estimator must be one of {ESTIMATORS}, got estimator={estimator!r}")


def _exclusive_cumprod(x: np.ndarray) -> np.ndarray:
    """[1, x0, x0 x1, ...]: the product over j < i."""
    return np.concatenate([[1.0], np.cumprod(x)[:-1]])


def chi_mean_factor(k):
    """c(k) = E sqrt(chi2_k / k) = sqrt(2/k) Gamma((k+1)/2) / Gamma(k/2)  (~ 1 - 1/(4k)), k > 0.

    The Gamma ratio is scipy's ``poch(k/2, 1/2)``: equal to
    exp(gammaln((k+1)/2) - gammaln(k/2)) but without its cancellation error
    (~1e-10 at k = 1e6).
    """
    k = np.asarray(k, dtype=float)
    if np.any(~(k > 0)):
        raise ValueError(f"k must be > 0, got k={k!r}")
    return np.sqrt(2.0 / k) * special.poch(k / 2, 0.5)


# --------------------------------------------------------------------------- replace, exact

def replace_trace_ratio(M, G=None, *, estimator: str) -> np.ndarray:
    """E tr Sigma_g / tr Sigma = prod_{i<=g} (M_i - 1)/m_i   (any d; 1-D: E sigma_g^2 / sigma^2).

    Unbiased: 1 for all g (a martingale, yet sigma_g -> 0 a.s.).  MLE:
    prod ((M_i-1)/M_i), Kazdan et al. §3.2 ``((n-1)/n)^t`` with t = g+1 fits.
    """
    sizes = sample_sizes(M, G)
    return np.cumprod((sizes - 1.0) / _divisor(sizes, estimator))


def replace_logdet_change(M, G=None, *, d: int = 1, estimator: str) -> np.ndarray:
    """E log det Sigma_g - log det Sigma = sum_{i<=g} sum_{j=1..d} [psi((M_i-j)/2) + log 2 - log m_i].

    Bartlett decomposition of (*); needs M_i >= d+1.  The finite-variance
    statistic to test instead of det (whose mean is heavy-tailed).  d = 1 gives
    E log sigma_g^2 - log sigma^2.
    """
    if isinstance(d, bool) or int(d) != d or d < 1:
        raise ValueError(f"d must be an integer >= 1, got d={d!r}")
    sizes = sample_sizes(M, G, minimum=int(d) + 1)
    j = np.arange(1, int(d) + 1)
    per_fit = (special.digamma((sizes[:, None] - j) / 2.0) + np.log(2.0)).sum(1) - d * np.log(_divisor(sizes, estimator))
    return np.cumsum(per_fit)


def replace_mean_sq_error(M, G=None, *, trace: float = 1.0, estimator: str) -> np.ndarray:
    """E ||mu_g - mu||^2 = tr Sigma * sum_{i<=g} (1/M_i) prod_{j<i} (M_j - 1)/m_j.

    The mean increments Sigma_{i-1}^{1/2} Z_i / sqrt(M_i) are martingale
    differences, so their squares add; E tr Sigma_{i-1} is ``replace_trace_ratio``
    one generation back.  Unbiased: sigma^2 sum_{i<=g} 1/M_i (Shumailov SI §3.1.1).
    ``trace`` = tr Sigma (sigma^2 in 1-D).
    """
    sizes = sample_sizes(M, G)
    ratio_before = _exclusive_cumprod((sizes - 1.0) / _divisor(sizes, estimator))
    return trace * np.cumsum(ratio_before / sizes)


def replace_std_mean(M, G=None, *, sigma: float = 1.0, estimator: str) -> np.ndarray:
    """1-D: E sigma_g = sigma * prod_{i<=g} sqrt((M_i-1)/m_i) c(M_i - 1),  c = ``chi_mean_factor``.

    Unbiased: sigma prod c(M_i - 1) (theory/derivations.md §10).
    """
    sizes = sample_sizes(M, G)
    k = sizes - 1.0
    return sigma * np.cumprod(np.sqrt(k / _divisor(sizes, estimator)) * chi_mean_factor(k))


def replace_w2sq(M, G=None, *, sigma2: float = 1.0, estimator: str) -> np.ndarray:
    """1-D, exact: E W_2^2(N(mu_g, sigma_g^2), N(mu, sigma^2)) = E(mu_g-mu)^2 + E sigma_g^2 - 2 sigma E sigma_g + sigma^2.

    Unbiased: sigma^2 sum_{i<=g} 1/M_i + 2 sigma^2 (1 - prod_{i<=g} c(M_i - 1)).
    Shumailov SI §3.1.1 Eq. 6 gives its first-order expansion,
    ``shumailov_w2sq_approx``.
    """
    sigma = np.sqrt(sigma2)
    return (replace_mean_sq_error(M, G, trace=sigma2, estimator=estimator)
            + sigma2 * replace_trace_ratio(M, G, estimator=estimator)
            - 2.0 * sigma * replace_std_mean(M, G, sigma=sigma, estimator=estimator)
            + sigma2)


def shumailov_w2sq_approx(M, G=None, *, sigma2: float = 1.0) -> np.ndarray:
    """APPROXIMATION (first order in 1/M): E W_2^2 ~ (3/2) sigma^2 sum_{i<=g} 1/M_i.

    Shumailov et al. SI §3.1.1 Eq. 6, unbiased estimators; their mu_{n+1} is
    our generation g = n.  From c(k) ~ 1 - 1/(4k); the error is O(g^2/M^2) +
    O(g/M^2), so the relative error shrinks like 1/M at fixed g.
    """
    sizes = sample_sizes(M, G)
    return 1.5 * sigma2 * np.cumsum(1.0 / sizes)


def replace_sample_variance(M, G=None, *, sigma2: float = 1.0, estimator: str) -> np.ndarray:
    """Var of one point drawn from the model of generation g (the data that trains g+1).

    Var x = E sigma_g^2 + E (mu_g - mu)^2 (total variance over the fits).
    Unbiased: sigma^2 (1 + sum_{i<=g} 1/M_i), exact; Shumailov SI Eq. 6 writes
    sigma^2 (1 + n/M) + O(2) for the data of their generation n (= our g+1).
    """
    return (sigma2 * replace_trace_ratio(M, G, estimator=estimator)
            + replace_mean_sq_error(M, G, trace=sigma2, estimator=estimator))


def replace_var_median(M, G=None, *, sigma2: float = 1.0, estimator: str) -> np.ndarray:
    """1-D: median of sigma_g^2 (the mean stays sigma^2 for "unbiased"; the median decays).

    log(sigma_g^2/sigma^2) = sum_{i<=g} [log(2/m_i) + log Gamma_i],
    Gamma_i ~ Gamma((M_i-1)/2, 1) independent, with characteristic function
    exp(i t s + sum log Gamma(a_i + i t) - log Gamma(a_i)).  The median is found by
    Gil-Pelaez inversion (composite Gauss-Legendre) and a root solve: exact up
    to quadrature error (~1e-10).  [D]
    """
    sizes = sample_sizes(M, G)
    a = (sizes - 1.0) / 2.0
    shift = np.log(2.0 / _divisor(sizes, estimator))
    out = np.empty(sizes.size)
    for g in range(sizes.size):
        out[g] = sigma2 * np.exp(_log_gamma_sum_median(a[: g + 1], shift[: g + 1].sum()))
    return out


def _log_gamma_sum_median(a: np.ndarray, shift: float) -> float:
    """Median of shift + sum_i log Gamma(a_i, 1) by Gil-Pelaez inversion."""
    mean = shift + special.digamma(a).sum()
    sd = np.sqrt(special.polygamma(1, a).sum())

    def log_abs_cf(t):
        return (special.loggamma(a[None, :] + 1j * t[:, None]).real - special.gammaln(a)).sum(1)

    t_max = 1.0 / sd
    while log_abs_cf(np.array([t_max]))[0] > -40.0:  # |cf| < 4e-18 beyond t_max
        t_max *= 1.5
    nodes, weights = np.polynomial.legendre.leggauss(48)
    edges = np.linspace(0.0, t_max, 129)
    half = np.diff(edges)[:, None] / 2
    t = (edges[:-1, None] + half * (nodes[None, :] + 1)).ravel()
    w = (half * weights[None, :]).ravel()
    cf = np.exp(1j * t * shift + (special.loggamma(a[None, :] + 1j * t[:, None]) - special.gammaln(a)).sum(1))

    def cdf_minus_half(x):  # F(x) - 1/2 = -(1/pi) int_0^inf Im(e^{-itx} cf(t)) / t dt
        return -np.sum(w * np.imag(np.exp(-1j * t * x) * cf) / t) / np.pi

    return optimize.brentq(cdf_minus_half, mean - 12 * sd, mean + 12 * sd, xtol=1e-12)


# --------------------------------------------------------------------------- accumulate

def _accumulate_trace(sizes: np.ndarray, estimator: str) -> np.ndarray:
    """E tr Sigma_g / tr Sigma for g = 0..G under accumulate (see ``accumulate_trace_ratio``)."""
    pooled = np.cumsum(sizes).astype(float)  # N_g
    div = _divisor(pooled, estimator)
    scatter = np.empty(sizes.size)  # E tr S_g / tr Sigma, S_g = pooled scatter about the pooled mean
    scatter[0] = sizes[0] - 1.0
    for g in range(1, sizes.size):
        scatter[g] = scatter[g - 1] * (1.0 + (sizes[g] - 1.0 + pooled[g - 1] / pooled[g]) / div[g - 1])
    return scatter / div


def accumulate_trace_ratio(M, G=None, *, estimator: str) -> np.ndarray:
    """Accumulate, exact: E tr Sigma_g / tr Sigma with Sigma_g the pooled covariance of all sets 0..g.

    Generation g pools the real set and synthetic sets 1..g (N_g = sum_{i<=g} M_i
    points); set g is drawn from model g-1.  The pooled scatter S_g obeys
    E[S_g | past] = S_{g-1} + (M_g - 1 + N_{g-1}/N_g) Sigma_{g-1}, with
    Sigma_{g-1} = S_{g-1}/(N_{g-1} - 1) or S_{g-1}/N_{g-1} (mle): a linear
    recursion for the mean.  The ratio decreases slowly in g and stays well
    away from 0.  [D]
    """
    return _accumulate_trace(sample_sizes(M, G), estimator)


def accumulate_mean_sq_error(M, G=None, *, trace: float = 1.0, estimator: str) -> np.ndarray:
    """Accumulate, exact: E ||mu_g - mu||^2 = tr Sigma sum_{i<=g} (M_i / N_i^2) E tr Sigma_{i-1}/tr Sigma.

    The pooled mean moves by mu_g - mu_{g-1} = (M_g/N_g)(xbar_g - mu_{g-1})
    (martingale differences), with E||xbar_g - mu_{g-1}||^2 = E tr Sigma_{g-1}/M_g
    from ``accumulate_trace_ratio``.  [D]  With Sigma_{i-1} frozen at Sigma
    this is ``accumulate_mean_sq_error_approx``, an upper bound here since
    the pooled covariance only shrinks in expectation.
    """
    sizes = sample_sizes(M, G)
    pooled = np.cumsum(sizes).astype(float)
    before = np.concatenate([[1.0], _accumulate_trace(sizes, estimator)[:-1]])  # generation -1 is the truth
    return trace * np.cumsum(sizes / pooled**2 * before)


def accumulate_mean_sq_error_approx(M, G=None, *, trace: float = 1.0) -> np.ndarray:
    """APPROXIMATION (covariance frozen at the truth): tr Sigma sum_{i<=g} M_i/N_i^2.

    Constant M: (tr Sigma / M) sum_{k=1..g+1} 1/k^2 (theory/derivations.md §11; the sum runs
    to g+1 because generation g pools g+1 sets).  Exceeds the exact
    ``accumulate_mean_sq_error`` by a few percent (MLE, M = 20, g = 29: 0.0806 vs 0.0787).
    """
    sizes = sample_sizes(M, G)
    pooled = np.cumsum(sizes).astype(float)
    return trace * np.cumsum(sizes / pooled**2)


def accumulate_mean_sq_error_bound(M: int, *, trace: float = 1.0) -> float:
    """BOUND (constant M): (pi^2/6) tr Sigma / M >= the approximate and exact curves for every g.

    The "pi^2/6" factor of Dey & Donoho (arXiv 2410.22812) in its simplest case.
    """
    size = sample_sizes(M, 0)[0]
    return float(np.pi**2 / 6 * trace / size)


# --------------------------------------------------------------------------- Bertrand et al.

def bertrand_contraction(lam) -> np.ndarray:
    """Exact contraction of the Gaussian-mean map with synthetic-to-real ratio lam (infinite sample).

    mu_{t+1} = (mu* + lam mu_t)/(1 + lam), so ||mu_{t+1} - mu*|| = lam/(1+lam) ||mu_t - mu*||.
    Derived in theory/derivations.md §12; compare ``bertrand_bound``.
    """
    lam = np.asarray(lam, dtype=float)
    if np.any(~(lam >= 0)):
        raise ValueError(f"lam must be >= 0, got lam={lam!r}")
    return lam / (1.0 + lam)


def bertrand_bound(lam, *, alpha: float = 1.0, L: float = 0.0, eps: float = 0.0) -> np.ndarray:
    """Bertrand et al. (arXiv 2310.00429) contraction bound rho = lam(alpha + eps L)/(alpha - lam(alpha + eps L)).

    Well-specified Gaussian mean (L = 0, eps = 0): lam/(1 - lam) >= lam/(1+lam).
    Returns inf where the denominator is <= 0; the paper asks lam(1 + L eps/alpha) < 1/2
    for rho < 1.  Paper claim as recalled, not re-checked against its text (theory/derivations.md §12).
    """
    lam = np.asarray(lam, dtype=float)
    if np.any(~(lam >= 0)):
        raise ValueError(f"lam must be >= 0, got lam={lam!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got alpha={alpha!r}")
    num = lam * (alpha + eps * L)
    den = alpha - num
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


def bertrand_gaussian_step(mu, cov, mu_star, cov_star, lam):
    """Infinite-sample Gaussian MLE refit on the mixture (1/(1+lam)) N(mu*, cov*) + (lam/(1+lam)) N(mu, cov).

    mu' = (mu* + lam mu)/(1+lam),
    cov' = (cov* + lam cov)/(1+lam) + lam/(1+lam)^2 (mu - mu*)(mu - mu*)^T   (mixture moments).
    Returns (mu', cov').  Derived in theory/derivations.md §12.
    """
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got lam={lam!r}")
    mu, mu_star = np.asarray(mu, dtype=float), np.asarray(mu_star, dtype=float)
    cov, cov_star = np.asarray(cov, dtype=float), np.asarray(cov_star, dtype=float)
    gap = mu - mu_star
    mu_next = (mu_star + lam * mu) / (1 + lam)
    cov_next = (cov_star + lam * cov) / (1 + lam) + lam / (1 + lam) ** 2 * np.multiply.outer(gap, gap)
    return mu_next, cov_next
