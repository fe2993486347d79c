"""Batched symmetric-matrix decompositions that cannot hang XLA's CPU thread pool.

On the CPU, jaxlib's LAPACK kernels (jaxlib/cpu/lapack_kernels.cc) split a batch of
matrices over the intra-op thread pool once batch × cost reaches 2·10⁵ flop (cost
5n³ for syevd, the symmetric eigensolver) and then block their own thread until every piece
is done.  XLA runs independent operations of one program concurrently on that same
pool, so when as many such kernels start together as the pool has threads — two on a
2-core machine, e.g. a world's ``sample`` and ``evaluate`` both decomposing the fitted
covariance of 8,000 vmapped seeds — every thread waits for work that no thread is
free to run, and the program never returns.

The functions here are ``jnp.linalg``'s (``inverse_cholesky``: a Cholesky factorisation and
the triangular inverse of its factor, one kernel after the other), with one difference on the CPU: a batch too
large to run inline is cut into pieces below the threshold (with a factor-2 margin)
and the pieces run one after another under ``lax.map``, so LAPACK never hands work to
the pool.  They are ``custom_vmap`` functions, so the seeds' ``vmap`` (however nested)
is counted in the batch.  On GPU and TPU the call is left whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

# jaxlib's kMinWorkPerTask: a LAPACK batch below this many flop runs inline.
PARALLEL_FLOP = 200_000


def chunk_size(n: int, flop_per_matrix: Callable[[int], int]) -> int:
    """Largest batch of n×n matrices that LAPACK runs inline, with a factor-2 margin."""
    return max(1, PARALLEL_FLOP // (2 * max(1, flop_per_matrix(n))))


def _guarded(op: Callable, flop_per_matrix: Callable[[int], int]) -> Callable:
    @jax.custom_batching.custom_vmap
    def guarded(a_NxN):
        n = a_NxN.shape[-1]
        lead, chunk = a_NxN.shape[:-2], chunk_size(n, flop_per_matrix)
        count = math.prod(lead)
        if count <= chunk or jax.default_backend() != "cpu":
            return op(a_NxN)
        n_chunks = -(-count // chunk)
        # Identity matrices pad the last piece: every decomposition here is defined on them.
        pad = jnp.broadcast_to(jnp.eye(n, dtype=a_NxN.dtype), (n_chunks * chunk - count, n, n))
        pieces = jnp.concatenate([a_NxN.reshape(count, n, n), pad]).reshape(n_chunks, chunk, n, n)
        out = jax.lax.map(guarded, pieces)  # each piece re-enters ``guarded``: outer vmaps are chunked too

        def unchunk(o):
            return o.reshape(n_chunks * chunk, *o.shape[2:])[:count].reshape(*lead, *o.shape[2:])

        return jax.tree.map(unchunk, out)

    @guarded.def_vmap
    def _batched(axis_size, in_batched, a_BxNxN):
        out = guarded(a_BxNxN)  # the vmapped axis (moved to 0) is one more leading batch axis
        return out, jax.tree.map(lambda _: True, out)

    return guarded


def _inverse_cholesky(a_NxN):
    """L⁻¹ for the Cholesky factor L of a (a = L Lᵀ, so a⁻¹ = L⁻ᵀ L⁻¹); NaN where a is not
    numerically positive definite."""
    l_NxN = jnp.linalg.cholesky(a_NxN)
    eye = jnp.broadcast_to(jnp.eye(a_NxN.shape[-1], dtype=a_NxN.dtype), a_NxN.shape)
    return jax.lax.linalg.triangular_solve(l_NxN, eye, left_side=True, lower=True)


eigh = _guarded(jnp.linalg.eigh, lambda n: 5 * n**3)
eigvalsh = _guarded(jnp.linalg.eigvalsh, lambda n: 5 * n**3)
inverse_cholesky = _guarded(_inverse_cholesky, lambda n: n**3)  # potrf n³/3 + trsm n³/3, rounded up
