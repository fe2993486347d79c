"""Curated synthetic data through the engine (simulator/curation.py) against theory/curation.py.

Every check runs the jitted engine over vmapped seeds in float64 and compares the seeds' mean with
the closed form within 4 standard errors (measured over the seeds; tests/engine_mc.py).  Exact
results are tested as such; large-sample limits (top fraction as n → ∞, preference as K, n → ∞)
at large sizes, labelled as limits by the theory attached to the run (``curve_kinds``).
Axis letters: S seeds, G generations (G+1 records).
"""

import warnings
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from engine_mc import assert_mc_matches, simulate, z_scores

from collapse_sim.experiments.predictions import predict
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import gaussian, make_world
from collapse_sim.theory import curation as tc


def gauss(**kw):
    return gaussian.Config(**{"d": 1, "estimator": "mle", **kw})


def curated(regime="replace", **rule):
    return regime_config(regime, curation=rule)


def theory(world_cfg, regime_cfg, G):
    return predict(world_cfg, regime_cfg, SimpleNamespace(n_generations=G, seed=0, theory_designs=2))


@pytest.mark.parametrize("K", [2, 4])
def test_best_of_k_variance_is_exact(K):
    """E s_g² = s_0² (c v_K)^g (theory/curation.md §6), n = 20, linear reward; the kept rows' mean
    reward stays below Jensen's bound."""
    G, S = 6, 3000
    world_cfg, regime_cfg = gauss(M=20), curated(rule="best_of_k", K=K)
    rec, curves = simulate(world_cfg, regime_cfg, G, S, seed=K)
    out = theory(world_cfg, regime_cfg, G)
    assert out["curve_kinds"]["var"] == "exact" and out["curve_kinds"]["reward_mean_bound"] == "bound"
    np.testing.assert_allclose(curves["var"], 0.95 * tc.best_of_k_variance_curve(G, K, 20))
    assert_mc_matches(rec["var"], curves["var"], f"best-of-{K} E s_g^2")
    z = z_scores(rec["reward_mean"][:, 1:], curves["reward_mean_bound"][1:])
    assert np.all(z <= 4), f"reward above Jensen's bound: z = {z}"
    assert np.all(rec["accept_rate"][:, 1:] == 1 / K) and np.all(rec["train_rows"][:, 1:] == 20)
    # the selection raises the kept rows' reward over the proposals' every generation
    assert np.all(rec["reward_mean"][:, 1:].mean(0) > rec["reward_proposed"][:, 1:].mean(0))


def test_verifier_window_one_step_moments_and_acceptance():
    """Conditional on each seed's generation-0 model N(μ0, s0²): E μ1 = μ0 − s0 C,
    E s1² = ((N−1)/N) s0² θ and the acceptance rate Z (theory/curation.md §5), N = 200 kept rows."""
    S, M, c, h = 1000, 200, 0.5, 1.0
    rec, _ = simulate(gauss(M=M), curated(rule="verifier", centre=c, half_width=h, rounds=4), 1, S, seed=11)
    assert np.all(rec["shortfall"][:, 1] == 0) and np.all(rec["train_rows"][:, 1] == M)
    step = tc.window_step(rec["mean"][:, 0], rec["var"][:, 0], c, h, n_kept=M)
    for name, got, want in (("mean", rec["mean"][:, 1], step["mean"]), ("var", rec["var"][:, 1], step["var"]),
                            ("accept_rate", rec["accept_rate"][:, 1], step["acceptance"])):
        assert_mc_matches((got - want)[:, None], np.zeros(1), f"verifier one step, {name}")


def test_top_fraction_follows_its_large_n_limit():
    """Keep the top quarter of n/α proposals, n = 2000: the truncated-normal LIMIT (theory/curation.md §8)."""
    G, S = 3, 100
    world_cfg, regime_cfg = gauss(M=2000), curated(rule="top_fraction", keep_fraction=0.25)
    rec, curves = simulate(world_cfg, regime_cfg, G, S, seed=3)
    out = theory(world_cfg, regime_cfg, G)
    assert out["kind"] == "limit" and set(out["curve_kinds"].values()) == {"limit"}
    assert_mc_matches(rec["var"], curves["var"], "top-fraction variance (n → ∞ limit)")
    assert_mc_matches(rec["mean"], curves["mean"], "top-fraction mean (n → ∞ limit)")
    np.testing.assert_allclose(rec["accept_rate"][:, 1:], 0.25)


def test_preference_follows_its_large_k_tilt():
    """One of K = 256 proposals by softmax(β x), β = 0.5, n = 500: the tilt N(μ + β s², s²), the
    K → ∞, n → ∞ LIMIT (theory/curation.md §7)."""
    G, S = 2, 100
    world_cfg, regime_cfg = gauss(M=500), curated(rule="preference", K=256, beta=0.5)
    rec, curves = simulate(world_cfg, regime_cfg, G, S, seed=4)
    assert theory(world_cfg, regime_cfg, G)["curve_kinds"]["mean"] == "limit"
    assert_mc_matches(rec["mean"], curves["mean"], "preference mean (K → ∞ tilt)")
    assert_mc_matches(rec["var"], curves["var"], "preference variance (K → ∞ tilt)")


def test_a_verifier_that_falls_short_records_it():
    """Acceptance ≈ 0.14 with one round: the set keeps the accepted rows only, recorded."""
    with pytest.warns(UserWarning, match="will likely not fill a training set"):
        regime_cfg = curated(rule="verifier", centre=1.5, half_width=0.5, rounds=1)
        rec, _ = simulate(gauss(M=100), regime_cfg, 2, 8, seed=5)
    short, rows = rec["shortfall"][:, 1:], rec["train_rows"][:, 1:]
    assert np.all(short[:, 0] > 0.5)  # generation 1, from the real fit; later models move into the window
    np.testing.assert_allclose(rows, np.round(100 * (1 - short)))
    assert np.all(rows[short > 0] < 100) and np.all(rec["proposal_rounds"][:, 1:] == 1)


def test_without_curation_the_synthetic_rows_are_world_sample_bit_for_bit():
    world = make_world(gauss(M=30))
    regime = make_regime(regime_config("replace"), world, 2)
    key = jax.random.key(0)
    truth = world.init(key)
    params = world.fit(key, world.real(key, truth, 0), None)
    train, _, stats = regime.step(jax.random.key(7), regime.init(key, truth, None, params), truth, params, 1)
    k_sample = jax.random.split(jax.random.key(7), 3)[0]
    np.testing.assert_array_equal(train["x"], world.sample(k_sample, truth, params, 1)["x"])
    assert stats == {}
    assert "curation" not in regime_config("mix").numbers()
    assert regime_config("mix", curation={"rule": "best_of_k"}).numbers()["curation"] == {
        "rule": "best_of_k", "K": 4, "reward": "linear", "direction": 1.0}


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: regime_config("mix", curation={"rule": "best_of_k", "K": 0}), r"regime.curation.K=0 is not allowed"),
        (lambda: regime_config("replace", curation={"rule": "preference", "K": 2.5}), r"regime.curation.K=2.5"),
        (lambda: regime_config("replace", curation={"rule": "top_fraction", "keep_fraction": 0.0}),
         r"keep_fraction=0.0 is not allowed; allowed: a share of the proposals in \(0, 1\]"),
        (lambda: regime_config("replace", curation={"keep_fraction": 1.5}), r"keep_fraction=1.5"),
        (lambda: regime_config("replace", curation={"rule": "verifier", "half_width": 0.0}),
         r"half_width=0.0 is not allowed; allowed: a finite number > 0"),
        (lambda: regime_config("replace", curation={"rule": "verifier", "half_width": float("nan")}), r"half_width=nan"),
        (lambda: regime_config("replace", curation={"rule": "best_of_k", "direction": 0}), r"direction=0 is not allowed"),
        (lambda: regime_config("replace", curation={"rule": "best_of_k", "direction": [1, "x"]}), r"direction="),
        (lambda: regime_config("replace", curation={"rule": "sieve"}), r"regime.curation.rule='sieve' is not known; allowed: none, verifier"),
        (lambda: regime_config("replace", curation={"reward": "cubic"}), r"regime.curation.reward='cubic' is not known"),
        (lambda: regime_config("replace", curation={"Kay": 3}), r"regime.curation has no field Kay"),
        (lambda: regime_config("token_edit", curation={"rule": "best_of_k"}), r"regime 'token_edit' has no field curation"),
    ],
)
def test_bad_curation_settings_fail_naming_the_key(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    "world_cfg, rule, match",
    [
        (dict(name="regression", d=3, T=12), {"rule": "best_of_k"},
         r"rule=best_of_k needs a reward on its rows \(world.point or world.score\); world 'regression' has none"),
        (dict(name="kde"), {"rule": "verifier"}, r"rule=verifier needs a verifier \(world.verify\) or row points; world 'kde'"),
        (dict(name="gaussian", d=1), {"rule": "verifier", "centre": 50.0},
         r"accepts none of the 100 real rows of generation 0 on world 'gaussian'"),
        (dict(name="regression", d=3, T=12, sigma=0.0), {"rule": "verifier", "bias": 1.0},
         r"regime.curation.bias=1.0, gamma=0.0 accepts none"),
        (dict(name="gaussian", d=2), {"rule": "best_of_k", "direction": [1.0, 0.0, 2.0]},
         r"direction=\[1.0, 0.0, 2.0\] is not allowed; allowed: one number or a list of 2 numbers"),
    ],
)
def test_a_rule_the_world_cannot_serve_fails_at_start(world_cfg, rule, match):
    from collapse_sim.simulator.worlds import world_module

    cfg = dict(world_cfg)
    world = make_world(world_module(cfg.pop("name")).Config(**cfg))
    with warnings.catch_warnings(), pytest.raises(ValueError, match=match):
        warnings.simplefilter("ignore")
        make_regime(curated(**rule), world, 2)


def test_a_text_perplexity_band_below_one_is_refused():
    from collapse_sim.simulator.worlds import ngram

    world = ngram.make_world(ngram.Config(order=2, block_len=16, train_blocks=8, test_blocks=4,
                                          reservoir_blocks=32, inspect_blocks=2))
    with pytest.raises(ValueError, match=r"lies below 1, and a perplexity is >= 1"):
        make_regime(curated(rule="verifier", centre=0.5, half_width=0.2), world, 1)
