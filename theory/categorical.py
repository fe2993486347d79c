"""Closed forms for the categorical world under replace (theory/derivations.md §14), plain numpy/scipy.

Convention (project-wide): generation 0 is the empirical distribution of M[0]
draws from the truth p; generation g >= 1 is the empirical distribution of
M[g] draws from generation g-1.  Curves have length G+1, indexed by g.

This is the neutral multi-allele Wright–Fisher chain (Shumailov et al. 2024,
"discrete distributions with exact approximation"; Kazdan et al.
``fit_discrete_distributions``).  One fact gives the exact curves below: the
count X_g of a single category is itself a Markov chain,
X_0 ~ Bin(M_0, p_k), X_g | X_{g-1} ~ Bin(M_g, X_{g-1}/M_{g-1})  (a multinomial's
marginal is binomial), so any E sum_k f(phat_{k,g}) is exact from
V one-dimensional chains (U << V when p has repeated values).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from collapse_sim.theory.gaussian import sample_sizes


# --------------------------------------------------------------------------- distributions

def validate_distribution(p, *, name: str = "p", atol: float = 1e-6) -> np.ndarray:
    """Return p as a float array after checking: 1-D, V >= 2, finite, >= 0, sums to 1 within atol."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{name} needs V >= 2 categories, got V={arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {name}={arr!r}")
    if np.any(arr < 0):
        i = int(np.argmin(arr))
        raise ValueError(f"{name} must be non-negative, got {name}[{i}]={float(arr[i])!r}")
    total = float(arr.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1 within {atol}, got sum={total!r}")
    return arr


def _check_vocab(V) -> int:
    if isinstance(V, bool) or not np.isscalar(V) or int(V) != V or V < 2:
        raise ValueError(f"V must be an integer >= 2, got V={V!r}")
    return int(V)


def uniform_distribution(V: int) -> np.ndarray:
    """p_k = 1/V, k = 1..V (Kazdan default: V = 6)."""
    V = _check_vocab(V)
    return np.full(V, 1.0 / V)


def zipf_distribution(V: int, s: float = 1.0) -> np.ndarray:
    """Truncated Zipf: p_k = k^{-s} / sum_{j<=V} j^{-s}, k = 1..V (s = 0 is uniform)."""
    V = _check_vocab(V)
    if not (np.isscalar(s) and np.isfinite(s) and s >= 0):
        raise ValueError(f"s must be a finite number >= 0, got s={s!r}")
    w = np.arange(1, V + 1, dtype=float) ** (-float(s))
    return w / w.sum()


def _check_size(M) -> int:
    if isinstance(M, bool) or not np.isscalar(M) or int(M) != M or M < 1:
        raise ValueError(f"M must be an integer >= 1, got M={M!r}")
    return int(M)


# --------------------------------------------------------------------------- one generation

def loss_probability(q, M: int) -> np.ndarray:
    """P(a category of probability q gets no sample among M) = (1 - q)^M; once lost it never returns.

    Shumailov et al. §4.1 [P]: M = 1000, q = 5e-4 gives 0.606.
    """
    M = _check_size(M)
    q = np.asarray(q, dtype=float)
    if np.any(~((q >= 0) & (q <= 1))):
        raise ValueError(f"q must lie in [0, 1], got q={q!r}")
    return (1.0 - q) ** M


def expected_surviving_categories(p, M: int) -> float:
    """E #{k : phat_{k,0} > 0} = sum_k (1 - (1 - p_k)^M): categories present in generation 0.

    Exact for one generation (linearity); ``expected_support_curve`` for later ones.
    """
    p = validate_distribution(p)
    return float(np.sum(1.0 - loss_probability(p, M)))


def expected_lost_mass(p, M: int) -> float:
    """E (true mass of the categories absent from generation 0) = sum_k p_k (1 - p_k)^M (exact)."""
    p = validate_distribution(p)
    return float(np.sum(p * loss_probability(p, M)))


def fixation_probabilities(p) -> np.ndarray:
    """P(the chain is absorbed at the point mass on k) = p_k: phat_{k,g} is a bounded martingale
    started (before generation 0) at p_k.  [P]
    """
    return validate_distribution(p).copy()


# --------------------------------------------------------------------------- summaries of a distribution

def entropy(p) -> np.ndarray:
    """Shannon entropy in nats, -sum p log p (0 log 0 = 0), over the last axis."""
    p = np.asarray(p, dtype=float)
    return -np.sum(special.xlogy(p, p), axis=-1)


def heterozygosity(p) -> np.ndarray:
    """Gini–Simpson heterozygosity sum_k p_k (1 - p_k) = 1 - sum_k p_k^2, over the last axis."""
    p = np.asarray(p, dtype=float)
    return 1.0 - np.sum(p**2, axis=-1)


def support_size(p, *, atol: float = 0.0) -> np.ndarray:
    """Number of categories with p_k > atol, over the last axis."""
    return np.sum(np.asarray(p) > atol, axis=-1)


def tail_mass(p, *, threshold: float, reference=None) -> np.ndarray:
    """Mass of p on the tail {k : reference_k <= threshold}; reference defaults to p itself.

    With reference = the truth and threshold = 1/M (categories expected to get
    fewer than one sample), E tail_mass(phat_g) = tail_mass(truth) for every g
    (martingale), although each run loses the tail.
    """
    p = np.asarray(p, dtype=float)
    ref = p if reference is None else np.asarray(reference, dtype=float)
    if ref.shape[-1] != p.shape[-1]:
        raise ValueError(f"reference must have V={p.shape[-1]} entries, got shape {ref.shape}")
    return np.sum(np.where(ref <= threshold, p, 0.0), axis=-1)


# --------------------------------------------------------------------------- exact curves

def expected_heterozygosity_curve(p, M, G=None) -> np.ndarray:
    """E H_g = H(p) prod_{i<=g} (1 - 1/M_i),  H = 1 - sum p^2 (exact).

    Per fit, E[phat(1-phat) | q] = q(1-q)(1 - 1/M) (binomial second moment).
    Generation 0 is already one fit, so g+1 factors; E H_g = E H_0 (1 - 1/M)^g
    for constant M.  [D]
    """
    p = validate_distribution(p)
    sizes = sample_sizes(M, G, minimum=1)
    return heterozygosity(p) * np.cumprod(1.0 - 1.0 / sizes)


def _transition(m_prev: int, m: int) -> np.ndarray:
    """T[x, y] = P(X' = y | X = x) = Bin(y; m, x/m_prev)."""
    return stats.binom.pmf(np.arange(m + 1)[None, :], m, (np.arange(m_prev + 1) / m_prev)[:, None])


def _marginal_chains(q_U: np.ndarray, sizes: np.ndarray):
    """Yield, for g = 0..G, the law (U, M_g + 1) of the count X_g of a category of true
    probability q_u: X_0 ~ Bin(M_0, q_u), X_g | X_{g-1} ~ Bin(M_g, X_{g-1}/M_{g-1})."""
    dist_UxX = stats.binom.pmf(np.arange(sizes[0] + 1)[None, :], sizes[0], q_U[:, None])
    cache: dict = {}
    for g, m in enumerate(sizes):
        if g > 0:
            key = (int(sizes[g - 1]), int(m))
            if key not in cache:
                cache[key] = _transition(*key)
            dist_UxX = dist_UxX @ cache[key]
        yield dist_UxX


def _marginal_expectations(p, M, G, fns) -> list[np.ndarray]:
    """For each f in fns: the curve g -> E sum_k f(X_{k,g}, M_g), exactly, via the marginal chains."""
    p = validate_distribution(p)
    sizes = sample_sizes(M, G, minimum=1)
    values, mult = np.unique(p, return_counts=True)
    out = [np.empty(sizes.size) for _ in fns]
    for g, (m, dist_UxX) in enumerate(zip(sizes, _marginal_chains(values, sizes))):
        per_count = mult @ dist_UxX  # expected number of categories with count x
        x = np.arange(m + 1)
        for curve, fn in zip(out, fns):
            curve[g] = per_count @ fn(x, m)
    return out


def zero_count_curves(q, M, G=None) -> np.ndarray:
    """P(X_g = 0), (U, G+1), exact: the chance that a category of true probability q_u
    has no sample in generation g (lost for good: 0 is absorbing), from its marginal
    chain.  g = 0 is ``loss_probability`` (1 - q)^M_0.  Weighted by p_k and summed it is
    the expected true mass lost by generation g.  Cost O(U M^2 G).  [D]
    """
    q_U = np.atleast_1d(np.asarray(q, dtype=float))
    if q_U.ndim != 1 or np.any(~((q_U >= 0) & (q_U <= 1))):
        raise ValueError(f"q must be a probability or a 1-D array of them in [0, 1], got q={q!r}")
    sizes = sample_sizes(M, G, minimum=1)
    return np.stack([dist_UxX[:, 0] for dist_UxX in _marginal_chains(q_U, sizes)], axis=1)


def expected_entropy_curve(p, M, G=None) -> np.ndarray:
    """E H(phat_g) in nats, exact: sum_k E[-(X_{k,g}/M_g) log(X_{k,g}/M_g)] over the marginal chains.

    Cost O(U M^2 G) with U distinct values in p.  [D]
    """
    def eta(x, m):
        return -special.xlogy(x / m, x / m)

    return _marginal_expectations(p, M, G, [eta])[0]


def expected_support_curve(p, M, G=None) -> np.ndarray:
    """E #{k : phat_{k,g} > 0}, exact (Kazdan logs V minus this as "number of zero proportions").

    g = 0 equals ``expected_surviving_categories``.  [D]
    """
    return _marginal_expectations(p, M, G, [lambda x, m: (x > 0).astype(float)])[0]


def absorption_probability_curve(p, M, G=None) -> np.ndarray:
    """P(generation g is a point mass) = sum_k P(X_{k,g} = M_g), exact (the events are disjoint).  [D]"""
    return _marginal_expectations(p, M, G, [lambda x, m: (x == m).astype(float)])[0]


def absorption_time_exact(p, M: int) -> float:
    """E[number of fits until the fitted distribution is a point mass], exact, constant M.

    Equals 1 + E[T] with T the first generation index whose model is a point
    mass (generation 0 is the first fit).  Since exactly one category fixes,
    E T = sum_k E[T 1{k fixes}]; on the binary chain of category k,
    w(x) = E[tau 1{fix} | X = x] solves (I - Q) w = x/M on the transient states
    1..M-1 (Q = transient block; x/M = P(fix | x)), and E T = sum_k E w(X_{k,0}),
    X_{k,0} ~ Bin(M, p_k).  Dense solve, so M <= 5000.  [D]
    """
    p = validate_distribution(p)
    M = _check_size(M)
    if M > 5000:
        raise ValueError(f"M must be <= 5000 for the dense solve, got M={M!r}")
    if M == 1:
        return 1.0
    inner = np.arange(1, M)
    Q = _transition(M, M)[1:-1, 1:-1]
    w = np.zeros(M + 1)
    w[1:-1] = np.linalg.solve(np.eye(M - 1) - Q, inner / M)
    values, mult = np.unique(p, return_counts=True)
    start_UxX = stats.binom.pmf(np.arange(M + 1)[None, :], M, values[:, None])
    return float(1.0 + mult @ start_UxX @ w)


def absorption_time_wright_fisher(p, M: int) -> float:
    """APPROXIMATION (Wright–Fisher diffusion limit): E[fits until a point mass] ~ -2M sum_k (1-p_k) ln(1-p_k).

    Classical multi-allele result (Kimura–Ohta; Littler 1975) for a haploid
    population of M, time counted in resampling steps from p, i.e. the same
    quantity as ``absorption_time_exact`` (first absorbed generation index + 1).
    Measured against the exact chain it overestimates by an absolute error that
    grows only like log M (uniform V = 6: +2.2 at M = 100, +3.0 at M = 1000), so
    the relative error falls like log(M)/M (1.2% and 0.16%; below 0.5 ln(M)/M for
    M in [10, 1280] and p in {uniform 6, (.5,.3,.2), (.5,.5), (.7,.2,.1)}).  Needs M min_k p_k >> 1:
    p = (0.99, 0.01), M = 10 is 28% low.  Derived in theory/derivations.md §14.
    """
    p = validate_distribution(p)
    M = _check_size(M)
    return float(-2.0 * M * np.sum(special.xlogy(1.0 - p, 1.0 - p)))
