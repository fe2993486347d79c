"""The n-gram text world: an order-k n-gram model (simulator/lm/ngram.py) refitted
by counting on text sampled from the previous generation's model.

Every context's next-token distribution is a categorical refitted from finitely
many samples, so rare continuations are lost as the categorical world predicts
(Shumailov et al. 2024, "discrete distributions with exact approximation").
Fast enough for hundreds of seeds and many generations on a laptop CPU.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp

from simulator.lm import ngram
from simulator.worlds.text import LanguageModel, draw_top_k, load_text, make_text_world, text_fields_valid


@dataclasses.dataclass
class Config:
    """corpus: a UTF-8 file or folder (None = the shipped Shakespeare corpus).
    block_len: tokens per block (position 0 is context only).  train_blocks:
    blocks of real text in generation 0's training set.  test_blocks: held-out
    blocks scored every generation.  reservoir_blocks: training-split blocks
    available as fresh real data.  synthetic_ratio: synthetic blocks per real
    block.  temperature, top_k (0 = off), prompt_len (0 = unprompted): sampling.
    order, smoothing (additive | interpolate | witten_bell), alpha: the model.
    edit_threshold (p), edit_top_k, edit_temperature (beta): ToEdit's rule;
    edit_drop_below: delete tokens of lower prior probability (0 = off; ToEdit's
    low_drop_up_revise uses 0.001).
    inspect_blocks: training blocks scored per sequence by the generation-0 model."""

    name: str = "ngram"
    corpus: Optional[str] = None
    block_len: int = 128
    train_blocks: int = 512
    test_blocks: int = 256
    reservoir_blocks: int = 4096
    synthetic_ratio: float = 1.0
    temperature: float = 1.0
    top_k: int = 0
    prompt_len: int = 0
    order: int = 3
    smoothing: str = "witten_bell"
    alpha: float = 0.1
    edit_threshold: float = 0.99
    edit_top_k: int = 8
    edit_temperature: float = 1.0
    edit_drop_below: float = 0.0
    inspect_blocks: int = 64

    def __post_init__(self):
        text_fields_valid(self)
        model_config(self)


def model_config(cfg: Config) -> ngram.NGramConfig:
    try:
        return ngram.NGramConfig(order=cfg.order, vocab_size=256, smoothing=cfg.smoothing, alpha=cfg.alpha)
    except ValueError as e:
        raise ValueError(f"world: {e}") from None


def language_model(cfg: Config) -> LanguageModel:
    mc = model_config(cfg)
    k1 = mc.order - 1
    W = cfg.block_len
    top_k = cfg.top_k or None
    temperature = None if cfg.temperature == 1.0 else cfg.temperature

    def fit(key, tokens, weights, base):
        return ngram.fit(mc, tokens, weights)

    def next_logprobs(params, tokens):
        return ngram.all_next_logprobs(mc, params, tokens)[:, 1:]

    def token_logprobs(params, tokens):
        return ngram.token_logprobs(mc, params, tokens)[:, 1:]

    def sample(key, params, prompts):
        n = prompts.shape[0]
        p = prompts if cfg.prompt_len > 0 else None
        return ngram.sample(mc, params, key, n, W, prompts=p, temperature=temperature, top_k=top_k)

    def complete(key, params, tokens, n_keep, top_k, beta):
        """Keep tokens[:, :n_keep]; sample the rest from the model, one position at a time."""
        N = tokens.shape[0]

        def step(window, t):
            lp = ngram._next_logprobs(mc, params, window, jnp.full((N,), t))
            tok = jnp.where(t < n_keep, tokens[:, t], draw_top_k(jax.random.fold_in(key, t), lp, top_k, beta))
            return (jnp.concatenate([window[:, 1:], tok[:, None]], axis=1) if k1 > 0 else window), tok

        _, tok_WxN = jax.lax.scan(step, jnp.zeros((N, k1), jnp.int32), jnp.arange(W))
        return tok_WxN.T

    def position_logprobs(params, tokens, rows, pos):
        window = ngram._history(tokens, k1)[rows, pos]
        return ngram._next_logprobs(mc, params, window, pos)

    return LanguageModel(fit, next_logprobs, token_logprobs, sample, complete, position_logprobs)


def make_world(cfg: Config):
    data = load_text(cfg.corpus, cfg.block_len, cfg.reservoir_blocks, cfg.test_blocks)
    return make_text_world("ngram", cfg, language_model(cfg), data)
