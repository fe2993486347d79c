"""Order-k n-gram language model with static-shape count tables, in pure JAX.

Axis letters: N blocks, L positions in a block, V vocabulary, R context rows
of a dense table, E entries of a sparse table, B sampled blocks, S seeds,
K1 = k - 1 history tokens (oldest first), M = k + 1 mixture components.

Model. Tokens are integers in [0, V) (bytes by default). For each order
j = 1..k the fit keeps the (weighted) counts c_j(h, w) of every j-gram
(h, w) lying wholly inside one block, h being its j - 1 context tokens.
Write c_j(h) = sum_w c_j(h, w), D_j(h) = #{w : c_j(h, w) > 0} and
ML_j(w | h) = c_j(h, w) / c_j(h). Every smoothing is a mixture

    p(w | h) = pi_0 / V + sum_j pi_j(h) ML_j(w | h_j),    sum_j pi_j = 1,

whose weights depend only on the context (Chen & Goodman 1999, "An empirical
study of smoothing techniques for language modeling", sections 2.1, 2.3, 2.5):

- ``additive``: (c_k(h, w) + alpha) / (c_k(h) + alpha V), i.e. pi_k =
  c_k(h) / (c_k(h) + alpha V) and pi_0 = 1 - pi_k; an unseen context is uniform.
- ``interpolate``: fixed Jelinek-Mercer weights lambda_0..lambda_k over the
  usable orders, renormalised: pi_j = lambda_j / sum of usable lambdas. An
  order is usable when its context is available and was seen (c_j(h) > 0);
  the uniform part (lambda_0) always is. If nothing is usable (lambda_0 = 0
  and every context unseen) p is uniform.
- ``witten_bell``: p_0 = 1/V and, for usable orders,
  p_j(w | h) = (c_j(h, w) + D_j(h) p_{j-1}(w)) / (c_j(h) + D_j(h));
  an order that is not usable passes p_{j-1} through.

Short history: the token at block position i has i tokens before it in its
block, so only orders j <= i + 1 are available there: position 0 is scored by
the unigram part, position 1 by orders <= 2, and so on ("additive" uses the
longest available order). ``token_logprobs``, ``next_token_logprobs`` (with
fewer than k - 1 context tokens) and ``sample`` all follow this rule, so
``sample`` is exact ancestral sampling from the model ``token_logprobs`` scores.

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

All functions are pure and traceable. ``NGramConfig`` is frozen and hashable:
pass it as a static argument (``jax.jit(fit, static_argnums=0)``,
``jax.jit(sample, static_argnums=(0, 3, 4), static_argnames="top_k")``) or
close over it with ``functools.partial``. Everything else vmaps, e.g. over
seeds: ``jax.vmap(lambda p, key: sample(cfg, p, key, B, L))(params_S, keys_S)``.
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


def _ctx_code(cfg: NGramConfig, j: int, ctx: jax.Array) -> jax.Array:
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


def _run_starts(sorted_E: jax.Array) -> jax.Array:
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
    seg_E = jnp.cumsum(_run_starts(sorted_E)) - 1
    # The r-th run of equal codes lands in slot r; slots past the last run stay empty.
    keys_E = jnp.full((E,), _SENTINEL, jnp.int32).at[seg_E].set(sorted_E)
    slot_E = jnp.searchsorted(keys_E, code_E)
    counts_E = jnp.zeros((E,), jnp.float32).at[slot_E].add(w_E, mode="drop")
    # A context's continuations are a contiguous run of at most V sorted keys.
    start_E = _run_starts(keys_E // V)
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
        ctx = _ctx_code(cfg, j, win_NxWxj[..., :-1])
        fit_j = _fit_dense if cfg.is_dense(j) else _fit_sparse
        tables.append(fit_j(cfg, j, ctx, win_NxWxj[..., -1], w_NxW))
    return tuple(tables)


# ----------------------------------------------------------------------------
# lookups


def _lookup_ctx(cfg, table: Table, ctx):
    """(c_j(h), D_j(h), base): base is h's dense row or its first sparse entry."""
    if isinstance(table, DenseCounts):
        return table.total_R[ctx], table.distinct_R[ctx], ctx
    V, E = cfg.vocab_size, table.keys_E.shape[0]
    first = jnp.minimum(jnp.searchsorted(table.keys_E, ctx * V), E - 1)
    seen = table.keys_E[first] // V == ctx
    return (jnp.where(seen, table.ctx_total_E[first], 0.0),
            jnp.where(seen, table.ctx_distinct_E[first], 0.0), first)


def _lookup_entry(cfg, table: Table, ctx, tok):
    """(c_j(h, w), c_j(h), D_j(h)) for context codes ctx and tokens tok of one shape."""
    tot, dist, base = _lookup_ctx(cfg, table, ctx)
    if isinstance(table, DenseCounts):
        return table.counts_RxV[base, tok], tot, dist
    E = table.keys_E.shape[0]
    code = ctx * cfg.vocab_size + tok
    pos = jnp.minimum(jnp.searchsorted(table.keys_E, code), E - 1)
    return jnp.where(table.keys_E[pos] == code, table.counts_E[pos], 0.0), tot, dist


def _lookup_row(cfg, table: Table, ctx):
    """(c_j(h, .) of shape ctx.shape + (V,), c_j(h), D_j(h)) for context codes ctx."""
    tot, dist, base = _lookup_ctx(cfg, table, ctx)
    if isinstance(table, DenseCounts):
        return table.counts_RxV[base], tot, dist
    V, E = cfg.vocab_size, table.keys_E.shape[0]
    shape = ctx.shape
    ctx_Q, base_Q = ctx.reshape(-1), base.reshape(-1)
    # At most V continuations, stored from `base` on in token order.
    idx_QxV = jnp.minimum(base_Q[:, None] + jnp.arange(V), E - 1)
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
    ctx = _ctx_code(cfg, j, ngrams[..., :-1])
    return _lookup_entry(cfg, params[j - 1], ctx, ngrams[..., -1])[0]


# ----------------------------------------------------------------------------
# smoothing as a mixture


def _mixture_weights(cfg: NGramConfig, tots, dists, avails) -> list:
    """[pi_0, pi_1, ..., pi_k] from per-order c_j(h), D_j(h) and availability."""
    k, V = cfg.order, cfg.vocab_size
    usable = [a & (t > 0) for t, a in zip(tots, avails)]
    zero = jnp.zeros(jnp.broadcast_shapes(*[t.shape for t in tots]), jnp.float32)
    pis = [zero] * (k + 1)
    if cfg.smoothing == "additive":
        tot, top = tots[0], jnp.zeros(zero.shape, jnp.int32)
        for j in range(1, k):  # the longest available order wins
            tot, top = jnp.where(avails[j], tots[j], tot), jnp.where(avails[j], j, top)
        share = tot / (tot + cfg.alpha * V)
        pis = [1.0 - share] + [jnp.where(top == j, share, 0.0) for j in range(k)]
    elif cfg.smoothing == "interpolate":
        lam = cfg.lambdas
        raw = [jnp.where(u, jnp.float32(l), 0.0) for u, l in zip(usable, lam[1:])]
        den = lam[0] + sum(raw)
        safe = jnp.where(den > 0, den, 1.0)
        pis = [jnp.where(den > 0, lam[0] / safe, 1.0)] + [r / safe for r in raw]
    else:  # Witten-Bell: unroll the recursion from the top order down
        rest = zero + 1.0
        for j in reversed(range(k)):
            den = jnp.where(usable[j], tots[j] + dists[j], 1.0)
            beta = jnp.where(usable[j], tots[j] / den, 0.0)
            pis[j + 1] = rest * beta
            rest = rest * (1.0 - beta)
        pis[0] = rest
    return [zero + p for p in pis]


def _mix(cfg: NGramConfig, pis, counts, tots) -> jax.Array:
    """p = pi_0 / V + sum_j pi_j c_j / c_j(h); counts may carry a trailing V axis."""
    p = pis[0] / cfg.vocab_size
    for pi, c, t in zip(pis[1:], counts, tots):
        p = p + pi * c / jnp.where(t > 0, t, 1.0)
    return p


def _history(x_NxL: jax.Array, k1: int) -> jax.Array:
    """(N, L, k-1): the k - 1 tokens before each position, oldest first, zero-padded."""
    N, L = x_NxL.shape
    cols = [jnp.pad(x_NxL, ((0, 0), (k1 - t, 0)))[:, :L] for t in range(k1)]
    return jnp.stack(cols, -1) if cols else jnp.zeros((N, L, 0), jnp.int32)


def token_logprobs(cfg: NGramConfig, params: NGramParams, blocks_NxL: jax.Array) -> jax.Array:
    """log p(x_i | x_<i) at every position of every block, (N, L).

    The history is the in-block prefix: position i uses orders j <= min(k, i + 1).
    A token of probability 0 (only possible with "interpolate" and lambda_0 = 0)
    scores -inf.
    """
    x_NxL = jnp.asarray(blocks_NxL, jnp.int32)
    N, L = x_NxL.shape
    k1 = cfg.order - 1
    hist_NxLxK1 = _history(x_NxL, k1)
    contexts = _contexts(cfg, hist_NxLxK1, jnp.broadcast_to(jnp.arange(L), (N, L)))
    counts, tots, dists = zip(*[_lookup_entry(cfg, table, ctx, x_NxL)
                                for table, (ctx, _) in zip(params, contexts)])
    pis = _mixture_weights(cfg, tots, dists, [avail for _, avail in contexts])
    return jnp.log(_mix(cfg, pis, counts, tots))


def _contexts(cfg, window, n_avail):
    """Per order: context code of the window (..., k-1) and whether it is available."""
    k1 = cfg.order - 1
    return [(_ctx_code(cfg, j, window[..., k1 - (j - 1):]), n_avail >= j - 1)
            for j in range(1, cfg.order + 1)]


def _next_logprobs(cfg, params, window, n_avail) -> jax.Array:
    """log p(. | window) (..., V) for a window (..., k-1) whose last n_avail tokens are real."""
    contexts = _contexts(cfg, window, n_avail)
    rows, tots, dists = zip(*[_lookup_row(cfg, table, ctx)
                              for table, (ctx, _) in zip(params, contexts)])
    pis = _mixture_weights(cfg, tots, dists, [avail for _, avail in contexts])
    return jnp.log(_mix(cfg, [p[..., None] for p in pis], rows, [t[..., None] for t in tots]))


def next_token_logprobs(cfg: NGramConfig, params: NGramParams,
                        context_tokens: jax.Array) -> jax.Array:
    """log p(. | context), (..., V), for contexts (..., C), oldest token first.

    Only the last k - 1 tokens matter. A context of C < k - 1 tokens (C may be 0)
    is a block prefix of length C (short-history rule).
    """
    ctx = jnp.asarray(context_tokens, jnp.int32)
    C, k1 = ctx.shape[-1], cfg.order - 1
    if C >= k1:
        window, n_avail = ctx[..., C - k1:], k1
    else:
        window, n_avail = jnp.pad(ctx, [(0, 0)] * (ctx.ndim - 1) + [(k1 - C, 0)]), C
    return _next_logprobs(cfg, params, window, jnp.full(ctx.shape[:-1], n_avail))


def all_next_logprobs(cfg: NGramConfig, params: NGramParams, blocks_NxL: jax.Array) -> jax.Array:
    """log p(. | x_<i) at every position i of every block, (N, L, V).

    Row i is the distribution ``token_logprobs`` scores x_i under (short-history
    rule at the block start); it is V times larger, so prefer ``token_logprobs``
    when only the observed tokens matter.
    """
    x_NxL = jnp.asarray(blocks_NxL, jnp.int32)
    N, L = x_NxL.shape
    return _next_logprobs(cfg, params, _history(x_NxL, cfg.order - 1),
                          jnp.broadcast_to(jnp.arange(L), (N, L)))


def perplexity(cfg: NGramConfig, params: NGramParams, blocks_NxL: jax.Array,
               weights_N: Optional[jax.Array] = None) -> jax.Array:
    """exp(mean negative log-likelihood per token) over (weighted) blocks.

    Every position counts, including the short-history ones at a block start;
    blocks with weight <= 0 are left out.
    """
    lp_NxL = token_logprobs(cfg, params, blocks_NxL)
    N, L = lp_NxL.shape
    w_N = (jnp.ones((N,), jnp.float32) if weights_N is None
           else jnp.maximum(jnp.asarray(weights_N, jnp.float32), 0.0))
    nll_N = -jnp.where(w_N > 0, lp_NxL.sum(-1), 0.0)  # an absent row may score -inf
    return jnp.exp(jnp.sum(w_N * nll_N) / (L * jnp.sum(w_N)))


# ----------------------------------------------------------------------------
# sampling


def _first_at_least(cum_at, target, n, n_max: int):
    """Smallest i in [0, n) with cum_at(i) >= target, for nondecreasing cum_at with
    cum_at(n - 1) >= target; a bisection of ceil(log2 n_max) static steps."""
    def halve(_, lo_hi):
        lo, hi = lo_hi
        mid = (lo + hi) // 2
        ok = cum_at(mid) >= target
        return jnp.where(ok, lo, mid + 1), jnp.where(ok, mid, hi)

    lo, hi = lax.fori_loop(0, max(1, math.ceil(math.log2(n_max))), halve,
                           (jnp.zeros_like(n), jnp.maximum(n - 1, 0)))
    return jnp.minimum(lo, hi)


def _running_sum(x: jax.Array, offset: jax.Array, width: int) -> jax.Array:
    """Running sums along the last axis over runs of at most `width` elements;
    offset is each element's position in its run. Hillis-Steele: ceil(log2 width)
    shifted adds, where jnp.cumsum is a quadratic reduce_window on XLA:CPU (slow to
    run, and very slow to constant-fold when the tables are jit constants)."""
    n, d = x.shape[-1], 1
    while d < min(n, width):
        shifted = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(d, 0)])[..., :n]
        x = x + jnp.where(offset >= d, shifted, 0.0)
        d *= 2
    return x


def _running_counts(cfg, table: Table) -> jax.Array:
    """sum_{w' <= w} c_j(h, w') for every table entry, the index of ``_draw_ml``."""
    V = cfg.vocab_size
    if isinstance(table, DenseCounts):
        return _running_sum(table.counts_RxV, jnp.arange(V), V)
    E = table.keys_E.shape[0]
    start_E = _run_starts(table.keys_E // V)
    offset_E = jnp.arange(E) - lax.cummax(jnp.where(start_E, jnp.arange(E), 0))
    # sums never mix contexts, so they stay exact where a global cumsum would not
    return _running_sum(table.counts_E, offset_E, V)


def _draw_ml(cfg, table: Table, running, ctx, base, dist, u):
    """A draw from ML_j(. | h) by inverse CDF over the running counts; u in (0, 1]."""
    V = cfg.vocab_size
    if isinstance(table, DenseCounts):
        cum = lambda i: running[base, i]
        target = u * cum(jnp.full_like(base, V - 1))
        return _first_at_least(cum, target, jnp.full_like(base, V), V)
    E = table.keys_E.shape[0]
    n = dist.astype(jnp.int32)
    cum = lambda i: running[jnp.minimum(base + i, E - 1)]
    i = _first_at_least(cum, u * cum(jnp.maximum(n - 1, 0)), n, V)
    return table.keys_E[jnp.minimum(base + i, E - 1)] - ctx * V


def _draw_ancestral(cfg, params, running, window_BxK1, n_avail_B, u_Bx2):
    """One exact draw from p(. | window): pick a mixture component, then a token from it."""
    u_B = u_Bx2[:, 1]  # u_Bx2[:, 0] picks the component, u_B the token within it
    contexts = _contexts(cfg, window_BxK1, n_avail_B)
    tots, dists, toks = [], [], []
    for table, run, (ctx, _) in zip(params, running, contexts):
        t, d, base = _lookup_ctx(cfg, table, ctx)
        tots.append(t)
        dists.append(d)
        toks.append(_draw_ml(cfg, table, run, ctx, base, d, u_B))
    pi_BxM = jnp.stack(_mixture_weights(cfg, tots, dists, [a for _, a in contexts]), -1)
    cum_BxM = jnp.cumsum(pi_BxM, -1)
    # first component whose running weight reaches u: one of weight 0 is never picked
    m_B = jnp.sum(cum_BxM < (u_Bx2[:, 0] * cum_BxM[:, -1])[:, None], -1)
    m_B = jnp.minimum(m_B, cfg.order)
    uniform_B = jnp.minimum(jnp.ceil(u_B * cfg.vocab_size).astype(jnp.int32) - 1,
                            cfg.vocab_size - 1)
    cand_BxM = jnp.stack([jnp.maximum(uniform_B, 0)] + toks, -1)
    return jnp.take_along_axis(cand_BxM, m_B[:, None], -1)[:, 0]


def _draw_tempered(logits_BxV, u_B, top_k: Optional[int]) -> jax.Array:
    """Inverse-CDF draw from softmax(logits), optionally over the top_k logits; u in (0, 1]."""
    if top_k is not None:
        logits_BxV, idx_BxK = lax.top_k(logits_BxV, top_k)
    cdf_BxV = jnp.cumsum(jnp.exp(logits_BxV - logits_BxV.max(-1, keepdims=True)), -1)
    i_B = jnp.sum(cdf_BxV < (u_B * cdf_BxV[:, -1])[:, None], -1)
    i_B = jnp.minimum(i_B, logits_BxV.shape[-1] - 1)
    if top_k is not None:
        i_B = jnp.take_along_axis(idx_BxK, i_B[:, None], -1)[:, 0]
    return i_B.astype(jnp.int32)


def sample(cfg: NGramConfig, params: NGramParams, key: jax.Array, n_blocks: int, length: int,
           prompts: Optional[jax.Array] = None,
           temperature: Union[float, jax.Array, None] = None,
           top_k: Optional[int] = None) -> jax.Array:
    """Exact ancestral sampling of (n_blocks, length) int32 token blocks.

    Position t of block b draws from p(. | in-block history) with uniforms from
    the key ``fold_in(fold_in(key, b), t)``, so a block's tokens depend on key and
    b only: drawing more blocks or longer ones extends a sample, never changes it.
    With temperature None or 1.0 and no top_k, it first picks a mixture
    component of p (module docstring) and then a token from it by bisection,
    which never builds the V-vector. Otherwise it draws from
    softmax(log p / temperature), over the top_k most likely tokens if set,
    which builds the whole V-vector at every step (about 15x slower).
    ``prompts`` (n_blocks, P) or (P,), P <= length, fixes the first P tokens of
    each block; sampling continues from them. n_blocks, length and top_k are
    static; a temperature array (traced) takes the tempered path.
    """
    V, k1 = cfg.vocab_size, cfg.order - 1
    if top_k is not None and (not _is_int(top_k) or not 1 <= top_k <= V):
        raise ValueError(f"top_k must be None or an integer in [1, {V}], got {top_k!r}")
    if _is_real(temperature) and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    tempered = top_k is not None or not (temperature is None or
                                         (_is_real(temperature) and temperature == 1))
    if prompts is None:
        P, prompt_BxL = 0, None
    else:
        prompts = jnp.asarray(prompts, jnp.int32)
        P = prompts.shape[-1]
        if P > length:
            raise ValueError(f"prompt length {P} exceeds block length {length}")
        prompt_BxL = jnp.pad(jnp.broadcast_to(prompts, (n_blocks, P)),
                             ((0, 0), (0, length - P)))
    # Every uniform up front, vectorised. 1 - U[0, 1) lies in (0, 1], which keeps
    # zero-probability tokens out of reach of the draws.
    def uniforms(b, t):
        return jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, b), t), (2,))

    u_LxBx2 = 1.0 - jax.vmap(jax.vmap(uniforms, (0, None)), (None, 0))(
        jnp.arange(n_blocks), jnp.arange(length))
    running = None if tempered else [_running_counts(cfg, t) for t in params]

    def step(window_BxK1, xs):
        t, u_Bx2 = xs
        n_avail_B = jnp.full((n_blocks,), t)
        if tempered:
            logp_BxV = _next_logprobs(cfg, params, window_BxK1, n_avail_B)
            temp = 1.0 if temperature is None else temperature
            tok_B = _draw_tempered(logp_BxV / temp, u_Bx2[:, 0], top_k)
        else:
            tok_B = _draw_ancestral(cfg, params, running, window_BxK1, n_avail_B, u_Bx2)
        if P > 0:
            tok_B = jnp.where(t < P, prompt_BxL[:, t], tok_B)
        if k1 > 0:
            window_BxK1 = jnp.concatenate([window_BxK1[:, 1:], tok_B[:, None]], axis=1)
        return window_BxK1, tok_B

    _, tok_LxB = lax.scan(step, jnp.zeros((n_blocks, k1), jnp.int32),
                          (jnp.arange(length), u_LxBx2))
    return tok_LxB.T


def params_nbytes(params: NGramParams) -> int:
    """Bytes held by one set of count tables (times S for S vmapped seeds)."""
    return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(params))
