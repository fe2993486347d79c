"""Kernel-density world: the engine's Monte Carlo against theory/kde.py (variance drift to
(M-1) d h² under replace), the KL metric, the fixed-shape summary, every regime, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from engine_mc import assert_every_regime_runs, assert_mc_matches, simulate

from collapse_sim.simulator.worlds import kde
from collapse_sim.theory import kde as tk

H = 0.5


def test_replace_variance_drifts_to_M_minus_1_d_h2():
    """E s2_{g+1} = (1 - 1/M_{g+1})(E s2_g + d h²) (theory/derivations.md §13, derived), with M varying then
    constant at 10 in d = 2: the curve and the Monte Carlo reach (10 - 1)·2·h² = 4.5 whatever the truth."""
    cfg = kde.Config(d=2, M_schedule=[12, 20, 10], h=H, true_K=2, separation=1.0, n_test=16)
    rec, curves = simulate(cfg, "replace", G=50, S=4_000)
    assert_mc_matches(rec["var"], curves["var"], "var")
    assert_mc_matches(rec["kde_var"], curves["kde_var"], "kde_var")
    _, trace = kde.true_moments(cfg)
    assert curves["var"][0] == pytest.approx((1 - 1 / 12) * trace)
    limit = tk.kde_variance_limit(10, h=H, dim=2)
    assert limit == pytest.approx(4.5)
    assert curves["var"][-1] == pytest.approx(limit, rel=0.01)
    assert rec["var"][:, -10:].mean() == pytest.approx(limit, rel=0.03)


def test_kl_is_small_for_a_good_fit_and_grows_with_a_bad_one():
    world = kde.make_world(kde.Config(d=1, M=4000, h=0.1, n_test=512))
    truth = world.init(jax.random.key(0))

    @jax.jit
    def kl_of(key, shift):
        rows = world.real(key, truth, 0)
        rows = {**rows, "x": rows["x"] + shift}
        return world.evaluate(truth, world.fit(key, rows, None))

    good, bad = kl_of(jax.random.key(1), 0.0), kl_of(jax.random.key(1), 1.0)
    # The KDE of many N(1, 1) points is close to N(1, 1 + h²): the estimate on the world's own
    # fixed test points must agree with that density's, up to the finite-sample error of the KDE.
    x_T = np.asarray(truth["x_test"])[:, 0]
    reference = np.mean(stats.norm.logpdf(x_T) - stats.norm.logpdf(x_T, 1.0, np.sqrt(1 + 0.1**2)))
    assert reference == pytest.approx(0.5, abs=0.2)  # KL(N(0,1) || N(1,1)) = 1/2, on 512 points
    assert float(bad["kl"]) == pytest.approx(reference, abs=0.02)
    assert abs(float(good["kl"])) < 0.02
    assert float(good["var"]) == pytest.approx(1.0, abs=0.06)


def test_fit_summary_draws_centres_only_from_present_rows():
    world = kde.make_world(kde.Config(d=1, M=8, h=H, n_test=4))
    x = jnp.concatenate([jnp.arange(4.0), jnp.full(4, 1e6)])[:, None]
    rows = {"x": x, "weight": jnp.array([1.0, 1, 1, 1, 0, 0, 0, 0])}
    params = world.fit(jax.random.key(0), rows, None)
    assert params["centres"].shape == (8, 1)
    assert set(np.asarray(params["centres"][:, 0]).tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert float(params["s2"]) == pytest.approx(np.var([0, 1, 2, 3]))
    drawn = world.sample(jax.random.key(1), None, params, 0)
    np.testing.assert_allclose(drawn["x"] - params["centres"], H * jax.random.normal(jax.random.key(1), (8, 1)))


def test_every_regime_runs():
    assert_every_regime_runs(kde.Config(M=8, n_test=16))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(h=0.0), r"world.h=0.0 is not a valid bandwidth; allowed: a finite number > 0"),
        (dict(h=-0.5), r"world.h=-0.5 is not a valid bandwidth"),
        (dict(M=1), r"world.M=1 must be a whole number of samples >= 2"),
        (dict(d=0), r"world.d=0 must be a whole number of dimensions >= 1"),
    ],
)
def test_bad_input_fails_at_start_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kde.Config(**kwargs)
