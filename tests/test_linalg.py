"""simulator/linalg.py: the same numbers as jnp.linalg, and no LAPACK call in any world's
compiled run that is large enough for jaxlib to hand to the thread pool (the cause of a
hang on 2-core machines, see the module docstring).

The check reads the lowered program, so it is deterministic and runs nothing large.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_sim.simulator import linalg
from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import gaussian, gmm, make_world, regression

LAPACK_CALL = re.compile(r"custom_call @lapack_(\w+)\(.*: \(tensor<([0-9x]+)x[fc]\d+>")


def lapack_calls(lowered_text: str) -> list[tuple[str, int, int]]:
    """(kernel, matrices in the batch, n) of every LAPACK custom call in a lowered program."""
    calls = []
    for kernel, shape in LAPACK_CALL.findall(lowered_text):
        dims = [int(s) for s in shape.split("x")]
        calls.append((kernel, int(np.prod(dims[:-2])), dims[-1]))
    return calls


# flop per matrix that the guard counts for each kernel (linalg.py: syevd 5n³; potrf and trsm,
# which inverse_cholesky runs one after the other, n³ together)
KERNEL_FLOP = {"syevd": lambda n: 5 * n**3, "potrf": lambda n: n**3, "trsm": lambda n: n**3}


def runs_inline(call) -> bool:
    kernel, batch, n = call
    known = [k for k in KERNEL_FLOP if k in kernel]
    assert known, f"a LAPACK kernel the guard does not know: {kernel}"
    return batch * KERNEL_FLOP[known[0]](n) < linalg.PARALLEL_FLOP


def make_spd(key, shape):
    a = jax.random.normal(key, shape)
    return a @ jnp.swapaxes(a, -1, -2) + 0.1 * jnp.eye(shape[-1])


@pytest.mark.parametrize("n", [1, 3, 12])
def test_same_numbers_as_jnp_linalg_however_vmapped(n):
    a = make_spd(jax.random.key(n), (5, 333, n, n))  # 1,665 matrices: several pieces for n >= 3
    ref_vals, ref_vecs = jnp.linalg.eigh(a)
    for f in (linalg.eigh, jax.vmap(linalg.eigh), jax.vmap(jax.vmap(linalg.eigh))):
        vals, vecs = jax.jit(f)(a)
        np.testing.assert_array_equal(vals, ref_vals)
        np.testing.assert_array_equal(vecs, ref_vecs)
    np.testing.assert_array_equal(jax.jit(jax.vmap(linalg.eigvalsh))(a), ref_vals)
    np.testing.assert_array_equal(linalg.eigvalsh(a[0, 0]), ref_vals[0, 0])  # no batch at all
    ref_inv = linalg._inverse_cholesky(a)
    np.testing.assert_array_equal(jax.jit(jax.vmap(jax.vmap(linalg.inverse_cholesky)))(a), ref_inv)
    np.testing.assert_allclose(ref_inv @ a @ jnp.swapaxes(ref_inv, -1, -2), jnp.broadcast_to(jnp.eye(n), a.shape),
                               atol=1e-8)  # L⁻¹ a L⁻ᵀ = I


def test_the_check_sees_an_unguarded_call():
    a = make_spd(jax.random.key(0), (8000, 3, 3))
    raw = lapack_calls(jax.jit(jnp.linalg.eigh).lower(a).as_text())
    guarded = lapack_calls(jax.jit(jax.vmap(linalg.eigh)).lower(a).as_text())
    assert raw == [("dsyevd_ffi", 8000, 3)] and not runs_inline(raw[0])
    assert guarded and all(map(runs_inline, guarded))
    assert guarded[0][1] == linalg.chunk_size(3, lambda n: 5 * n**3)


@pytest.mark.parametrize(
    "world_cfg",
    [
        gaussian.Config(d=3, M=10, estimator="mle", spectrum="power_law"),
        gmm.Config(d=2, K=3, M=50, em_iters=3, kmeans_iters=2),
        regression.Config(d=10, T=40),
        regression.Config(d=10, T=40, record_gram=True),
    ],
    ids=lambda c: c.name,
)
@pytest.mark.parametrize("regime", ["replace", "accumulate"])
def test_no_world_hands_lapack_work_to_the_thread_pool(world_cfg, regime):
    world = make_world(world_cfg)
    run = make_simulate(world, make_regime(regime_config(regime), world, 3), 3)
    calls = lapack_calls(run.lower(seed_keys(jax.random.key(0), range(8000))).as_text())
    assert calls, "the world no longer decomposes a matrix: this check would pass vacuously"
    assert all(map(runs_inline, calls)), calls
