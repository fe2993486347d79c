"""Categorical world: the engine's Monte Carlo against theory/categorical.py (Shumailov et al.
2024 §4.1; theory/derivations.md §14), every regime, smoothing, bad input.

One jitted run (4000 seeds, M = 20, 400 generations, all absorbed by the end) feeds every
check: the one-generation loss (1 - q)^M, the exact expected support / entropy /
heterozygosity / absorption / tail-loss curves, fixation probabilities p_k, and the
expected absorption time.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from engine_mc import assert_every_regime_runs, assert_mc_matches, simulate

from collapse_sim.simulator.worlds import categorical
from collapse_sim.theory import categorical as tc

P = [0.5, 0.3, 0.15, 0.05]
M, G, S = 20, 400, 4_000


@pytest.fixture(scope="module")
def chain():
    cfg = categorical.Config(V=4, M=M, dist="given", probs=P, record_probs=True, tail_quantile=0.5)
    return simulate(cfg, "replace", G=G, S=S)


def test_an_outcome_of_probability_q_is_lost_in_one_generation_with_probability_1_minus_q_to_the_M(chain):
    rec, _ = chain
    probs_SxGxV = rec["probs"]
    lost_V = (probs_SxGxV[:, 0] == 0).mean(0)
    expect_V = tc.loss_probability(np.array(P), M)
    se_V = np.sqrt(expect_V * (1 - expect_V) / S + 1.0 / S**2)
    assert np.all(np.abs(lost_V - expect_V) <= 4 * se_V), (lost_V, expect_V)
    # Later generations, conditionally: P(lost at g | q_{g-1}) = (1 - q_{g-1})^M, so the per-seed
    # sum over g of 1{lost at g} - (1 - q_{g-1})^M 1{q_{g-1} > 0} has mean 0 (martingale differences).
    prev, now = probs_SxGxV[:, :-1], probs_SxGxV[:, 1:]
    d_SxV = (((now == 0) & (prev > 0)) - (1 - prev) ** M * (prev > 0)).sum(1)
    z_V = d_SxV.mean(0) / (d_SxV.std(0, ddof=1) / np.sqrt(S))
    assert np.all(np.abs(z_V) <= 4), z_V
    assert np.all(np.diff((probs_SxGxV == 0).astype(int), axis=1) >= 0)  # once lost, never back


def test_exact_curves_match_monte_carlo(chain):
    rec, curves = chain
    for name in ("support", "entropy", "heterozygosity", "absorbed", "tail_lost", "lost_mass", "tail_mass"):
        assert_mc_matches(rec[name], curves[name], name, resolution=1.0 / S)
    assert curves["tail_mass"][0] == pytest.approx(0.05 + 0.15)  # the outcomes below the median probability


def test_fixation_probabilities_equal_the_initial_probabilities(chain):
    rec, _ = chain
    assert rec["absorbed"][:, -1].all(), "some seeds are not absorbed: raise G"
    fixed_V = (rec["probs"][:, -1] == 1).mean(0)
    se_V = np.sqrt(np.array(P) * (1 - np.array(P)) / S)
    assert np.all(np.abs(fixed_V - tc.fixation_probabilities(P)) <= 4 * se_V), fixed_V


def test_absorption_time_exact_and_wright_fisher_approximation(chain):
    """Fits until a point mass = first absorbed generation + 1 (generation 0 is the first fit).
    The MC mean is checked against the exact value within 4 SE.  The Wright–Fisher diffusion value
    -2M Σ(1-p)ln(1-p) is an APPROXIMATION (error O(log M / M), theory/categorical.py): it is checked
    against the exact value within 10% at M = 20, not against the Monte Carlo."""
    rec, _ = chain
    fits_S = rec["absorbed"].argmax(1) + 1.0
    exact = tc.absorption_time_exact(P, M)
    assert_mc_matches(fits_S[:, None], np.array([exact]), "absorption time")
    approx = tc.absorption_time_wright_fisher(P, M)
    assert abs(approx / exact - 1) < 0.10, (approx, exact)


def test_every_regime_runs_and_accumulate_never_loses_an_outcome_seen_in_real_data():
    cfg = categorical.Config(V=8, M=6, dist="zipf")
    acc = assert_every_regime_runs(cfg, G=4)["accumulate"]
    # the real rows stay in the pool, so an outcome present at generation 0 keeps a positive count
    np.testing.assert_array_equal(acc["support"], acc["support"][0])


def test_smoothing_keeps_every_outcome_alive():
    world = categorical.make_world(categorical.Config(V=5, M=4, smoothing=0.5))
    params = world.fit(None, {"x": jnp.array([0, 0, 1, 1], jnp.int32), "weight": jnp.ones(4)}, None)
    np.testing.assert_allclose(params["p"], np.array([2.5, 2.5, 0.5, 0.5, 0.5]) / 6.5)
    assert int(world.evaluate(world.init(None), params)["support"]) == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(V=1), r"world.V=1 is too small a vocabulary; allowed: a whole number of outcomes >= 2"),
        (dict(V=3, dist="given", probs=[0.5, 0.3, 0.1]), r"world.probs sums to 0.9; a given distribution must sum to 1"),
        (dict(V=2, dist="given", probs=[0.5, 0.3, 0.2]), r"world.probs has 3 entries but world.V=2"),
        (dict(V=2, dist="given", probs=[1.0, 0.0]), r"world.probs\[1\]=0.0 is not allowed"),
        (dict(V=3, dist="given"), r"world.dist=given needs world.probs"),
        (dict(dist="pareto"), r"world.dist='pareto' is not known; allowed: uniform, zipf, given"),
        (dict(M=0), r"world.M=0 must be a whole number of samples >= 1"),
        (dict(tail_quantile=0.0), r"world.tail_quantile=0.0 must lie in \(0, 1\]"),
    ],
)
def test_bad_input_fails_at_start_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        categorical.Config(**kwargs)


@pytest.mark.parametrize("curated", [False, True])
def test_accumulate_by_running_counts_equals_the_pool_bit_for_bit(curated):
    """accumulate keeps the running sums of the counts (world.summarize); counts of 0/1 weights are
    whole numbers, so every record equals the pool's fit exactly, curated or not."""
    import jax

    from collapse_sim.simulator.loop import make_simulate, seed_keys
    from collapse_sim.simulator.regimes import config as regime_config, make_regime

    cfg = categorical.Config(V=12, M_schedule=[30, 20, 25], smoothing=0.5)
    world = categorical.make_world(cfg)
    pooled = world._replace(summarize=None, fit_summary=None)
    kwargs = {"curation": {"rule": "top_fraction", "keep_fraction": 0.5}} if curated else {}
    rcfg = regime_config("accumulate", **kwargs)
    keys = seed_keys(jax.random.key(0), range(8))
    a = make_simulate(world, make_regime(rcfg, world, 5), 5)(keys)
    b = make_simulate(pooled, make_regime(rcfg, pooled, 5), 5)(keys)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
