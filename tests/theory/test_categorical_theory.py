"""theory/categorical.py against brute-force numpy Monte Carlo of the multinomial refit chain.

The MC draws the counts of every generation with ``Generator.multinomial``,
vectorised over S seeds, seeded, so it is deterministic.  A closed form passes
if it lies within 4 standard errors of the MC mean.  Axis letters: S seeds,
G generations, V categories.
"""

import numpy as np
import pytest

from collapse_sim.theory import categorical as tc


def assert_mc_close(samples_SxG, theory_G, n_se=4.0, se_floor_G=None):
    samples_SxG = np.asarray(samples_SxG, dtype=float)
    mean_G = samples_SxG.mean(0)
    se_G = samples_SxG.std(0, ddof=1) / np.sqrt(samples_SxG.shape[0])
    if se_floor_G is not None:  # indicators the MC never saw: use the binomial SE of the theory value
        se_G = np.maximum(se_G, se_floor_G)
    err_G = np.abs(mean_G - theory_G)
    z_G = np.where(se_G > 0, err_G / np.where(se_G > 0, se_G, 1.0), np.where(err_G < 1e-12, 0.0, np.inf))
    assert np.all(z_G <= n_se), f"MC {mean_G} vs theory {theory_G}: |z| = {z_G}"


def mc_chain(rng, p_V, sizes, S):
    """Replace chain: generation g = empirical frequencies of sizes[g] draws from generation g-1."""
    counts_SxV = rng.multinomial(sizes[0], p_V, size=S)
    freqs = [counts_SxV / sizes[0]]
    for m in sizes[1:]:
        counts_SxV = rng.multinomial(m, freqs[-1])
        freqs.append(counts_SxV / m)
    return np.stack(freqs, 1)  # S x G x V


def mc_fits_until_point_mass(rng, p_V, M, S):
    """Number of fits until the fitted distribution is a point mass (first absorbed generation + 1)."""
    counts_SxV = rng.multinomial(M, p_V, size=S)
    fits_S = np.ones(S)
    alive_S = (counts_SxV > 0).sum(1) > 1
    while alive_S.any():
        idx = np.flatnonzero(alive_S)
        counts_SxV[idx] = rng.multinomial(M, counts_SxV[idx] / M)
        fits_S[idx] += 1
        alive_S[idx] = (counts_SxV[idx] > 0).sum(1) > 1
    return fits_S


# --------------------------------------------------------------------------- exact curves

@pytest.mark.parametrize("case", ["zipf_varying_M", "small_absorbing"])
def test_exact_curves_match_mc(case):
    rng = np.random.default_rng(21)
    if case == "zipf_varying_M":
        p_V, sizes = tc.zipf_distribution(8, 1.2), [15, 30, 10, 20, 20, 25, 12, 15]
    else:  # reaches absorption within the horizon
        p_V, sizes = np.array([0.5, 0.3, 0.2]), [6] * 16
    S = 20_000
    freq_SxGxV = mc_chain(rng, p_V, sizes, S)
    assert_mc_close(tc.heterozygosity(freq_SxGxV), tc.expected_heterozygosity_curve(p_V, sizes))
    assert_mc_close(tc.entropy(freq_SxGxV), tc.expected_entropy_curve(p_V, sizes))
    assert_mc_close(tc.support_size(freq_SxGxV), tc.expected_support_curve(p_V, sizes))
    absorbed_G = tc.absorption_probability_curve(p_V, sizes)
    assert_mc_close(tc.support_size(freq_SxGxV) == 1, absorbed_G,
                    se_floor_G=np.sqrt(absorbed_G * (1 - absorbed_G) / S))
    # martingale: the mass on the true tail is preserved in expectation
    tail_G = np.full(len(sizes), tc.tail_mass(p_V, threshold=1 / 15))
    assert_mc_close(tc.tail_mass(freq_SxGxV, threshold=1 / 15, reference=p_V), tail_G)
    assert_mc_close(freq_SxGxV[:, -1, :], tc.fixation_probabilities(p_V))
    # the true mass lost by generation g, from each category's chance of a zero count
    zero_VxG = tc.zero_count_curves(p_V, sizes)
    assert_mc_close((freq_SxGxV == 0) @ p_V, p_V @ zero_VxG)
    np.testing.assert_allclose(zero_VxG[:, 0], tc.loss_probability(p_V, sizes[0]))


def test_one_generation_closed_forms_match_mc():
    rng = np.random.default_rng(22)
    p_V, M = tc.zipf_distribution(40, 1.0), 30
    counts_SxV = rng.multinomial(M, p_V, size=40_000)
    lost_SxV = counts_SxV == 0
    assert_mc_close(lost_SxV, tc.loss_probability(p_V, M))
    assert_mc_close((~lost_SxV).sum(1)[:, None], tc.expected_surviving_categories(p_V, M))
    assert_mc_close((lost_SxV * p_V).sum(1)[:, None], tc.expected_lost_mass(p_V, M))
    np.testing.assert_allclose(tc.expected_support_curve(p_V, M, 0), tc.expected_surviving_categories(p_V, M))


def test_heterozygosity_curve_convention():
    """Generation 0 is already one fit: E H_g = H(p) (1 - 1/M)^(g+1)."""
    p_V = tc.uniform_distribution(6)
    np.testing.assert_allclose(tc.expected_heterozygosity_curve(p_V, 10, 3), (5 / 6) * 0.9 ** np.arange(1, 5))


def test_documented_numbers():
    np.testing.assert_allclose(tc.loss_probability(0.0005, 1000), 0.606, atol=5e-4)  # theory/derivations.md §14
    np.testing.assert_allclose(tc.absorption_time_wright_fisher(tc.uniform_distribution(6), 100), 182.3, atol=0.05)
    np.testing.assert_allclose(tc.absorption_time_wright_fisher(tc.uniform_distribution(6), 1000), 1823.2, atol=0.05)


# --------------------------------------------------------------------------- absorption time

def test_absorption_time_exact_and_diffusion_vs_mc():
    rng = np.random.default_rng(23)
    p_V, M = np.array([0.5, 0.3, 0.2]), 30
    fits_S = mc_fits_until_point_mass(rng, p_V, M, 20_000)
    mean, se = fits_S.mean(), fits_S.std(ddof=1) / np.sqrt(fits_S.size)
    exact = tc.absorption_time_exact(p_V, M)
    assert abs(mean - exact) <= 4 * se, (mean, se, exact)
    # The diffusion limit is biased (it is 8 SE off here).  Its relative error vs the
    # exact chain, measured for M in [10, 1280] and p in {uniform 6, (.5,.3,.2), (.5,.5),
    # (.7,.2,.1)}, is 0.23-0.46 ln(M)/M and falls with M (next test); allow 0.5 ln(M)/M on top of 4 SE.
    approx = tc.absorption_time_wright_fisher(p_V, M)
    assert abs(mean - approx) <= 4 * se + 0.5 * np.log(M) / M * approx, (mean, se, approx)


@pytest.mark.parametrize("p_V", [tc.uniform_distribution(6), [0.5, 0.3, 0.2], [0.5, 0.5], [0.7, 0.2, 0.1]])
def test_diffusion_error_shrinks_with_M(p_V):
    rel = []
    for M in (10, 40, 160, 640):
        exact, approx = tc.absorption_time_exact(p_V, M), tc.absorption_time_wright_fisher(p_V, M)
        rel.append(abs(approx / exact - 1))
        assert rel[-1] <= 0.5 * np.log(M) / M, (M, rel[-1])
    assert all(a > 2 * b for a, b in zip(rel, rel[1:])), rel


def test_absorption_exact_edge_cases():
    assert tc.absorption_time_exact([1.0, 0.0], 50) == 1.0  # generation 0 is already a point mass
    assert tc.absorption_time_exact([0.5, 0.5], 1) == 1.0
    # binary, M = 2: from X = 1 the chain stays with prob 1/2 each step, so 1 + E T = 1 + (1/2)*2 = 2
    np.testing.assert_allclose(tc.absorption_time_exact([0.5, 0.5], 2), 2.0)


# --------------------------------------------------------------------------- constructors, helpers, bad input

def test_constructors_and_helpers():
    np.testing.assert_allclose(tc.uniform_distribution(4), 0.25)
    z = tc.zipf_distribution(10, 1.5)
    np.testing.assert_allclose(z.sum(), 1.0)
    assert np.all(np.diff(z) < 0)
    np.testing.assert_allclose(z[0] / z[3], 4**1.5)
    np.testing.assert_allclose(tc.zipf_distribution(5, 0.0), tc.uniform_distribution(5))
    p = np.array([0.5, 0.3, 0.2, 0.0])
    assert tc.support_size(p) == 3 and tc.support_size(p, atol=0.25) == 2
    np.testing.assert_allclose(tc.tail_mass(p, threshold=0.3), 0.5)
    np.testing.assert_allclose(tc.tail_mass([0.9, 0.1, 0.0, 0.0], threshold=0.3, reference=p), 0.1)
    np.testing.assert_allclose(tc.entropy(p), -(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2)))
    np.testing.assert_allclose(tc.heterozygosity(p), 1 - 0.38)
    tc.validate_distribution([0.5, 0.5 + 9e-7])  # within 1e-6


def test_bad_inputs():
    with pytest.raises(ValueError, match="V must be an integer >= 2, got V=1"):
        tc.uniform_distribution(1)
    with pytest.raises(ValueError, match="V must be an integer >= 2, got V=2.5"):
        tc.zipf_distribution(2.5)
    with pytest.raises(ValueError, match="s must be a finite number >= 0, got s=-1"):
        tc.zipf_distribution(5, -1.0)
    with pytest.raises(ValueError, match=r"p must be non-negative, got p\[1\]=-0.1"):
        tc.validate_distribution([1.1, -0.1])
    with pytest.raises(ValueError, match="p must sum to 1 within 1e-06, got sum=0.9"):
        tc.fixation_probabilities([0.5, 0.4])
    with pytest.raises(ValueError, match="p needs V >= 2 categories, got V=1"):
        tc.absorption_time_wright_fisher([1.0], 10)
    with pytest.raises(ValueError, match="p must be 1-D"):
        tc.expected_entropy_curve([[0.5, 0.5]], 10, 2)
    with pytest.raises(ValueError, match="p must be finite"):
        tc.validate_distribution([np.nan, 1.0])
    with pytest.raises(ValueError, match="q must lie in"):
        tc.loss_probability(1.5, 10)
    with pytest.raises(ValueError, match="M must be an integer >= 1, got M=0"):
        tc.loss_probability(0.5, 0)
    with pytest.raises(ValueError, match=r"q must be a probability or a 1-D array of them in \[0, 1\], got q=1.5"):
        tc.zero_count_curves(1.5, 10, 2)
    with pytest.raises(ValueError, match="M must be <= 5000"):
        tc.absorption_time_exact([0.5, 0.5], 6000)
    with pytest.raises(ValueError, match="G is required"):
        tc.expected_heterozygosity_curve([0.5, 0.5], 10)
