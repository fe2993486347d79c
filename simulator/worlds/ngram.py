"""The n-gram text world: an order-k n-gram model (simulator/lm/ngram.py) refitted
by counting on text sampled from the previous generation's model.

Every context's next-token distribution is a categorical refitted from finitely
many samples, so rare continuations are lost as the categorical world predicts
(Shumailov et al. 2024, "discrete distributions with exact approximation").
Fast enough for hundreds of seeds and many generations on a laptop CPU.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from collapse_sim.simulator.lm import ngram
from collapse_sim.simulator.lm.interface import LanguageModel
from collapse_sim.simulator.lm.toedit import draw_top_k
from collapse_sim.simulator.worlds import checks
from collapse_sim.simulator.worlds.text import TextConfig, load_text, make_text_world


@dataclasses.dataclass
class Config(TextConfig):
    """The text fields (simulator/worlds/text.py, TextConfig) and the model: order,
    smoothing (additive | interpolate | witten_bell), alpha."""

    name: str = "ngram"
    order: int = 3
    smoothing: str = "witten_bell"
    alpha: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        checks.number("alpha", self.alpha, low=0, low_open=True)
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

    def fit(key, tokens, weights, params0):
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
