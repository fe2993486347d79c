"""A small decoder-only transformer LM in Flax NNX, used functionally.

Architecture (GPT-2 style, Radford et al. 2019): token embedding + learned
positional embedding, ``n_layers`` pre-LayerNorm blocks

    x <- x + Drop(Attn(LN1(x)))          causal multi-head self-attention
    x <- x + Drop(W2 GELU(W1 LN2(x)))    4x MLP

a final LayerNorm and a head tied to the token embedding,
``logits = LN_f(x) @ E^T``.  Weights are N(0, 0.02^2); the two residual output
projections of each block are scaled by 1/sqrt(2 n_layers) (GPT-2).

The module is an implementation detail: the public surface is pure functions
over ``params``, the ``nnx.State`` returned by :func:`init_params` (a pytree of
arrays that jit/vmap/scan/optax handle directly).  The graph definition comes
from ``nnx.eval_shape`` (no weights allocated) and is cached per config.

Sampling uses a key-value cache, a :class:`KVCache` pytree with static shape
(context-long buffers); :func:`prefill` fills it from a prefix with one full
forward pass, :func:`decode_step` appends one token.

Axis letters: B batch, T positions fed, C context (cache length),
H heads, K head size, D d_model, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Static shape of the model (hashable: safe to close over or mark static).

    ``context`` is the number of positions the model attends over; training
    blocks may therefore hold up to ``context + 1`` tokens (``context`` inputs
    and ``context`` shifted targets).
    """

    vocab_size: int = 256
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    context: int = 64
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "n_layers", "d_model", "n_heads", "context"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"TransformerConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"TransformerConfig.d_model ({self.d_model}) must be divisible by "
                f"n_heads ({self.n_heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


class KVCache(NamedTuple):
    """Per-layer key and value buffers, each a tuple of ``n_layers`` arrays
    of shape (B, H, C, K).  Only positions ``< pos`` of the next decode step
    are meaningful; the rest are masked out."""

    k: tuple
    v: tuple


def _dropout(x, rate: float, key):
    """Inverted dropout; identity when ``key`` is None (evaluation) or rate 0."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def _attention(q_BxHxTxK, k_BxHxSxK, v_BxHxSxK, mask_TxS):
    """softmax(q k^T / sqrt(K) + mask) v, Vaswani et al. (2017) eq. 1."""
    scale = q_BxHxTxK.shape[-1] ** -0.5
    s_BxHxTxS = jnp.einsum("bhtk,bhsk->bhts", q_BxHxTxK * scale, k_BxHxSxK)
    s_BxHxTxS = jnp.where(mask_TxS, s_BxHxTxS, jnp.finfo(s_BxHxTxS.dtype).min)
    p_BxHxTxS = jax.nn.softmax(s_BxHxTxS, axis=-1)
    return jnp.einsum("bhts,bhsk->bhtk", p_BxHxTxS, v_BxHxSxK)


class Block(nnx.Module):
    """Pre-LN transformer block: causal self-attention then a 4x GELU MLP."""

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        d = cfg.d_model
        init = nnx.initializers.normal(0.02)
        out_init = nnx.initializers.normal(0.02 / math.sqrt(2 * cfg.n_layers))
        self.n_heads = cfg.n_heads
        self.rate = cfg.dropout
        self.ln1 = nnx.LayerNorm(d, epsilon=1e-5, rngs=rngs)
        # No qkv bias: a key bias has exactly zero gradient (softmax is shift
        # invariant), so Adam would turn float noise into a random walk.
        self.qkv = nnx.Linear(d, 3 * d, use_bias=False, kernel_init=init, rngs=rngs)
        self.attn_out = nnx.Linear(d, d, kernel_init=out_init, rngs=rngs)
        self.ln2 = nnx.LayerNorm(d, epsilon=1e-5, rngs=rngs)
        self.fc = nnx.Linear(d, 4 * d, kernel_init=init, rngs=rngs)
        self.fc_out = nnx.Linear(4 * d, d, kernel_init=out_init, rngs=rngs)

    def _qkv(self, x_BxTxD):
        B, T, D = x_BxTxD.shape
        H = self.n_heads
        qkv_3xBxHxTxK = (
            self.qkv(self.ln1(x_BxTxD)).reshape(B, T, 3, H, D // H).transpose(2, 0, 3, 1, 4)
        )
        return qkv_3xBxHxTxK[0], qkv_3xBxHxTxK[1], qkv_3xBxHxTxK[2]

    def _residual(self, x_BxTxD, a_BxHxTxK, key_attn, key_mlp):
        B, T, D = x_BxTxD.shape
        a_BxTxD = a_BxHxTxK.transpose(0, 2, 1, 3).reshape(B, T, D)
        x_BxTxD = x_BxTxD + _dropout(self.attn_out(a_BxTxD), self.rate, key_attn)
        h_BxTxD = self.fc_out(jax.nn.gelu(self.fc(self.ln2(x_BxTxD))))
        return x_BxTxD + _dropout(h_BxTxD, self.rate, key_mlp)

    def __call__(self, x_BxTxD, key_attn=None, key_mlp=None):
        """Full causal pass; also returns this layer's keys and values."""
        T = x_BxTxD.shape[1]
        q, k, v = self._qkv(x_BxTxD)
        mask_TxT = jnp.tril(jnp.ones((T, T), dtype=bool))
        a = _attention(q, k, v, mask_TxT)
        return self._residual(x_BxTxD, a, key_attn, key_mlp), k, v

    def decode(self, x_Bx1xD, k_BxHxCxK, v_BxHxCxK, pos):
        """One new position ``pos`` attending to cached positions <= pos."""
        q, k, v = self._qkv(x_Bx1xD)
        k_BxHxCxK = jax.lax.dynamic_update_slice_in_dim(k_BxHxCxK, k, pos, axis=2)
        v_BxHxCxK = jax.lax.dynamic_update_slice_in_dim(v_BxHxCxK, v, pos, axis=2)
        mask_1xC = (jnp.arange(k_BxHxCxK.shape[2]) <= pos)[None, :]
        a = _attention(q, k_BxHxCxK, v_BxHxCxK, mask_1xC)
        return self._residual(x_Bx1xD, a, None, None), k_BxHxCxK, v_BxHxCxK


class Transformer(nnx.Module):
    """Decoder-only LM; see the module docstring."""

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.tok_embed = nnx.Embed(
            cfg.vocab_size, cfg.d_model, embedding_init=nnx.initializers.normal(0.02), rngs=rngs
        )
        self.pos_embed = nnx.Param(
            0.02 * jax.random.normal(rngs.params(), (cfg.context, cfg.d_model), jnp.float32)
        )
        self.blocks = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.n_layers)])
        self.ln_f = nnx.LayerNorm(cfg.d_model, epsilon=1e-5, rngs=rngs)

    def forward(self, tokens_BxT, dropout_key=None):
        """Logits (B, T, V) and per-layer keys/values, each (B, H, T, K)."""
        T = tokens_BxT.shape[1]
        if T > self.cfg.context:
            raise ValueError(f"{T} positions fed, but context is {self.cfg.context}")
        n_keys = 1 + 2 * self.cfg.n_layers
        if dropout_key is None or self.cfg.dropout == 0.0:
            keys = (None,) * n_keys
        else:
            keys = tuple(jax.random.split(dropout_key, n_keys))
        x_BxTxD = self.tok_embed(tokens_BxT) + self.pos_embed[...][:T]
        x_BxTxD = _dropout(x_BxTxD, self.cfg.dropout, keys[0])
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            x_BxTxD, k, v = block(x_BxTxD, keys[1 + 2 * i], keys[2 + 2 * i])
            ks.append(k)
            vs.append(v)
        logits_BxTxV = self.tok_embed.attend(self.ln_f(x_BxTxD))
        return logits_BxTxV, tuple(ks), tuple(vs)

    def __call__(self, tokens_BxT, dropout_key=None):
        return self.forward(tokens_BxT, dropout_key)[0]

    def decode_step(self, token_B, pos, cache: KVCache):
        pos_1xD = jax.lax.dynamic_slice_in_dim(self.pos_embed[...], pos, 1, axis=0)
        x_Bx1xD = self.tok_embed(token_B[:, None]) + pos_1xD
        ks, vs = [], []
        for block, k, v in zip(self.blocks, cache.k, cache.v):
            x_Bx1xD, k, v = block.decode(x_Bx1xD, k, v, pos)
            ks.append(k)
            vs.append(v)
        logits_BxV = self.tok_embed.attend(self.ln_f(x_Bx1xD))[:, 0]
        return logits_BxV, KVCache(tuple(ks), tuple(vs))


# ----------------------------------------------------------------------------
# Pure functional API over (cfg, params).  ``cfg`` is static (hashable).
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def graphdef(cfg: TransformerConfig) -> nnx.GraphDef:
    """The static graph of the model for ``cfg`` (no weights allocated)."""
    return nnx.graphdef(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))


@functools.partial(jax.jit, static_argnums=1)
def init_params(key: jax.Array, cfg: TransformerConfig) -> nnx.State:
    """Fresh parameters (an ``nnx.State`` pytree of float32 arrays).

    Jitted (``cfg`` static: eager NNX init is slow op by op) and traceable:
    ``jax.vmap(init_params, in_axes=(0, None))(keys, cfg)`` gives stacked
    per-seed parameters.
    """
    _, params = nnx.split(Transformer(cfg, rngs=nnx.Rngs(params=key)))
    return params


def apply(cfg: TransformerConfig, params, tokens_BxT, dropout_key=None):
    """Next-token logits (B, T, V): ``logits[:, t]`` scores token t+1 given
    tokens 0..t.  Dropout is active only when ``dropout_key`` is given."""
    return nnx.merge(graphdef(cfg), params)(tokens_BxT, dropout_key)


def init_cache(cfg: TransformerConfig, batch: int, dtype=jnp.float32) -> KVCache:
    """An empty cache for ``batch`` sequences of up to ``cfg.context`` positions."""
    shape = (batch, cfg.n_heads, cfg.context, cfg.head_dim)
    zeros = tuple(jnp.zeros(shape, dtype) for _ in range(cfg.n_layers))
    return KVCache(zeros, zeros)


def prefill(cfg: TransformerConfig, params, tokens_BxP, cache: KVCache):
    """Feed a prefix of P (static) tokens at positions 0..P-1 in one pass.

    Returns the logits (B, P, V) and the cache with positions < P filled.
    """
    logits_BxPxV, ks, vs = nnx.merge(graphdef(cfg), params).forward(tokens_BxP)
    k = tuple(c.at[:, :, : tokens_BxP.shape[1]].set(x) for c, x in zip(cache.k, ks))
    v = tuple(c.at[:, :, : tokens_BxP.shape[1]].set(x) for c, x in zip(cache.v, vs))
    return logits_BxPxV, KVCache(k, v)


def decode_step(cfg: TransformerConfig, params, cache: KVCache, token_B, pos):
    """Feed ``token_B`` at position ``pos`` (traced int < context), given a
    cache holding positions < pos.  Returns (logits (B, V) for position
    pos+1, updated cache); equals ``apply`` on the full prefix, at O(C) cost."""
    return nnx.merge(graphdef(cfg), params).decode_step(token_B, pos, cache)
