"""Gaussian-mixture world: the closed-form L2 distance, EM in JAX (recovery of a well-separated
truth, empty components and singular covariances handled and counted), every regime, bad input.

There is no closed form for an EM-fitted mixture under any regime, so there is no
Monte Carlo-against-theory check here (experiments/predictions/gmm.py
attaches none).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from engine_mc import assert_every_regime_runs, simulate

from collapse_sim.figures.gmm import density  # numpy, independent of the JAX closed form
from collapse_sim.simulator.worlds import gmm


def test_l2_distance_matches_numerical_integration():
    rng = np.random.default_rng(0)

    def random_mixture(K):
        a = rng.standard_normal((K, 2, 2))
        return rng.dirichlet(np.ones(K)), rng.standard_normal((K, 2)), a @ np.swapaxes(a, 1, 2) + 0.3 * np.eye(2)

    p, q = random_mixture(3), random_mixture(2)
    grid = np.linspace(-9, 9, 451)
    xx, yy = np.meshgrid(grid, grid)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    numeric = np.sum((density(pts, *p) - density(pts, *q)) ** 2) * (grid[1] - grid[0]) ** 2
    closed = gmm.l2sq(tuple(map(jnp.asarray, p)), tuple(map(jnp.asarray, q)))
    assert float(closed) == pytest.approx(numeric, rel=1e-6)
    assert float(gmm.l2sq(tuple(map(jnp.asarray, p)), tuple(map(jnp.asarray, p)))) == pytest.approx(0.0, abs=1e-12)


def test_em_recovers_a_well_separated_truth():
    cfg = gmm.Config(M=3000, K=3, true_K=3, separation=4.0)
    world = gmm.make_world(cfg)
    truth = world.init(jax.random.key(0))

    @jax.jit
    def fit_real(key):
        k_real, k_fit = jax.random.split(key)
        params = world.fit(k_fit, world.real(k_real, truth, 0), None)
        return params, world.evaluate(truth, params)

    params, metrics = fit_real(jax.random.key(1))
    assert int(metrics["modes_kept"]) == 3
    assert float(metrics["l2sq"]) < 2e-4
    assert int(metrics["em_empty"]) == 0 and int(metrics["em_singular"]) == 0
    dist_KxJ = np.sum((np.asarray(params["means"])[:, None] - np.asarray(truth["means"])[None]) ** 2, -1)
    order = np.argmin(dist_KxJ, 0)
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(params["means"][order], truth["means"], atol=0.15)
    np.testing.assert_allclose(params["weights"][order], 1 / 3, atol=0.04)
    np.testing.assert_allclose(params["covs"][order], truth["covs"], atol=0.2)


EM = jax.jit(gmm.em, static_argnums=(3, 4))
N_EM = 60  # both cases below use the same shapes, so EM compiles once


def test_empty_component_is_reseeded_and_counted_not_nan():
    """A component started far from every point gets no responsibility: it is re-seeded at the
    worst-explained point with the data's covariance (documented in simulator/worlds/gmm.py)."""
    x = jax.random.normal(jax.random.key(0), (N_EM, 2)) + jnp.where(jnp.arange(N_EM)[:, None] < 30, -3.0, 3.0)
    init = {
        "weights": jnp.full(3, 1 / 3),
        "means": jnp.array([[-3.0, -3.0], [3.0, 3.0], [1e3, 1e3]]),
        "covs": jnp.broadcast_to(0.5 * jnp.eye(2), (3, 2, 2)),
    }
    out = EM(x, jnp.ones(N_EM), init, 20, 1e-6)
    assert int(out["em_empty"]) >= 1
    for name in ("weights", "means", "covs", "loglik"):
        assert np.all(np.isfinite(out[name])), name
    assert np.all(np.asarray(out["weights"]) > 0)
    assert np.all(np.abs(out["means"]) < 10)  # the far component came back to the data


def test_singular_covariance_is_floored_and_counted_not_nan():
    """20 present rows on two distinct points (40 absent rows) with three components: covariances
    collapse onto the floor reg·I."""
    x = jnp.tile(jnp.array([[0.0, 0.0], [1.0, 1.0]]), (N_EM // 2, 1))
    w = (jnp.arange(N_EM) < 20).astype(float)
    init = {"weights": jnp.full(3, 1 / 3), "means": x[:3], "covs": jnp.broadcast_to(jnp.eye(2), (3, 2, 2))}
    out = EM(x, w, init, 20, 1e-6)
    assert int(out["em_singular"]) >= 2
    for name in ("weights", "means", "covs", "loglik"):
        assert np.all(np.isfinite(out[name])), name
    assert np.all(np.linalg.eigvalsh(np.asarray(out["covs"])) >= 1e-6 * (1 - 1e-6))


SCARCE = gmm.Config(d=2, K=5, M=6, em_iters=10, tail_points=64)  # empty and singular components happen


def test_engine_records_recoveries_and_stays_finite_when_data_are_scarce():
    """K = 5 components on M = 6 points per generation under replace, jit and vmapped seeds: the run
    stays finite and the records count the recoveries."""
    rec, curves = simulate(SCARCE, "replace", G=3, S=8)
    assert curves == {}
    for name, a in rec.items():
        assert a.shape[:2] == (8, 4), name
        assert np.all(np.isfinite(a)), name
    assert rec["em_singular"].sum() + rec["em_empty"].sum() > 0
    assert rec["means"].shape == (8, 4, 5, 2) and rec["covs"].shape == (8, 4, 5, 2, 2)
    np.testing.assert_allclose(rec["weights"].sum(-1), 1.0, rtol=1e-12)


def test_every_regime_runs():
    assert_every_regime_runs(SCARCE)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(K=0), r"world.K=0 must be a whole number of components >= 1"),
        (dict(true_K=0), r"world.true_K=0 must be a whole number of components >= 1"),
        (dict(M=1), r"world.M=1 must be a whole number of samples >= 2"),
        (dict(reg=0.0), r"world.reg=0.0 must be a finite number > 0"),
        (dict(true_K=2, true_weights=[0.5, 0.4]), r"world.true_weights=\[0.5, 0.4\] must be positive and sum to 1"),
        (dict(true_K=2, true_weights=[1.0]), r"world.true_weights has 1 entries but world.true_K=2"),
    ],
)
def test_bad_input_fails_at_start_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gmm.Config(**kwargs)
