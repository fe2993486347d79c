"""The generation loop: shapes, determinism, batching invariance, no retrace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_sim.simulator.loop import make_generation, make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds.regression import RegressionConfig, make_world

G = 4
REGIMES = [
    regime_config("replace"),
    regime_config("mix", real_fraction=0.25, real_source="fresh"),
    regime_config("mix", real_fraction=0.25, real_source="original", resample_real=False),
    regime_config("accumulate"),
    regime_config("accumulate_subsample"),
    regime_config("token_edit", schedule="bernoulli", q=0.3),
    regime_config("token_edit", schedule="disjoint", k=6, eta=0.5),
]


def build(regime_cfg, design="fixed"):
    world = make_world(RegressionConfig(d=3, T=12, design=design))
    return make_simulate(world, make_regime(regime_cfg, world, G), G), world


@pytest.mark.parametrize("regime_cfg", REGIMES, ids=lambda r: "-".join(map(str, r.numbers().values())))
def test_records_have_static_shape_and_are_finite(regime_cfg):
    simulate, _ = build(regime_cfg)
    rec = simulate(seed_keys(jax.random.key(0), range(5)))
    assert rec["test_error"].shape == (5, G + 1)
    for name, a in rec.items():
        assert a.shape[:2] == (5, G + 1), name
        assert np.all(np.isfinite(a)), name


@pytest.mark.parametrize("regime_cfg", [REGIMES[1], REGIMES[4]], ids=lambda r: r.name)
def test_batched_seeds_equal_seeds_run_alone(regime_cfg):
    simulate, _ = build(regime_cfg)
    root = jax.random.key(3)
    together = simulate(seed_keys(root, range(8)))["test_error"]
    alone = np.concatenate([simulate(seed_keys(root, [s]))["test_error"] for s in range(8)])
    np.testing.assert_allclose(together, alone, rtol=1e-10, atol=1e-14)


def test_new_key_new_result_same_key_same_result():
    simulate, _ = build(regime_config("replace"))
    a = simulate(seed_keys(jax.random.key(1), range(4)))["test_error"]
    b = simulate(seed_keys(jax.random.key(1), range(4)))["test_error"]
    c = simulate(seed_keys(jax.random.key(2), range(4)))["test_error"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:, 1:], c[:, 1:])


def test_whole_run_compiles_once_across_new_keys():
    simulate, _ = build(regime_config("accumulate"))
    simulate(seed_keys(jax.random.key(0), range(4)))
    size = simulate._cache_size()
    for seed in (1, 2, 3):
        simulate(seed_keys(jax.random.key(seed), range(4)))
    assert simulate._cache_size() == size == 1


def test_jit_equals_no_jit():
    world = make_world(RegressionConfig(d=3, T=12))
    regime = make_regime(regime_config("accumulate_subsample"), world, G)
    gen = make_generation(world, regime)
    key = jax.random.fold_in(jax.random.key(0), 0)
    gens = jnp.arange(1, G + 1)
    with jax.disable_jit():
        carry, r0 = gen.first(key)
        _, rs = gen.chunk(carry, key, gens)
        eager = np.concatenate([[r0["test_error"]], rs["test_error"]])
    simulate = make_simulate(world, regime, G)
    jitted = simulate(key[None])["test_error"][0]
    np.testing.assert_allclose(eager, jitted, rtol=1e-9)


def test_chunked_generations_equal_one_scan():
    world = make_world(RegressionConfig(d=3, T=12))
    regime = make_regime(regime_config("mix", real_fraction=0.5, real_source="fresh"), world, G)
    gen = make_generation(world, regime)
    key = jax.random.key(7)
    carry, _ = gen.first(key)
    _, whole = gen.chunk(carry, key, jnp.arange(1, G + 1))
    c, part1 = gen.chunk(carry, key, jnp.arange(1, 3))
    _, part2 = gen.chunk(c, key, jnp.arange(3, G + 1))
    np.testing.assert_array_equal(whole["test_error"], np.concatenate([part1["test_error"], part2["test_error"]]))


def test_full_token_edit_reproduces_replace_exactly():
    keys = seed_keys(jax.random.key(0), range(6))
    replace, _ = build(regime_config("replace"))
    full, _ = build(regime_config("token_edit", schedule="full"))
    np.testing.assert_array_equal(replace(keys)["test_error"], full(keys)["test_error"])


def test_generation_zero_is_the_same_real_fit_in_every_regime():
    keys = seed_keys(jax.random.key(0), range(6))
    first = [build(r)[0](keys)["test_error"][:, 0] for r in (REGIMES[0], REGIMES[3], REGIMES[5])]
    for f in first[1:]:
        np.testing.assert_array_equal(first[0], f)
