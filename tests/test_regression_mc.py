"""The engine's Monte Carlo against the closed-form theory, regime by regime.

Each case runs many vmapped seeds in float64 and checks, at every generation,
|MC mean - theory| <= 4 * sqrt(SE_mc^2 + SE_theory^2), where SE_mc is the
measured standard error over seeds and SE_theory that of theory curves that are
exact in the noise but averaged over sampled designs (0 for closed forms).
Cases include the edge T = d+4, the smallest T with a finite variance.
"""

import warnings

import jax
import numpy as np

from collapse_sim.experiments.predictions import regression_theory
import pytest

from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds.regression import RegressionConfig, make_world, spectrum
from collapse_sim.theory import regression as th

G = 6
S = 3000


def run_mc(world_cfg, regime_cfg, n_seeds=S, seed=0):
    world = make_world(world_cfg)
    simulate = make_simulate(world, make_regime(regime_cfg, world, G), G)
    return np.asarray(simulate(seed_keys(jax.random.key(seed), range(n_seeds)))["test_error"])


def theory_for(world_cfg, regime_cfg, n_designs=3000):
    return regression_theory(world_cfg, regime_cfg, G, n_designs=n_designs, seed=123)


def assert_matches(err, th_out):
    mc = err.mean(0)
    se_mc = err.std(0, ddof=1) / np.sqrt(err.shape[0])
    pred = np.asarray(th_out["prediction"], float)
    se_th = np.zeros_like(pred) if th_out["prediction_se"] is None else np.asarray(th_out["prediction_se"])
    z = np.abs(mc - pred) / np.sqrt(se_mc**2 + se_th**2)
    assert np.all(z < 4), f"z-scores {np.round(z, 2)}; MC {np.round(mc, 4)} vs theory {np.round(pred, 4)}"
    return z


def W(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # T <= d+3 warns; the edge cases here use T = d+4
        return RegressionConfig(**kw)


EDGE = dict(d=4, T=8)  # T = d + 4
CASES = [
    ("replace-edge", W(**EDGE), regime_config("replace")),
    ("replace-powerlaw", W(d=10, T=40, sigma=0.5, spectrum="power_law", power=1.5), regime_config("replace")),
    ("replace-fresh-design", W(d=5, T=20, design="fresh"), regime_config("replace")),
    ("accumulate-edge", W(**EDGE), regime_config("accumulate")),
    ("accumulate-powerlaw", W(d=8, T=30, spectrum="power_law"), regime_config("accumulate")),
    ("accumulate-fresh-design", W(d=5, T=20, design="fresh"), regime_config("accumulate")),
    ("mix-fresh-M1", W(d=5, T=20, design="fresh"), regime_config("mix", real_fraction=0.3, real_source="fresh")),
    ("mix-fresh-fixed-design", W(d=4, T=16), regime_config("mix", real_fraction=0.25, real_source="fresh")),
    ("mix-fresh-edge", W(**EDGE, sigma=2.0), regime_config("mix", real_fraction=0.5, real_source="fresh")),
    ("mix-original-resampled", W(d=4, T=16), regime_config("mix", real_fraction=0.25, real_source="original")),
    (
        "mix-original-fixed-subset",
        W(d=4, T=16, spectrum="power_law"),
        regime_config("mix", real_fraction=0.5, real_source="original", resample_real=False),
    ),
    ("ridge-replace", W(d=5, T=20, ridge=0.1), regime_config("replace")),
]


@pytest.mark.parametrize("world_cfg, regime_cfg", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_monte_carlo_matches_theory(world_cfg, regime_cfg):
    out = theory_for(world_cfg, regime_cfg)
    assert out["kind"] in ("exact", "exact_in_noise")
    assert_matches(run_mc(world_cfg, regime_cfg), out)


def test_accumulate_stays_below_the_pi2_over_6_bound():
    world_cfg = W(d=5, T=20, design="fresh")
    err = run_mc(world_cfg, regime_config("accumulate"))
    v = th.ols_error(1.0, 5, 20)
    upper = err.mean(0) - 4 * err.std(0, ddof=1) / np.sqrt(err.shape[0])
    assert np.all(upper <= np.pi**2 / 6 * v)


def test_accumulate_subsample_lies_between_accumulate_and_replace():
    """No closed form (Kazdan et al. 2024): its error must sit between the two exact curves."""
    world_cfg = W(d=5, T=20)
    err = run_mc(world_cfg, regime_config("accumulate_subsample"))
    mc, se = err.mean(0), err.std(0, ddof=1) / np.sqrt(err.shape[0])
    lo = th.accumulate_curve(G, 5, 20, 1.0)
    hi = th.replace_curve(G, 5, 20, 1.0)
    assert np.all(mc[1:] + 4 * se[1:] > lo[1:]) and np.all(mc[1:] - 4 * se[1:] < hi[1:])
    assert mc[-1] > lo[-1] * 1.2 and mc[-1] < hi[-1] * 0.8  # clearly separated from both


def test_tolerance_detects_a_wrong_theory():
    """The same check rejects the replace curve for accumulate: the test can fail."""
    world_cfg = W(d=8, T=30)
    err = run_mc(world_cfg, regime_config("accumulate"), n_seeds=1000)
    wrong = {"prediction": th.replace_curve(G, 8, 30, 1.0), "prediction_se": None}
    with pytest.raises(AssertionError):
        assert_matches(err, wrong)
