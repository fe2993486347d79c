"""The transformer text world: a small decoder-only transformer (Flax NNX,
simulator/lm/transformer.py) trained with optax AdamW on text sampled from the
previous generation's model.

Each generation trains from scratch (``init=scratch``, ToEdit's pretraining
setting) or continues from the generation-0 model (``init=continue``,
Shumailov et al.'s fine-tuning setting).  Sampling uses a key-value cache.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from collapse_sim.simulator.lm import transformer as tf
from collapse_sim.simulator.lm.sample import make_sampler
from collapse_sim.simulator.lm.train import TrainConfig, make_loss, make_train
from collapse_sim.simulator.worlds import checks
from collapse_sim.simulator.worlds.text import LanguageModel, TextConfig, draw_top_k, load_text, make_text_world

INITS = ("scratch", "continue")


@dataclasses.dataclass
class Config(TextConfig):
    """The text fields (simulator/worlds/text.py, TextConfig; block_len = context
    + 1) with smaller blocks and more of them, and top_p (1 = off) for sampling.
    Model: n_layers, d_model, n_heads, dropout.  Training: steps, batch_size, lr,
    warmup, weight_decay, clip; init = scratch | continue (from generation 0)."""

    name: str = "transformer"
    block_len: int = 65
    train_blocks: int = 1024
    reservoir_blocks: int = 8192
    top_p: float = 1.0
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    dropout: float = 0.0
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.1
    clip: float = 1.0
    init: str = "scratch"

    def __post_init__(self):
        super().__post_init__()
        if self.init not in INITS:
            raise ValueError(f"world.init={self.init!r} is not known; allowed: {', '.join(INITS)}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"world.top_p={self.top_p!r} must lie in (0, 1] (1 = off)")
        checks.number("lr", self.lr, low=0, low_open=True)
        checks.number("weight_decay", self.weight_decay, low=0)
        checks.number("clip", self.clip, low=0, low_open=True, inf_ok=True, why="inf = no clipping")
        model_config(self)
        train_config(self)


def _as_world_error(fn, cfg):
    try:
        return fn(cfg)
    except ValueError as e:
        raise ValueError(f"world: {e}".replace("TransformerConfig.", "world.").replace("TrainConfig.", "world.")) from None


def model_config(cfg: Config) -> tf.TransformerConfig:
    return _as_world_error(
        lambda c: tf.TransformerConfig(
            vocab_size=256, n_layers=c.n_layers, d_model=c.d_model, n_heads=c.n_heads,
            context=c.block_len - 1, dropout=c.dropout,
        ),
        cfg,
    )


def train_config(cfg: Config) -> TrainConfig:
    return _as_world_error(
        lambda c: TrainConfig(
            steps=c.steps, batch_size=c.batch_size, lr=c.lr, warmup=c.warmup,
            weight_decay=c.weight_decay, clip=c.clip,
        ),
        cfg,
    )


def language_model(cfg: Config) -> LanguageModel:
    mc, tc = model_config(cfg), train_config(cfg)
    train = make_train(mc, tc)
    scores = make_loss(mc)
    sampler = make_sampler(
        mc, cfg.block_len, cfg.top_k or None, None if cfg.top_p == 1.0 else cfg.top_p,
        prompt_len=cfg.prompt_len,
    )
    continue_from_base = cfg.init == "continue"

    def fit(key, tokens, weights, base):
        params, _ = train(key, base if (continue_from_base and base is not None) else None, tokens, weights)
        return params

    def next_logprobs(params, tokens):
        logits = tf.apply(mc, params, tokens[:, :-1])
        return jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)

    def sample(key, params, prompts):
        return sampler(key, params, prompts, cfg.temperature)

    def complete(key, params, tokens, n_keep, top_k, beta):
        """Keep tokens[:, :n_keep]; sample the rest through the key-value cache."""
        B, W = tokens.shape
        logits, cache = tf.prefill(mc, params, tokens[:, :1], tf.init_cache(mc, B))

        def choose(t, logits_BxV):
            lp = jax.nn.log_softmax(logits_BxV.astype(jnp.float32), axis=-1)
            return jnp.where(t < n_keep, tokens[:, t], draw_top_k(jax.random.fold_in(key, t), lp, top_k, beta))

        def step(carry, t):
            cache, logits_BxV = carry
            tok = choose(t, logits_BxV)
            logits_BxV, cache = tf.decode_step(mc, params, cache, tok, t)
            return (cache, logits_BxV), tok

        # Position W-1 (possibly = context) is only drawn, never fed.
        (_, logits_BxV), tok_TxB = jax.lax.scan(step, (cache, logits[:, -1]), jnp.arange(1, W - 1))
        return jnp.concatenate([tokens[:, :1], tok_TxB.T, choose(W - 1, logits_BxV)[:, None]], axis=1)

    return LanguageModel(fit, next_logprobs, scores.token_logprobs, sample, complete)


def make_world(cfg: Config):
    data = load_text(cfg.corpus, cfg.block_len, cfg.reservoir_blocks, cfg.test_blocks)
    return make_text_world("transformer", cfg, language_model(cfg), data)
