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
is fed in one pass (``prefill``), then a ``lax.scan`` over positions feeds
one token at a time through the cache (``decode_step``).

Axis letters: B batch, P prefix length, T positions, V vocabulary.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from collapse_sim.simulator.lm.transformer import TransformerConfig, decode_step, init_cache, prefill

__all__ = ["filter_logits", "sample_logits", "make_sampler"]


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


def sample_logits(key, logits_BxV, temperature, top_k: Optional[int] = None, top_p=None):
    """One token per row from filter(logits / temperature); greedy if T <= 0."""
    temperature = jnp.asarray(temperature, jnp.float32)
    logits_BxV = logits_BxV.astype(jnp.float32)
    scaled_BxV = filter_logits(logits_BxV / jnp.maximum(temperature, 1e-6), top_k, top_p)
    drawn_B = jax.random.categorical(key, scaled_BxV, axis=-1)
    greedy_B = jnp.argmax(logits_BxV, axis=-1)
    return jnp.where(temperature > 0, drawn_B, greedy_B).astype(jnp.int32)


def make_sampler(
    model_cfg: TransformerConfig,
    length: int,
    top_k: Optional[int] = None,
    top_p: Optional[float] = None,
    *,
    prompt_len: int = 0,
    bos: int = 10,
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
        logits_BxPxV, cache = prefill(model_cfg, params, prefix_BxP, init_cache(model_cfg, B))

        def step(carry, t):
            cache, logits_BxV = carry
            token_B = draw(key, t, logits_BxV, temperature)
            logits_BxV, cache = decode_step(model_cfg, params, cache, token_B, t)
            return (cache, logits_BxV), token_B

        # Tokens n_prefix..length-2 are sampled and fed; the last is only sampled
        # (feeding it would need position length-1, which may equal context).
        (_, logits_BxV), tokens_TxB = jax.lax.scan(
            step, (cache, logits_BxPxV[:, -1]), jnp.arange(n_prefix, length - 1)
        )
        last_B = draw(key, length - 1, logits_BxV, temperature)
        return jnp.concatenate([prefix_BxP, tokens_TxB.T, last_B[:, None]], axis=1)

    def sample(key, params, prompts, temperature):
        return core(key, params, prompts, jnp.asarray(temperature, jnp.float32))

    sample.jitted = core
    return sample
