"""theory/gaussian.py and theory/gaussian_metrics.py against brute-force numpy Monte Carlo.

Every MC here draws the actual samples of every generation (no shortcut through
the chi-square facts the closed forms use), vectorised over S seeds with a
seeded Generator, so it is deterministic.  A closed form passes if it lies
within 4 standard errors of the MC mean at every generation.
Axis letters: S seeds, G generations, N samples, D features.
"""

import numpy as np
import pytest
import scipy.linalg

from collapse_sim.theory import gaussian as tg
from collapse_sim.theory import gaussian_metrics as gm


def assert_mc_close(samples_SxG, theory_G, n_se=4.0):
    samples_SxG = np.asarray(samples_SxG, dtype=float)
    mean_G = samples_SxG.mean(0)
    se_G = samples_SxG.std(0, ddof=1) / np.sqrt(samples_SxG.shape[0])
    z_G = np.abs(mean_G - theory_G) / se_G
    assert np.all(z_G <= n_se), f"MC {mean_G} vs theory {theory_G}: |z| = {z_G}"


def divisor(m, estimator):
    return m - 1 if estimator == "unbiased" else m


def mc_replace(rng, sizes, S, cov_DxD, estimator):
    """Replace chain from N(0, cov): fitted means (S, G+1, D) and covariances (S, G+1, D, D)."""
    D = cov_DxD.shape[0]
    mu_SxD = np.zeros((S, D))
    chol_SxDxD = np.broadcast_to(np.linalg.cholesky(cov_DxD), (S, D, D))
    mus, covs = [], []
    for m in sizes:
        x_SxNxD = mu_SxD[:, None, :] + rng.standard_normal((S, m, D)) @ np.swapaxes(chol_SxDxD, 1, 2)
        mu_SxD = x_SxNxD.mean(1)
        centred = x_SxNxD - mu_SxD[:, None, :]
        cov_SxDxD = np.einsum("sni,snj->sij", centred, centred) / divisor(m, estimator)
        chol_SxDxD = np.linalg.cholesky(cov_SxDxD)
        mus.append(mu_SxD)
        covs.append(cov_SxDxD)
    return np.stack(mus, 1), np.stack(covs, 1)


def mc_accumulate(rng, sizes, S, D, estimator):
    """Accumulate chain from N(0, I_D): generation g fits the pool of sets 0..g."""
    pool_SxNxD = np.zeros((S, 0, D))
    mu_SxD, chol_SxDxD = np.zeros((S, D)), np.broadcast_to(np.eye(D), (S, D, D))
    mus, covs = [], []
    for m in sizes:
        new_SxNxD = mu_SxD[:, None, :] + rng.standard_normal((S, m, D)) @ np.swapaxes(chol_SxDxD, 1, 2)
        pool_SxNxD = np.concatenate([pool_SxNxD, new_SxNxD], 1)
        n = pool_SxNxD.shape[1]
        mu_SxD = pool_SxNxD.mean(1)
        centred = pool_SxNxD - mu_SxD[:, None, :]
        cov_SxDxD = np.einsum("sni,snj->sij", centred, centred) / divisor(n, estimator)
        chol_SxDxD = np.linalg.cholesky(cov_SxDxD)
        mus.append(mu_SxD)
        covs.append(cov_SxDxD)
    return np.stack(mus, 1), np.stack(covs, 1)


# --------------------------------------------------------------------------- 1-D replace (Shumailov)

SIZES_1D = [8, 20, 5, 30, 12, 15, 10]  # varying M, includes a small one


@pytest.fixture(scope="module", params=["unbiased", "mle"])
def chain_1d(request):
    rng = np.random.default_rng(11)
    sigma2 = 2.5
    mu_SxGx1, cov_SxGx1x1 = mc_replace(rng, SIZES_1D, 40_000, np.array([[sigma2]]), request.param)
    return request.param, sigma2, mu_SxGx1[..., 0], cov_SxGx1x1[..., 0, 0], rng


def test_replace_1d_moments_match_mc(chain_1d):
    estimator, sigma2, mu_SxG, var_SxG, rng = chain_1d
    sigma = np.sqrt(sigma2)
    kw = dict(estimator=estimator)
    assert_mc_close(mu_SxG**2, tg.replace_mean_sq_error(SIZES_1D, trace=sigma2, **kw))
    assert_mc_close(var_SxG / sigma2, tg.replace_trace_ratio(SIZES_1D, **kw))
    assert_mc_close(np.sqrt(var_SxG), tg.replace_std_mean(SIZES_1D, sigma=sigma, **kw))
    assert_mc_close(np.log(var_SxG / sigma2), tg.replace_logdet_change(SIZES_1D, d=1, **kw))
    w2sq_SxG = mu_SxG**2 + (np.sqrt(var_SxG) - sigma) ** 2
    assert_mc_close(w2sq_SxG, tg.replace_w2sq(SIZES_1D, sigma2=sigma2, **kw))
    x_SxG = mu_SxG + np.sqrt(var_SxG) * rng.standard_normal(mu_SxG.shape)  # one draw from model g
    assert_mc_close(x_SxG**2, tg.replace_sample_variance(SIZES_1D, sigma2=sigma2, **kw))


def test_replace_1d_median_matches_mc(chain_1d):
    estimator, sigma2, _, var_SxG, _ = chain_1d
    median_G = tg.replace_var_median(SIZES_1D, sigma2=sigma2, estimator=estimator)
    below_G = (var_SxG < median_G).mean(0)
    assert np.all(np.abs(below_G - 0.5) <= 4 * 0.5 / np.sqrt(var_SxG.shape[0])), below_G


def test_unbiased_closed_forms_documented():
    """theory/derivations.md §10 (M = 20, g = 9, i.e. 10 fits), unbiased estimators."""
    kw = dict(estimator="unbiased")
    np.testing.assert_allclose(tg.replace_mean_sq_error(20, 9, **kw)[-1], 0.5)
    np.testing.assert_allclose(tg.replace_trace_ratio(20, 9, **kw), 1.0)
    np.testing.assert_allclose(tg.replace_std_mean(20, 9, **kw)[-1], 0.8768, atol=1e-4)
    np.testing.assert_allclose(tg.replace_var_median(20, 9, **kw)[-1], 0.596, atol=1e-3)
    np.testing.assert_allclose(tg.replace_sample_variance(20, 9, **kw), 1 + np.arange(1, 11) / 20)
    # E W2^2 = 0.5 + 2 (1 - 0.87676) = 0.74647 (theory/derivations.md §10).
    np.testing.assert_allclose(tg.replace_w2sq(20, 9, **kw)[-1], 0.74647, atol=1e-5)


def test_chi_mean_factor():
    k = np.array([1.0, 2.0, 5.0, 1e6])
    draws = np.random.default_rng(0).chisquare(5.0, 400_000)
    assert abs(np.sqrt(draws / 5).mean() - tg.chi_mean_factor(5.0)) < 4 * np.sqrt(draws / 5).std() / np.sqrt(draws.size)
    np.testing.assert_allclose(tg.chi_mean_factor(k)[[0, 1]], [np.sqrt(2 / np.pi), np.sqrt(np.pi) / 2])
    np.testing.assert_allclose(tg.chi_mean_factor(1e6), 1 - 1 / 4e6, rtol=1e-10)


def test_shumailov_approximation_error_shrinks_like_one_over_m():
    """(3/2) sigma^2 sum 1/M_i is first order: its relative error times M stays below 0.35 (g <= 9)."""
    scaled = []
    for M in (10, 100, 1000):
        exact, approx = tg.replace_w2sq(M, 9, estimator="unbiased"), tg.shumailov_w2sq_approx(M, 9)
        rel_G = np.abs(approx / exact - 1)
        assert np.all(rel_G * M < 0.35), rel_G * M
        scaled.append(rel_G.max())
    assert scaled[0] > 5 * scaled[1] > 25 * scaled[2]


# --------------------------------------------------------------------------- d-dim replace (Kazdan)

@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_replace_ddim_matches_mc(estimator):
    rng = np.random.default_rng(3)
    a_DxD = rng.standard_normal((3, 3))
    cov_DxD = a_DxD @ a_DxD.T + 0.5 * np.eye(3)
    sizes = [10, 10, 7, 10, 15, 10]
    mu_SxGxD, cov_SxGxDxD = mc_replace(rng, sizes, 20_000, cov_DxD, estimator)
    tr0, logdet0 = np.trace(cov_DxD), np.linalg.slogdet(cov_DxD)[1]
    kw = dict(estimator=estimator)
    assert_mc_close(np.trace(cov_SxGxDxD, axis1=2, axis2=3) / tr0, tg.replace_trace_ratio(sizes, **kw))
    assert_mc_close(np.linalg.slogdet(cov_SxGxDxD)[1] - logdet0, tg.replace_logdet_change(sizes, d=3, **kw))
    assert_mc_close((mu_SxGxD**2).sum(-1), tg.replace_mean_sq_error(sizes, trace=tr0, **kw))


def test_mle_closed_forms_documented():
    """theory/derivations.md §10: d = 3, M = 10, g = 5 (6 fits)."""
    np.testing.assert_allclose(tg.replace_trace_ratio(10, 5, estimator="mle")[-1], 0.9**6)
    np.testing.assert_allclose(tg.replace_logdet_change(10, 5, d=3, estimator="mle")[-1], -6.4810, atol=1e-4)
    np.testing.assert_allclose(tg.replace_mean_sq_error(10, 5, trace=3.0, estimator="mle"),
                               np.cumsum(0.3 * 0.9 ** np.arange(6)))


# --------------------------------------------------------------------------- accumulate

@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_accumulate_matches_mc(estimator):
    rng = np.random.default_rng(5)
    sizes = [6] * 10 + [12]
    mu_SxGxD, cov_SxGxDxD = mc_accumulate(rng, sizes, 20_000, 2, estimator)
    kw = dict(estimator=estimator)
    assert_mc_close(np.trace(cov_SxGxDxD, axis1=2, axis2=3) / 2, tg.accumulate_trace_ratio(sizes, **kw))
    assert_mc_close((mu_SxGxD**2).sum(-1), tg.accumulate_mean_sq_error(sizes, trace=2.0, **kw))


def test_accumulate_approx_and_bound_order():
    for estimator in ("mle", "unbiased"):
        exact = tg.accumulate_mean_sq_error(20, 29, estimator=estimator)
        approx = tg.accumulate_mean_sq_error_approx(20, 29)
        assert np.all(exact <= approx + 1e-15)
        assert np.all(approx < tg.accumulate_mean_sq_error_bound(20))
    np.testing.assert_allclose(tg.accumulate_mean_sq_error_approx(20, 29, trace=3.0),
                               3.0 / 20 * np.cumsum(1.0 / np.arange(1, 31) ** 2))
    # theory/derivations.md §11, 1-D, g = 29: exact 0.0787 (frozen covariance 0.0806), trace ratio 0.92
    np.testing.assert_allclose(tg.accumulate_mean_sq_error(20, 29, estimator="mle")[-1], 0.0787, atol=2e-4)
    np.testing.assert_allclose(tg.accumulate_trace_ratio(20, 29, estimator="mle")[-1], 0.92, atol=5e-3)
    # generation 0 is the real-only fit under both regimes
    np.testing.assert_allclose(tg.accumulate_mean_sq_error([7, 9], estimator="mle")[0],
                               tg.replace_mean_sq_error([7, 9], estimator="mle")[0])


# --------------------------------------------------------------------------- W2, tails, Bertrand

def random_spd(rng, D):
    a = rng.standard_normal((D, D))
    return a @ a.T + 0.1 * np.eye(D)


def test_w2sq_gaussians_against_optimal_map():
    """Independent route: the optimal map x -> mu2 + A (x - mu1), A = S1^{-1/2}(S1^{1/2} S2 S1^{1/2})^{1/2} S1^{-1/2}."""
    rng = np.random.default_rng(7)
    for D in (1, 2, 4):
        mu1, mu2 = rng.standard_normal(D), rng.standard_normal(D)
        s1, s2 = random_spd(rng, D), random_spd(rng, D)
        r1 = np.real(scipy.linalg.sqrtm(s1))
        r1_inv = np.linalg.inv(r1)
        A = r1_inv @ np.real(scipy.linalg.sqrtm(r1 @ s2 @ r1)) @ r1_inv
        np.testing.assert_allclose(A @ s1 @ A.T, s2, atol=1e-8)  # pushes N(mu1, s1) to N(mu2, s2)
        cost = np.sum((mu1 - mu2) ** 2) + np.trace((np.eye(D) - A) @ s1 @ (np.eye(D) - A).T)
        w = gm.w2sq_gaussians(mu1, s1, mu2, s2)
        np.testing.assert_allclose(w, cost, rtol=1e-8)
        np.testing.assert_allclose(gm.w2sq_gaussians(mu2, s2, mu1, s1), w, rtol=1e-8)
        # another coupling (Cholesky map) costs at least as much
        B = np.linalg.cholesky(s2) @ np.linalg.inv(np.linalg.cholesky(s1))
        assert np.sum((mu1 - mu2) ** 2) + np.trace((np.eye(D) - B) @ s1 @ (np.eye(D) - B).T) >= w - 1e-10
    # batched, and the 1-D scalar form
    mu_Sx1, var_S = rng.standard_normal((5, 1)), rng.uniform(0.1, 3, 5)
    np.testing.assert_allclose(gm.w2sq_gaussians(mu_Sx1, var_S[:, None, None], np.zeros(1), np.eye(1)),
                               gm.w2sq_gaussians_1d(mu_Sx1[:, 0], var_S, 0.0, 1.0))


def test_tail_mass_1d_matches_mc():
    rng = np.random.default_rng(9)
    k, mu, var = 2.0, 0.3, 1.7
    for mu_hat, var_hat in [(0.3, 1.7), (0.8, 0.6), (-0.2, 2.5)]:
        x_N = mu_hat + np.sqrt(var_hat) * rng.standard_normal(400_000)
        beyond_N = np.abs(x_N - mu) > k * np.sqrt(var)
        assert_mc_close(beyond_N[:, None], gm.tail_mass_1d(mu_hat, var_hat, k=k, mu=mu, var=var))
        np.testing.assert_allclose(gm.tail_mass(mu_hat, var_hat, k=k, mu=mu, cov=var),
                                   gm.tail_mass_1d(mu_hat, var_hat, k=k, mu=mu, var=var), rtol=1e-10)


@pytest.mark.parametrize("proportional", [True, False])
def test_tail_mass_ddim_matches_mc(proportional):
    rng = np.random.default_rng(13)
    D, k = 3, 2.5
    cov, mu = random_spd(rng, D), rng.standard_normal(D)
    cov_hat = 0.6 * cov if proportional else random_spd(rng, D)
    mu_hat = mu + 0.4 * rng.standard_normal(D)
    x_NxD = mu_hat + rng.standard_normal((400_000, D)) @ np.linalg.cholesky(cov_hat).T
    diff_NxD = x_NxD - mu
    maha_N = np.einsum("ni,ij,nj->n", diff_NxD, np.linalg.inv(cov), diff_NxD)
    assert_mc_close((maha_N > k**2)[:, None], gm.tail_mass(mu_hat, cov_hat, k=k, mu=mu, cov=cov))


def test_imhof_agrees_with_noncentral_chi2():
    from scipy import stats

    for x, lam, nc in [(6.0, 0.7, 1.3), (2.0, 1.5, 0.0), (20.0, 2.0, 4.0)]:
        b2 = np.array([nc, 0.0, 0.0]) / lam  # total noncentrality nc / lam after scaling by lam
        expected = stats.ncx2.sf(x / lam, 3, nc / lam) if nc else stats.chi2.sf(x / lam, 3)
        np.testing.assert_allclose(gm._imhof_sf(x, np.full(3, lam), b2), expected, atol=1e-8)


def test_bertrand_contraction_vs_bound():
    lam = np.linspace(0.0, 0.99, 50)
    assert np.all(tg.bertrand_contraction(lam) <= tg.bertrand_bound(lam))
    assert np.all(tg.bertrand_bound(lam[lam < 0.5]) < 1.0)
    assert np.all(np.isinf(tg.bertrand_bound([1.0, 3.0])))
    np.testing.assert_allclose(tg.bertrand_bound(0.25), 1 / 3)
    np.testing.assert_allclose(tg.bertrand_bound(0.2, alpha=2.0, L=1.0, eps=1.0), 0.6 / (2 - 0.6))
    # iterate the infinite-sample map: mean error shrinks by exactly lam/(1+lam), covariance converges to cov*
    mu, cov, mu_star, cov_star = np.array([3.0, -1.0]), 4 * np.eye(2), np.zeros(2), np.diag([1.0, 2.0])
    for _ in range(60):
        mu_next, cov = tg.bertrand_gaussian_step(mu, cov, mu_star, cov_star, 0.7)
        np.testing.assert_allclose(np.linalg.norm(mu_next), tg.bertrand_contraction(0.7) * np.linalg.norm(mu))
        mu = mu_next
    np.testing.assert_allclose(cov, cov_star, atol=1e-10)


def test_bertrand_step_matches_mixture_fit():
    rng = np.random.default_rng(17)
    lam, N = 0.5, 600_000
    mu, cov = np.array([1.0, -2.0]), np.array([[2.0, 0.3], [0.3, 0.5]])
    mu_star, cov_star = np.zeros(2), np.eye(2)
    synthetic_N = rng.random(N) < lam / (1 + lam)
    x_NxD = np.where(synthetic_N[:, None],
                     mu + rng.standard_normal((N, 2)) @ np.linalg.cholesky(cov).T,
                     mu_star + rng.standard_normal((N, 2)))
    mu_next, cov_next = tg.bertrand_gaussian_step(mu, cov, mu_star, cov_star, lam)
    assert_mc_close(x_NxD, mu_next)
    centred_NxD = x_NxD - x_NxD.mean(0)
    assert_mc_close(np.einsum("ni,nj->nij", centred_NxD, centred_NxD).reshape(N, 4), cov_next.ravel())


# --------------------------------------------------------------------------- bad input

def test_bad_inputs():
    with pytest.raises(ValueError, match="M must be >= 2"):
        tg.replace_trace_ratio(1, 3, estimator="mle")
    with pytest.raises(ValueError, match="G is required"):
        tg.replace_trace_ratio(10, estimator="mle")
    with pytest.raises(ValueError, match="needs length G\\+1=4"):
        tg.replace_mean_sq_error([10, 10], 3, estimator="mle")
    with pytest.raises(ValueError, match="must hold integers"):
        tg.replace_mean_sq_error([10, 10.5], estimator="mle")
    with pytest.raises(ValueError, match="G must be an integer >= 0"):
        tg.replace_mean_sq_error(10, -1, estimator="mle")
    with pytest.raises(ValueError, match="estimator must be one of"):
        tg.replace_w2sq(10, 3, estimator="biased")
    with pytest.raises(ValueError, match="M must be >= 4"):
        tg.replace_logdet_change(3, 2, d=3, estimator="mle")
    with pytest.raises(ValueError, match="d must be an integer"):
        tg.replace_logdet_change(10, 2, d=0, estimator="mle")
    with pytest.raises(ValueError, match="k must be > 0"):
        tg.chi_mean_factor(0.0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        gm.tail_mass_1d(0.0, 1.0, k=-1.0)
    with pytest.raises(ValueError, match="variances must be > 0"):
        gm.tail_mass_1d(0.0, 0.0, k=1.0)
    with pytest.raises(ValueError, match="cov_hat must be positive definite"):
        gm.tail_mass(np.zeros(2), np.diag([1.0, 0.0]), k=1.0, mu=np.zeros(2), cov=np.eye(2))
    with pytest.raises(ValueError, match="cov1 must have shape"):
        gm.w2sq_gaussians(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="lam must be >= 0"):
        tg.bertrand_contraction(-0.1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        tg.bertrand_bound(0.1, alpha=0.0)
