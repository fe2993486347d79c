"""Row tables: the data sets that regimes move between worlds.

A row table is a dict of arrays sharing a leading row axis, with a ``"weight"``
entry (rows,) where 0 marks an absent row.  Everything here is pure and keeps
static shapes, so it runs under jit, vmap and scan.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def n_rows(rows: dict) -> int:
    return rows["weight"].shape[0]


def take(rows: dict, idx: jax.Array) -> dict:
    """Rows at integer positions ``idx``."""
    return jax.tree.map(lambda a: a[idx], rows)


def where(mask: jax.Array, on_true: dict, on_false: dict) -> dict:
    """Row-wise select: row i from ``on_true`` where ``mask[i]``, else from ``on_false``."""

    def pick(a, b):
        if a is b:  # one array on both sides (a fixed design's x): nothing to pick, and the result
            return a  # stays the array itself, so what is computed from it alone stays loop-invariant
        m = mask.reshape(mask.shape + (1,) * (a.ndim - 1))
        return jnp.where(m, a, b)

    return jax.tree.map(pick, on_true, on_false)


def without_fixed(rows: dict, world) -> dict:
    """``rows`` less the fields the world takes from the truth (``World.fixed_fields``): what a
    regime that keeps rows needs to carry."""
    return {k: v for k, v in rows.items() if k not in world.fixed_fields}


def with_fixed(rows: dict, world, truth) -> dict:
    """Rows kept by :func:`without_fixed`, whole again: the fixed fields are the truth's arrays."""
    return {**rows, **{k: truth[k] for k in world.fixed_fields}}


def empty_pool(template: dict, capacity: int) -> dict:
    """A pool of ``capacity`` absent rows (weight 0) shaped like ``template``'s rows."""
    return jax.tree.map(lambda a: jnp.zeros((capacity,) + a.shape[1:], a.dtype), template)


def write(pool: dict, rows: dict, start) -> dict:
    """Write ``rows`` into ``pool`` from row ``start`` on (``start`` may be traced)."""

    def put(p, r):
        return jax.lax.dynamic_update_slice_in_dim(p, r.astype(p.dtype), start, axis=0)

    return jax.tree.map(put, pool, rows)


# Largest n whose subset mask is read off pairwise comparisons (n² of them) instead of a sort.
RANK_MAX_N = 128


def stable_ranks(keys_N: jax.Array) -> jax.Array:
    """Position of each entry in a stable ascending sort of ``keys_N`` (ties by index), by n²
    comparisons: cheaper than XLA's CPU sort for small n."""
    i = jnp.arange(keys_N.shape[0])
    before = (keys_N[None, :] < keys_N[:, None]) | ((keys_N[None, :] == keys_N[:, None]) & (i[None, :] < i[:, None]))
    return jnp.sum(before, axis=1)


def smallest_stable(keys_N: jax.Array, m) -> jax.Array:
    """The mask of the entries whose stable ascending rank (ties by index) is below ``m``, the
    same as ``stable_ranks(keys_N) < m``, from one sort of the keys: the m-th smallest key t,
    then every key below t and the first (m − #below) of those equal to t."""
    t = jnp.sort(keys_N)[jnp.clip(m - 1, 0, keys_N.shape[0] - 1)]
    below, tie = keys_N < t, keys_N == t
    return (below | (tie & (jnp.cumsum(tie) <= m - jnp.sum(below)))) & (m > 0)


PADDED_MAX_N = 1625  # the largest n whose permutation is one round of its shuffle: n³ < 2³² − 1


def random_subset_mask(key: jax.Array, n: int, m, live=None) -> jax.Array:
    """A boolean (n,) mask with exactly ``m`` True entries at uniformly random positions: the
    first ``m`` of a random permutation (``m`` may be traced).  ``live`` (a padded grid's
    count of rows, traced): the mask of a subset of the first ``live`` entries, the same as
    the mask of ``n = live`` followed by False (the entries past ``live`` get the largest key).

    ``jax.random.permutation(key, n)`` is, for n <= 2^(32/3) (one round of its shuffle), a stable
    sort of arange(n) by 32-bit keys drawn with ``split(key)[1]``; entry j is among the first m
    exactly when its key's stable rank is below m, so for such n the ranks give the same mask
    without sorting the permutation and scattering it (by n² comparisons up to RANK_MAX_N, by
    :func:`smallest_stable` above)."""
    one_round = math.ceil(3 * math.log(max(1, n)) / math.log(2**32 - 1)) <= 1
    if live is not None and not one_round:
        raise ValueError(f"a padded subset mask needs n <= {PADDED_MAX_N} rows (one round of the shuffle); got {n}")
    if one_round:
        bits = jax.random.bits(jax.random.split(key)[1], (n,), jnp.uint32)
        if live is not None:
            bits = jnp.where(jnp.arange(n) < live, bits, jnp.uint32(2**32 - 1))
        return stable_ranks(bits) < m if n <= RANK_MAX_N else smallest_stable(bits, m)
    return jnp.zeros((n,), bool).at[jax.random.permutation(key, n)].set(jnp.arange(n) < m)


# Normal (not subnormal, not infinite) float32 bit patterns, in the order of their values.
_F32_NORMAL_LO, _F32_NORMAL_HI = 0x00800000, 0x7F800000


def random_keys_f32(key: jax.Array, shape) -> jax.Array:
    """i.i.d. float32 sort keys with about 2^31 distinct values (uniform 32-bit integers mapped
    onto the positive normal floats, whose order is their bits' order), so two of n keys tie
    with probability below n²·2^-31.  XLA's CPU ``top_k`` is several times faster on float32
    than on float64 or integers; which continuous law the keys follow does not matter for a
    uniformly random choice, only that they are i.i.d. and (almost surely) distinct."""
    bits = jax.random.bits(key, shape, jnp.uint32) % jnp.uint32(_F32_NORMAL_HI - _F32_NORMAL_LO)
    return jax.lax.bitcast_convert_type(bits + jnp.uint32(_F32_NORMAL_LO), jnp.float32)


def subsample(key: jax.Array, rows: dict, m: int) -> dict:
    """``m`` rows drawn uniformly without replacement among the rows of positive weight.

    Random top-k (:func:`random_keys_f32`) with absent rows scored -inf.  Drawn rows get
    weight 1; if fewer than ``m`` rows are present, the remaining slots are absent rows and
    keep weight 0.
    """
    scores = jnp.where(rows["weight"] > 0, random_keys_f32(key, rows["weight"].shape), -jnp.inf)
    _, idx = jax.lax.top_k(scores, m)
    out = take(rows, idx)
    out["weight"] = (out["weight"] > 0).astype(out["weight"].dtype)
    return out
