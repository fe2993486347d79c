"""theory/curation.py against plain-numpy Monte Carlo of each curation rule (every candidate drawn).

Pass: within 4 standard errors (SE from the replicates).  One-step moments are tested conditional on
the start model at small n; large-sample limits at a large n (or K), as said in each test.
Axis letters: R replicates, N rows, K candidates per row, L candidates per replicate, G generations.
"""

import math

import numpy as np
import pytest

from collapse_sim.theory import curation as cu


def assert_within_se(samples_RxG, theory_G, n_se=4.0):
    samples_RxG = np.asarray(samples_RxG, dtype=float)
    mean = samples_RxG.mean(0)
    se = samples_RxG.std(0, ddof=1) / np.sqrt(samples_RxG.shape[0])
    z = np.abs(mean - theory_G) / se
    assert np.all(z <= n_se), f"MC {mean} ± {se} vs theory {theory_G}: |z| = {z}"


# --------------------------------------------------------------------------- verifier window


def first_kept(rng, mu_R, s_R, centre, h, N, L):
    """The first N candidates of N(μ, s²) inside [centre − h, centre + h], per replicate, by rejection
    from L candidates each (L chosen so that N are always found); also the acceptance share."""
    x_RxL = mu_R[:, None] + s_R[:, None] * rng.standard_normal((mu_R.size, L))
    acc = np.abs(x_RxL - centre) <= h
    assert acc.sum(1).min() >= N, "too few candidates for rejection sampling"
    keep = acc & (np.cumsum(acc, 1) <= N)
    return x_RxL[keep].reshape(mu_R.size, N), acc.mean(1)


def test_window_one_step_is_exact_at_small_n():
    rng = np.random.default_rng(30)
    R, N, mu, s2, centre, h = 100_000, 8, 0.2, 1.5, 0.5, 1.0
    kept, share = first_kept(rng, np.full(R, mu), np.full(R, math.sqrt(s2)), centre, h, N, 60)
    step = cu.window_step(mu, s2, centre, h, n_kept=N)
    assert_within_se(kept.mean(1)[:, None], [step["mean"]])
    assert_within_se(kept.var(1)[:, None], [step["var"]])
    assert_within_se(share[:, None], [step["acceptance"]])


def test_window_curve_matches_mc_at_large_n():
    """The iterated map is the N → ∞ limit: checked with N = 20,000 kept rows a generation."""
    rng = np.random.default_rng(31)
    R, N, G, centre, h = 60, 20_000, 5, 0.5, 1.0
    mu, s = np.zeros(R), np.ones(R)
    mus, s2s = [mu], [s**2]
    for _ in range(G):
        kept, _ = first_kept(rng, mu, s, centre, h, N, 34_000)
        mu, s = kept.mean(1), kept.std(1)
        mus.append(mu)
        s2s.append(s**2)
    mu_G, s2_G = cu.window_curve(G, 0.0, 1.0, centre, h)
    assert_within_se(np.stack(mus, 1)[:, 1:], mu_G[1:])
    assert_within_se(np.stack(s2s, 1)[:, 1:], s2_G[1:])


# --------------------------------------------------------------------------- best-of-K, linear reward


def test_max_normal_moments():
    # closed forms for K = 2, 3: e₂ = 1/√π, v₂ = 1 − 1/π; e₃ = 3/(2√π), E max₃² = 1 + √3/(2π)
    np.testing.assert_allclose(cu.max_normal_moments(2), [1 / math.sqrt(math.pi), 1 - 1 / math.pi], atol=1e-12)
    e3 = 3 / (2 * math.sqrt(math.pi))
    np.testing.assert_allclose(cu.max_normal_moments(3), [e3, 1 + math.sqrt(3) / (2 * math.pi) - e3**2], atol=1e-12)
    assert cu.max_normal_moments(1) == pytest.approx((0.0, 1.0), abs=1e-12)
    m = np.random.default_rng(32).standard_normal((400_000, 8)).max(1)
    e8, v8 = cu.max_normal_moments(8)
    assert_within_se(m[:, None], [e8])
    assert_within_se(((m - m.mean()) ** 2)[:, None], [v8])


def mc_best_of_k(rng, R, n, K, G, mu0=0.0, s0=1.0):
    mu, s = np.full(R, mu0), np.full(R, s0)
    mus, s2s = [mu], [s**2]
    for _ in range(G):
        rows = (mu[:, None, None] + s[:, None, None] * rng.standard_normal((R, n, K))).max(2)
        mu, s = rows.mean(1), rows.std(1)
        mus.append(mu)
        s2s.append(s**2)
    return np.stack(mus, 1), np.stack(s2s, 1)


@pytest.mark.parametrize("K", [2, 4])
def test_best_of_k_variance_is_exact_and_mean_below_its_bound(K):
    rng = np.random.default_rng(33)
    n, G = 20, 10
    mu_RxG, s2_RxG = mc_best_of_k(rng, 20_000, n, K, G)
    assert_within_se(s2_RxG[:, 1:], cu.best_of_k_variance_curve(G, K, n)[1:])  # generation 0 is the start
    bound = cu.best_of_k_mean_bound(G, K, n)
    se = mu_RxG.std(0, ddof=1) / np.sqrt(mu_RxG.shape[0])
    assert np.all(mu_RxG.mean(0) <= bound + 4 * se), (mu_RxG.mean(0), bound)


def test_best_of_k_mean_curve_at_large_n():
    """E μ_g is a large-sample limit: checked at n = 2,000 rows a generation."""
    rng = np.random.default_rng(34)
    K, G = 4, 5
    mu_RxG, _ = mc_best_of_k(rng, 400, 2_000, K, G, mu0=1.0, s0=2.0)
    assert_within_se(mu_RxG[:, 1:], cu.best_of_k_mean_curve(G, K, mu0=1.0, s2_0=4.0)[1:])
    e, v = cu.max_normal_moments(K)
    np.testing.assert_allclose(cu.best_of_k_mean_curve(400, K, 1.0, 4.0)[-1], cu.best_of_k_saturation(K, 1.0, 4.0))
    np.testing.assert_allclose(cu.best_of_k_saturation(K, 1.0, 4.0), 1.0 + 2.0 * e / (1 - math.sqrt(v)))


@pytest.mark.parametrize("K, target", [(3, 1.5), (16, -0.4)])
def test_best_of_k_quadratic_one_step(K, target):
    rng = np.random.default_rng(35)
    R, n, mu, s2 = 40_000, 10, 0.3, 2.0
    x = mu + math.sqrt(s2) * rng.standard_normal((R, n, K))
    rows = np.take_along_axis(x, np.abs(x - target).argmin(2)[..., None], 2)[..., 0]
    mean, var = cu.best_of_k_quadratic_step(mu, s2, target, K, n=n)
    assert_within_se(rows.mean(1)[:, None], [mean])
    assert_within_se(rows.var(1)[:, None], [var])


# --------------------------------------------------------------------------- preference tilt (K → ∞)


def sir(rng, mu_R, s_R, reward, K, n):
    """n rows per replicate, each one of K draws chosen with probability softmax(reward)."""
    x = mu_R[:, None, None] + s_R[:, None, None] * rng.standard_normal((mu_R.size, n, K))
    r = reward(x)
    w = np.exp(r - r.max(2, keepdims=True))
    cdf = np.cumsum(w, 2) / w.sum(2, keepdims=True)
    pick = (cdf < rng.random(cdf.shape[:2])[..., None]).sum(2).clip(max=K - 1)
    return np.take_along_axis(x, pick[..., None], 2)[..., 0]


def test_linear_tilt_at_large_k():
    """K → ∞ limit, checked with K = 256 candidates per row (one generation, n = 20)."""
    rng = np.random.default_rng(36)
    beta, mu, s2 = 0.5, 0.2, 1.5
    rows = sir(rng, np.full(500, mu), np.full(500, math.sqrt(s2)), lambda x: beta * x, 256, 20)
    mu_G, s2_G = cu.tilt_linear_curve(1, mu, s2, beta)
    assert_within_se(rows.mean(1)[:, None], mu_G[1:])
    assert_within_se(rows.var(1, ddof=1)[:, None], s2_G[1:])


def test_quadratic_tilt_at_large_k_and_n():
    """K, n → ∞ limit, checked with K = 128 and n = 200 over 4 generations (x* = 2, τ_r² = 1)."""
    rng = np.random.default_rng(37)
    R, n, K, G, target = 100, 200, 128, 4, 2.0
    mu, s = np.zeros(R), np.ones(R)
    mus, s2s = [], []
    for _ in range(G):
        rows = sir(rng, mu, s, lambda x: -((x - target) ** 2) / 2, K, n)
        mu, s = rows.mean(1), rows.std(1)
        mus.append(mu)
        s2s.append(s**2)
    mu_G, s2_G = cu.tilt_quadratic_curve(G, 0.0, 1.0, target, 1.0)
    assert_within_se(np.stack(mus, 1), mu_G[1:])
    assert_within_se(np.stack(s2s, 1), s2_G[1:])


# --------------------------------------------------------------------------- top fraction


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_top_fraction_curve_at_large_n(keep):
    """n → ∞ limit (order statistics), checked with n = 20,000 kept rows a generation."""
    rng = np.random.default_rng(38)
    R, n, G = 40, 20_000, 3
    mu, s = np.full(R, 1.0), np.full(R, 2.0)
    mus, s2s = [], []
    for _ in range(G):
        x = mu[:, None] + s[:, None] * rng.standard_normal((R, round(n / keep)))
        rows = np.partition(x, x.shape[1] - n, axis=1)[:, -n:]
        mu, s = rows.mean(1), rows.std(1)
        mus.append(mu)
        s2s.append(s**2)
    mu_G, s2_G = cu.top_fraction_curve(G, keep, 1.0, 4.0)
    assert_within_se(np.stack(mus, 1), mu_G[1:])
    assert_within_se(np.stack(s2s, 1), s2_G[1:])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: cu.window_step(0.0, 1.0, 0.5, 0.0), "half_width"),
        (lambda: cu.window_curve(3, 0.0, 1.0, 0.5, -1.0), "half_width"),
        (lambda: cu.window_step(0.0, 0.0, 0.5, 1.0), "s2"),
        (lambda: cu.max_normal_moments(0), "K"),
        (lambda: cu.best_of_k_variance_curve(3, 2.5, 20), "K"),
        (lambda: cu.best_of_k_quadratic_step(0.0, 1.0, 1.0, 0), "K"),
        (lambda: cu.top_fraction_factors(0.0), "keep_fraction"),
        (lambda: cu.top_fraction_curve(3, 1.5), "keep_fraction"),
        (lambda: cu.tilt_quadratic_curve(3, 0.0, 1.0, 2.0, 0.0), "reward_var"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        call()
