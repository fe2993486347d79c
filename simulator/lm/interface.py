"""What a text world needs from a language model: :class:`LanguageModel`, a bundle of
pure, traceable functions (the n-gram of simulator/worlds/ngram.py and the transformer
of simulator/worlds/transformer.py both provide one).

A block is W tokens x_0..x_{W-1}; position 0 is context only, so a model scores
positions i = 1..W-1 with log p(x_i | x_<i), the next-token distribution given the
in-block prefix (Shumailov et al. 2024, Nature 631:755, score held-out text by its
per-token negative log-likelihood).  Axis letters: N blocks, W tokens per block,
P positions or prompt tokens, V vocabulary.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional


class LanguageModel(NamedTuple):
    """What a text world needs from a model; every function is pure and traceable.

    fit(key, tokens_NxW, weights_N, params0) -> params (``params0``: None, or the
    generation-0 model to continue from); next_logprobs(params, tokens_NxW) ->
    (N, W-1, V) log p(. | x_<i) for i = 1..W-1; token_logprobs(params,
    tokens_NxW) -> (N, W-1); sample(key, params, prompts_NxP) -> (N, W);
    complete(key, params, tokens_NxW, n_keep_N, top_k, beta) -> (N, W): row n
    keeps its first n_keep_N[n] >= 1 tokens and continues them by ancestral
    sampling from ``simulator/lm/toedit.py``'s ``draw_top_k`` (``top_k`` static),
    token t with the key ``fold_in(key, t)`` (optional; needed only for deletion in
    token editing).  position_logprobs(params, tokens_NxW, rows_P, pos_P) -> (P, V):
    log p(. | x_<pos) of block rows_P[p] at position pos_P[p] in [1, W-1], i.e.
    ``next_logprobs(params, tokens)[rows_P, pos_P - 1]`` (optional; lets the edit
    score whole distributions only where it resamples, ``toedit.resample_where``).
    """

    fit: Callable
    next_logprobs: Callable
    token_logprobs: Callable
    sample: Callable
    complete: Optional[Callable] = None
    position_logprobs: Optional[Callable] = None
