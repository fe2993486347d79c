"""Text worlds: a language model trained, generation after generation, on text
sampled from the previous generation's model (Shumailov et al. 2024, Nature
631:755; Gerstgrasser et al. 2024; Zhu et al. 2024, ToEdit).

Shared by the n-gram and the transformer world, which differ only in the
``LanguageModel`` (simulator/lm/interface.py) they plug in.  Rows are blocks of W tokens of real human
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
  token of the source text in one forward pass on the original prefix; a token
  with P(x_i | x_<i) >= ``edit_threshold`` is resampled from the prior's top
  ``edit_top_k`` tokens at temperature ``edit_temperature``; the others stay
  (the rule of simulator/lm/toedit.py).  Optionally (``edit_drop_below`` > 0, ToEdit's
  ``low_drop_up_revise`` uses 0.001) a token with P(x_i | x_<i) <
  ``edit_drop_below`` is deleted; see :func:`make_text_world` for how a block
  keeps its static length.
- extra records, off by default: ``train_tokens`` (``record_blocks`` > 0), the
  newest ``record_blocks`` present rows of every generation's training set, for
  the n-gram diagnostics; ``train_loss`` (``record_train_loss``), the fitted
  model's mean NLL on its own weighted training set (nats per scored token), as
  in ToEdit's Fig. 7.
- curation (``simulator/curation.py``): a block's ``score`` is its perplexity under
  the generation-0 model (exp of its mean NLL over the scored positions), so
  ``top_fraction`` with ``direction=-1`` keeps the proposed blocks of lowest
  perplexity (the quality filter of Liu et al., arXiv 2404.07503) and the verifier's
  window is a perplexity band.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator.lm.interface import LanguageModel
from collapse_sim.simulator.lm.toedit import chunked_rule, resample_where
from collapse_sim.simulator.world import World

TEMPERATURE_RANGE = (1e-3, 1e3)  # allowed sampling and edit temperatures
N_PROB_BINS = 10  # ToEdit Table 6: the prior's token probabilities in ten bins of width 0.1
EDIT_CHUNK_TOKENS = 1024  # positions the edit scores at once per seed (see make_text_world)
EDIT_BATCH_POSITIONS = 256  # selected positions whose distributions are looked up at once per seed


@dataclasses.dataclass
class TextConfig:
    """The fields every text world shares.  corpus: a UTF-8 file or folder (None =
    the shipped Shakespeare corpus).  block_len: tokens per block (position 0 is
    context only).  train_blocks: blocks of real text in generation 0's training
    set.  test_blocks: held-out blocks scored every generation.  reservoir_blocks:
    training-split blocks available as fresh real data.  synthetic_ratio: synthetic
    blocks per real block.  temperature, top_k (0 = off), prompt_len (0 =
    unprompted): sampling.  edit_threshold (p), edit_top_k, edit_temperature
    (beta): ToEdit's rule; edit_drop_below: delete tokens of lower prior
    probability (0 = off; ToEdit's low_drop_up_revise uses 0.001).
    inspect_blocks: training blocks scored per sequence by the generation-0 model.
    record_blocks, record_train_loss: the extra records (module docstring)."""

    name: str = "text"
    corpus: Optional[str] = None
    block_len: int = 128
    train_blocks: int = 512
    test_blocks: int = 256
    reservoir_blocks: int = 4096
    synthetic_ratio: float = 1.0
    temperature: float = 1.0
    top_k: int = 0
    prompt_len: int = 0
    edit_threshold: float = 0.99
    edit_top_k: int = 8
    edit_temperature: float = 1.0
    edit_drop_below: float = 0.0
    inspect_blocks: int = 64
    record_blocks: int = 0
    record_train_loss: bool = False

    def __post_init__(self):
        text_fields_valid(self)


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
    for field in ("train_blocks", "test_blocks", "inspect_blocks", "record_blocks"):
        v, least = getattr(cfg, field), 1 if field in ("train_blocks", "test_blocks") else 0
        if not (isinstance(v, int) and v >= least):
            bad(field, v, f"need a whole number >= {least}")
    if not (cfg.synthetic_ratio > 0 and math.isfinite(cfg.synthetic_ratio)):
        bad("synthetic_ratio", cfg.synthetic_ratio, "need a number > 0")
    for field in ("temperature", "edit_temperature"):
        v = getattr(cfg, field)
        if not (isinstance(v, (int, float)) and TEMPERATURE_RANGE[0] <= v <= TEMPERATURE_RANGE[1]):
            bad(field, v, f"need a finite number in [{TEMPERATURE_RANGE[0]:g}, {TEMPERATURE_RANGE[1]:g}] "
                          "(beyond them a draw is argmax or uniform, and log-probabilities over it overflow float32)")
    rows = max(cfg.train_blocks, round(cfg.synthetic_ratio * cfg.train_blocks))
    if not (isinstance(cfg.reservoir_blocks, int) and cfg.reservoir_blocks >= rows):
        bad("reservoir_blocks", cfg.reservoir_blocks,
            f"need a whole number of blocks >= the {rows} rows of a training set (max(train_blocks, "
            "synthetic_ratio · train_blocks)): the real set is its first train_blocks, fresh real data draws a "
            "whole training set from it")
    if not (isinstance(cfg.top_k, int) and 0 <= cfg.top_k <= 256):
        bad("top_k", cfg.top_k, "need 0 (off) or a number of tokens in [1, vocabulary size]")
    if not (isinstance(cfg.prompt_len, int) and 0 <= cfg.prompt_len < cfg.block_len):
        bad("prompt_len", cfg.prompt_len, f"need 0 <= prompt_len < block_len={cfg.block_len}")
    if not 0.0 <= cfg.edit_threshold <= 1.0:
        bad("edit_threshold", cfg.edit_threshold, "need a probability p in [0, 1]")
    if not (isinstance(cfg.edit_top_k, int) and 1 <= cfg.edit_top_k <= 256):
        bad("edit_top_k", cfg.edit_top_k, "need a whole number in [1, vocabulary size 256]")
    if not isinstance(cfg.record_train_loss, bool):
        bad("record_train_loss", cfg.record_train_loss, "need true or false")
    if not 0.0 <= cfg.edit_drop_below <= cfg.edit_threshold:
        bad("edit_drop_below", cfg.edit_drop_below,
            f"need a probability in [0, world.edit_threshold={cfg.edit_threshold}] (0 = no deletion)")


@functools.lru_cache(maxsize=8)
def load_text(corpus: Optional[str], block_len: int, reservoir_blocks: int, test_blocks: int) -> TextData:
    """Blocks of the corpus (the shipped one when ``corpus`` is None): a fixed,
    seeded shuffle of the training split's blocks, and test blocks spread evenly
    over the test split."""
    from collapse_sim.simulator.text.corpus import load_splits
    from collapse_sim.simulator.text.tokenizer import ByteTokenizer

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


def newest_rows(weight_N: jax.Array, n: int) -> jax.Array:
    """Indices of the last ``n`` rows of positive weight, newest first: in an
    accumulated pool, the latest synthetic set."""
    order = jnp.where(weight_N > 0, jnp.arange(weight_N.shape[0]), -1)
    return jax.lax.top_k(order, n)[1]


def make_text_world(name: str, cfg, lm: LanguageModel, data: TextData) -> World:
    N = cfg.train_blocks
    if data.reservoir.shape[0] < N:
        raise ValueError(
            f"world.train_blocks={N} but the training split of {cfg.corpus or 'the shipped corpus'} "
            f"has only {data.reservoir.shape[0]} blocks of {cfg.block_len} tokens"
        )
    M = max(1, round(cfg.synthetic_ratio * N))
    rows = max(N, M)
    W = cfg.block_len
    if data.reservoir.shape[0] < rows:
        raise ValueError(
            f"world.synthetic_ratio={cfg.synthetic_ratio} makes training sets of {rows} blocks but the training "
            f"split of {cfg.corpus or 'the shipped corpus'} has only {data.reservoir.shape[0]} blocks of {W} "
            f"tokens (fresh real data draws a whole training set from them); lower world.synthetic_ratio or "
            f"world.train_blocks"
        )
    reservoir = jnp.asarray(data.reservoir, jnp.int32)
    test = jnp.asarray(data.test, jnp.int32)
    real_tokens = jnp.asarray(np.resize(data.reservoir[:N], (rows, W)), jnp.int32)
    real_weight = (jnp.arange(rows) < N).astype(jnp.float32)
    syn_weight = (jnp.arange(rows) < M).astype(jnp.float32)
    n_inspect = min(cfg.inspect_blocks, rows)
    if cfg.record_blocks > rows:
        raise ValueError(f"world.record_blocks={cfg.record_blocks} exceeds the {rows} rows of a training set")
    threshold, edit_k, beta = cfg.edit_threshold, cfg.edit_top_k, cfg.edit_temperature
    drop_below = cfg.edit_drop_below
    # Positions whose distributions the edit holds at once: about EDIT_CHUNK_TOKENS, i.e.
    # 1 MiB of float32 log-probabilities over 256 tokens per seed, whatever the block length.
    edit_chunk = max(1, min(rows, EDIT_CHUNK_TOKENS // (W - 1)))
    if drop_below > 0 and lm.complete is None:
        raise ValueError(f"world.edit_drop_below={drop_below} needs a model that can continue a block; {name}'s cannot")

    def table(tokens, weight):
        return {"tokens": tokens, "weight": weight}

    def init(key):
        return {}

    def real(key, truth, g):
        fresh = reservoir[jax.random.choice(key, reservoir.shape[0], (rows,), replace=False)]
        return table(jnp.where(g == 0, real_tokens, fresh), real_weight)

    def fit(key, train, params0):
        """{"lm": the fitted model, "train_loss": its weighted NLL on ``train`` if recorded};
        ``params0``: None, or the generation-0 model (``World.fit``'s third argument)."""
        model = lm.fit(key, train["tokens"], train["weight"], None if params0 is None else params0["lm"])
        if not cfg.record_train_loss:
            return {"lm": model}
        nll_N = -jnp.mean(lm.token_logprobs(model, train["tokens"]), axis=-1)
        w_N = train["weight"]
        return {"lm": model, "train_loss": jnp.sum(jnp.where(w_N > 0, w_N * nll_N, 0.0)) / jnp.sum(w_N)}

    def sample(key, truth, params, g):
        k_prompt, k_sample = jax.random.split(key)
        prompts = real_tokens[jax.random.choice(k_prompt, N, (rows,))][:, : max(cfg.prompt_len, 1)]
        return table(lm.sample(k_sample, params["lm"], prompts), syn_weight)

    def evaluate(truth, params):
        nll = -jnp.mean(lm.token_logprobs(params["lm"], test))
        out = {"test_error": nll, "test_ppl": jnp.exp(nll), "test_bits_per_token": nll / jnp.log(2.0)}
        return out | ({"train_loss": params["train_loss"]} if cfg.record_train_loss else {})

    def score(params0, rows_in):
        """Each block's perplexity under the generation-0 model (the curation scorer)."""
        return jnp.exp(-jnp.mean(lm.token_logprobs(params0["lm"], rows_in["tokens"]), axis=-1))

    def inspect(truth, params0, train):
        """Per-sequence perplexity under the generation-0 model (Shumailov et al.
        2024, Fig. 1) of the last ``inspect_blocks`` present rows of a training
        set, the newest data; and, if recorded, the last ``record_blocks`` rows
        themselves in their order in the set (``train_tokens``)."""
        out, n_newest = {}, max(n_inspect, cfg.record_blocks)
        if n_newest == 0:
            return out
        newest = newest_rows(train["weight"], n_newest)
        if n_inspect:
            lp = lm.token_logprobs(params0["lm"], train["tokens"][newest[:n_inspect]])
            out["train_seq_ppl_gen0"] = jnp.exp(-jnp.mean(lp, axis=-1))
        if cfg.record_blocks:
            out["train_tokens"] = train["tokens"][jnp.sort(newest[: cfg.record_blocks])].astype(jnp.int32)
        return out

    def edit(key, truth, prior_params, rows_in, eligible):
        """ToEdit (Zhu et al. 2024, arXiv 2412.14689, Alg. 1; theory/derivations.md §15) on every eligible block.

        Position 0 of a block is context only: never scored, edited or deleted.
        The selection uses the prior's token probabilities; the prior's whole
        distributions (for the top-k draw) are computed only at the selected
        positions when the model can (``position_logprobs``, the n-gram), else
        for every position, a chunk of blocks at a time (the transformer,
        whose forward pass yields them anyway).  Both draw what
        ``toedit_rule`` (simulator/lm/toedit.py) draws with the same key.
        Deletion (``edit_drop_below`` > 0): the tokens of eligible blocks with
        P(x_i | x_<i) < ``edit_drop_below`` (on the original prefix, like the
        resampling decision) are removed and the block is closed up over them;
        the freed tail, as many positions as were deleted, is filled by
        sampling from the prior given the compacted block before it (the same
        top-k / temperature draw as the resampling), so every block keeps its W
        tokens and shapes stay static.  Text is thus never duplicated or taken
        from another block, at the price of a few prior-sampled tokens at the
        end of a block that lost tokens.
        """
        prior = prior_params["lm"]
        tok = rows_in["tokens"]
        target = tok[:, 1:]
        k_rule, k_fill = jax.random.split(key)
        present = (rows_in["weight"] > 0)[:, None]
        rows_ok = eligible[:, None] & present
        if lm.position_logprobs is not None:
            # Whole distributions only where a token is resampled (usually a small share).
            p = jnp.exp(lm.token_logprobs(prior, tok))
            selected = (p >= threshold) & rows_ok
            new = resample_where(lm, k_rule, prior, tok, selected, edit_k, beta, min(EDIT_BATCH_POSITIONS, rows * (W - 1)))
        else:
            new, sel, p = chunked_rule(lm, k_rule, prior, tok, threshold, edit_k, beta, edit_chunk)
            selected = sel & rows_ok
        edited = jnp.where(selected, new, target)
        n = jnp.maximum(jnp.sum(present) * target.shape[1], 1)
        bins = jnp.clip((p * N_PROB_BINS).astype(jnp.int32), 0, N_PROB_BINS - 1)
        hist = jnp.zeros(N_PROB_BINS).at[bins.reshape(-1)].add(jnp.broadcast_to(present, p.shape).reshape(-1))
        out = tok.at[:, 1:].set(edited)
        if drop_below > 0:
            # p < drop_below <= threshold: a deleted token is never a selected one.
            deleted = (p < drop_below) & rows_ok
            keep_NxW = jnp.concatenate([jnp.ones((tok.shape[0], 1), bool), ~deleted], axis=1)
            dest_NxW = jnp.where(keep_NxW, jnp.cumsum(keep_NxW, axis=1) - 1, W)  # W: dropped
            compact = jnp.zeros_like(out).at[jnp.arange(tok.shape[0])[:, None], dest_NxW].set(out, mode="drop")
            out = lm.complete(k_fill, prior, compact, jnp.sum(keep_NxW, axis=1), edit_k, beta)
        else:
            deleted = jnp.zeros_like(selected)
        stats = {
            "selected_share": jnp.sum(selected) / n,
            "changed_share": jnp.sum(selected & (edited != target)) / n,
            "deleted_share": jnp.sum(deleted) / n,
            "prior_prob_hist": hist / n,
        }
        return {**rows_in, "tokens": out}, stats

    return World(name, rows, init, real, fit, sample, evaluate, edit, inspect, score=score)
