"""Functional training and scoring of the transformer LM (purejaxrl style).

``make_train(model_cfg, train_cfg)`` returns a pure ``train(key, params,
blocks, block_weights)`` whose whole run is one ``lax.scan`` over steps; many
seeds run as ``jax.jit(jax.vmap(train))(keys, params, blocks, weights)``.  All
data are arguments (never closed-over constants), so one compilation serves
every call with the same shapes.

Block convention: a row of ``blocks`` (N, W) holds W consecutive tokens;
the model reads ``inputs = block[:-1]`` and predicts ``targets = block[1:]``,
so W - 1 <= context (blocks of ``context + 1`` tokens use the full context).
Token 0 of each row is never scored: it has no context.

Losses are in nats per predicted token.  Optimiser: AdamW (Loshchilov &
Hutter 2019) after global-norm clipping, with a learning rate that rises
linearly for ``warmup`` steps then follows a cosine from ``lr`` to
``final_lr_frac * lr`` at the last step.  Weight decay applies to matrices
(linear kernels, embeddings), not to LayerNorm scales or biases.

Axis letters: S seeds, N rows, W tokens per row, B batch, V vocabulary.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from collapse_sim.simulator.lm.transformer import TransformerConfig, apply, init_params

__all__ = [
    "TrainConfig",
    "LossFns",
    "init_params",
    "lr_schedule",
    "optimizer",
    "draw_rows",
    "make_loss",
    "make_train",
    "draw_windows",
    "make_chunk_train",
]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static training configuration (``steps`` and ``batch_size`` set shapes)."""

    steps: int = 500
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.1
    clip: float = 1.0
    b1: float = 0.9
    b2: float = 0.99
    final_lr_frac: float = 0.1

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("lr", "clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.warmup < 0:
            raise ValueError(f"TrainConfig.warmup must be >= 0, got {self.warmup!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0.0 <= self.final_lr_frac <= 1.0:
            raise ValueError(f"TrainConfig.final_lr_frac must be in [0, 1], got {self.final_lr_frac!r}")


def lr_schedule(cfg: TrainConfig) -> Callable:
    """step -> learning rate: linear warmup to ``lr`` then cosine decay."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=cfg.lr,
        warmup_steps=cfg.warmup,
        decay_steps=max(cfg.steps, cfg.warmup + 1),
        end_value=cfg.lr * cfg.final_lr_frac,
    )


def optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """Global-norm clipping then AdamW with the schedule of :func:`lr_schedule`."""
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip),
        optax.adamw(
            lr_schedule(cfg),
            b1=cfg.b1,
            b2=cfg.b2,
            weight_decay=cfg.weight_decay,
            mask=lambda params: jax.tree.map(lambda p: p.ndim >= 2, params),
        ),
    )


def draw_rows(key, block_weights_N, batch_size: int):
    """``batch_size`` row indices drawn with replacement, P(i) ∝ weight_i.

    Rows of weight 0 are never drawn (inverse-CDF sampling, with the index
    clamped to the last positive row against float round-off at the top).
    At least one weight must be positive.
    """
    w_N = jnp.maximum(jnp.asarray(block_weights_N, jnp.float32), 0.0)
    cdf_N = jnp.cumsum(w_N)
    u_B = jax.random.uniform(key, (batch_size,), jnp.float32) * cdf_N[-1]
    idx_B = jnp.searchsorted(cdf_N, u_B, side="right")
    last = w_N.shape[0] - 1 - jnp.argmax(w_N[::-1] > 0)
    return jnp.minimum(idx_B, last)


class LossFns(NamedTuple):
    """Pure scoring functions for one model config (see :func:`make_loss`)."""

    loss: Callable  # (params, blocks_BxW, dropout_key=None) -> mean NLL
    token_logprobs: Callable  # (params, tokens_NxW) -> (N, W-1)
    nll_per_sequence: Callable  # (params, tokens_NxW) -> (N,)
    perplexity: Callable  # (params, blocks_NxW, weights_N=None) -> scalar


def make_loss(model_cfg: TransformerConfig, eval_batch: int = 256) -> LossFns:
    """Scoring functions closed over ``model_cfg``; all pure and traceable.

    - ``loss(params, blocks, dropout_key=None)``: mean over rows and
      positions of -log p(x_i | x_<i), i = 1..W-1 (the training objective).
    - ``token_logprobs(params, tokens)``: (N, W-1) with
      ``[n, i-1] = log p(x_i | x_0..x_{i-1})`` for i = 1..W-1; x_0 has no
      context and is not scored.  Rows go through the model ``eval_batch`` at
      a time (a ``lax.map`` over chunks) so large evaluation sets fit in
      memory: the logits of one chunk are (eval_batch, W-1, V) floats.
    - ``nll_per_sequence(params, tokens)``: (N,) summed NLL of each row, nats.
    - ``perplexity(params, blocks, weights=None)``: exp of the mean NLL over
      all predicted tokens; with ``weights`` (N,) rows count in proportion to
      their weight (0 = absent row).
    """

    def _check(tokens):
        if tokens.ndim != 2 or not 2 <= tokens.shape[1] <= model_cfg.context + 1:
            raise ValueError(
                f"token rows must be (N, W) with 2 <= W <= context + 1 = "
                f"{model_cfg.context + 1}, got shape {tokens.shape}"
            )

    def _row_logprobs(params, tokens_BxW, dropout_key=None):
        logits_BxLxV = apply(model_cfg, params, tokens_BxW[:, :-1], dropout_key)
        logp_BxLxV = jax.nn.log_softmax(logits_BxLxV.astype(jnp.float32), axis=-1)
        return jnp.take_along_axis(logp_BxLxV, tokens_BxW[:, 1:, None], axis=-1)[..., 0]

    def loss(params, blocks_BxW, dropout_key=None):
        _check(blocks_BxW)
        return -jnp.mean(_row_logprobs(params, blocks_BxW, dropout_key))

    def token_logprobs(params, tokens_NxW):
        _check(tokens_NxW)
        tokens_NxW = jnp.asarray(tokens_NxW, jnp.int32)
        N, W = tokens_NxW.shape
        if N <= eval_batch:
            return _row_logprobs(params, tokens_NxW)
        # Pad to whole chunks (one copy of the model in the program, unlike
        # lax.map's separate remainder pass); padded rows are dropped.
        n_chunks = -(-N // eval_batch)
        padded_NxW = jnp.pad(tokens_NxW, ((0, n_chunks * eval_batch - N), (0, 0)))
        chunks_CxBxW = padded_NxW.reshape(n_chunks, eval_batch, W)
        logp_CxBxL = jax.lax.map(lambda c: _row_logprobs(params, c), chunks_CxBxW)
        return logp_CxBxL.reshape(-1, W - 1)[:N]

    def nll_per_sequence(params, tokens_NxW):
        return -jnp.sum(token_logprobs(params, tokens_NxW), axis=-1)

    def perplexity(params, blocks_NxW, weights_N=None):
        nll_N = nll_per_sequence(params, blocks_NxW)
        n_pred = blocks_NxW.shape[1] - 1
        if weights_N is None:
            return jnp.exp(jnp.mean(nll_N) / n_pred)
        w_N = jnp.asarray(weights_N, jnp.float32)
        return jnp.exp(jnp.sum(w_N * nll_N) / (jnp.sum(w_N) * n_pred))

    return LossFns(loss, token_logprobs, nll_per_sequence, perplexity)


def make_train(model_cfg: TransformerConfig, train_cfg: TrainConfig) -> Callable:
    """Return ``train(key, params, blocks, block_weights) -> (params, metrics)``.

    - ``key``: the run's key.  ``init_key, run_key = split(key)``; step t uses
      ``fold_in(run_key, t)`` (split into a batch key and a dropout key).
    - ``params``: None to start from ``init_params(init_key, model_cfg)``, or
      an existing params pytree to continue from (fine-tuning; the optimiser
      state and the warmup/cosine schedule restart).
    - ``blocks``: (N, W) int token rows, 2 <= W <= context + 1 (see module
      docstring); ``block_weights``: (N,) float, batches of
      ``train_cfg.batch_size`` rows are drawn with replacement with
      P(row i) ∝ weight_i; weight 0 rows are never drawn, so a preallocated,
      masked pool has a static shape.  Within a batch every predicted token
      counts equally.
    - ``metrics``: ``{"loss": (steps,), "grad_norm": (steps,)}``, the
      training batch loss (nats/token) and the pre-clipping gradient norm.

    Pure, with all data as arguments: ``jax.jit(train)`` (or
    ``jax.jit(jax.vmap(train))`` over stacked keys, params and data) compiles
    once per argument shapes.  ``params=None`` and given params are two
    traces (different pytrees).
    """
    tx = optimizer(train_cfg)
    step = _make_step(model_cfg, train_cfg, tx)

    def train(key, params, blocks, block_weights):
        blocks_NxW = jnp.asarray(blocks, jnp.int32)
        weights_N = jnp.asarray(block_weights, jnp.float32)
        init_key, run_key = jax.random.split(key)
        if params is None:
            params = init_params(init_key, model_cfg)
        opt_state = tx.init(params)

        def draw(batch_key):
            return blocks_NxW[draw_rows(batch_key, weights_N, train_cfg.batch_size)]

        (params, _), metrics = jax.lax.scan(
            lambda carry, t: step(carry, t, run_key, draw), (params, opt_state), jnp.arange(train_cfg.steps)
        )
        return params, metrics

    return train


def _make_step(model_cfg: TransformerConfig, train_cfg: TrainConfig, tx) -> Callable:
    """One optimiser step ``(params, opt_state), t, run_key, draw -> carry, metrics``:
    step t uses ``fold_in(run_key, t)``, split into a batch key (``draw(key) ->
    (B, W)`` rows) and a dropout key."""
    loss_fn = make_loss(model_cfg).loss

    def step(carry, t, run_key, draw):
        params, opt_state = carry
        batch_key, dropout_key = jax.random.split(jax.random.fold_in(run_key, t))
        loss, grads = jax.value_and_grad(loss_fn)(params, draw(batch_key), dropout_key)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return step


def draw_windows(key, stream_T, batch_size: int, width: int):
    """``batch_size`` windows of ``width`` consecutive tokens of ``stream_T``, each
    starting at an offset drawn uniformly from 0..T-width (with replacement)."""
    off_B = jax.random.randint(key, (batch_size,), 0, stream_T.shape[0] - width + 1)
    return jax.vmap(lambda o: jax.lax.dynamic_slice_in_dim(stream_T, o, width))(off_B)


def make_chunk_train(model_cfg: TransformerConfig, train_cfg: TrainConfig, n_steps: int) -> Callable:
    """Return ``chunk(run_key, params, opt_state, stream_T, t0) -> (params,
    opt_state, metrics)``: steps t0 .. t0+n_steps-1 (``n_steps`` static) of a run
    of ``train_cfg.steps`` steps on windows of ``context + 1`` tokens drawn from
    one token stream (:func:`draw_windows`).

    Step t is the step of :func:`make_train` (key ``fold_in(run_key, t)``, the
    same optimiser and schedule, whose position is the step count kept in
    ``opt_state``), so a run cut into chunks, or stopped after any chunk and
    resumed from the saved (params, opt_state), performs exactly the same
    updates.  ``opt_state`` of step 0 is ``optimizer(train_cfg).init(params)``.
    Jitted; ``metrics`` as in :func:`make_train`, (n_steps,) each.
    """
    tx = optimizer(train_cfg)
    step = _make_step(model_cfg, train_cfg, tx)
    width = model_cfg.context + 1

    @jax.jit
    def chunk(run_key, params, opt_state, stream_T, t0):
        stream_T = jnp.asarray(stream_T, jnp.int32)

        def draw(batch_key):
            return draw_windows(batch_key, stream_T, train_cfg.batch_size, width)

        (params, opt_state), metrics = jax.lax.scan(
            lambda carry, t: step(carry, t, run_key, draw), (params, opt_state), t0 + jnp.arange(n_steps)
        )
        return params, opt_state, metrics

    return chunk
