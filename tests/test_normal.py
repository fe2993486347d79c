"""simulator/normal.py: the same numbers as jax.random.normal, to the error of XLA's erf_inv.

Tolerance.  XLA's float64 erf_inv takes w = -log1p(-x·x); x·x < 1 carries a rounding error up to 2^-54, so
its w is off by up to 2^-54/(1 - x²), and since |d ln erfinv/dw| < 1/2 its result by a relative
2^-55/(1 - x²) at most, plus a few ulps of polynomial rounding.  Ours takes (1 - x)(1 + x), exact to 1.5 ulp
(relative error ≤ 1e-15 against scipy, measured below).  So ours and XLA's agree to
rtol(x) = 2^-54/(1 - x²) + 1e-14 per number: 4e-14 at |x| = 0.9, 3e-11 near |x| = 1 - 1e-6.  No atol is
needed: both are x·P(w) with x exact, so both vanish exactly at x = 0 and are relative-accurate near it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from collapse_sim.simulator import normal as nrm

LO = np.nextafter(-1.0, 0.0)
EXTREMES = np.array([LO, -0.999999, -0.5, -1e-300, 0.0, 1e-300, np.finfo(np.float64).tiny, 1e-8, 0.5, 0.9990,
                     0.9991, 1 - 1e-7, 0.999999, 1 - 2.0**-40, np.nextafter(1.0, 0.0)])


def xla_tolerance(u):
    return 2.0**-54 / ((1 - u) * (1 + u)) + 1e-14


def uniforms(key, shape):
    return jax.random.uniform(key, shape, jnp.float64, LO, 1.0)


def assert_close(ours, ref, rtol):
    ours, ref = np.asarray(ours), np.asarray(ref)
    bad = np.abs(ours - ref) > rtol * np.abs(ref)
    assert not bad.any(), f"{bad.sum()} numbers differ, e.g. {ours[bad][:3]} vs {ref[bad][:3]}"


def test_float64_draws_equal_jax():
    key = jax.random.key(0)
    shape = (100, 1000)
    ours, ref = nrm.normal(key, shape, jnp.float64), jax.random.normal(key, shape, jnp.float64)
    assert ours.shape == shape and ours.dtype == jnp.float64
    assert_close(ours, ref, xla_tolerance(np.asarray(uniforms(key, shape))))
    central = np.abs(np.asarray(ref)) < 3.0  # |u| < 0.9973: rtol(u) < 1.2e-14 there
    assert np.max(np.abs(ours - ref)[central] / np.abs(ref)[central]) < 1.2e-14
    assert jnp.array_equal(nrm.normal(key, shape), ours)  # dtype None is float64 under x64


def test_erfinv_at_extreme_uniforms():
    x = jnp.asarray(EXTREMES)
    ours = nrm.erfinv(x)
    assert_close(ours, jax.lax.erf_inv(x), xla_tolerance(EXTREMES))
    assert np.all(np.isfinite(ours)) and np.array_equal(np.signbit(ours), np.signbit(EXTREMES))
    assert nrm.erfinv(jnp.asarray(0.0)) == 0.0
    edges = nrm.erfinv(jnp.array([-1.0, 1.0, 1.5, -2.0, np.nan]))
    assert list(np.asarray(edges[:2])) == [-np.inf, np.inf] and np.isnan(edges[2:]).all()


def test_more_accurate_than_xla():
    scipy_special = pytest.importorskip("scipy.special")
    x = np.concatenate([np.asarray(uniforms(jax.random.key(1), (100_000,))), EXTREMES])
    ref = scipy_special.erfinv(x)
    normal = np.abs(ref) >= np.finfo(np.float64).tiny  # XLA's CPU flushes subnormal results to zero
    errors = {}
    for name, f in (("ours", nrm.erfinv), ("xla", jax.jit(jax.lax.erf_inv))):
        y = np.asarray(f(jnp.asarray(x)))
        errors[name] = np.max(np.abs(y - ref)[normal] / np.abs(ref)[normal])
    assert errors["ours"] < 2e-15, errors
    assert errors["ours"] <= errors["xla"], errors


def test_log_within_one_ulp():
    rng = np.random.default_rng(0)
    exponents = rng.integers(-1022, 1024, 20_000)
    y = np.concatenate([
        np.ldexp(rng.uniform(1.0, 2.0, exponents.size), exponents),  # every binade of normal floats
        rng.uniform(0.5, 2.0, 20_000),
        1.0 - np.arange(1, 2000) * 2.0**-53, 1.0 + np.arange(0, 2000) * 2.0**-52,  # next to 1
        np.array([np.finfo(np.float64).tiny, np.finfo(np.float64).max, np.sqrt(0.5), np.sqrt(2.0)]),
    ])
    u = np.concatenate([np.asarray(uniforms(jax.random.key(2), (20_000,))), EXTREMES])
    y = np.concatenate([y, (1 - u) * (1 + u)])  # what erfinv feeds it, down to 2^-52
    ours, ref = np.asarray(jax.jit(nrm.log)(jnp.asarray(y))), np.log(y)
    ulp = np.spacing(np.abs(ref))
    assert np.max(np.abs(ours - ref) / ulp) <= 1.0
    assert nrm.log(jnp.asarray(1.0)) == 0.0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16, jnp.complex64])
def test_other_dtypes_are_jax_normal(dtype):
    key = jax.random.key(3)
    ours = nrm.normal(key, (7, 11), dtype)
    assert ours.dtype == dtype and jnp.array_equal(ours, jax.random.normal(key, (7, 11), dtype))


def test_vmap_jit_and_keys():
    keys = jax.random.split(jax.random.key(4), 3)
    draw = lambda k: nrm.normal(k, (300,), jnp.float64)
    batched = jax.jit(jax.vmap(draw))(keys)
    assert jnp.array_equal(batched, jnp.stack([draw(k) for k in keys]))
    assert jnp.array_equal(draw(keys[0]), draw(keys[0]))  # deterministic
    assert not jnp.any(batched[0] == batched[1])  # new key, new numbers
    raw = jax.random.PRNGKey(5)
    ref = jax.random.normal(raw, (300,), jnp.float64)
    assert_close(nrm.normal(raw, (300,), jnp.float64), ref, xla_tolerance(np.asarray(uniforms(raw, (300,)))))


def test_bad_dtype_is_jax_error():
    with pytest.raises(ValueError, match="int32"):
        nrm.normal(jax.random.key(0), (3,), jnp.int32)


def test_inside_xla_erfinv_the_draws_are_jax_random_normal_itself():
    """Programs compiled with LLVM's optimisations off trace normal() as jax.random.normal."""
    key = jax.random.key(11)
    with nrm.xla_erfinv():
        inside = nrm.normal(key, (500,), jnp.float64)
    assert jnp.array_equal(inside, jax.random.normal(key, (500,), jnp.float64))
    assert not jnp.array_equal(nrm.normal(key, (500,), jnp.float64), inside)  # outside: the faster erfinv
