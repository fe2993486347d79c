"""Autoregressive sampling from the transformer LM with a key-value cache.

``make_sampler(model_cfg, length, top_k, top_p, prompt_len=..., bos=...)``
returns ``sample(key, params, prompts, temperature) -> (B, length) int32``.

Each returned row is a complete block of ``length`` tokens, so it has the
layout of a training row (``length = context + 1`` gives a full block):

- with ``prompt_len = P > 0`` (Shumailov et al. 2024, Nature 631: the model
  continues the first P tokens of real blocks), columns 0..P-1 are copied from
  ``prompts[:, :P]`` and columns P..length-1 are sampled;
- with ``prompt_len = 0`` column 0 is the fixed BOS byte ``bos`` (default 10,
  a newline: the model's distribution after a line break) and columns
  1..length-1 are sampled.  ``prompts`` then only supplies the batch size B.

Drop the prefix columns (``out[:, max(P, 1):]``) to keep only model text.

Token t is drawn from softmax(filter(logits_t / temperature)) with the key
``fold_in(key, t)``; ``temperature <= 0`` means greedy (argmax).  The prefix
is fed in one pass (``prefill``), then ``lax.scan`` over positions feeds one
token at a time through the cache (``decode_step``).

Speed (the transformer world's sampling, measured on a 2-core CPU; numbers in
README.md): the draw is ``jax.random.categorical``'s Gumbel-max, argmax(logits +
gumbel(fold_in(key, t))), with its argmax written as a max and a min over the
vocabulary (:func:`first_argmax`, the same index), because XLA's CPU backend
runs the fused argmax reduction element by element and it took a third of the
sampling time.  And the positions fed are split into ``CACHE_SEGMENTS`` scans
whose caches hold only the positions that segment can attend to (a segment
ending at position e carries e positions, padded with zeros at the next),
since reading the whole context-long cache at every step made attention
memory-bound.  Masked positions weigh exactly 0 in the softmax, so the
segments change no probability beyond float rounding; the tokens equal those
of a full recompute with ``jax.random.categorical`` (tests/lm/test_sample_speed.py).

Axis letters: B batch, P prefix length, T positions, V vocabulary.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from collapse_sim.simulator.lm.transformer import KVCache, TransformerConfig, decode_step, init_cache, prefill

__all__ = ["filter_logits", "first_argmax", "sample_logits", "make_sampler"]

CACHE_SEGMENTS = 4  # scans over the positions fed, each with a cache as long as it needs


def _ordered_u32(x):
    """Map float32 to uint32 so that the integer order is the float order
    (-0.0 is first made +0.0, which compares equal to it)."""
    x = jnp.where(x == 0, 0.0, x).astype(jnp.float32)
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))


def _keep_at_least(logits_xV, weights_xV, budget):
    """Keep token j iff the total weight of tokens with a strictly larger
    logit is < budget (per row; ties with a kept token are kept).

    The kept set is {j : key_j >= t*}, with t* the smallest uint32 such that
    sum_i w_i [key_i > t*] < budget; this sum is non-increasing in t, so 32
    bisection steps find t* exactly, in O(32 V) per row.  On a 2-core CPU
    this took 0.4-0.6 ms for (256, 256) logits where a sort or ``lax.top_k``
    took 7-9 ms, several times the cost of the model's own decode step.
    """
    key_xV = _ordered_u32(logits_xV)
    lo_x1 = jnp.zeros(key_xV.shape[:-1] + (1,), jnp.uint32)
    hi_x1 = jnp.full_like(lo_x1, 0xFFFFFFFF)

    def bisect(_, lo_hi):
        lo_x1, hi_x1 = lo_hi
        mid_x1 = lo_x1 + (hi_x1 - lo_x1) // 2
        above_x1 = jnp.sum(jnp.where(key_xV > mid_x1, weights_xV, 0.0), axis=-1, keepdims=True)
        ok_x1 = above_x1 < budget
        return jnp.where(ok_x1, lo_x1, mid_x1 + 1), jnp.where(ok_x1, mid_x1, hi_x1)

    cut_x1, _ = jax.lax.fori_loop(0, 32, bisect, (lo_x1, hi_x1))
    return jnp.where(key_xV >= cut_x1, logits_xV, jnp.array(-jnp.inf, logits_xV.dtype))


def filter_logits(logits_xV, top_k: Optional[int] = None, top_p=None):
    """Set to -inf the logits outside the top-k and outside the nucleus.

    ``top_k`` (static int; None or 0 = off) keeps token j iff fewer than k
    tokens have a strictly larger logit (the k largest, ties kept).
    ``top_p`` (float or traced scalar; None = off) then keeps token j iff the
    probability mass of strictly more likely tokens is < top_p: the smallest
    set of most likely tokens whose mass reaches top_p (Holtzman et al. 2020,
    nucleus sampling); the most likely token always survives.  Works on any
    leading shape; the last axis is the vocabulary.  Thresholds compare
    values as float32.
    """
    V = logits_xV.shape[-1]
    if top_k is not None and 0 < top_k < V:
        logits_xV = _keep_at_least(logits_xV, jnp.ones(logits_xV.shape, jnp.float32), top_k)
    if top_p is not None and not (isinstance(top_p, (int, float)) and top_p >= 1.0):
        probs_xV = jax.nn.softmax(logits_xV.astype(jnp.float32), axis=-1)
        logits_xV = _keep_at_least(logits_xV, probs_xV, jnp.asarray(top_p, jnp.float32))
    return logits_xV


def first_argmax(x_xV):
    """``jnp.argmax(x, axis=-1)`` (the first index of the largest value, NaN
    counted as largest; int32) as two plain reductions, a max and a min, which
    XLA's CPU backend vectorises; its fused argmax reduction it does not.  (A
    row holding both +inf and NaN gives the first of them, argmax the first NaN.)"""
    x_xV = jnp.where(jnp.isnan(x_xV), jnp.inf, x_xV)
    V = x_xV.shape[-1]
    top_x1 = jnp.max(x_xV, axis=-1, keepdims=True)
    return jnp.min(jnp.where(x_xV == top_x1, jnp.arange(V, dtype=jnp.int32), V), axis=-1)


def sample_logits(key, logits_BxV, temperature, top_k: Optional[int] = None, top_p=None):
    """One token per row from filter(logits / temperature); greedy if T <= 0.

    The draw is ``jax.random.categorical(key, filtered)``'s own Gumbel-max,
    argmax(filtered + gumbel(key)), with the same noise and the same token."""
    temperature = jnp.asarray(temperature, jnp.float32)
    logits_BxV = logits_BxV.astype(jnp.float32)
    scaled_BxV = filter_logits(logits_BxV / jnp.maximum(temperature, 1e-6), top_k, top_p)
    drawn_B = first_argmax(jax.random.gumbel(key, scaled_BxV.shape, jnp.float32) + scaled_BxV)
    greedy_B = first_argmax(logits_BxV)
    return jnp.where(temperature > 0, drawn_B, greedy_B).astype(jnp.int32)


def segments(first: int, stop: int, n: int = CACHE_SEGMENTS) -> list[tuple[int, int]]:
    """Split the positions fed, first..stop-1, into at most ``n`` runs [s, e) of
    near-equal length (a run of positions < e needs a cache of e positions)."""
    cuts = sorted({first + (stop - first) * j // n for j in range(n + 1)})
    return list(zip(cuts[:-1], cuts[1:]))


def _with_length(cache: KVCache, n: int) -> KVCache:
    """The cache cut or zero-padded to ``n`` positions (axis 2 of its (B, H, C, K) buffers)."""
    def fit(x):
        return x[:, :, :n] if x.shape[2] >= n else jnp.pad(x, ((0, 0), (0, 0), (0, n - x.shape[2]), (0, 0)))

    return KVCache(tuple(map(fit, cache.k)), tuple(map(fit, cache.v)))


def make_sampler(
    model_cfg: TransformerConfig,
    length: int,
    top_k: Optional[int] = None,
    top_p: Optional[float] = None,
    *,
    prompt_len: int = 0,
    bos: int = 10,
    cache_segments: int = CACHE_SEGMENTS,
) -> Callable:
    """Return ``sample(key, params, prompts, temperature) -> (B, length) int32``.

    ``length``, ``top_k``, ``top_p`` and ``prompt_len`` are static (they set
    shapes or code paths); ``temperature`` is traced: a Python float and a
    jnp scalar share one compilation, because the returned function converts
    it to float32 before entering its jitted core.  (If you wrap ``sample``
    in your own ``jax.jit``, pass a float32 array there too: your jit sees
    Python floats as weakly typed.)

    ``prompts``: (B, >= prompt_len) int array; only ``prompts[:, :prompt_len]``
    is read (only B when prompt_len = 0).  Vmappable over seeds, e.g.
    ``jax.vmap(sample, in_axes=(0, 0, None, None))(keys_S, params_S, prompts,
    t)`` or with per-seed prompts ``in_axes=(0, 0, 0, None)``.

    ``cache_segments`` (static): the scans the positions fed are split into
    (module docstring); 1 carries the whole context-long cache throughout.  It
    changes the speed and the compile time, not the tokens.

    The jitted core is exposed as ``sample.jitted`` (for ``.lower`` or
    ``._cache_size()``).
    """
    n_prefix = max(prompt_len, 1)
    if not n_prefix < length <= model_cfg.context + 1:
        raise ValueError(
            f"need max(prompt_len, 1) = {n_prefix} < length = {length} <= context + 1 = "
            f"{model_cfg.context + 1}"
        )
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be None or >= 0, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p!r}")
    if not 0 <= bos < model_cfg.vocab_size:
        raise ValueError(f"bos must be a token id < vocab_size, got {bos!r}")
    if not (isinstance(cache_segments, int) and cache_segments >= 1):
        raise ValueError(f"cache_segments must be a whole number >= 1, got {cache_segments!r}")

    def draw(key, t, logits_BxV, temperature):
        return sample_logits(jax.random.fold_in(key, t), logits_BxV, temperature, top_k, top_p)

    @jax.jit
    def core(key, params, prompts, temperature):
        B = prompts.shape[0]
        if prompt_len > 0:
            if prompts.shape[1] < prompt_len:
                raise ValueError(f"prompts have {prompts.shape[1]} < prompt_len = {prompt_len} columns")
            prefix_BxP = prompts[:, :prompt_len].astype(jnp.int32)
        else:
            prefix_BxP = jnp.full((B, 1), bos, jnp.int32)
        runs = segments(n_prefix, length - 1, cache_segments)
        cache = _with_length(init_cache(model_cfg, B), runs[0][1] if runs else n_prefix)
        logits_BxPxV, cache = prefill(model_cfg, params, prefix_BxP, cache)

        def step(carry, t):
            cache, logits_BxV = carry
            token_B = draw(key, t, logits_BxV, temperature)
            logits_BxV, cache = decode_step(model_cfg, params, cache, token_B, t)
            return (cache, logits_BxV), token_B

        # Tokens n_prefix..length-2 are sampled and fed; the last is only sampled
        # (feeding it would need position length-1, which may equal context).
        logits_BxV, tokens = logits_BxPxV[:, -1], [prefix_BxP]
        for start, stop in runs:
            carry = (_with_length(cache, stop), logits_BxV)
            (cache, logits_BxV), tokens_TxB = jax.lax.scan(step, carry, jnp.arange(start, stop))
            tokens.append(tokens_TxB.T)
        last_B = draw(key, length - 1, logits_BxV, temperature)
        return jnp.concatenate(tokens + [last_B[:, None]], axis=1)

    def sample(key, params, prompts, temperature):
        return core(key, params, prompts, jnp.asarray(temperature, jnp.float32))

    sample.jitted = core
    return sample
