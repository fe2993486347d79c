"""Text worlds: a language model trained, generation after generation, on text
sampled from the previous generation's model (Shumailov et al. 2024, Nature
631:755; Gerstgrasser et al. 2024; Zhu et al. 2024, ToEdit).

Shared by the n-gram and the transformer world, which differ only in the
``LanguageModel`` they plug in.  Rows are blocks of W tokens of real human
text (the shipped Shakespeare corpus, or a user's corpus) split by whole
documents into train / validation / test.  Position 0 of a block is context
only; positions 1..W-1 are scored, in training and in every metric, so both
models are measured on the same tokens.

- real data: ``train_blocks`` blocks of the training split, fixed for the run
  (the same for every seed); "fresh" real data (regime ``mix`` with
  ``real_source=fresh``) draws new blocks from the rest of the training split.
- synthetic data: ``round(synthetic_ratio * train_blocks)`` blocks sampled from
  the model (temperature, top-k; prompted by the first ``prompt_len`` tokens of
  real training blocks, Shumailov's protocol, or unprompted).
- test error: the mean negative log-likelihood (nats per token) of the held-out
  test split, the same blocks for every generation, regime and seed.
- token editing (ToEdit, Zhu et al. 2024, Alg. 1): the prior scores every
  token of the base text in one forward pass on the original prefix; a token
  with P(x_i | x_<i) >= ``edit_threshold`` is resampled from the prior's top
  ``edit_top_k`` tokens at temperature ``edit_temperature``; the others stay.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from simulator.world import World

N_PROB_BINS = 10  # ToEdit Table 6: the prior's token probabilities in ten bins of width 0.1


class LanguageModel(NamedTuple):
    """What a text world needs from a model; every function is pure and traceable.

    fit(key, tokens_NxW, weights_N, base) -> params (``base``: None, or the
    generation-0 model to continue from); next_logprobs(params, tokens_NxW) ->
    (N, W-1, V) log p(. | x_<i) for i = 1..W-1; token_logprobs(params,
    tokens_NxW) -> (N, W-1); sample(key, params, prompts_NxP) -> (N, W).
    """

    fit: Callable
    next_logprobs: Callable
    token_logprobs: Callable
    sample: Callable


@dataclasses.dataclass
class TextData:
    """The blocks a text world uses, host-side numpy."""

    reservoir: np.ndarray  # (R, W) training-split blocks; the real set is the first train_blocks
    test: np.ndarray  # (N_test, W)


def text_fields_valid(cfg) -> None:
    """Validate the fields every text world config shares."""
    def bad(field, value, allowed):
        raise ValueError(f"world.{field}={value!r} is not allowed; {allowed}")

    if not (isinstance(cfg.block_len, int) and cfg.block_len >= 2):
        bad("block_len", cfg.block_len, "need a whole number of tokens >= 2")
    for field in ("train_blocks", "test_blocks", "inspect_blocks"):
        v = getattr(cfg, field)
        if not (isinstance(v, int) and v >= (0 if field == "inspect_blocks" else 1)):
            bad(field, v, "need a whole number >= 1" if field != "inspect_blocks" else "need a whole number >= 0")
    if not (cfg.synthetic_ratio > 0 and math.isfinite(cfg.synthetic_ratio)):
        bad("synthetic_ratio", cfg.synthetic_ratio, "need a number > 0")
    if not cfg.temperature > 0:
        bad("temperature", cfg.temperature, "need a number > 0")
    if not (isinstance(cfg.top_k, int) and 0 <= cfg.top_k <= 256):
        bad("top_k", cfg.top_k, "need 0 (off) or a number of tokens in [1, vocabulary size]")
    if not (isinstance(cfg.prompt_len, int) and 0 <= cfg.prompt_len < cfg.block_len):
        bad("prompt_len", cfg.prompt_len, f"need 0 <= prompt_len < block_len={cfg.block_len}")
    if not 0.0 <= cfg.edit_threshold <= 1.0:
        bad("edit_threshold", cfg.edit_threshold, "need a probability p in [0, 1]")
    if not (isinstance(cfg.edit_top_k, int) and 1 <= cfg.edit_top_k <= 256):
        bad("edit_top_k", cfg.edit_top_k, "need a whole number in [1, vocabulary size 256]")
    if not cfg.edit_temperature > 0:
        bad("edit_temperature", cfg.edit_temperature, "need a number > 0")


@functools.lru_cache(maxsize=8)
def load_text(corpus: Optional[str], block_len: int, reservoir_blocks: int, test_blocks: int) -> TextData:
    """Blocks of the corpus (the shipped one when ``corpus`` is None): a fixed,
    seeded shuffle of the training split's blocks, and test blocks spread evenly
    over the test split."""
    from simulator.text.corpus import load_splits
    from simulator.text.tokenizer import ByteTokenizer

    splits = load_splits(corpus, ByteTokenizer(), block_len)
    train, test = splits["train"], splits["test"]
    order = np.random.default_rng(0).permutation(train.shape[0])[:reservoir_blocks]
    if test.shape[0] < test_blocks:
        raise ValueError(
            f"world.test_blocks={test_blocks} but the test split of {corpus or 'the shipped corpus'} "
            f"has only {test.shape[0]} blocks of {block_len} tokens"
        )
    pick = np.linspace(0, test.shape[0] - 1, test_blocks).round().astype(int)
    return TextData(reservoir=train[order], test=test[pick])


def make_text_world(name: str, cfg, lm: LanguageModel, data: TextData) -> World:
    text_fields_valid(cfg)
    N = cfg.train_blocks
    if data.reservoir.shape[0] < N:
        raise ValueError(
            f"world.train_blocks={N} but the training split of {cfg.corpus or 'the shipped corpus'} "
            f"has only {data.reservoir.shape[0]} blocks of {cfg.block_len} tokens"
        )
    M = max(1, round(cfg.synthetic_ratio * N))
    rows = max(N, M)
    W = cfg.block_len
    reservoir = jnp.asarray(data.reservoir, jnp.int32)
    test = jnp.asarray(data.test, jnp.int32)
    real_tokens = jnp.asarray(np.resize(data.reservoir[:N], (rows, W)), jnp.int32)
    real_weight = (jnp.arange(rows) < N).astype(jnp.float32)
    syn_weight = (jnp.arange(rows) < M).astype(jnp.float32)
    n_inspect = min(cfg.inspect_blocks, rows)
    threshold, edit_k, beta = cfg.edit_threshold, cfg.edit_top_k, cfg.edit_temperature

    def table(tokens, weight):
        return {"tokens": tokens, "weight": weight}

    def init(key):
        return {}

    def real(key, truth, g):
        fresh = reservoir[jax.random.choice(key, reservoir.shape[0], (rows,), replace=False)]
        return table(jnp.where(g == 0, real_tokens, fresh), real_weight)

    def fit(key, train, base):
        return lm.fit(key, train["tokens"], train["weight"], base)

    def sample(key, truth, params, g):
        k_prompt, k_sample = jax.random.split(key)
        prompts = real_tokens[jax.random.choice(k_prompt, N, (rows,))][:, : max(cfg.prompt_len, 1)]
        return table(lm.sample(k_sample, params, prompts), syn_weight)

    def evaluate(truth, params):
        nll = -jnp.mean(lm.token_logprobs(params, test))
        return {"test_error": nll, "test_ppl": jnp.exp(nll), "test_bits_per_token": nll / jnp.log(2.0)}

    def inspect(truth, params0, train):
        """Per-sequence perplexity under the generation-0 model (Shumailov et al.
        2024, Fig. 1) of the last ``inspect_blocks`` present rows of a training
        set: the newest data (in an accumulated pool, the latest synthetic set)."""
        if n_inspect == 0:
            return {}
        order = jnp.where(train["weight"] > 0, jnp.arange(train["weight"].shape[0]), -1)
        _, last = jax.lax.top_k(order, n_inspect)
        lp = lm.token_logprobs(params0, train["tokens"][last])
        return {"train_seq_ppl_gen0": jnp.exp(-jnp.mean(lp, axis=-1))}

    def edit(key, truth, prior, rows_in, eligible):
        """ToEdit (Zhu et al. 2024, Alg. 1; theory.md §4.2) on every eligible block."""
        tok = rows_in["tokens"]
        target = tok[:, 1:]
        lp = lm.next_logprobs(prior, tok)  # (N, W-1, V) on the original prefix
        p = jnp.exp(jnp.take_along_axis(lp, target[..., None], -1)[..., 0])
        present = (rows_in["weight"] > 0)[:, None]
        selected = (p >= threshold) & eligible[:, None] & present
        top_lp, top_idx = jax.lax.top_k(lp, edit_k)
        choice = jax.random.categorical(key, top_lp / beta, axis=-1)
        new = jnp.take_along_axis(top_idx, choice[..., None], -1)[..., 0]
        edited = jnp.where(selected, new, target)
        n = jnp.maximum(jnp.sum(present) * target.shape[1], 1)
        bins = jnp.clip((p * N_PROB_BINS).astype(jnp.int32), 0, N_PROB_BINS - 1)
        hist = jnp.zeros(N_PROB_BINS).at[bins.reshape(-1)].add(jnp.broadcast_to(present, p.shape).reshape(-1))
        stats = {
            "selected_share": jnp.sum(selected) / n,
            "changed_share": jnp.sum(selected & (edited != target)) / n,
            "prior_prob_hist": hist / n,
        }
        out = {**rows_in, "tokens": tok.at[:, 1:].set(edited)}
        return out, stats

    return World(name, rows, init, real, fit, sample, evaluate, edit, inspect)
