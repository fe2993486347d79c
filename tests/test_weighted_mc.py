"""The weighted regime (simulator/regimes/weighted.py) against theory/weighting.py: the model is
w·fit(n fresh real rows) + (1−w)·fit(m synthetic rows), k = n/m (theory/curation.md §3).

The error curve e_g is exact at every generation (its tail is the stationary error), checked within
4 standard errors over the seeds: the Gaussian mean at the golden weight w*(k) for k = 1 and
k = 0.25, and fixed-design OLS at w = 0.5.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from engine_mc import assert_mc_matches, simulate

from collapse_sim.experiments.predictions import predict
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import categorical, gaussian, make_world, regression
from collapse_sim.theory import weighting as tw


@pytest.mark.parametrize("k", [1.0, 0.25])
def test_gaussian_mean_at_the_golden_weight_is_exact(k):
    G, S, n = 12, 4000, 20
    world_cfg, regime_cfg = gaussian.Config(d=1, M=n), regime_config("weighted", real_to_synthetic=k)
    assert regime_cfg.resolved_weight(n) == pytest.approx(float(tw.golden_weight(k)))
    rec, curves = simulate(world_cfg, regime_cfg, G, S, seed=int(4 * k))
    np.testing.assert_allclose(curves["mean_error"], tw.gaussian_mean_curve(G, tw.golden_weight(k), k, n))
    # by generation 12 the curve is at its stationary value w*·σ²/n (the transient decays as (1−w*)^(2g))
    assert curves["mean_error"][-1] == pytest.approx(float(tw.golden_weight(k)) / n, rel=1e-4)
    assert_mc_matches(rec["mean_error"], curves["mean_error"], f"weighted Gaussian mean, k = {k}")
    assert_mc_matches(rec["var"], curves["var"], "E Σ_t = Σ* under the unbiased refit")
    assert np.all(rec["synthetic_rows"][:, 1:] == n / k)


def test_fixed_design_ols_at_half_weight_is_exact():
    G, S = 8, 3000
    world_cfg, regime_cfg = regression.Config(d=5, T=30), regime_config("weighted", weight=0.5)
    rec, curves = simulate(world_cfg, regime_cfg, G, S, seed=2)
    np.testing.assert_allclose(curves["prediction"], tw.ols_curve(G, 0.5, 5, 30, 30))
    assert_mc_matches(rec["test_error"], curves["prediction"], "weighted OLS, w = 0.5")
    out = predict(world_cfg, regime_cfg, SimpleNamespace(n_generations=G, seed=0, theory_designs=2))
    assert out["kind"] == "exact" and out["units"]["limit"] == pytest.approx(float(tw.ols_limit(0.5, 5, 30, 30)))


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(weight=1.5), r"regime.weight=1.5 must be a finite number in \[0, 1\]"),
        (dict(weight=-0.1), r"regime.weight=-0.1"),
        (dict(weight=float("nan")), r"regime.weight=nan"),
        (dict(weight="gold"), r"regime.weight='gold' is not allowed; allowed: a number in \[0, 1\] or 'golden'"),
        (dict(real_to_synthetic=0.0), r"regime.real_to_synthetic=0.0 must be a finite number in \(0, inf\)"),
        (dict(real_to_synthetic=float("inf")), r"regime.real_to_synthetic=inf"),
    ],
)
def test_bad_weights_fail_naming_the_key(fields, match):
    with pytest.raises(ValueError, match=match):
        regime_config("weighted", **fields)


def test_a_world_whose_fits_cannot_be_averaged_is_refused():
    with pytest.raises(ValueError, match=r"regime=weighted needs a world whose fits can be averaged.*'categorical'"):
        make_regime(regime_config("weighted"), make_world(categorical.Config()), 2)
