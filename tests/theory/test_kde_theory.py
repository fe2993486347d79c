"""theory/kde.py against a brute-force numpy Monte Carlo of the replace KDE chain.

Each generation resamples x' = x_J + h z from the previous points (J uniform),
vectorised over S seeds, seeded, deterministic.  A closed form passes if it
lies within 4 standard errors of the MC mean.  Axis letters: S seeds,
G generations, N points, D features.
"""

import numpy as np
import pytest

from collapse_sim.theory import kde as tk


def assert_mc_close(samples_SxG, theory_G, n_se=4.0):
    samples_SxG = np.asarray(samples_SxG, dtype=float)
    mean_G = samples_SxG.mean(0)
    se_G = samples_SxG.std(0, ddof=1) / np.sqrt(samples_SxG.shape[0])
    z_G = np.abs(mean_G - theory_G) / se_G
    assert np.all(z_G <= n_se), f"MC {mean_G} vs theory {theory_G}: |z| = {z_G}"


def mc_kde_replace(rng, x_SxNxD, sizes, h):
    """Biased sample variance (trace) of the points of generations 0..G."""
    S = x_SxNxD.shape[0]
    out = [x_SxNxD.var(1).sum(-1)]
    for n in sizes[1:]:
        j_SxN = rng.integers(0, x_SxNxD.shape[1], size=(S, n))
        x_SxNxD = np.take_along_axis(x_SxNxD, j_SxN[..., None], 1) + h * rng.standard_normal((S, n, x_SxNxD.shape[2]))
        out.append(x_SxNxD.var(1).sum(-1))
    return np.stack(out, 1)


def test_kde_replace_1d_matches_mc():
    """Non-Gaussian real data (two bumps at +-4, variance 17): the curve holds whatever the data."""
    rng = np.random.default_rng(31)
    # n = 10, h = 1 separates the right recursion from (1 - 1/n) s2 + h^2 by ~20 SE
    S, n, h, G = 60_000, 10, 1.0, 25
    x_SxNx1 = (4.0 * rng.choice([-1.0, 1.0], size=(S, n)) + rng.standard_normal((S, n)))[..., None]
    s2_SxG = mc_kde_replace(rng, x_SxNx1, [n] * (G + 1), h)
    curve = tk.kde_variance_curve(tk.expected_biased_variance(17.0, n), n, G, h=h)
    assert_mc_close(s2_SxG, curve)
    assert curve[0] - curve[-1] > 5.0  # 15.3 falls towards (n-1) h^2 = 9


def test_kde_replace_2d_varying_n_matches_mc():
    rng = np.random.default_rng(32)
    sizes, h = [12, 30, 8, 16, 16, 40, 10], 1.0
    cov = np.array([[3.0, 1.0], [1.0, 0.5]])
    x_SxNxD = rng.standard_normal((20_000, sizes[0], 2)) @ np.linalg.cholesky(cov).T
    s2_SxG = mc_kde_replace(rng, x_SxNxD, sizes, h)
    curve = tk.kde_variance_curve(tk.expected_biased_variance(np.trace(cov), sizes[0]), sizes, h=h, dim=2)
    assert_mc_close(s2_SxG, curve)


def test_kde_limit_and_closed_form():
    n, h = 20, 0.5
    limit = tk.kde_variance_limit(n, h=h)
    np.testing.assert_allclose(limit, 4.75)  # theory/derivations.md §13: (n-1) h^2
    for s2_0 in (0.0, 8.31, 100.0):  # the limit does not depend on the data
        curve = tk.kde_variance_curve(s2_0, n, 400, h=h)
        np.testing.assert_allclose(curve, limit + (s2_0 - limit) * (1 - 1 / n) ** np.arange(401), rtol=1e-12)
        np.testing.assert_allclose(curve[-1], limit, rtol=1e-6)
    np.testing.assert_allclose(tk.kde_variance_curve(limit, n, 5, h=h), limit)  # fixed point
    np.testing.assert_allclose(tk.kde_variance_limit(n, h=h, dim=3), 3 * limit)


def test_bad_inputs():
    with pytest.raises(ValueError, match="h must be a finite number > 0, got h=0"):
        tk.kde_variance_curve(1.0, 10, 5, h=0.0)
    with pytest.raises(ValueError, match="h must be a finite number > 0, got h=-1"):
        tk.kde_variance_limit(10, h=-1.0)
    with pytest.raises(ValueError, match="n must be >= 2"):
        tk.kde_variance_curve(1.0, 1, 5, h=0.5)
    with pytest.raises(ValueError, match="n must be >= 2"):
        tk.kde_variance_curve(1.0, [10, 1, 10], h=0.5)
    with pytest.raises(ValueError, match="n must be >= 2"):
        tk.kde_variance_limit(1, h=0.5)
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        tk.kde_variance_curve(1.0, 10, 5, h=0.5, dim=0)
    with pytest.raises(ValueError, match="s2_0 must be >= 0"):
        tk.kde_variance_curve(-1.0, 10, 5, h=0.5)
    with pytest.raises(ValueError, match="var_true must be >= 0"):
        tk.expected_biased_variance(-2.0, 10)
