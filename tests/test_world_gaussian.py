"""Gaussian world: shapes, weights, bad input, and the engine's Monte Carlo against theory/gaussian.py.

Every Monte Carlo check runs the real engine (make_simulate, vmapped seeds,
float64) and compares the mean over seeds with the closed form attached by
experiments/predictions/gaussian.py, within 4 standard errors computed
from the seeds (tests/engine_mc.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from engine_mc import assert_every_regime_runs, assert_mc_matches, simulate

from collapse_sim.simulator.worlds import gaussian
from collapse_sim.theory import gaussian as tg
from collapse_sim.theory import gaussian_metrics as gm


def assert_records_match(rec, curves, names):
    for name in names:
        assert_mc_matches(rec[name], curves[name], name)


# ----------------------------------------------------------------------------- Shumailov, 1-D unbiased

SCHEDULE = [20, 10, 40, 15, 20, 30, 12, 20, 25, 20, 16]  # M_g varies: exercises the row weights


@pytest.fixture(scope="module")
def shumailov():
    cfg = gaussian.Config(d=1, M_schedule=SCHEDULE, estimator="unbiased", sigma=1.5)
    return simulate(cfg, "replace", G=len(SCHEDULE) - 1, S=10_000)


def test_unbiased_replace_moments_match_theory(shumailov):
    """E(mu_n - mu)^2 = sigma^2 sum 1/M_i; E sigma_n^2 = sigma^2 (martingale); E sigma_n = sigma prod c(M_i - 1)."""
    rec, curves = shumailov
    np.testing.assert_allclose(curves["mean_error"], 2.25 * np.cumsum(1.0 / np.array(SCHEDULE)))
    np.testing.assert_allclose(curves["var"], 2.25)
    assert_records_match(rec, curves, ["mean_error", "var", "std", "trace_ratio", "logdet_change"])
    assert curves["std"][-1] < 0.87 * 1.5  # E sigma_n decays although E sigma_n^2 does not


def test_unbiased_replace_w2_matches_exact_form_and_paper_approximation(shumailov):
    """E W2^2 exact (theory/derivations.md §10) within 4 SE.  Shumailov's (3/2) sigma^2 sum 1/M_i is an
    APPROXIMATION (first order in 1/M): it is not asserted against the MC; we check that its gap to the
    exact form is second order, i.e. shrinks ~10x when every M_i grows 10x."""
    rec, curves = shumailov
    assert_records_match(rec, {**curves, "test_error": curves["prediction"]}, ["w2sq", "test_error"])
    np.testing.assert_array_equal(rec["w2sq"], rec["test_error"])
    sizes = np.array(SCHEDULE)
    gaps = []
    for scale in (1, 10, 100):
        exact = tg.replace_w2sq(scale * sizes, sigma2=2.25, estimator="unbiased")
        approx = tg.shumailov_w2sq_approx(scale * sizes, sigma2=2.25)
        gaps.append(np.abs(approx - exact)[-1] / exact[-1])
    np.testing.assert_allclose(curves["w2sq_approx"], tg.shumailov_w2sq_approx(sizes, sigma2=2.25))
    assert gaps[0] < 0.02 and 5 < gaps[0] / gaps[1] < 20 and 5 < gaps[1] / gaps[2] < 20, gaps


def test_median_variance_decays_while_mean_stays(shumailov):
    """Not a CLT check: the sample median of sigma_n^2 against its exact median, within the median's
    asymptotic standard error sqrt(p(1-p)/S)/f (f from the empirical quantile spacing)."""
    rec, curves = shumailov
    var_SxG = rec["var"]
    S = var_SxG.shape[0]
    lo, hi = np.quantile(var_SxG, [0.5 - 0.02, 0.5 + 0.02], axis=0)
    se = (hi - lo) / 0.04 * 0.5 / np.sqrt(S)
    assert np.all(np.abs(np.median(var_SxG, 0) - curves["var_median"]) <= 4 * se)
    assert curves["var_median"][-1] < 0.6 * 2.25


# ----------------------------------------------------------------------------- Kazdan, d-dim MLE


@pytest.mark.parametrize("regime", ["replace", "accumulate"])
def test_mle_trace_logdet_and_mean_error_match_theory(regime):
    """Replace: E tr ratio = ((M-1)/M)^(g+1), E log det change (Bartlett), E||mu_g - mu||^2.
    Accumulate: the exact pooled recursions, and the mean error stays under (pi^2/6) tr Sigma / M."""
    cfg = gaussian.Config(d=3, M=10, estimator="mle", spectrum="power_law")
    rec, curves = simulate(cfg, regime, G=6, S=8_000)
    names = ["trace_ratio", "mean_error"] + (["logdet_change"] if regime == "replace" else [])
    assert_records_match(rec, curves, names)
    if regime == "replace":
        np.testing.assert_allclose(curves["trace_ratio"], 0.9 ** np.arange(1, 8))
    else:
        se = rec["mean_error"].std(0, ddof=1) / np.sqrt(rec["mean_error"].shape[0])
        assert np.all(rec["mean_error"].mean(0) <= curves["mean_error_bound"] + 4 * se)
        assert np.all(curves["mean_error"] <= curves["mean_error_approx"] + 1e-12)
        assert rec["trace_ratio"].mean(0)[-1] > 0.8  # accumulate does not collapse


# ----------------------------------------------------------------------------- engine contract


def test_every_regime_runs():
    assert_every_regime_runs(gaussian.Config(d=2, M_schedule=[6, 8]))


def test_fit_honours_row_weights_with_the_unbiased_divisor():
    world = gaussian.make_world(gaussian.Config(d=2, M=5))
    x = jax.random.normal(jax.random.key(0), (8, 2))
    w = jnp.array([1.0, 1, 0, 1, 0, 1, 1, 0])
    params = world.fit(None, {"x": x, "weight": w}, None)
    kept = np.asarray(x)[np.asarray(w) > 0]
    np.testing.assert_allclose(params["mu"], kept.mean(0), rtol=1e-12)
    np.testing.assert_allclose(params["cov"], np.cov(kept.T, ddof=1), rtol=1e-12)


def test_sample_weights_follow_the_schedule():
    world = gaussian.make_world(gaussian.Config(M_schedule=[4, 7, 5]))
    params = {"mu": jnp.zeros(1), "cov": jnp.eye(1)}
    assert world.n_rows == 7
    for g, m in enumerate([4, 7, 5, 5, 5]):
        rows = world.sample(jax.random.key(g), None, params, g)
        np.testing.assert_array_equal(rows["weight"], np.arange(7) < m)


def test_metrics_at_the_truth_and_w2_against_numpy():
    cfg = gaussian.Config(d=3, spectrum="power_law", tail_k=2.0)
    world = gaussian.make_world(cfg)
    truth = world.init(jax.random.key(0))
    cov_star = np.diag(gaussian.true_covariance_diag(cfg))
    at_truth = world.evaluate(truth, {"mu": jnp.zeros(3), "cov": jnp.asarray(cov_star)})
    assert float(at_truth["w2sq"]) == pytest.approx(0.0, abs=1e-12)
    assert float(at_truth["tail_share"]) == pytest.approx(2 * 0.022750131948179, rel=1e-9)
    a = np.random.default_rng(1).standard_normal((3, 3))
    cov, mu = a @ a.T + 0.1 * np.eye(3), np.array([0.3, -0.2, 1.0])
    got = world.evaluate(truth, {"mu": jnp.asarray(mu), "cov": jnp.asarray(cov)})
    assert float(got["w2sq"]) == pytest.approx(float(gm.w2sq_gaussians(mu, cov, np.zeros(3), cov_star)), rel=1e-9)
    assert float(got["logdet_change"]) == pytest.approx(np.linalg.slogdet(cov)[1] - np.linalg.slogdet(cov_star)[1])


@pytest.mark.parametrize("spectrum", ["isotropic", "power_law"])
def test_a_fitted_model_keeps_its_eigendecomposition_and_reads_it_as_recomputed(spectrum):
    """The fit stores Σ̂'s eigendecomposition once; metrics and draws from it equal those from
    the covariance alone (recomputed by eigh / eigvalsh) to float rounding."""
    cfg = gaussian.Config(d=4, M=9, sigma=1.7, spectrum=spectrum, power=1.5)
    world = gaussian.make_world(cfg)
    truth = world.init(jax.random.key(0))
    fitted = world.fit(None, world.real(jax.random.key(1), truth, 0), None)
    np.testing.assert_allclose(fitted["evecs"] * fitted["evals"] @ fitted["evecs"].T, fitted["cov"], atol=1e-12)
    bare = {"mu": fitted["mu"], "cov": fitted["cov"]}
    got = world.evaluate(truth, fitted)
    cov, cov_star = np.asarray(fitted["cov"]), np.diag(gaussian.true_covariance_diag(cfg))
    want = gm.w2sq_gaussians(np.asarray(fitted["mu"]), cov, np.zeros(4), cov_star)  # numpy's eigh of Σ*^½ Σ̂ Σ*^½
    assert float(got["w2sq"]) == pytest.approx(float(want), rel=1e-10)
    assert float(got["logdet_change"]) == pytest.approx(np.linalg.slogdet(cov)[1] - np.linalg.slogdet(cov_star)[1],
                                                        rel=1e-12)
    for name, value in world.evaluate(truth, bare).items():
        np.testing.assert_allclose(world.evaluate(truth, fitted)[name], value, rtol=1e-12, atol=1e-14, err_msg=name)
    key = jax.random.key(2)
    np.testing.assert_allclose(world.sample(key, truth, fitted, 1)["x"], world.sample(key, truth, bare, 1)["x"],
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(d=1, M=1), r"world.M=1 must be a whole number of samples >= 2 \(a variance needs 2 points"),
        (dict(d=3, M=3), r"world.M=3 must be a whole number of samples >= 4 \(a 3-dimensional covariance"),
        (dict(M_schedule=[10, 1]), r"world.M_schedule\[1\]=1 must be a whole number of samples >= 2"),
        (dict(estimator="biased"), "world.estimator='biased' is not known; allowed: unbiased, mle"),
        (dict(d=0), "world.d=0 must be a whole number of dimensions >= 1"),
        (dict(sigma=0.0), "world.sigma=0.0 must be a finite number > 0"),
    ],
)
def test_bad_input_fails_at_start_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gaussian.Config(**kwargs)
