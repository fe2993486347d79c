"""Order-k n-gram language model in pure JAX: smoothing, scoring, sampling.

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

Counting: simulator/lm/ngram_counts.py holds the count tables (``NGramParams``,
dense or sparse per order), ``fit``, ``ngram_count`` and ``params_nbytes``; they
and ``NGramConfig`` are imported here, so ``ngram.fit`` and ``ngram.NGramConfig``
are the model's whole surface.

All functions are pure and traceable. ``NGramConfig`` is frozen and hashable:
pass it as a static argument (``jax.jit(fit, static_argnums=0)``,
``jax.jit(sample, static_argnums=(0, 3, 4), static_argnames="top_k")``) or
close over it with ``functools.partial``. Everything else vmaps, e.g. over
seeds: ``jax.vmap(lambda p, key: sample(cfg, p, key, B, L))(params_S, keys_S)``.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import jax
import jax.numpy as jnp
from jax import lax

# fit, ngram_count, params_nbytes: imported as the model's surface (``ngram.fit``)
from collapse_sim.simulator.lm.ngram_counts import (  # noqa: F401
    DenseCounts,
    NGramConfig,
    NGramParams,
    Table,
    _is_int,
    _is_real,
    context_code,
    fit,
    lookup_context,
    lookup_entry,
    lookup_row,
    ngram_count,
    params_nbytes,
    run_starts,
)


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
    counts, tots, dists = zip(*[lookup_entry(cfg, table, ctx, x_NxL)
                                for table, (ctx, _) in zip(params, contexts)])
    pis = _mixture_weights(cfg, tots, dists, [avail for _, avail in contexts])
    return jnp.log(_mix(cfg, pis, counts, tots))


def _contexts(cfg, window, n_avail):
    """Per order: context code of the window (..., k-1) and whether it is available."""
    k1 = cfg.order - 1
    return [(context_code(cfg, j, window[..., k1 - (j - 1):]), n_avail >= j - 1)
            for j in range(1, cfg.order + 1)]


def _next_logprobs(cfg, params, window, n_avail) -> jax.Array:
    """log p(. | window) (..., V) for a window (..., k-1) whose last n_avail tokens are real."""
    contexts = _contexts(cfg, window, n_avail)
    rows, tots, dists = zip(*[lookup_row(cfg, table, ctx)
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
    start_E = run_starts(table.keys_E // V)
    offset_E = jnp.arange(E) - lax.cummax(jnp.where(start_E, jnp.arange(E), 0))
    # sums never mix contexts, so they stay exact where a global cumsum would not
    return _running_sum(table.counts_E, offset_E, V)


def _draw_ml(cfg, table: Table, running, ctx, start, dist, u):
    """A draw from ML_j(. | h) by inverse CDF over the running counts; u in (0, 1]."""
    V = cfg.vocab_size
    if isinstance(table, DenseCounts):
        cum = lambda i: running[start, i]
        target = u * cum(jnp.full_like(start, V - 1))
        return _first_at_least(cum, target, jnp.full_like(start, V), V)
    E = table.keys_E.shape[0]
    n = dist.astype(jnp.int32)
    cum = lambda i: running[jnp.minimum(start + i, E - 1)]
    i = _first_at_least(cum, u * cum(jnp.maximum(n - 1, 0)), n, V)
    return table.keys_E[jnp.minimum(start + i, E - 1)] - ctx * V


def _draw_ancestral(cfg, params, running, window_BxK1, n_avail_B, u_Bx2):
    """One exact draw from p(. | window): pick a mixture component, then a token from it."""
    u_B = u_Bx2[:, 1]  # u_Bx2[:, 0] picks the component, u_B the token within it
    contexts = _contexts(cfg, window_BxK1, n_avail_B)
    tots, dists, toks = [], [], []
    for table, run, (ctx, _) in zip(params, running, contexts):
        t, d, start = lookup_context(cfg, table, ctx)
        tots.append(t)
        dists.append(d)
        toks.append(_draw_ml(cfg, table, run, ctx, start, d, u_B))
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
