"""The transformer text world: a small decoder-only transformer (Flax NNX,
simulator/lm/transformer.py) trained with optax AdamW on text sampled from the
previous generation's model.

Each generation trains from scratch (``init=scratch``, ToEdit's pretraining
setting), continues from the generation-0 model (``init=continue``), or
fine-tunes a pretrained base model (``init=pretrained``, Shumailov et al.
2024's protocol: every generation, generation 0 included, starts from the same
base, ``world.base`` = a checkpoint of simulator/lm/pretrain.py, default the
shipped simulator/lm/pretrained/shakespeare_base.npz).  With ``pretrained``
the architecture (n_layers, d_model, n_heads; context = block_len - 1) is the
checkpoint's: leave those fields unset, or a value that differs from the
checkpoint is an error naming the field; ``finetune_steps``, ``finetune_lr``
and ``finetune_warmup`` replace steps, lr and warmup.  The world's truth is
``{"base": {"lm": base params}}`` (``{}`` otherwise), the same layout as a
fitted model, so a regime can use the base model as a prior.  Sampling uses a
key-value cache.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import jax
import jax.numpy as jnp

from collapse_sim.simulator.lm.interface import LanguageModel
from collapse_sim.simulator.lm.toedit import draw_top_k
from collapse_sim.simulator.worlds import checks
from collapse_sim.simulator.worlds.text import TextConfig, load_text, make_text_world

if TYPE_CHECKING:
    from collapse_sim.simulator.lm import transformer as tf
    from collapse_sim.simulator.lm.train import TrainConfig

INITS = ("scratch", "continue", "pretrained")
SCRATCH_ARCH = {"n_layers": 2, "d_model": 64, "n_heads": 4}  # the model when n_layers etc. are unset


@dataclasses.dataclass
class Config(TextConfig):
    """The text fields (simulator/worlds/text.py, TextConfig; block_len = context
    + 1) with smaller blocks and more of them, and top_p (1 = off) for sampling.
    Model: n_layers, d_model, n_heads (unset = 2, 64, 4; with init=pretrained, the
    base's), dropout.  Training: steps, batch_size, lr, warmup, weight_decay, clip;
    init = scratch | continue (from generation 0) | pretrained (fine-tune the base
    model ``base``, a checkpoint path, unset = the shipped one, every generation for
    finetune_steps steps, peak lr finetune_lr after finetune_warmup steps)."""

    name: str = "transformer"
    block_len: int = 65
    train_blocks: int = 1024
    reservoir_blocks: int = 8192
    top_p: float = 1.0
    n_layers: Optional[int] = None
    d_model: Optional[int] = None
    n_heads: Optional[int] = None
    dropout: float = 0.0
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.1
    clip: float = 1.0
    init: str = "scratch"
    base: Optional[str] = None
    finetune_steps: int = 150
    finetune_lr: float = 1e-4
    finetune_warmup: int = 10

    def __post_init__(self):
        super().__post_init__()
        if self.init not in INITS:
            raise ValueError(f"world.init={self.init!r} is not known; allowed: {', '.join(INITS)}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"world.top_p={self.top_p!r} must lie in (0, 1] (1 = off)")
        checks.number("lr", self.lr, low=0, low_open=True)
        checks.number("weight_decay", self.weight_decay, low=0)
        checks.number("clip", self.clip, low=0, low_open=True, inf_ok=True, why="inf = no clipping")
        if self.base is not None and self.init != "pretrained":
            raise ValueError(f"world.base={self.base!r} is used only with world.init=pretrained, not {self.init!r}")
        if not (isinstance(self.finetune_steps, int) and self.finetune_steps >= 0):
            raise ValueError(f"world.finetune_steps={self.finetune_steps!r} must be a whole number >= 0 (0 = the base as it is)")
        checks.number("finetune_lr", self.finetune_lr, low=0, low_open=True)
        checks.whole("finetune_warmup", self.finetune_warmup, 0, "steps")
        # Unset architecture fields become the model's (2, 64, 4, or the base's), so
        # a config records the model it ran.
        mc = model_config(self)
        for f in SCRATCH_ARCH:
            setattr(self, f, getattr(mc, f))
        train_config(self)


def _as_world_error(fn, cfg):
    try:
        return fn(cfg)
    except ValueError as e:
        raise ValueError(f"world: {e}".replace("TransformerConfig.", "world.").replace("TrainConfig.", "world.")) from None


def base_model(cfg: Config):
    """(TransformerConfig, params) of ``world.base`` (simulator/lm/checkpoint_io.py:
    load_base), checked against the world's explicit fields; CheckpointError
    naming the path and the first field that differs."""
    from collapse_sim.simulator.lm import checkpoint_io

    path = None if cfg.base is None else str(Path(cfg.base).expanduser())
    mc, params = _load_base_cached(path, *_stamp(path))
    wanted = {
        "the byte vocabulary": ("vocab_size", 256),
        f"world.block_len={cfg.block_len} (context = block_len - 1)": ("context", cfg.block_len - 1),
        **{f"world.{f}={getattr(cfg, f)}": (f, getattr(cfg, f)) for f in SCRATCH_ARCH},
    }
    checkpoint_io.check_matches(path or checkpoint_io.BASE_FILE, mc, wanted)
    return dataclasses.replace(mc, dropout=cfg.dropout), params


def _stamp(path):
    try:
        st = os.stat(path if path is not None else _shipped())
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None, None


def _shipped():
    from collapse_sim.simulator.lm.checkpoint_io import BASE_FILE
    return BASE_FILE


@functools.lru_cache(maxsize=4)
def _load_base_cached(path, mtime, size):
    from collapse_sim.simulator.lm.checkpoint_io import load_base
    return load_base(path)


# The model, its training and its sampler (flax, optax) are imported where they are used:
# every command registers this world's Config, few of them build its model.


def model_config(cfg: Config) -> tf.TransformerConfig:
    from collapse_sim.simulator.lm import transformer as tf

    if cfg.init == "pretrained":
        try:
            dropout = tf.TransformerConfig(dropout=cfg.dropout).dropout
        except ValueError as e:
            raise ValueError(f"world: {e}".replace("TransformerConfig.", "world.")) from None
        return dataclasses.replace(base_model(cfg)[0], dropout=dropout)
    arch = {f: SCRATCH_ARCH[f] if getattr(cfg, f) is None else getattr(cfg, f) for f in SCRATCH_ARCH}
    return _as_world_error(
        lambda c: tf.TransformerConfig(vocab_size=256, context=c.block_len - 1, dropout=c.dropout, **arch),
        cfg,
    )


def train_config(cfg: Config) -> TrainConfig:
    from collapse_sim.simulator.lm.train import TrainConfig

    """The training of a generation: steps, lr, warmup (init=pretrained:
    finetune_steps, finetune_lr, finetune_warmup; 0 steps is a valid placeholder,
    the base is then used as it is)."""
    ft = cfg.init == "pretrained"
    fields = {"steps": max(cfg.finetune_steps, 1), "lr": cfg.finetune_lr, "warmup": cfg.finetune_warmup} if ft else \
        {"steps": cfg.steps, "lr": cfg.lr, "warmup": cfg.warmup}
    return _as_world_error(
        lambda c: TrainConfig(batch_size=c.batch_size, weight_decay=c.weight_decay, clip=c.clip, **fields),
        cfg,
    )


def language_model(cfg: Config) -> LanguageModel:
    from collapse_sim.simulator.lm import transformer as tf
    from collapse_sim.simulator.lm.sample import make_sampler
    from collapse_sim.simulator.lm.train import make_loss, make_train

    mc, tc = model_config(cfg), train_config(cfg)
    train = make_train(mc, tc)
    scores = make_loss(mc)
    sampler = make_sampler(
        mc, cfg.block_len, cfg.top_k or None, None if cfg.top_p == 1.0 else cfg.top_p,
        prompt_len=cfg.prompt_len,
    )
    continue_from_gen0 = cfg.init == "continue"
    pretrained = base_model(cfg)[1] if cfg.init == "pretrained" else None

    def fit(key, tokens, weights, params0):
        if pretrained is not None:
            if cfg.finetune_steps == 0:
                return pretrained
            return train(key, pretrained, tokens, weights)[0]
        params, _ = train(key, params0 if (continue_from_gen0 and params0 is not None) else None, tokens, weights)
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
    world = make_text_world("transformer", cfg, language_model(cfg), data)
    if cfg.init != "pretrained":
        return world
    base = base_model(cfg)[1]
    # truth = the base model in a fitted model's layout: regime code can pass
    # truth["base"] wherever it passes a prior (world.edit's prior_params).
    return world._replace(init=lambda key: {"base": {"lm": base}})
