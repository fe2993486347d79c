"""Every curation rule runs on every world that has what it needs (simulator/curation.py): verifier,
best_of_k, preference and top_fraction on the mixture and categorical worlds (the Gaussian world's
rules are checked against theory in tests/test_curation_mc.py), the regression world's own verifier
(Yi et al., arXiv 2510.16657), and top_fraction and the verifier's perplexity band on the n-gram
text world; a verifier band that accepts none of the blocks the generation-0 n-gram model proposes
is refused at start, naming the band and the perplexities it would see.  The whole loop, from the
command line and from Python to the saved records: tests/test_experiments.py.

Each case builds the regime and runs one jitted generation step from the generation-0 model (tiny
sizes, one compile per case): the training set keeps the world's shape, every row is filled, the
statistics are finite, and the rule does what it says (a reward rule keeps rows of higher reward
than it proposes; the verifier keeps rows inside its window).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import categorical, gmm, make_world, ngram, regression

WORLDS = {
    "gmm": lambda: gmm.Config(d=1, K=2, true_K=2, separation=2.0, M=16, em_iters=3, kmeans_iters=1, tail_points=8),
    "categorical": lambda: categorical.Config(V=5, M=40),
    "regression": lambda: regression.Config(d=2, T=10),
    "ngram": lambda: ngram.Config(order=2, block_len=16, train_blocks=8, test_blocks=4, reservoir_blocks=32,
                                  inspect_blocks=2),
}
RULES = {
    "verifier": {"centre": 2.0, "half_width": 1.5},
    "best_of_k": {"K": 3},
    "preference": {"K": 3, "beta": 2.0},
    "top_fraction": {"keep_fraction": 0.5},
}
# Each case compiles one step (the n-gram's, sampling and scoring blocks, is the dearest).  The rules
# read a world only through ``sample`` and ``point`` / ``score``: best_of_k and preference share one
# draw, top_fraction and the verifier another, so the mixture runs one of each.
CASES = [(w, r) for w in ("categorical",) for r in RULES] + [
    ("gmm", "verifier"),
    ("gmm", "top_fraction"),
    ("regression", "verifier"),
    ("ngram", "top_fraction"),  # direction -1: the blocks of lowest perplexity (Liu et al., arXiv 2404.07503)
]
_WORLDS = {}


def world_of(name):
    """(world, truth, real rows, generation-0 model), built once per world.  The mixture and
    categorical worlds' truth has their fitted model's layout, so it stands in for the fit (no EM
    to compile); the others fit the real rows."""
    if name not in _WORLDS:
        world = make_world(WORLDS[name]())
        truth = world.init(jax.random.key(0))
        real = world.real(jax.random.key(1), truth, 0)
        params0 = truth if name in ("gmm", "categorical") else jax.jit(world.fit)(jax.random.key(2), real, None)
        _WORLDS[name] = (world, truth, real, params0)
    return _WORLDS[name]


def rule_fields(world_name, rule):
    fields = {"rule": rule, **RULES[rule]}
    if world_name == "regression":
        fields = {"rule": "verifier", "bias": 0.3, "gamma": 0.5}
    if world_name == "ngram":
        fields = {"rule": rule, "direction": -1.0} if rule == "top_fraction" else {"rule": rule, "centre": 40.0,
                                                                                     "half_width": 40.0}
    return fields


@pytest.mark.parametrize("world_name, rule", CASES, ids=[f"{w}-{r}" for w, r in CASES])
def test_the_rule_runs_one_generation_on_the_world(world_name, rule):
    world, truth, real, params0 = world_of(world_name)
    fields = rule_fields(world_name, rule)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # each case's verifier accepts enough rows to fill a set
        regime = make_regime(regime_config("replace", curation=fields), world, 1)
    state = regime.init(jax.random.key(3), truth, real, params0)
    train, _, stats = jax.jit(lambda k: regime.step(k, state, truth, params0, 1))(jax.random.key(4))
    assert jax.tree.map(jnp.shape, train) == jax.tree.map(jnp.shape, real)
    stats = {k: float(v) for k, v in stats.items()}
    assert all(np.isfinite(v) for v in stats.values()), stats
    n = float(np.sum(np.asarray(real["weight"]) > 0))
    assert stats["train_rows"] == n, stats  # every row filled
    if rule == "verifier":
        assert stats["shortfall"] == 0 and 0 < stats["accept_rate"] <= 1
        if world.point is not None:
            p = np.asarray(world.point(train))[np.asarray(train["weight"]) > 0]
            assert np.all(np.abs(p - fields["centre"]) <= fields["half_width"] + 1e-12)
        elif world.score is not None:
            ppl = np.asarray(world.score(params0, train))
            assert np.all(np.abs(ppl - fields["centre"]) <= fields["half_width"] * (1 + 1e-5))
    else:
        assert stats["reward_mean"] > stats["reward_proposed"], stats  # the kept rows beat the proposals
        assert stats["accept_rate"] == pytest.approx(1 / RULES[rule].get("K", 2))


def test_an_ngram_perplexity_band_is_checked_at_start_against_the_blocks_it_will_see():
    """The band [0, 80] accepts the generation-0 model's blocks and is built without a warning
    (its step is the top_fraction case's draw with a window in place of a ranking); [999, 1001]
    accepts none of them and is refused, naming the band and the perplexities it would see."""
    world, *_ = world_of("ngram")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_regime(regime_config("replace", curation=rule_fields("ngram", "verifier")), world, 1)
    with pytest.raises(ValueError, match=r"perplexity band \[999, 1001\] .* accepts none of the 8 blocks the "
                                         r"generation-0 model proposes on world 'ngram' \(their perplexities under it lie in"):
        make_regime(regime_config("replace", curation={"rule": "verifier", "centre": 1000.0, "half_width": 1.0}), world, 1)


def test_a_reward_rule_on_the_regression_world_points_to_its_verifier():
    world, *_ = world_of("regression")
    with pytest.raises(ValueError, match=r"rule=top_fraction needs a reward on its rows .* world 'regression' has none "
                                         r"\(its rows have no point or score; its own verifier serves rule=verifier\)"):
        make_regime(regime_config("replace", curation={"rule": "top_fraction"}), world, 1)
