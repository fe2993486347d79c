"""Sampling temperature τ in the engine (world.temperature) against theory/temperature.py.

Gaussian: the (α, τ) moment recursion of the MLE refit with fresh real rows is exact
(theory/curation.md §1); checked at one τ < 1 and one τ > 1 below the stability boundary, within
4 standard errors over the seeds.  Categorical: the tempered map is a large-M LIMIT (§2), checked
at M = 20000.  τ = 1 draws what the untempered world draws, bit for bit.
"""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from engine_mc import assert_mc_matches, simulate

from collapse_sim.experiments.predictions import predict
from collapse_sim.simulator import normal
from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds import categorical, gaussian, make_world
from collapse_sim.simulator.worlds.gaussian import psd_sqrt
from collapse_sim.theory import temperature as tt


@pytest.mark.parametrize("tau2", [0.7, 1.1])
def test_tempered_fresh_mix_follows_the_exact_recursion(tau2):
    G, S, M, alpha = 8, 4000, 20, 0.2
    assert tau2 < tt.critical_temperature_sq(alpha, M)  # both settings are stable
    world_cfg = gaussian.Config(d=1, M=M, estimator="mle", temperature=float(np.sqrt(tau2)))
    regime_cfg = regime_config("mix", real_fraction=alpha, real_source="fresh")
    rec, curves = simulate(world_cfg, regime_cfg, G, S, seed=int(10 * tau2))
    E, v = tt.moment_curve(G, alpha, np.sqrt(tau2), M)
    np.testing.assert_allclose(curves["var"], E)
    np.testing.assert_allclose(curves["mean_error"], v)
    assert_mc_matches(rec["var"], curves["var"], f"E Σ_g at τ² = {tau2}")
    assert_mc_matches(rec["mean_error"], curves["mean_error"], f"Var μ_g at τ² = {tau2}")


def test_temperature_one_draws_the_untempered_samples_bit_for_bit():
    key = jax.random.key(3)
    world = make_world(gaussian.Config(d=2, M=16))
    params = {"mu": jnp.array([0.5, -1.0]), "cov": jnp.array([[2.0, 0.3], [0.3, 0.5]])}
    z = normal.normal(key, (16, 2), jnp.result_type(float))  # the worlds draw their normals with it
    np.testing.assert_array_equal(world.sample(key, None, params, 1)["x"], params["mu"] + z @ psd_sqrt(params["cov"]).T)
    cat = make_world(categorical.Config(V=4, M=64))
    p = jnp.array([0.1, 0.2, 0.3, 0.4])
    u = jax.random.uniform(key, (64,), jnp.result_type(float)) * jnp.cumsum(p)[-1]
    np.testing.assert_array_equal(cat.sample(key, None, {"p": p}, 1)["x"], jnp.searchsorted(jnp.cumsum(p), u, side="right"))


def test_categorical_draws_at_temperature_follow_p_to_the_one_over_tau():
    """One draw of 200000 rows at τ = 0.5: frequencies ≈ normalise(p²) within 4 binomial SE."""
    M, p = 200_000, np.array([0.1, 0.2, 0.3, 0.4])
    world = make_world(categorical.Config(V=4, M=M, temperature=0.5))
    x = np.asarray(world.sample(jax.random.key(1), None, {"p": jnp.asarray(p)}, 1)["x"])
    q = tt.tempered(p, 0.5)
    freq = np.bincount(x, minlength=4) / M
    assert np.all(np.abs(freq - q) <= 4 * np.sqrt(q * (1 - q) / M)), (freq, q)


@pytest.mark.parametrize("regime, tau", [("replace", 0.8), ("mix", 1.5)])
def test_tempered_categorical_follows_its_large_m_limit(regime, tau):
    G, S, M = 3, 100, 20_000
    world_cfg = categorical.Config(V=4, M=M, dist="zipf", temperature=tau, record_probs=True)
    regime_cfg = regime_config(regime, **({"real_fraction": 0.2} if regime == "mix" else {}))
    rec, curves = simulate(world_cfg, regime_cfg, G, S, seed=7)
    out = predict(world_cfg, regime_cfg, SimpleNamespace(n_generations=G, seed=0, theory_designs=2))
    assert out["kind"] == "limit" and set(out["curve_kinds"].values()) == {"limit"}
    for k in range(4):
        assert_mc_matches(rec["probs"][:, :, k], curves[f"prob_{k}"], f"p_g[{k}] (M → ∞ limit)")
    assert_mc_matches(rec["entropy"], curves["entropy"], "entropy (M → ∞ limit)")


@pytest.mark.parametrize("world", [gaussian, categorical])
@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf"), True])
def test_a_temperature_that_is_not_a_finite_positive_number_fails_naming_it(world, tau):
    with pytest.raises(ValueError, match=r"world.temperature=.* is not allowed; allowed: a finite number > 0"):
        world.Config(temperature=tau)
