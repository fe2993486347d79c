"""ToEdit's token edit rule (Zhu et al. 2024, arXiv 2412.14689, §4.1 and Alg. 1;
theory/derivations.md §15), for any model with the interface of simulator/lm/interface.py.

A prior language model scores each token x_i of a source block given its original
prefix x_<i, in one forward pass (no autoregressive generation).  With
p_i = P(x_i | x_<i), threshold p, top-k size k and temperature beta:

    x'_i = x~_i ~ softmax(top-k log P(. | x_<i) / beta)   if p_i >= p
    x'_i = x_i                                              otherwise.

The draw is a Gumbel-max over the k largest log-probabilities l_1..l_k
(argmax_j (l_j / beta + g_j) with g_j iid Gumbel(0, 1) is a draw from
softmax(l / beta)), so never a token outside the top k.  Position (n, i) uses the key
``fold_in(fold_in(key, n), i)``, so the rule applied to some rows or positions only
draws what the rule on all of them draws; :func:`chunked_rule` (the prior's scores a
chunk of blocks at a time) and :func:`resample_where` (the prior's distributions at
the selected positions only) both equal :func:`toedit_rule` with the same key.

Axis letters: N blocks, W tokens per block, L = W - 1 scored positions, V
vocabulary, K = top_k candidates, P positions, B positions or blocks per batch,
C chunks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from collapse_sim.simulator.lm.interface import LanguageModel


def _pick_top_k(gumbel_xK, logprobs_xV, beta):
    """Gumbel-max over the K largest log-probabilities: a draw from their softmax at
    temperature beta (K = the noise's last axis)."""
    top_lp_xK, top_idx_xK = jax.lax.top_k(logprobs_xV, gumbel_xK.shape[-1])
    choice_x = jnp.argmax(top_lp_xK / beta + gumbel_xK, axis=-1)
    return jnp.take_along_axis(top_idx_xK, choice_x[..., None], -1)[..., 0]


def draw_top_k(key, logprobs_xV, top_k: int, beta):
    """One draw per row from softmax(top-k log-probabilities / beta) (ToEdit's
    resampling distribution, theory/derivations.md §15): never a token outside the top k."""
    return _pick_top_k(jax.random.gumbel(key, logprobs_xV.shape[:-1] + (top_k,), jnp.float32), logprobs_xV, beta)


def _position_gumbel(key, rows_P, cols_P, top_k: int):
    """(P, top_k) Gumbel noise of the positions (row, column); position (n, i) uses
    the key ``fold_in(fold_in(key, n), i)`` whatever else is drawn with it."""
    def one(n, i):
        return jax.random.gumbel(jax.random.fold_in(jax.random.fold_in(key, n), i), (top_k,), jnp.float32)

    return jax.vmap(one)(rows_P, cols_P)


def toedit_rule(key, logprobs_NxLxV, tokens_NxL, threshold, top_k: int, beta, rows_N=None):
    """ToEdit's edit rule (module docstring) on every position of every block.

    ``logprobs_NxLxV[n, i]`` is the prior's log P(. | x_<i) on the original
    prefix and ``tokens_NxL[n, i]`` the token x_i it scores.  ``top_k`` is
    static, ``threshold`` and ``beta`` may be traced (so p > 1, which selects
    nothing, and p = 0, which selects every position, need no special case).
    The draw at (n, i) is the Gumbel-max of the key
    ``fold_in(fold_in(key, rows_N[n]), i)`` (default ``rows_N = arange(N)``).
    Returns ``(edited_NxL, selected_NxL, prob_NxL)``; a selected token may be
    redrawn as itself, so changed <= selected.
    """
    N, L = tokens_NxL.shape
    rows_N = jnp.arange(N) if rows_N is None else rows_N
    rows_NxL = jnp.broadcast_to(rows_N[:, None], (N, L))
    cols_NxL = jnp.broadcast_to(jnp.arange(L), (N, L))
    gumbel_NxLxK = _position_gumbel(key, rows_NxL.reshape(-1), cols_NxL.reshape(-1), top_k).reshape(N, L, top_k)
    prob_NxL = jnp.exp(jnp.take_along_axis(logprobs_NxLxV, tokens_NxL[..., None], -1)[..., 0])
    selected_NxL = prob_NxL >= threshold
    new_NxL = _pick_top_k(gumbel_NxLxK, logprobs_NxLxV, beta)
    return jnp.where(selected_NxL, new_NxL, tokens_NxL), selected_NxL, prob_NxL


def chunked_rule(lm: LanguageModel, key, prior, tokens_NxW, threshold, top_k: int, beta, chunk: int):
    """:func:`toedit_rule` on the prior's scores of every block, ``chunk`` blocks at
    a time (a ``lax.map``), so that the (chunk, W-1, V) log-probabilities, not the
    (N, W-1, V) ones, are held at once.  The result does not depend on ``chunk``."""
    N, W = tokens_NxW.shape
    n_chunks = -(-N // chunk)
    pad = n_chunks * chunk - N
    tok_CxBxW = jnp.pad(tokens_NxW, ((0, pad), (0, 0))).reshape(n_chunks, chunk, W)
    rows_CxB = jnp.arange(n_chunks * chunk).reshape(n_chunks, chunk)

    def one(args):
        tok_BxW, rows_B = args
        return toedit_rule(key, lm.next_logprobs(prior, tok_BxW), tok_BxW[:, 1:], threshold, top_k, beta, rows_B)

    out = jax.lax.map(one, (tok_CxBxW, rows_CxB))
    return tuple(a.reshape((n_chunks * chunk,) + a.shape[2:])[:N] for a in out)


def resample_where(lm: LanguageModel, key, prior, tokens_NxW, selected_NxL, top_k: int, beta, batch: int):
    """The tokens :func:`toedit_rule` (same key) draws at the selected positions,
    computing the prior's distributions at those positions only (``lm.position_logprobs``),
    ``batch`` positions at a time in a ``lax.while_loop`` that stops after the last
    selected one.  Positions not selected keep their token.  Returns (N, W-1)."""
    N, W = tokens_NxW.shape
    L = W - 1
    P = N * L
    flat_P = selected_NxL.reshape(-1)
    n_batches = -(-P // batch)
    # selected positions first, in order; then the rest, then P (a dropped index) as padding
    order = jnp.argsort(~flat_P, stable=True)
    order = jnp.concatenate([order, jnp.full((n_batches * batch - P,), P, order.dtype)])
    n_selected = jnp.sum(flat_P)

    def body(state):
        b, out_P = state
        idx_B = jax.lax.dynamic_slice_in_dim(order, b * batch, batch)
        safe_B = jnp.minimum(idx_B, P - 1)
        rows_B, cols_B = safe_B // L, safe_B % L
        lp_BxV = lm.position_logprobs(prior, tokens_NxW, rows_B, cols_B + 1)
        new_B = _pick_top_k(_position_gumbel(key, rows_B, cols_B, top_k), lp_BxV, beta)
        write_B = jnp.where((idx_B < P) & flat_P[safe_B], idx_B, P)
        return b + 1, out_P.at[write_B].set(new_B.astype(out_P.dtype), mode="drop")

    _, out_P = jax.lax.while_loop(lambda st: st[0] * batch < n_selected, body,
                                  (jnp.int32(0), tokens_NxW[:, 1:].reshape(-1)))
    return out_P.reshape(N, L)
