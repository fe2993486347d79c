"""theory/weighting.py against plain-numpy Monte Carlo of the weighted loop (every row drawn).

Pass: within 4 standard errors (from the replicates) at every generation.
Axis letters: R replicates, N rows, D features, G generations.
"""

import numpy as np
import pytest

from collapse_sim.theory import weighting as tw


def assert_within_se(samples_RxG, theory_G, n_se=4.0):
    samples_RxG = np.asarray(samples_RxG, dtype=float)
    mean = samples_RxG.mean(0)
    se = samples_RxG.std(0, ddof=1) / np.sqrt(samples_RxG.shape[0])
    z = np.abs(mean - theory_G) / se
    assert np.all(z <= n_se), f"MC {mean} ± {se} vs theory {theory_G}: |z| = {z}"


def mc_weighted_mean(rng, R, n, m, w, G, pool=False):
    """Squared error of the fitted mean per replicate and generation; truth N(0, 1), variance known."""
    mu = rng.standard_normal((R, n)).mean(1)
    errs = [mu**2]
    for _ in range(G):
        real = rng.standard_normal((R, n))
        syn = mu[:, None] + rng.standard_normal((R, m))
        if pool:
            mu = np.concatenate([real, syn], 1).mean(1)
        else:
            mu = w * real.mean(1) + (1 - w) * syn.mean(1)
        errs.append(mu**2)
    return np.stack(errs, 1)


@pytest.mark.parametrize("k", [0.25, 1.0])
def test_gaussian_mean_curve_matches_mc_at_the_golden_weight(k):
    rng = np.random.default_rng(10)
    n, G = 20, 25
    w = float(tw.golden_weight(k))
    err = mc_weighted_mean(rng, 20_000, n, round(n / k), w, G)
    curve = tw.gaussian_mean_curve(G, w, k, n)
    assert_within_se(err, curve)
    np.testing.assert_allclose(curve[-1], tw.gaussian_mean_limit(w, k, n), rtol=1e-9)
    np.testing.assert_allclose(n * tw.gaussian_mean_limit(w, k, n), w, rtol=1e-12)  # error = w* σ²/n


def test_gaussian_mean_curve_matches_mc_away_from_the_optimum_and_when_pooling():
    rng = np.random.default_rng(11)
    n, m, G = 20, 40, 25
    assert_within_se(mc_weighted_mean(rng, 20_000, n, m, 0.2, G), tw.gaussian_mean_curve(G, 0.2, n / m, n))
    w_pool = float(tw.pooling_weight(n / m))
    pooled = mc_weighted_mean(rng, 20_000, n, m, None, G, pool=True)
    assert_within_se(pooled, tw.gaussian_mean_curve(G, w_pool, n / m, n))


def test_golden_weight_minimises_the_stationary_error():
    grid = np.linspace(1e-4, 1.0, 200_001)
    for k in [0.05, 0.25, 1.0, 4.0, 50.0]:
        vals = tw.error_limit(grid, 1.0, k)
        w_star = float(tw.golden_weight(k))
        assert abs(grid[np.argmin(vals)] - w_star) < 1e-4
        assert vals.min() >= float(tw.error_limit(w_star, 1.0, k)) - 1e-12
        np.testing.assert_allclose(tw.error_limit(w_star, 1.0, k), w_star, rtol=1e-12)
        np.testing.assert_allclose(w_star**2 + k * w_star - k, 0.0, atol=1e-12)
    assert float(tw.error_limit(tw.pooling_weight(1.0), 1.0, 1.0)) > float(tw.golden_weight(1.0))


def mc_weighted_ols(rng, R, d, T, m, w, G, cov_DxD, same_design):
    """Σ-norm errors of ŵ_g, fixed designs (one per replicate and source), w* ~ N(0, I/d)."""
    chol = np.linalg.cholesky(cov_DxD)
    X_real = rng.standard_normal((R, T, d)) @ chol.T
    X_syn = X_real if same_design else rng.standard_normal((R, m, d)) @ chol.T
    ops = [np.linalg.solve(np.swapaxes(X, 1, 2) @ X, np.swapaxes(X, 1, 2)) for X in (X_real, X_syn)]
    w_true = rng.standard_normal((R, d)) / np.sqrt(d)

    def ols(op, X, coef):
        y = np.einsum("rtd,rd->rt", X, coef) + rng.standard_normal(X.shape[:2])
        return np.einsum("rdt,rt->rd", op, y)

    def err(coef):
        e = coef - w_true
        return np.einsum("rd,de,re->r", e, cov_DxD, e)

    coef = ols(ops[0], X_real, w_true)
    errs = [err(coef)]
    for _ in range(G):
        coef = w * ols(ops[0], X_real, w_true) + (1 - w) * ols(ops[1], X_syn, coef)
        errs.append(err(coef))
    return np.stack(errs, 1)


@pytest.mark.parametrize("w, m, same", [(0.618, 30, True), (0.3, 30, True), (0.5, 15, False)])
def test_ols_curve_matches_mc(w, m, same):
    rng = np.random.default_rng(12)
    d, T, G = 5, 30, 20
    cov = np.diag([0.5, 0.8, 1.0, 1.5, 2.5])
    err = mc_weighted_ols(rng, 8_000, d, T, m, w, G, cov, same)
    assert_within_se(err, tw.ols_curve(G, w, d, T, m))
    np.testing.assert_allclose(tw.ols_curve(200, w, d, T, m)[-1], tw.ols_limit(w, d, T, m), rtol=1e-9)


def test_edge_weights():
    np.testing.assert_allclose(tw.gaussian_mean_curve(4, 1.0, 0.5, 10), 0.1)  # real data only
    np.testing.assert_allclose(tw.gaussian_mean_curve(4, 0.0, 0.5, 10), 0.1 + 0.05 * np.arange(5))  # replace
    assert float(tw.gaussian_mean_limit(0.0, 0.5, 10)) == np.inf


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: tw.gaussian_mean_curve(5, -0.1, 1.0, 20), "weight"),
        (lambda: tw.gaussian_mean_limit(1.1, 1.0, 20), "weight"),
        (lambda: tw.golden_weight(0.0), "real_to_synthetic"),
        (lambda: tw.pooling_weight(-2.0), "real_to_synthetic"),
        (lambda: tw.gaussian_mean_curve(5, 0.5, 1.0, 0), "n"),
        (lambda: tw.ols_curve(5, 0.5, 5, 30, 6), "m=6 synthetic rows must be at least d"),
        (lambda: tw.ols_curve(5, 0.5, 5, 6, 30), "T must be at least d"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        call()
