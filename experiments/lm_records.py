"""Extra per-generation records of a text world: its training text and its training loss.

The n-gram diagnostics (simulator/diagnostics.py) need the text each generation trained on,
and ToEdit's Fig. 7 needs the training loss; a text world records neither.  ``with_records``
wraps a text world (simulator/worlds/text.py) without changing it:

- ``train_tokens`` (record_blocks, W) int32: the newest ``record_blocks`` present rows of every
  generation's training set (the rows ``inspect`` scores: generation 0's real data, the latest
  synthetic or edited set afterwards);
- ``train_loss`` (scalar): the fitted model's mean negative log-likelihood (nats per scored
  token, positions 1..W-1) on its own weighted training set, after training — for the
  transformer the full-data version of the loss its optimiser drove down.

The fitted parameters travel as ``(params, train_loss)``: ``fit`` scores the training set
right after fitting, ``evaluate`` reports the score, and ``sample``, ``edit`` and ``inspect``
see the plain parameters.  Everything stays pure and traceable, so the engine's scan, vmap,
chunking and checkpoints are untouched.  Once the text world records these itself (proposed
in the LM experiments' report) this module can go; the record names would stay.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from simulator.world import World
from simulator.worlds import world_module

TEXT_WORLDS = ("ngram", "transformer")


def newest_rows(weight_N: jax.Array, n: int) -> jax.Array:
    """Indices of the last ``n`` rows of positive weight (ascending); the text world's
    ``inspect`` picks its rows the same way."""
    order = jnp.where(weight_N > 0, jnp.arange(weight_N.shape[0]), -1)
    return jnp.sort(jax.lax.top_k(order, n)[1])


def with_records(world: World, world_cfg, record_blocks: int, record_train_loss: bool) -> World:
    if world.name not in TEXT_WORLDS:
        raise ValueError(
            f"run.record_blocks / run.record_train_loss record text; world {world.name!r} is not a text world "
            f"({', '.join(TEXT_WORLDS)})"
        )
    if record_blocks > world.n_rows:
        raise ValueError(f"run.record_blocks={record_blocks} exceeds the {world.n_rows} rows of a training set")
    lm = world_module(world.name).language_model(world_cfg)

    def loss_on(params, rows):
        nll_N = -jnp.mean(lm.token_logprobs(params, rows["tokens"]), axis=-1)
        w_N = rows["weight"]
        return jnp.sum(jnp.where(w_N > 0, w_N * nll_N, 0.0)) / jnp.sum(w_N)

    def fit(key, rows, base):
        params = world.fit(key, rows, None if base is None else base[0])
        return params, (loss_on(params, rows) if record_train_loss else jnp.zeros(()))

    def sample(key, truth, params, g):
        return world.sample(key, truth, params[0], g)

    def evaluate(truth, params):
        out = world.evaluate(truth, params[0])
        return out | ({"train_loss": params[1]} if record_train_loss else {})

    def edit(key, truth, prior, rows, eligible):
        return world.edit(key, truth, prior[0], rows, eligible)

    def inspect(truth, params0, rows):
        out = world.inspect(truth, params0[0], rows) if world.inspect is not None else {}
        if record_blocks:
            idx = newest_rows(rows["weight"], record_blocks)
            out = out | {"train_tokens": rows["tokens"][idx].astype(jnp.int32)}
        return out

    return world._replace(
        fit=fit,
        sample=sample,
        evaluate=evaluate,
        edit=None if world.edit is None else edit,
        inspect=inspect,
    )
