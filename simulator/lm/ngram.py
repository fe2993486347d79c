"""Order-k n-gram language model with static-shape count tables, in pure JAX.

Axis letters: N blocks, L positions in a block, V vocabulary, R context rows
of a dense table, E entries of a sparse table, B sampled blocks, S seeds,
K1 = k - 1 history tokens (oldest first).

Model. Tokens are integers in [0, V) (bytes by default). For each order
j = 1..k the fit keeps the (weighted) counts c_j(h, w) of every j-gram
(h, w) that lies wholly inside one block, h being its j - 1 context tokens.
Write c_j(h) = sum_w c_j(h, w) and D_j(h) = #{w : c_j(h, w) > 0}.
Probabilities (Chen & Goodman 1999, "An empirical study of smoothing
techniques for language modeling", sections 2.1, 2.3 and 2.5):

- ``additive``:    p(w | h) = (c_k(h, w) + alpha) / (c_k(h) + alpha V);
                   an unseen context gives the uniform distribution.
- ``interpolate``: p(w | h) = sum_j lambda_j p_j(w | h_j) / sum_j lambda_j over
                   the usable orders, with p_0 = 1/V (uniform, always usable)
                   and p_j = c_j(h, w) / c_j(h) the maximum-likelihood
                   estimate (Jelinek-Mercer with fixed weights). An order is
                   usable when its context is available and was seen
                   (c_j(h) > 0); the weights of the other orders are dropped
                   and the rest renormalised, so p always sums to one. If no
                   order is usable (lambda_0 = 0 and nothing seen) p is uniform.
- ``witten_bell``: p_0 = 1/V and, recursively for usable orders,
                   p_j(w | h) = (c_j(h, w) + D_j(h) p_{j-1}(w)) / (c_j(h) + D_j(h));
                   an order that is not usable passes p_{j-1} through.

Short history: a token at block position i has i tokens before it in its
block. Only orders j <= i + 1 are available there, so position 0 is scored by
the unigram part of the model, position 1 by orders <= 2, and so on. Additive
smoothing uses the longest available order. ``token_logprobs``,
``next_token_logprobs`` (with a context shorter than k - 1) and ``sample``
all follow this same rule, so sampling is exact ancestral sampling from the
distribution that ``token_logprobs`` scores.

Count tables (``NGramParams``, one table per order, static shapes):

- Dense (when V^j <= ``max_dense``, default 2^16, i.e. orders 1 and 2 for
  bytes): counts (V^(j-1), V) with row totals and distinct counts; exact.
  Lookup is a gather.
- Sparse (higher orders): the distinct j-grams of the training blocks as
  sorted int32 codes ``h_code * V + w``, with their counts and the total and
  distinct count of their context. Capacity E = N (L - j + 1), the number of
  j-gram windows, so it can never overflow and is no larger than the data.
  Built by a sort plus ``.at[].add``; lookup is a binary search. Exact
  whenever V^(j-1) <= ``n_buckets`` (default: the largest value with
  n_buckets * V < 2^31, which is 8 388 607 for bytes, so orders <= 3 are
  exact). Longer contexts are hashed into ``n_buckets`` codes. Collision
  behaviour: contexts that share a code are merged, i.e. the model uses their
  pooled continuation counts; the next token itself is never hashed, so
  every conditional distribution stays exactly normalised. With D distinct
  contexts about D^2 / (2 n_buckets) pairs collide.

Trade-off: a dense order-3 byte table is V^3 = 16.8M floats (64 MiB) per seed
and a context-hashed (C, V) table is C V floats and merges contexts once C is
not much larger than the number of distinct contexts. The sparse table costs
three 4-byte arrays of E entries per order, about 96 KiB for 64 x 128 blocks,
and is exact; it pays for that with a binary search (log2 E steps) per lookup.
For V = 256, k = 3 and 64 x 128 blocks one seed's parameters take about
355 KiB (dense bigram 256 KiB + sparse trigram 94 KiB).

Weights: ``fit`` takes one weight per block; the block's n-grams are counted
with that weight. A weight <= 0 marks an absent row: it contributes nothing
(preallocated pools are masked this way). Fractional weights are allowed.

All functions are pure and traceable. ``NGramConfig`` is frozen and hashable,
so pass it as a static argument: ``jax.jit(fit, static_argnums=0)``,
``jax.jit(sample, static_argnums=(0, 3, 4), static_argnames="top_k")``, or
close over it with ``functools.partial``. Everything else vmaps (e.g. over
seeds: ``jax.vmap(lambda k: sample(cfg, params, k, B, L))(keys_S)``).
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
        order: k >= 1, the longest n-gram (context of k - 1 tokens).
        vocab_size: V >= 2; tokens are integers in [0, V).
        smoothing: "additive", "interpolate" or "witten_bell" (module docstring).
        alpha: add-alpha pseudo-count (> 0), used by "additive".
        lambdas: interpolation weights (lambda_0, ..., lambda_k), lambda_0 for the
            uniform distribution and lambda_j for order j; non-negative, summing to
            1. Required by "interpolate".
        max_dense: an order j is stored densely when V^j <= max_dense.
        n_buckets: context codes available to sparse orders; contexts of an order
            with V^(j-1) > n_buckets are hashed into n_buckets codes. None = the
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
            raise ValueError(
                    f"NGramConfig.vocab_size must be an integer in [2, 2**20], got {self.vocab_size!r}")
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(
                    f"NGramConfig.smoothing must be one of {SMOOTHINGS}, got {self.smoothing!r}")
        if not _is_real(self.alpha) or not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"NGramConfig.alpha must be a finite number > 0, got {self.alpha!r}")
        if self.smoothing == "interpolate" and self.lambdas is None:
            raise ValueError(
                    "NGramConfig.lambdas=None is not allowed with smoothing='interpolate': give "
                    f"order + 1 = {self.order + 1} non-negative weights (uniform, order 1, ..., "
                    f"order {self.order}) summing to 1")
        if self.lambdas is not None:
            lam = self.lambdas
            if (not isinstance(lam, (tuple, list)) or len(lam) != self.order + 1
                    or not all(_is_real(x) and math.isfinite(x) and x >= 0 for x in lam)
                    or abs(sum(lam) - 1.0) > 1e-6):
                raise ValueError(
                        f"NGramConfig.lambdas must be order + 1 = {self.order + 1} non-negative finite "
                        f"weights (uniform, order 1, ..., order {self.order}) summing to 1, got {lam!r}")
            object.__setattr__(self, "lambdas", tuple(float(x) for x in lam))
        if not _is_int(self.max_dense) or not 0 <= self.max_dense <= 2**31 - 1:
            raise ValueError(
                    f"NGramConfig.max_dense must be an integer in [0, 2**31 - 1], got {self.max_dense!r}")
        limit = (2**31 - 2) // self.vocab_size
        if self.n_buckets is not None and (
                not _is_int(self.n_buckets) or not 1 <= self.n_buckets <= limit):
            raise ValueError(
                    f"NGramConfig.n_buckets must be None or an integer in [1, {limit}] "
                    f"(n_buckets * vocab_size < 2**31), got {self.n_buckets!r}")

    @property
    def context_codes(self) -> int:
        """Number of context codes available to a sparse order."""
        return self.n_buckets if self.n_buckets is not None else (2**31 - 2) // self.vocab_size

    def is_dense(self, j: int) -> bool:
        return self.vocab_size**j <= self.max_dense

    def is_hashed(self, j: int) -> bool:
        """Whether order j merges contexts by hashing (only sparse orders can)."""
        return not self.is_dense(j) and self.vocab_size ** (j - 1) > self.context_codes


class DenseCounts(NamedTuple):
    counts_RxV: jax.Array  # c_j(h, w), R = V^(j-1) contexts in base-V order
    total_R: jax.Array  # c_j(h)
    distinct_R: jax.Array  # D_j(h)


class SparseCounts(NamedTuple):
    keys_E: jax.Array  # sorted codes h_code * V + w; empty slots hold 2^31 - 1
    counts_E: jax.Array  # c_j(h, w)
    ctx_total_E: jax.Array  # c_j(h) of the entry's context
    ctx_distinct_E: jax.Array  # D_j(h) of the entry's context


NGramParams = tuple  # (table for order 1, ..., table for order k)
Table = Union[DenseCounts, SparseCounts]


# ----------------------------------------------------------------------------
# context codes and counting


def _ctx_code(cfg: NGramConfig, j: int, ctx: jax.Array) -> jax.Array:
    """Code in [0, R) of the last j - 1 tokens ctx (..., j - 1), oldest first."""
    shape = ctx.shape[:-1]
    if j == 1:
        return jnp.zeros(shape, jnp.int32)
    if not cfg.is_hashed(j):  # exact base-V code; < V^(j-1) <= 2^31 - 2, no overflow
        code = jnp.zeros(shape, jnp.int32)
        for t in range(j - 1):
            code = code * cfg.vocab_size + ctx[..., t]
        return code
    # FNV-1a over whole tokens, then a murmur3 finaliser to mix the high bits.
    h = jnp.full(shape, _FNV_OFFSET, jnp.uint32)
    for t in range(j - 1):
        h = (h ^ ctx[..., t].astype(jnp.uint32)) * jnp.uint32(_FNV_PRIME)
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    h = h ^ (h >> 16)
    return (h % jnp.uint32(cfg.context_codes)).astype(jnp.int32)


def _n_rows(cfg: NGramConfig, j: int) -> int:
    return cfg.vocab_size ** (j - 1)


def _fit_dense(cfg, j, ctx, tok, w) -> DenseCounts:
    V, R = cfg.vocab_size, _n_rows(cfg, j)
    flat = jnp.zeros((R * V,), jnp.float32).at[(ctx * V + tok).ravel()].add(w.ravel())
    counts_RxV = flat.reshape(R, V)
    return DenseCounts(counts_RxV, counts_RxV.sum(-1),
                                          (counts_RxV > 0).sum(-1).astype(jnp.float32))


def _segments(sorted_keys: jax.Array) -> jax.Array:
    """Index of the run of equal values each element of a sorted array is in."""
    new = jnp.concatenate([jnp.ones((1,), bool), sorted_keys[1:] != sorted_keys[:-1]])
    return jnp.cumsum(new) - 1


def _fit_sparse(cfg, j, ctx, tok, w) -> SparseCounts:
    V = cfg.vocab_size
    present = w > 0
    code_E = jnp.where(present, ctx * V + tok, _SENTINEL).ravel()
    w_E = jnp.where(present, w, 0.0).ravel()
    E = code_E.shape[0]
    code_E, w_E = lax.sort((code_E, w_E), num_keys=1)
    seg_E = _segments(code_E)
    # Run r of equal codes lands in slot r; untouched slots stay empty.
    keys_E = jnp.full((E,), _SENTINEL, jnp.int32).at[seg_E].set(code_E)
    counts_E = jnp.zeros((E,), jnp.float32).at[seg_E].add(w_E)
    cseg_E = _segments(keys_E // V)  # contexts are contiguous runs of the sorted keys
    ctx_total_E = jnp.zeros((E,), jnp.float32).at[cseg_E].add(counts_E)[cseg_E]
    ctx_distinct_E = jnp.zeros((E,), jnp.float32).at[cseg_E].add(
            (counts_E > 0).astype(jnp.float32))[cseg_E]
    return SparseCounts(keys_E, counts_E, ctx_total_E, ctx_distinct_E)


def fit(cfg: NGramConfig, blocks_NxL: jax.Array,
                weights_N: Optional[jax.Array] = None) -> NGramParams:
    """Count every j-gram (j = 1..k) lying wholly inside a block, weighted by its block.

    Args:
        cfg: static configuration.
        blocks_NxL: int tokens in [0, V).
        weights_N: per-block weights (default 1); <= 0 marks an absent block.

    Returns:
        A tuple of k count tables, ``DenseCounts`` or ``SparseCounts`` by order.
    """
    x_NxL = jnp.asarray(blocks_NxL, jnp.int32)
    N, L = x_NxL.shape
    w_N = (jnp.ones((N,), jnp.float32) if weights_N is None
                  else jnp.asarray(weights_N, jnp.float32).reshape(N))
    tables = []
    for j in range(1, cfg.order + 1):
        W = max(L - j + 1, 0)  # j-gram windows per block
        if W == 0:  # blocks shorter than j: an empty table with one slot
            win_NxWxj = jnp.zeros((1, 1, j), jnp.int32)
            w_NxW = jnp.zeros((1, 1), jnp.float32)
        else:
            win_NxWxj = jnp.stack([x_NxL[:, t:t + W] for t in range(j)], axis=-1)
            w_NxW = jnp.broadcast_to(w_N[:, None], (N, W))
        ctx = _ctx_code(cfg, j, win_NxWxj[..., :-1])
        tok = win_NxWxj[..., -1]
        fit_j = _fit_dense if cfg.is_dense(j) else _fit_sparse
        tables.append(fit_j(cfg, j, ctx, tok, w_NxW))
    return tuple(tables)


# ----------------------------------------------------------------------------
# lookups


def _lookup_entry(cfg, table: Table, ctx, tok):
    """(c_j(h, w), c_j(h), D_j(h)) for context codes ctx and tokens tok (same shape)."""
    if isinstance(table, DenseCounts):
        return table.counts_RxV[ctx, tok], table.total_R[ctx], table.distinct_R[ctx]
    V, E = cfg.vocab_size, table.keys_E.shape[0]
    code = ctx * V + tok
    pos = jnp.minimum(jnp.searchsorted(table.keys_E, code), E - 1)
    c = jnp.where(table.keys_E[pos] == code, table.counts_E[pos], 0.0)
    first = jnp.minimum(jnp.searchsorted(table.keys_E, ctx * V), E - 1)
    seen = table.keys_E[first] // V == ctx
    tot = jnp.where(seen, table.ctx_total_E[first], 0.0)
    dist = jnp.where(seen, table.ctx_distinct_E[first], 0.0)
    return c, tot, dist


def _lookup_row(cfg, table: Table, ctx):
    """(c_j(h, .) of shape ctx.shape + (V,), c_j(h), D_j(h)) for context codes ctx."""
    if isinstance(table, DenseCounts):
        return table.counts_RxV[ctx], table.total_R[ctx], table.distinct_R[ctx]
    V, E = cfg.vocab_size, table.keys_E.shape[0]
    shape = ctx.shape
    ctx_Q = ctx.reshape(-1)
    first_Q = jnp.searchsorted(table.keys_E, ctx_Q * V)
    # A context has at most V continuations, stored contiguously from `first`.
    idx_QxV = first_Q[:, None] + jnp.arange(V)
    safe_QxV = jnp.minimum(idx_QxV, E - 1)
    key_QxV = table.keys_E[safe_QxV]
    valid_QxV = (idx_QxV < E) & (key_QxV // V == ctx_Q[:, None])
    tok_QxV = jnp.where(valid_QxV, key_QxV - ctx_Q[:, None] * V, V)  # V is dropped
    val_QxV = jnp.where(valid_QxV, table.counts_E[safe_QxV], 0.0)
    Q = ctx_Q.shape[0]
    row_QxV = jnp.zeros((Q, V), jnp.float32).at[
            jnp.arange(Q)[:, None], tok_QxV].add(val_QxV, mode="drop")
    seen_Q = valid_QxV[:, 0]
    first_Q = jnp.minimum(first_Q, E - 1)
    tot_Q = jnp.where(seen_Q, table.ctx_total_E[first_Q], 0.0)
    dist_Q = jnp.where(seen_Q, table.ctx_distinct_E[first_Q], 0.0)
    return row_QxV.reshape(shape + (V,)), tot_Q.reshape(shape), dist_Q.reshape(shape)


def ngram_count(cfg: NGramConfig, params: NGramParams, ngrams: jax.Array) -> jax.Array:
    """Fitted count c_j(h, w) of each j-gram in ngrams (..., j), oldest token first.

    For a hashed order this is the pooled count of every context sharing h's code.
    """
    ngrams = jnp.asarray(ngrams, jnp.int32)
    j = ngrams.shape[-1]
    if not 1 <= j <= cfg.order:
        raise ValueError(f"ngram length must be in [1, order={cfg.order}], got {j}")
    ctx = _ctx_code(cfg, j, ngrams[..., :-1])
    return _lookup_entry(cfg, params[j - 1], ctx, ngrams[..., -1])[0]


# ----------------------------------------------------------------------------
# smoothing


def _smooth(cfg: NGramConfig, stats) -> jax.Array:
    """Probabilities from per-order (count, total, distinct, available), broadcastable.

    Counts may carry a trailing V axis (whole distributions) or not (one token).
    """
    V = cfg.vocab_size
    uniform = jnp.float32(1.0 / V)
    if cfg.smoothing == "additive":
        c, tot = stats[0][0], stats[0][1]
        for cj, totj, _, availj in stats[1:]:  # the longest available order wins
            c, tot = jnp.where(availj, cj, c), jnp.where(availj, totj, tot)
        return (c + cfg.alpha) / (tot + cfg.alpha * V)
    if cfg.smoothing == "interpolate":
        lam = cfg.lambdas
        num = jnp.float32(lam[0]) * uniform
        den = jnp.float32(lam[0])
        for (cj, totj, _, availj), lj in zip(stats, lam[1:]):
            wj = jnp.where(availj & (totj > 0), jnp.float32(lj), 0.0)
            num = num + wj * cj / jnp.maximum(totj, 1e-30)
            den = den + wj
        num, den = jnp.broadcast_arrays(num, den)
        return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), uniform)
    # Witten-Bell, recursive from the uniform base.
    p = uniform
    for cj, totj, distj, availj in stats:
        usable = availj & (totj > 0)
        pj = (cj + distj * p) / jnp.where(usable, totj + distj, 1.0)
        p = jnp.where(usable, pj, p)
    return p


def _history(x_NxL: jax.Array, k1: int) -> jax.Array:
    """(N, L, k-1): the k-1 tokens before each position, oldest first, zero-padded."""
    N, L = x_NxL.shape
    cols = []
    for t in range(k1):
        s = k1 - t  # how far back this column looks
        cols.append(jnp.pad(x_NxL, ((0, 0), (s, 0)))[:, :L])
    return jnp.stack(cols, -1) if cols else jnp.zeros((N, L, 0), jnp.int32)


def token_logprobs(cfg: NGramConfig, params: NGramParams, blocks_NxL: jax.Array) -> jax.Array:
    """log p(x_i | x_<i) for every position of every block, (N, L).

    The history is the in-block prefix: position i uses orders j <= min(k, i + 1).
    Tokens with probability 0 (only possible with "interpolate" and lambda_0 = 0)
    score -inf.
    """
    x_NxL = jnp.asarray(blocks_NxL, jnp.int32)
    N, L = x_NxL.shape
    k1 = cfg.order - 1
    hist_NxLxK1 = _history(x_NxL, k1)
    pos_L = jnp.arange(L)
    stats = []
    for j in range(1, cfg.order + 1):
        ctx_NxL = _ctx_code(cfg, j, hist_NxLxK1[..., k1 - (j - 1):])
        c, tot, dist = _lookup_entry(cfg, params[j - 1], ctx_NxL, x_NxL)
        stats.append((c, tot, dist, jnp.broadcast_to(pos_L >= j - 1, (N, L))))
    return jnp.log(_smooth(cfg, stats))


def _next_logprobs(cfg, params, window, n_avail) -> jax.Array:
    """Log distribution (..., V) after history window (..., k-1) of which n_avail are real."""
    k1 = cfg.order - 1
    stats = []
    for j in range(1, cfg.order + 1):
        ctx = _ctx_code(cfg, j, window[..., k1 - (j - 1):])
        row, tot, dist = _lookup_row(cfg, params[j - 1], ctx)
        stats.append((row, tot[..., None], dist[..., None], (n_avail >= j - 1)[..., None]))
    return jnp.log(_smooth(cfg, stats))


def next_token_logprobs(cfg: NGramConfig, params: NGramParams,
                                                context_tokens: jax.Array) -> jax.Array:
    """log p(. | context) of shape (..., V) for contexts (..., C), oldest token first.

    Only the last k - 1 tokens matter; a context with C < k - 1 tokens (C may be
    0) is treated as a block prefix of length C (short-history rule).
    """
    ctx = jnp.asarray(context_tokens, jnp.int32)
    C, k1 = ctx.shape[-1], cfg.order - 1
    if C >= k1:
        window, n_avail = ctx[..., C - k1:], k1
    else:
        window = jnp.pad(ctx, [(0, 0)] * (ctx.ndim - 1) + [(k1 - C, 0)])
        n_avail = C
    return _next_logprobs(cfg, params, window, jnp.full(ctx.shape[:-1], n_avail))


def perplexity(cfg: NGramConfig, params: NGramParams, blocks_NxL: jax.Array,
                              weights_N: Optional[jax.Array] = None) -> jax.Array:
    """exp of the mean negative log-likelihood per token over (weighted) blocks.

    Every position counts, including the short-history ones at a block start.
    """
    lp_NxL = token_logprobs(cfg, params, blocks_NxL)
    N, L = lp_NxL.shape
    w_N = (jnp.ones((N,), jnp.float32) if weights_N is None
                  else jnp.maximum(jnp.asarray(weights_N, jnp.float32), 0.0))
    nll_N = -jnp.where(w_N > 0, lp_NxL.sum(-1), 0.0)  # an absent row may score -inf
    return jnp.exp(jnp.sum(w_N * nll_N) / (L * jnp.sum(w_N)))


# ----------------------------------------------------------------------------
# sampling


def _draw(logits_BxV: jax.Array, u_B: jax.Array, top_k: Optional[int]) -> jax.Array:
    """Inverse-CDF draw of one token per row from softmax(logits), given u in (0, 1)."""
    if top_k is not None:
        logits_BxV, idx_BxK = lax.top_k(logits_BxV, top_k)
    p_BxV = jnp.exp(logits_BxV - logits_BxV.max(-1, keepdims=True))
    cdf_BxV = jnp.cumsum(p_BxV, -1)
    i_B = jnp.sum(cdf_BxV < (u_B * cdf_BxV[:, -1])[:, None], -1)
    i_B = jnp.minimum(i_B, logits_BxV.shape[-1] - 1).astype(jnp.int32)
    if top_k is not None:
        i_B = jnp.take_along_axis(idx_BxK, i_B[:, None], -1)[:, 0]
    return i_B


def sample(cfg: NGramConfig, params: NGramParams, key: jax.Array, n_blocks: int, length: int,
                      prompts: Optional[jax.Array] = None, temperature: Union[float, jax.Array] = 1.0,
                      top_k: Optional[int] = None) -> jax.Array:
    """Exact ancestral sampling of (n_blocks, length) int32 token blocks.

    Position t of block b draws from softmax(log p(. | in-block history) / temperature),
    restricted to the top_k most likely tokens if top_k is set, with the uniform
    ``fold_in(fold_in(key, b), t)``; a block's tokens therefore do not depend on
    n_blocks. ``prompts`` (n_blocks, P) or (P,) with P <= length fixes the first P
    tokens of each block; sampling continues from them. ``n_blocks``, ``length``
    and ``top_k`` are static; ``temperature`` may be traced.
    """
    V, k1 = cfg.vocab_size, cfg.order - 1
    if top_k is not None and (not _is_int(top_k) or not 1 <= top_k <= V):
        raise ValueError(f"top_k must be None or an integer in [1, {V}], got {top_k!r}")
    if _is_real(temperature) and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if prompts is None:
        P, prompt_BxL = 0, None
    else:
        prompts = jnp.asarray(prompts, jnp.int32)
        P = prompts.shape[-1]
        if P > length:
            raise ValueError(f"prompt length {P} exceeds block length {length}")
        prompt_BxL = jnp.pad(jnp.broadcast_to(prompts, (n_blocks, P)), ((0, 0), (0, length - P)))
    key_B = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.arange(n_blocks))
    tiny = jnp.finfo(jnp.float32).tiny

    def step(window_BxK1, t):
        logp_BxV = _next_logprobs(cfg, params, window_BxK1, jnp.full((n_blocks,), t))
        u_B = jax.vmap(lambda kb: jax.random.uniform(jax.random.fold_in(kb, t), minval=tiny))(key_B)
        tok_B = _draw(logp_BxV / temperature, u_B, top_k)
        if P > 0:
            tok_B = jnp.where(t < P, prompt_BxL[:, t], tok_B)
        if k1 > 0:
            window_BxK1 = jnp.concatenate([window_BxK1[:, 1:], tok_B[:, None]], axis=1)
        return window_BxK1, tok_B

    _, tok_LxB = lax.scan(step, jnp.zeros((n_blocks, k1), jnp.int32), jnp.arange(length))
    return tok_LxB.T


def params_nbytes(params: NGramParams) -> int:
    """Bytes held by one set of count tables (multiply by S for vmapped seeds)."""
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(params))
