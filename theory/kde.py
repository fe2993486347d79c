"""Closed forms for the Gaussian-KDE world under replace (theory/derivations.md §13), plain numpy.

Convention (project-wide): generation 0 is the KDE of n[0] real points;
generation g >= 1 is the KDE of n[g] points drawn from the KDE of generation
g-1.  The model of generation g, built on points D_g = {x_1..x_n}, is
p_g = (1/n) sum_i N(x_i, h^2 I_d); a draw is x' = x_J + h z, J uniform.

Derivation [D].  Given D_g, a draw has mean xbar_g and covariance S_g + h^2 I
(total variance over J), S_g the biased (divisor n) sample covariance of D_g.
The biased sample covariance of n[g+1] i.i.d. draws has expectation
(1 - 1/n[g+1]) times their covariance, so for s2_g := tr S_g

    E s2_{g+1} = (1 - 1/n[g+1]) (E s2_g + d h^2),

whatever the data (Kazdan et al. arXiv 2410.16713 KDE world).  Constant n:
E s2_g = L + (E s2_0 - L)(1 - 1/n)^g with limit L = (n-1) d h^2.
"""

from __future__ import annotations

import numpy as np

from collapse_sim.theory.gaussian import sample_sizes


def _check_bandwidth(h) -> float:
    if not (np.isscalar(h) and np.isfinite(h) and h > 0):
        raise ValueError(f"h must be a finite number > 0, got h={h!r}")
    return float(h)


def _check_dim(dim) -> int:
    if isinstance(dim, bool) or not np.isscalar(dim) or int(dim) != dim or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got dim={dim!r}")
    return int(dim)


def expected_biased_variance(var_true, n: int) -> float:
    """E s2_0 = (1 - 1/n) tr Cov for n i.i.d. real points (biased sample variance)."""
    size = sample_sizes(n, 0, name="n")[0]
    if not var_true >= 0:
        raise ValueError(f"var_true must be >= 0, got var_true={var_true!r}")
    return (1.0 - 1.0 / size) * float(var_true)


def kde_variance_curve(s2_0, n, G=None, *, h: float, dim: int = 1) -> np.ndarray:
    """E s2_g for g = 0..G under replace: s2_g = biased sample variance (trace in d dims) of the points of generation g.

    s2_0 is E s2_0 of the real points (``expected_biased_variance`` from the true
    variance).  Recursion E s2_{g+1} = (1 - 1/n[g+1])(E s2_g + dim h^2), exact.
    ``n`` is an int (then G is required) or a sequence of length G+1 (n[g] points
    at generation g; n[0] enters only through s2_0).  The KDE of generation g has
    variance s2_g + dim h^2.
    """
    sizes = sample_sizes(n, G, name="n")
    h, dim = _check_bandwidth(h), _check_dim(dim)
    if not s2_0 >= 0:
        raise ValueError(f"s2_0 must be >= 0, got s2_0={s2_0!r}")
    out = np.empty(sizes.size)
    out[0] = s2_0
    for g in range(1, sizes.size):
        out[g] = (1.0 - 1.0 / sizes[g]) * (out[g - 1] + dim * h**2)
    return out


def kde_variance_limit(n: int, *, h: float, dim: int = 1) -> float:
    """lim_g E s2_g = (n - 1) dim h^2 (constant n), whatever the data: the fixed point of the recursion."""
    size = sample_sizes(n, 0, name="n")[0]
    return (size - 1.0) * _check_dim(dim) * _check_bandwidth(h) ** 2
