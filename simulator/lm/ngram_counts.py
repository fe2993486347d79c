"""Count tables of the order-k n-gram model (simulator/lm/ngram.py), static shapes, pure JAX.

Axis letters: N blocks, L positions in a block, V vocabulary, R context rows of a
dense table, E entries of a sparse table.

For each order j = 1..k, ``fit`` keeps the (weighted) counts c_j(h, w) of every
j-gram (h, w) lying wholly inside one block, h being its j - 1 context tokens,
with c_j(h) = sum_w c_j(h, w) and D_j(h) = #{w : c_j(h, w) > 0}: all that any
smoothing of simulator/lm/ngram.py reads (Chen & Goodman 1999, "An empirical study
of smoothing techniques for language modeling", section 2).

Count tables (``NGramParams``: one table per order, static shapes):

- Dense, when V^j <= ``max_dense`` (default 2^16: orders 1 and 2 for bytes):
  counts (V^(j-1), V) plus row totals and distinct counts. Exact; lookups are
  gathers.
- Sparse, for higher orders: the distinct j-grams of the training blocks as
  sorted int32 codes ``h_code * V + w`` with their counts and their context's
  total and distinct count. Capacity
  E = N (L - j + 1), the number of j-gram windows, so it never overflows and
  is never larger than the data. Built by a sort and ``.at[].add``; lookups
  are binary searches. Exact while V^(j-1) <= ``n_buckets`` (default: the
  largest value with n_buckets * V < 2^31, 8 388 607 for bytes, so orders
  <= 3 are exact). Longer contexts are hashed into ``n_buckets`` codes.
  Collision behaviour: contexts sharing a code are merged (the model uses
  their pooled continuation counts for both); the next token is never hashed,
  so every conditional distribution stays normalised. With D distinct
  contexts about D^2 / (2 n_buckets) pairs collide.

Trade-off: a dense order-3 byte table is V^3 = 16.8M floats (64 MiB) per seed;
a context-hashed (C, V) table costs C V floats and silently merges contexts
unless C is well above the number of distinct contexts (C = 2^16 is again
64 MiB). The sparse table is exact and costs 4 x 4 bytes per window (126 KiB
for 64 blocks x 128 tokens), paid for with a binary search per lookup. For
V = 256, k = 3 and 64 x 128 training blocks one seed's tables take 385 KiB
(dense bigram 258 KiB, sparse trigram 126 KiB, unigram 1 KiB). ``sample``
adds running sums of the same size while it runs.

Weights: ``fit`` takes one weight per block and counts the block's n-grams
with it. A weight <= 0 marks an absent row that contributes nothing, so
preallocated pools can be masked. Fractional weights are allowed.

``NGramConfig``, the model's static configuration, lives here because the tables'
shapes depend on it (order, vocab_size, max_dense, n_buckets); it also checks the
smoothing fields that simulator/lm/ngram.py reads.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
from jax import lax

SMOOTHINGS = ("additive", "interpolate", "witten_bell")
_SENTINEL = 2**31 - 1  # key of an empty sparse slot; sorts after every real code
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class NGramConfig:
    """Static configuration of an n-gram model.

    Attributes:
      order: k >= 1, the longest n-gram (a context of k - 1 tokens).
      vocab_size: V >= 2; tokens are integers in [0, V).
      smoothing: "additive", "interpolate" or "witten_bell" (module docstring).
      alpha: add-alpha pseudo-count (> 0), used by "additive".
      lambdas: interpolation weights (lambda_0, ..., lambda_k): lambda_0 for the
        uniform distribution, lambda_j for order j; non-negative and summing to
        1. Required by "interpolate", ignored otherwise.
      max_dense: order j is stored densely when V^j <= max_dense.
      n_buckets: context codes of the sparse orders; an order with
        V^(j-1) > n_buckets hashes its contexts into n_buckets codes. None = the
        largest allowed value, floor((2^31 - 2) / V).
    """

    order: int = 3
    vocab_size: int = 256
    smoothing: str = "witten_bell"
    alpha: float = 1.0
    lambdas: Optional[tuple] = None
    max_dense: int = 2**16
    n_buckets: Optional[int] = None

    def __post_init__(self):
        if not _is_int(self.order) or self.order < 1:
            raise ValueError(f"NGramConfig.order must be an integer >= 1, got {self.order!r}")
        if not _is_int(self.vocab_size) or not 2 <= self.vocab_size <= 2**20:
            raise ValueError("NGramConfig.vocab_size must be an integer in [2, 2**20], "
                             f"got {self.vocab_size!r}")
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(f"NGramConfig.smoothing must be one of {SMOOTHINGS}, "
                             f"got {self.smoothing!r}")
        if not (_is_real(self.alpha) and math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"NGramConfig.alpha must be a finite number > 0, got {self.alpha!r}")
        allowed = (f"order + 1 = {self.order + 1} non-negative finite weights "
                   f"(uniform, order 1, ..., order {self.order}) summing to 1")
        if self.smoothing == "interpolate" and self.lambdas is None:
            raise ValueError(f"NGramConfig.lambdas=None is not allowed with smoothing="
                             f"'interpolate': give {allowed}")
        if self.lambdas is not None:
            lam = self.lambdas
            if (not isinstance(lam, (tuple, list)) or len(lam) != self.order + 1
                    or not all(_is_real(x) and math.isfinite(x) and x >= 0 for x in lam)
                    or abs(sum(lam) - 1.0) > 1e-6):
                raise ValueError(f"NGramConfig.lambdas must be {allowed}, got {lam!r}")
            object.__setattr__(self, "lambdas", tuple(float(x) for x in lam))
        if not _is_int(self.max_dense) or not 0 <= self.max_dense <= 2**31 - 1:
            raise ValueError("NGramConfig.max_dense must be an integer in [0, 2**31 - 1], "
                             f"got {self.max_dense!r}")
        limit = (2**31 - 2) // self.vocab_size
        if self.n_buckets is not None and (
                not _is_int(self.n_buckets) or not 1 <= self.n_buckets <= limit):
            raise ValueError(f"NGramConfig.n_buckets must be None or an integer in [1, {limit}] "
                             f"(n_buckets * vocab_size < 2**31), got {self.n_buckets!r}")

    @property
    def context_codes(self) -> int:
        """Number of context codes available to a sparse order."""
        return self.n_buckets if self.n_buckets is not None else (2**31 - 2) // self.vocab_size

    def is_dense(self, j: int) -> bool:
        return self.vocab_size**j <= self.max_dense

    def is_hashed(self, j: int) -> bool:
        """Whether order j merges contexts by hashing (only sparse orders do)."""
        return not self.is_dense(j) and self.vocab_size ** (j - 1) > self.context_codes


class DenseCounts(NamedTuple):
    counts_RxV: jax.Array  # c_j(h, w); row h in base-V order, R = V^(j-1)
    total_R: jax.Array  # c_j(h)
    distinct_R: jax.Array  # D_j(h)


class SparseCounts(NamedTuple):
    keys_E: jax.Array  # sorted int32 codes h_code * V + w; empty slots hold 2^31 - 1
    counts_E: jax.Array  # c_j(h, w)
    ctx_total_E: jax.Array  # c_j(h) of the entry's context
    ctx_distinct_E: jax.Array  # D_j(h) of the entry's context


NGramParams = tuple  # (table of order 1, ..., table of order k)
Table = Union[DenseCounts, SparseCounts]


# ----------------------------------------------------------------------------
# context codes and counting


def context_code(cfg: NGramConfig, j: int, ctx: jax.Array) -> jax.Array:
    """Code of the last j - 1 tokens ctx (..., j - 1), oldest first: a row or bucket id."""
    shape = ctx.shape[:-1]
    if j == 1:
        return jnp.zeros(shape, jnp.int32)
    if not cfg.is_hashed(j):  # exact base-V code, < V^(j-1) < 2^31: no overflow
        code = jnp.zeros(shape, jnp.int32)
        for t in range(j - 1):
            code = code * cfg.vocab_size + ctx[..., t]
        return code
    # FNV-1a over whole tokens, then the murmur3 finaliser to mix the high bits.
    h = jnp.full(shape, _FNV_OFFSET, jnp.uint32)
    for t in range(j - 1):
        h = (h ^ ctx[..., t].astype(jnp.uint32)) * jnp.uint32(_FNV_PRIME)
    h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
    h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
    h = h ^ (h >> 16)
    return (h % jnp.uint32(cfg.context_codes)).astype(jnp.int32)


def _fit_dense(cfg, j, ctx, tok, w) -> DenseCounts:
    V, R = cfg.vocab_size, cfg.vocab_size ** (j - 1)
    flat = jnp.zeros((R * V,), jnp.float32).at[(ctx * V + tok).ravel()].add(w.ravel())
    counts_RxV = flat.reshape(R, V)
    return DenseCounts(counts_RxV, counts_RxV.sum(-1),
                       (counts_RxV > 0).sum(-1).astype(jnp.float32))


def run_starts(sorted_E: jax.Array) -> jax.Array:
    return jnp.concatenate([jnp.ones((1,), bool), sorted_E[1:] != sorted_E[:-1]])


def _fit_sparse(cfg, j, ctx, tok, w) -> SparseCounts:
    V = cfg.vocab_size
    present = w > 0
    code_E = jnp.where(present, ctx * V + tok, _SENTINEL).ravel()
    w_E = jnp.where(present, w, 0.0).ravel()
    E = code_E.shape[0]
    # Sorting the codes alone and finding each one's slot again by binary search is
    # several times faster on CPU than sorting (code, weight) pairs.
    sorted_E = lax.sort(code_E)
    seg_E = jnp.cumsum(run_starts(sorted_E)) - 1
    # The r-th run of equal codes lands in slot r; slots past the last run stay empty.
    keys_E = jnp.full((E,), _SENTINEL, jnp.int32).at[seg_E].set(sorted_E)
    slot_E = jnp.searchsorted(keys_E, code_E)
    counts_E = jnp.zeros((E,), jnp.float32).at[slot_E].add(w_E, mode="drop")
    # A context's continuations are a contiguous run of at most V sorted keys.
    start_E = run_starts(keys_E // V)
    cseg_E = jnp.cumsum(start_E) - 1
    total_E = jnp.zeros((E,), jnp.float32).at[cseg_E].add(counts_E)[cseg_E]
    distinct_E = jnp.zeros((E,), jnp.float32).at[cseg_E].add(
        (counts_E > 0).astype(jnp.float32))[cseg_E]
    return SparseCounts(keys_E, counts_E, total_E, distinct_E)


def fit(cfg: NGramConfig, blocks_NxL: jax.Array,
        weights_N: Optional[jax.Array] = None) -> NGramParams:
    """Count every j-gram (j = 1..k) lying wholly inside a block, weighted by its block.

    Args:
      cfg: static configuration.
      blocks_NxL: integer tokens in [0, V).
      weights_N: per-block weights (default 1); a weight <= 0 marks an absent block.

    Returns:
      A tuple of k count tables (``DenseCounts`` or ``SparseCounts`` by order).
    """
    x_NxL = jnp.asarray(blocks_NxL, jnp.int32)
    N, L = x_NxL.shape
    w_N = (jnp.ones((N,), jnp.float32) if weights_N is None
           else jnp.asarray(weights_N, jnp.float32).reshape(N))
    tables = []
    for j in range(1, cfg.order + 1):
        W = L - j + 1  # j-gram windows per block
        if W <= 0:  # blocks shorter than j: an empty table with one slot
            win_NxWxj = jnp.zeros((1, 1, j), jnp.int32)
            w_NxW = jnp.zeros((1, 1), jnp.float32)
        else:
            win_NxWxj = jnp.stack([x_NxL[:, t:t + W] for t in range(j)], axis=-1)
            w_NxW = jnp.broadcast_to(w_N[:, None], (N, W))
        ctx = context_code(cfg, j, win_NxWxj[..., :-1])
        fit_j = _fit_dense if cfg.is_dense(j) else _fit_sparse
        tables.append(fit_j(cfg, j, ctx, win_NxWxj[..., -1], w_NxW))
    return tuple(tables)


# ----------------------------------------------------------------------------
# lookups


def lookup_context(cfg, table: Table, ctx):
    """(c_j(h), D_j(h), start): start is h's dense row or its first sparse entry."""
    if isinstance(table, DenseCounts):
        return table.total_R[ctx], table.distinct_R[ctx], ctx
    V, E = cfg.vocab_size, table.keys_E.shape[0]
    first = jnp.minimum(jnp.searchsorted(table.keys_E, ctx * V), E - 1)
    seen = table.keys_E[first] // V == ctx
    return (jnp.where(seen, table.ctx_total_E[first], 0.0),
            jnp.where(seen, table.ctx_distinct_E[first], 0.0), first)


def lookup_entry(cfg, table: Table, ctx, tok):
    """(c_j(h, w), c_j(h), D_j(h)) for context codes ctx and tokens tok of one shape."""
    tot, dist, start = lookup_context(cfg, table, ctx)
    if isinstance(table, DenseCounts):
        return table.counts_RxV[start, tok], tot, dist
    E = table.keys_E.shape[0]
    code = ctx * cfg.vocab_size + tok
    pos = jnp.minimum(jnp.searchsorted(table.keys_E, code), E - 1)
    return jnp.where(table.keys_E[pos] == code, table.counts_E[pos], 0.0), tot, dist


def lookup_row(cfg, table: Table, ctx):
    """(c_j(h, .) of shape ctx.shape + (V,), c_j(h), D_j(h)) for context codes ctx."""
    tot, dist, start = lookup_context(cfg, table, ctx)
    if isinstance(table, DenseCounts):
        return table.counts_RxV[start], tot, dist
    V, E = cfg.vocab_size, table.keys_E.shape[0]
    shape = ctx.shape
    ctx_Q, start_Q = ctx.reshape(-1), start.reshape(-1)
    # At most V continuations, stored from `start` on in token order.
    idx_QxV = jnp.minimum(start_Q[:, None] + jnp.arange(V), E - 1)
    key_QxV = table.keys_E[idx_QxV]
    valid_QxV = (jnp.arange(V) < dist.reshape(-1, 1)) & (key_QxV // V == ctx_Q[:, None])
    tok_QxV = jnp.where(valid_QxV, key_QxV - ctx_Q[:, None] * V, V)  # V is dropped
    val_QxV = jnp.where(valid_QxV, table.counts_E[idx_QxV], 0.0)
    Q = ctx_Q.shape[0]
    row_QxV = jnp.zeros((Q, V), jnp.float32).at[
        jnp.arange(Q)[:, None], tok_QxV].add(val_QxV, mode="drop")
    return row_QxV.reshape(shape + (V,)), tot, dist


def ngram_count(cfg: NGramConfig, params: NGramParams, ngrams: jax.Array) -> jax.Array:
    """Fitted count c_j(h, w) of each j-gram in ngrams (..., j), oldest token first.

    For a hashed order this is the pooled count of all contexts sharing h's code.
    """
    ngrams = jnp.asarray(ngrams, jnp.int32)
    j = ngrams.shape[-1]
    if not 1 <= j <= cfg.order:
        raise ValueError(f"n-gram length must be in [1, order={cfg.order}], got {j}")
    ctx = context_code(cfg, j, ngrams[..., :-1])
    return lookup_entry(cfg, params[j - 1], ctx, ngrams[..., -1])[0]


def params_nbytes(params: NGramParams) -> int:
    """Bytes held by one set of count tables (times S for S vmapped seeds)."""
    return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(params))
