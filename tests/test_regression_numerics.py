"""The regression fit stays accurate on an ill-conditioned spectrum in both precisions
(whitened basis), keeps ridge's penalty on the original weights, and flags a Gram
matrix too ill-conditioned for the precision with a NaN ``gram_cond`` (``world.record_gram=true``,
the eigendecomposition) or a NaN ``gram_solvable`` (the default, a Cholesky solve that falls back
to the eigendecomposition), either of which stops a run naming it; both modes are covered."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from engine_mc import precision

from collapse_sim.simulator import api
from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import regression
from collapse_sim.theory import regression as th

G, S = 4, 2000
D, T = 10, 40
P_MAX = regression.max_power(D)  # 8 at d = 10: the spectrum spans 1e8


def mc(cfg, regime):
    world = regression.make_world(cfg)
    simulate = make_simulate(world, make_regime(regime_config(regime), world, G), G)
    rec = simulate(seed_keys(jax.random.key(0), range(S)))
    return {k: np.asarray(v, np.float64) for k, v in rec.items()}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("regime", ["replace", "accumulate"])
def test_monte_carlo_matches_theory_at_the_largest_allowed_power(dtype, regime):
    """OLS test error does not depend on Σ (replace: g·σ²d/(T−d−1); accumulate: its exact
    curve), so the most ill-conditioned allowed spectrum must give the isotropic numbers.  replace
    runs with the Gram records, accumulate without (its fits are Cholesky solves)."""
    assert P_MAX == pytest.approx(8.0)
    record = regime == "replace"
    with precision(dtype):
        rec = mc(regression.Config(d=D, T=T, spectrum="power_law", power=P_MAX, record_gram=record), regime)
    err = rec["test_error"]
    theory = th.replace_curve(G, D, T, 1.0) if regime == "replace" else th.accumulate_curve(G, D, T, 1.0)
    se = err.std(0, ddof=1) / np.sqrt(S)
    z = np.abs(err.mean(0) - theory) / se
    assert np.all(z < 4), f"z {np.round(z, 2)}; MC {np.round(err.mean(0), 4)} vs theory {np.round(theory, 4)}"
    if record:
        assert np.all(np.isfinite(rec["gram_cond"])) and np.all(rec["gram_min_eig"] > 0)
    else:
        assert not {"gram_min_eig", "gram_cond"} & set(rec) and np.all(rec["gram_solvable"] == 1)


def ridge_reference(x, y, lam, ridge):
    """argmin ||y − x w||² + ridge·n·||w||² by least squares on the augmented system, numpy float64."""
    n, d = x.shape
    a = np.vstack([x, np.sqrt(ridge * n) * np.eye(d)])
    b = np.concatenate([y, np.zeros(d)])
    return np.linalg.lstsq(a, b, rcond=None)[0]


@pytest.mark.parametrize("record_gram", [True, False])
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 1e-3)])
@pytest.mark.parametrize("spectrum", ["isotropic", "power_law"])
def test_ridge_keeps_its_penalty_on_the_original_weights(dtype, rtol, spectrum, record_gram):
    cfg = regression.Config(d=D, T=T, ridge=0.05, spectrum=spectrum, power=P_MAX, record_gram=record_gram)
    lam = regression.spectrum(cfg)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, D)) * np.sqrt(lam)
    w_star = rng.standard_normal(D) / np.sqrt(D)
    y = x @ w_star + rng.standard_normal(T)
    want = ridge_reference(x, y, lam, cfg.ridge)
    with precision(dtype):
        world = regression.make_world(cfg)
        t = jnp.result_type(float)
        rows = {"x": jnp.asarray(x, t), "y": jnp.asarray(y, t), "weight": jnp.ones(T, t)}
        got = np.asarray(world.fit(jax.random.key(0), rows, None)["w"], np.float64)
    # compare in the metric of the test error, (ŵ − w)ᵀ Σ (ŵ − w), relative to ŵᵀ Σ ŵ
    assert np.sum(lam * (got - want) ** 2) <= rtol**2 * np.sum(lam * want**2)


def fit(world, x, y, weight=None):
    rows = {"x": jnp.asarray(x), "y": jnp.asarray(y), "weight": jnp.ones(len(y)) if weight is None else jnp.asarray(weight)}
    return {k: np.asarray(v) for k, v in world.fit(jax.random.key(0), rows, None).items()}


def test_a_gram_matrix_too_ill_conditioned_for_the_precision_gives_a_nan_gram_cond():
    world = regression.make_world(regression.Config(d=4, T=12, record_gram=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 4))
    ok = fit(world, x, x[:, 0])
    assert 1 < float(ok["gram_cond"]) < 1e3
    assert float(ok["gram_min_eig"]) == pytest.approx(np.linalg.eigvalsh(x.T @ x / 12)[0], rel=1e-12)
    x[:, 3] = x[:, 2] + 1e-9 * rng.standard_normal(12)  # two features equal to 1e-9: cond ~ 1e18
    bad = fit(world, x, x[:, 0])
    assert np.isnan(float(bad["gram_cond"]))
    assert np.all(np.isfinite(bad["w"]))  # the run stops on gram_cond, by name


def test_without_the_gram_records_an_unsolvable_gram_gives_a_nan_gram_solvable_and_the_same_fit():
    """The default (Cholesky) fit: the same ŵ as the eigendecomposition on a solvable Gram, and on an
    unsolvable one the eigendecomposition's own ŵ with gram_solvable NaN."""
    world = regression.make_world(regression.Config(d=4, T=12))
    exact = regression.make_world(regression.Config(d=4, T=12, record_gram=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 4))
    y = x @ rng.standard_normal(4) + rng.standard_normal(12)
    ok = fit(world, x, y)
    assert set(ok) == {"w", "gram_solvable"} and float(ok["gram_solvable"]) == 1.0
    np.testing.assert_allclose(ok["w"], fit(exact, x, y)["w"], rtol=1e-12)
    x[:, 3] = x[:, 2] + 1e-9 * rng.standard_normal(12)
    bad = fit(world, x, y)
    assert np.isnan(float(bad["gram_solvable"]))
    np.testing.assert_array_equal(bad["w"], fit(exact, x, y)["w"])


@pytest.mark.parametrize("record_gram", [True, False])
def test_a_rank_deficient_gram_gets_the_minimum_norm_solution(record_gram):
    """Fewer rows of positive weight than features (a curated set that came up short): ŵ is the
    minimum-norm least-squares solution, in both modes, and the fit is flagged."""
    world = regression.make_world(regression.Config(d=4, T=12, record_gram=record_gram))
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((12, 4)), rng.standard_normal(12)
    weight = (np.arange(12) < 3).astype(float)
    got = fit(world, x, y, weight)
    np.testing.assert_allclose(got["w"], np.linalg.lstsq(x[:3], y[:3], rcond=None)[0], rtol=1e-10)
    assert np.isnan(float(got["gram_cond" if record_gram else "gram_solvable"]))


@pytest.mark.parametrize("record_gram, name", [(True, "gram_cond"), (False, "gram_solvable")])
def test_a_run_whose_gram_the_precision_cannot_solve_stops_naming_the_cause(tmp_path, record_gram, name):
    """A verifier that fills a training set with fewer rows than features makes a singular Gram."""
    curation = {"rule": "verifier", "gamma": 0.0, "bias": 1.0, "rounds": 1}
    with warnings.catch_warnings(), pytest.raises(FloatingPointError, match=name):
        warnings.simplefilter("ignore")
        api.run("regression", "replace", out_dir=tmp_path, d=4, T=12, record_gram=record_gram, curation=curation,
                n_seeds=8, n_generations=4, progress=False)


def test_the_expected_condition_check_agrees_with_sampled_designs():
    """((√T+√d)/(√T−√d))² is the typical condition number of T Gaussian rows (Marchenko–Pastur)."""
    rng = np.random.default_rng(1)
    for d, t in [(10, 40), (50, 100)]:
        conds = [np.linalg.cond(x.T @ x) for x in rng.standard_normal((200, t, d))]
        assert 0.5 < np.median(conds) / regression.expected_gram_cond(d, t) < 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regression.check_precision(regression.Config(d=100, T=102), np.float64)  # fine in float64
