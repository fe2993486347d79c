"""theory/temperature.py against plain-numpy Monte Carlo (draws every row of every generation).

A closed form passes if it lies within 4 standard errors of the MC mean (SE from the replicates)
at every generation.  Axis letters: R replicates, N rows, V outcomes, G generations.
"""

import numpy as np
import pytest

from collapse_sim.theory import temperature as tt


def assert_within_se(samples_RxG, theory_G, n_se=4.0):
    samples_RxG = np.asarray(samples_RxG, dtype=float)
    mean = samples_RxG.mean(0)
    se = samples_RxG.std(0, ddof=1) / np.sqrt(samples_RxG.shape[0])
    z = np.abs(mean - theory_G) / se
    assert np.all(z <= n_se), f"MC {mean} ± {se} vs theory {theory_G}: |z| = {z}"


def mc_tempered_gaussian(rng, R, n, real_share, temperature, G, sigma2=1.0):
    """Fitted (mean, MLE variance) per replicate and generation, truth N(0, σ²)."""
    n_real = round(real_share * n)
    x_RxN = np.sqrt(sigma2) * rng.standard_normal((R, n))
    mu, var = x_RxN.mean(1), x_RxN.var(1)
    mus, vars_ = [mu], [var]
    for _ in range(G):
        real = np.sqrt(sigma2) * rng.standard_normal((R, n_real))
        syn = mu[:, None] + temperature * np.sqrt(var)[:, None] * rng.standard_normal((R, n - n_real))
        x_RxN = np.concatenate([real, syn], 1)
        mu, var = x_RxN.mean(1), x_RxN.var(1)
        mus.append(mu)
        vars_.append(var)
    return np.stack(mus, 1), np.stack(vars_, 1)


@pytest.mark.parametrize(
    "real_share, tau2, G",
    [(0.2, 1.0, 30), (0.2, 0.7, 30), (0.1, 1.3, 5)],  # the last one is past the stability boundary
)
def test_moment_curve_matches_mc(real_share, tau2, G):
    rng = np.random.default_rng(1)
    n = 20
    mu_RxG, var_RxG = mc_tempered_gaussian(rng, 40_000, n, real_share, np.sqrt(tau2), G)
    E, v = tt.moment_curve(G, real_share, np.sqrt(tau2), n)
    assert_within_se(var_RxG, E)
    assert_within_se(mu_RxG**2, v)  # E μ_g = 0, so v_g = E μ_g²


def test_tau1_fixed_point_is_the_recursion_limit():
    for a, n in [(0.2, 20), (0.05, 50), (1.0, 10)]:
        E, v = tt.moment_curve(3000, a, 1.0, n, sigma2=2.0)
        E_inf, v_inf = tt.fixed_point_tau1(a, n, sigma2=2.0)
        np.testing.assert_allclose([E[-1], v[-1]], [E_inf, v_inf], rtol=1e-10)
        np.testing.assert_allclose(tt.fixed_point(a, 1.0, n, sigma2=2.0), [E_inf, v_inf], rtol=1e-10)
        np.testing.assert_allclose(E_inf + v_inf, 2.0, rtol=1e-12)


def test_general_fixed_point_is_the_limit_and_infinite_past_the_boundary():
    E, v = tt.moment_curve(3000, 0.1, np.sqrt(0.7), 20)
    np.testing.assert_allclose(tt.fixed_point(0.1, np.sqrt(0.7), 20), [E[-1], v[-1]], rtol=1e-10)
    assert tt.fixed_point(0.1, np.sqrt(1.3), 20) == (np.inf, np.inf)
    E, _ = tt.moment_curve(300, 0.1, np.sqrt(1.3), 20)
    assert E[-1] > 1e6


def test_spectral_radius_is_one_on_the_boundary():
    n = 20
    alphas = np.linspace(0.02, 0.98, 25)
    tau_crit = np.sqrt(tt.critical_temperature_sq(alphas, n))
    np.testing.assert_allclose(tt.spectral_radius(alphas, tau_crit, n), 1.0, rtol=1e-12)
    assert np.all(tt.spectral_radius(alphas, 0.999 * tau_crit, n) < 1)
    assert np.all(tt.spectral_radius(alphas, 1.001 * tau_crit, n) > 1)
    for a, t in [(0.1, 1.1), (0.5, 0.6), (0.9, 3.0)]:  # the closed form equals the eigenvalues of M
        M, _ = tt.transition(a, t, n)
        np.testing.assert_allclose(tt.spectral_radius(a, t, n), np.abs(np.linalg.eigvals(M)).max(), rtol=1e-12)
    a, tc = tt.phase_boundary(n)
    assert a.shape == tc.shape and np.all(np.diff(tc) > 0)  # more fresh data tolerates hotter sampling
    assert tt.critical_temperature_sq(1.0, n) == np.inf


def normalise_power(p_RxV, tau):
    q = p_RxV ** (1.0 / tau)
    return q / q.sum(-1, keepdims=True)


def test_categorical_one_step_is_exact_at_small_M():
    rng = np.random.default_rng(2)
    R, M, a, tau = 100_000, 20, 0.2, 0.6
    p_star = np.array([0.4, 0.3, 0.2, 0.1])
    p_t = np.array([0.1, 0.5, 0.15, 0.25])
    n_real = round(a * M)
    counts = rng.multinomial(n_real, p_star, size=R) + rng.multinomial(M - n_real, normalise_power(p_t, tau), size=R)
    freq_RxV = counts / M
    assert_within_se(freq_RxV, tt.categorical_step(p_t, p_star, a, tau))


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_categorical_curve_matches_mc_at_large_M(tau):
    """The iterated map is a large-M limit: checked at M = 200,000 rows a generation."""
    rng = np.random.default_rng(3)
    R, M, a, G = 200, 200_000, 0.3, 6
    p_star = np.array([0.5, 0.3, 0.15, 0.05])
    n_real = round(a * M)
    p_RxV = rng.multinomial(M, p_star, size=R) / M
    traj = [p_RxV]
    for _ in range(G):
        syn = np.stack([rng.multinomial(M - n_real, q) for q in normalise_power(p_RxV, tau)])
        p_RxV = (rng.multinomial(n_real, p_star, size=R) + syn) / M
        traj.append(p_RxV)
    theory = tt.categorical_curve(G, p_star, p_star, a, tau)
    for v in range(4):
        assert_within_se(np.stack(traj, 1)[:, :, v], theory[:, v])


def test_categorical_replace_and_fixed_point():
    p0 = np.array([0.5, 0.3, 0.2, 0.0])
    curve = tt.categorical_replace_curve(8, p0, 0.7)
    p = p0
    for g in range(1, 9):
        p = normalise_power(p, 0.7)
        np.testing.assert_allclose(curve[g], p, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(tt.categorical_replace_curve(60, p0, 0.7)[-1], [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(tt.categorical_replace_curve(200, p0, 1.5)[-1], [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-12)
    fp = tt.categorical_fixed_point(p0, 0.2, 0.5)
    np.testing.assert_allclose(tt.categorical_step(fp, p0, 0.2, 0.5), fp, atol=1e-12)
    np.testing.assert_allclose(tt.categorical_curve(500, p0, p0, 0.2, 0.5)[-1], fp, atol=1e-10)
    assert fp[0] > p0[0] and fp[3] == 0  # sharpened towards the mode, support kept


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: tt.moment_curve(5, 0.0, 1.0, 20), "real_share"),
        (lambda: tt.moment_curve(5, 1.2, 1.0, 20), "real_share"),
        (lambda: tt.moment_curve(5, 0.2, 0.0, 20), "temperature"),
        (lambda: tt.spectral_radius(0.2, -1.0, 20), "temperature"),
        (lambda: tt.critical_temperature_sq([0.1, -0.1], 20), "real_share"),
        (lambda: tt.fixed_point(0.2, 1.0, 1), "n"),
        (lambda: tt.tempered([0.5, 0.5], 0.0), "temperature"),
        (lambda: tt.categorical_step([0.5, 0.5], [0.5, 0.5], 0.0, 1.0), "real_share"),
        (lambda: tt.categorical_step([0.5, 0.6], [0.5, 0.5], 0.5, 1.0), "p"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
