"""Regimes build the training sets they promise, with static shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_sim.simulator import rows as R
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.regimes.token_edit import disjoint_counts
from collapse_sim.simulator.worlds.regression import RegressionConfig, make_world

T, D, G = 12, 3, 5


@pytest.fixture(scope="module")
def world():
    return make_world(RegressionConfig(d=D, T=T))


def setup(world, cfg, seed=0):
    key = jax.random.key(seed)
    truth = world.init(key)
    real = world.real(jax.random.fold_in(key, 1), truth, 0)
    params = world.fit(key, real, None)
    regime = make_regime(cfg, world, G)
    return regime, truth, real, params, regime.init(jax.random.fold_in(key, 2), truth, real, params)


def test_replace_trains_on_synthetic_rows_only(world):
    regime, truth, real, params, state = setup(world, regime_config("replace"))
    train, _, _ = regime.step(jax.random.key(5), state, truth, params, 1)
    np.testing.assert_allclose(train["x"], real["x"])  # fixed design
    resid = train["y"] - train["x"] @ params["w"]
    assert not np.allclose(train["y"], real["y"])
    assert train["weight"].shape == (T,) and np.all(resid != 0)


@pytest.mark.parametrize("source", ["original", "fresh"])
def test_mix_has_exactly_round_pT_real_rows(world, source):
    cfg = regime_config("mix", real_fraction=0.25, real_source=source)
    regime, truth, real, params, state = setup(world, cfg)
    train, _, stats = regime.step(jax.random.key(5), state, truth, params, 1)
    assert float(stats["real_share"]) == pytest.approx(round(0.25 * T) / T)
    kept = np.isclose(np.asarray(train["y"]), np.asarray(real["y"]))
    if source == "original":
        assert kept.sum() == round(0.25 * T)
    else:
        assert kept.sum() == 0  # fresh real labels carry fresh noise


def test_mix_fixed_subset_keeps_the_same_rows(world):
    cfg = regime_config("mix", real_fraction=0.5, real_source="original", resample_real=False)
    regime, truth, real, params, state = setup(world, cfg)
    a, _, _ = regime.step(jax.random.key(5), state, truth, params, 1)
    b, _, _ = regime.step(jax.random.key(6), state, truth, params, 2)
    ka = np.isclose(a["y"], real["y"])
    kb = np.isclose(b["y"], real["y"])
    np.testing.assert_array_equal(ka, kb)


def test_accumulate_pool_grows_by_one_set_per_generation(world):
    """A world without sufficient statistics (world.summarize): the masked pool of rows."""
    plain = world._replace(summarize=None, fit_summary=None)
    regime, truth, real, params, pool = setup(plain, regime_config("accumulate"))
    assert pool["weight"].shape == ((G + 1) * T,)
    for g in range(1, 4):
        train, pool, stats = regime.step(jax.random.key(g), pool, truth, params, g)
        assert float(jnp.sum(train["weight"])) == (g + 1) * T
        assert float(stats["pool_rows"]) == (g + 1) * T
    np.testing.assert_allclose(pool["y"][:T], real["y"])


def test_accumulate_running_summary_fits_as_the_pool_does(world):
    """With world.summarize the state is the running sum of each set's statistics; its fit
    equals the fit of the pool of rows the plain regime builds from the same keys."""
    plain_regime, truth, real, params, pool = setup(world._replace(summarize=None, fit_summary=None),
                                                    regime_config("accumulate"))
    regime, _, _, _, summary = setup(world, regime_config("accumulate"))
    assert set(summary) == {"gram", "rhs", "n", "rows"}
    for g in range(1, 4):
        train_rows, pool, _ = plain_regime.step(jax.random.key(g), pool, truth, params, g)
        train, summary, stats = regime.step(jax.random.key(g), summary, truth, params, g)
        assert float(stats["pool_rows"]) == float(train["rows"]) == (g + 1) * T
        assert float(train["n"]) == (g + 1) * T
        np.testing.assert_allclose(train["gram"], world.summarize(train_rows)["gram"], rtol=1e-12)
        np.testing.assert_allclose(regime.fit(None, train, params)["w"], world.fit(None, train_rows, params)["w"],
                                   rtol=1e-10)


def test_accumulate_subsample_draws_distinct_present_rows(world):
    regime, truth, real, params, pool = setup(world, regime_config("accumulate_subsample"))
    key = jax.random.key(0)
    pool = R.write(pool, world.sample(key, truth, params, 1), T)
    scores = jax.random.uniform(key, pool["weight"].shape)
    sub = R.subsample(key, pool, T)
    assert sub["y"].shape == (T,)
    present = set(np.round(np.asarray(pool["y"][: 2 * T]), 12))
    drawn = np.round(np.asarray(sub["y"]), 12)
    assert set(drawn) <= present and len(set(drawn)) == T
    del scores


def test_disjoint_counts_shrink_geometrically_and_stay_within_T():
    c = disjoint_counts(8, 0.5, 12, 6)
    np.testing.assert_array_equal(c, [0, 8, 4, 0, 0, 0, 0])  # 8 + 4 uses all 12 rows, then nothing is left
    c = disjoint_counts(6, 0.5, 40, 5)
    np.testing.assert_array_equal(c, [0, 6, 3, 1, 0, 0])


def test_disjoint_edits_never_touch_a_row_twice(world):
    cfg = regime_config("token_edit", schedule="disjoint", k=6, eta=0.5)
    regime, truth, real, params, state = setup(world, cfg)
    touched = np.zeros(T, int)
    for g in range(1, G + 1):
        prev = np.asarray(state["current"]["y"])
        _, state, stats = regime.step(jax.random.key(g), state, truth, params, g)
        touched += ~np.isclose(np.asarray(state["current"]["y"]), prev)
    assert touched.max() == 1 and touched.sum() == 6 + 3 + 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="nope"), "regime='nope' is not known; allowed: replace"),
        (dict(name="mix", real_fraction=-0.1), r"real_fraction=-0.1 must be a finite number in \[0, 1\]"),
        (dict(name="mix", real_fraction=1.5), r"real_fraction=1.5"),
        (dict(name="mix", real_fraction=float("nan")), r"real_fraction=nan"),
        (dict(name="mix", real_source="web"), "real_source='web' is not known; allowed: fresh, original"),
        (dict(name="token_edit", q=1.2), r"regime.q=1.2 must be a finite number in \[0, 1\]"),
        (dict(name="token_edit", schedule="full", q=-5), r"regime.q=-5 must be a finite number in \[0, 1\]"),
        (dict(name="token_edit", schedule="disjoint", eta=1.0), r"eta=1.0 must be a finite number in \(0, 1\)"),
        (dict(name="token_edit", k=2.5), r"regime.k=2.5 must be a whole number >= 0"),
        (dict(name="token_edit", schedule="weekly"), "schedule='weekly' is not known"),
        (dict(name="token_edit", edit_source="web"), "edit_source='web' is not known"),
        (dict(name="replace", q=0.9), "regime 'replace' has no field q; its fields: curation"),
        (dict(name="mix", q=0.9), "regime 'mix' has no field q; its fields: real_fraction, real_source, resample_real"),
    ],
)
def test_bad_regime_values_fail_with_a_clear_message(kwargs, match):
    with pytest.raises(ValueError, match=match):
        regime_config(kwargs.pop("name"), **kwargs)


def test_a_config_of_one_regime_cannot_carry_another_name():
    from collapse_sim.simulator.regimes import mix

    with pytest.raises(ValueError, match="regime.name='replace' does not match the config class"):
        mix.Config(name="replace")


def test_numbers_leave_out_exactly_the_inert_fields():
    """The run hash covers ``numbers()``: a field the setting makes inert is not in it."""
    full = regime_config("token_edit", schedule="full")
    assert set(full.numbers()) == {"name", "edit_source", "schedule", "prior"}
    assert regime_config("token_edit", schedule="full", q=0.9).numbers() == full.numbers()
    assert "q" in regime_config("token_edit", schedule="bernoulli").numbers()
    assert set(regime_config("token_edit", schedule="disjoint").numbers()) >= {"k", "eta"}
    assert "resample_real" not in regime_config("mix", real_source="fresh").numbers()
    assert "resample_real" in regime_config("mix", real_source="original").numbers()


def test_k_larger_than_T_is_rejected_at_build(world):
    with pytest.raises(ValueError, match=r"regime.k=50 exceeds the 12 rows"):
        make_regime(regime_config("token_edit", schedule="fixed", k=50), world, G)


def test_generation0_prior_edits_with_the_first_model(world):
    cfg = regime_config("token_edit", schedule="full", prior="generation0")
    regime, truth, real, params0, state = setup(world, cfg)
    later = {**params0, "w": params0["w"] + 1.0}  # a different model n-1
    a, _, _ = regime.step(jax.random.key(5), state, truth, later, 1)
    b, _, _ = make_regime(regime_config("replace"), world, G).step(jax.random.key(5), (), truth, params0, 1)
    np.testing.assert_allclose(a["y"], b["y"])


def test_subsets_are_uniform_over_the_present_rows():
    """Every present row is drawn with probability m / n_present (4 binomial standard errors
    over 20,000 draws), absent rows never; the same for the mix regime's real-row mask."""
    K, n, m = 20_000, 30, 7
    weight = jnp.asarray(np.r_[np.ones(20), np.zeros(10)])  # 20 present rows, then 10 absent
    rows = {"i": jnp.arange(n), "weight": weight}
    keys = jax.random.split(jax.random.key(0), K)
    drawn = jax.vmap(lambda k: R.subsample(k, rows, m)["i"])(keys)
    freq = np.bincount(np.asarray(drawn).ravel(), minlength=n) / K
    p = m / 20
    assert np.all(np.abs(freq[:20] - p) < 4 * np.sqrt(p * (1 - p) / K)) and np.all(freq[20:] == 0)
    assert all(len(set(row)) == m for row in np.asarray(drawn[:200]).tolist())  # without replacement

    masks = np.asarray(jax.vmap(lambda k: R.random_subset_mask(k, n, m))(keys))
    assert np.all(masks.sum(1) == m)
    p = m / n
    assert np.all(np.abs(masks.mean(0) - p) < 4 * np.sqrt(p * (1 - p) / K))


def test_random_keys_are_distinct_positive_normal_floats():
    keys = np.asarray(R.random_keys_f32(jax.random.key(1), (100_000,)))
    assert keys.dtype == np.float32 and np.all(np.isfinite(keys))
    assert np.all(keys >= np.finfo(np.float32).tiny)  # no subnormals, which flush-to-zero would tie
    assert len(np.unique(keys)) >= 100_000 - 10  # ties: expected n²·2^-32 ≈ 2.3 here


@pytest.mark.parametrize("name", ["mix", "token_edit"])
def test_regimes_that_keep_real_rows_take_a_fixed_design_from_the_truth(world, name):
    """The fixed design's x and weights (World.fixed_fields) are not carried in the regime's state;
    the training set's x is the truth's array itself (what is computed from it alone is
    loop-invariant), and the rows are those a regime carrying them would build."""
    cfg = regime_config(name, **({"real_source": "original"} if name == "mix" else {}))
    regime, truth, real, params, state = setup(world, cfg)
    assert world.fixed_fields == ("x", "weight")
    kept = state["real"]
    assert set(kept) == {"y"}
    train, _, _ = regime.step(jax.random.key(5), state, truth, params, 1)
    assert train["x"] is truth["x"] and train["weight"] is truth["weight"]
    carried = make_regime(cfg, world._replace(fixed_fields=()), G)
    state_all = carried.init(jax.random.fold_in(jax.random.key(0), 2), truth, real, params)
    assert set(state_all["real"]) == {"x", "y", "weight"}
    train_all, _, _ = carried.step(jax.random.key(5), state_all, truth, params, 1)
    for k in ("x", "y", "weight"):
        np.testing.assert_array_equal(train[k], train_all[k])
