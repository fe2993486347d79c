"""Distribution and n-gram diagnostics of text, as pure numpy functions on token arrays.

The same functions serve every text world (n-gram or transformer) and any text: they read
tokens, never a model, except :func:`sequence_perplexity` and :func:`probability_histogram`,
which read log-probabilities a model produced, and :func:`perplexity_under`, which asks a text
world's scoring function for them.

Axis letters: N sequences, L tokens per sequence, T tokens of a stream, U distinct n-grams,
B buckets, K top-K entries.  ``tokens`` is an (N, L) array of sequences or a (T,) stream (one
sequence) of non-negative integers below ``vocab_size`` (256 for the byte tokenizer).
N-grams lie wholly inside one sequence, as the n-gram model counts them
(simulator/lm/ngram.py); an n-gram is coded as the integer sum_i x_i V^(n-1-i), oldest token
first, so codes of one order sort lexicographically.

Sources of the measures:

- hashed uni-/bi-gram histograms ("feature over-concentration"), their KL divergence and total
  variation: Zhu et al. 2024 (ToEdit, arXiv 2412.14689) §3.2, App. G.5, Fig. 11 (10,000 buckets);
- top-K bi-grams, real against synthetic: ToEdit Figs. 12-13;
- distinct-n (Li et al. 2016, "A diversity-promoting objective function for neural
  conversation models"), type-token ratio, unigram entropy and a Zipf exponent: the lexical
  diversity measures of collapse studies (e.g. Guo et al. 2024, "The curious decline of
  linguistic diversity"; Shumailov et al. 2024);
- survival of types and n-grams, all and rare ones: Shumailov et al. 2024 (Nature 631:755),
  "the tails of the original distribution disappear", measured on the text itself;
- per-sequence perplexity under a model: Shumailov et al. 2024, Fig. 1; ToEdit §3.2, Fig. 10;
- the histogram of the prior's token probabilities in ten bins of width 0.1: ToEdit Table 6,
  Fig. 5 (U-shaped).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

DEFAULT_BUCKETS = 10_000


# ----------------------------------------------------------------------------- n-grams


def as_rows(tokens) -> np.ndarray:
    """(N, L) int64 view of (N, L) sequences or a (T,) stream (one row)."""
    x = np.asarray(tokens)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"tokens must be (N, L) sequences or a (T,) stream, got shape {x.shape}")
    if x.size and (not np.issubdtype(x.dtype, np.integer) or x.min() < 0):
        raise ValueError("tokens must be non-negative integers")
    return x.astype(np.int64, copy=False)


def ngram_codes(tokens, n: int, vocab_size: int = 256) -> np.ndarray:
    """Codes of every n-gram lying inside one sequence, in reading order: (N (L - n + 1),)."""
    x = as_rows(tokens)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if float(vocab_size) ** n >= 2.0**63:
        raise ValueError(f"vocab_size^n = {vocab_size}^{n} does not fit an int64 code")
    if x.size and x.max() >= vocab_size:
        raise ValueError(f"a token {x.max()} is >= vocab_size={vocab_size}")
    N, L = x.shape
    W = L - n + 1
    if W <= 0:
        return np.zeros(0, np.int64)
    code = np.zeros((N, W), np.int64)
    for i in range(n):
        code = code * vocab_size + x[:, i : i + W]
    return code.reshape(-1)


def decode(code: int, n: int, vocab_size: int = 256) -> tuple:
    """The n tokens (oldest first) of an n-gram code."""
    out = []
    for _ in range(n):
        code, t = divmod(int(code), vocab_size)
        out.append(t)
    return tuple(reversed(out))


class Counts(NamedTuple):
    codes: np.ndarray  # (U,) sorted distinct n-gram codes
    counts: np.ndarray  # (U,) occurrences of each


def ngram_counts(tokens, n: int, vocab_size: int = 256) -> Counts:
    """Distinct n-grams and their counts."""
    codes, counts = np.unique(ngram_codes(tokens, n, vocab_size), return_counts=True)
    return Counts(codes, counts)


# ------------------------------------------------------------- hashed feature histograms


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele, Lea & Flood 2014) on uint64: a fixed, seedless hash."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def bucket_of(codes, n_buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """Bucket of each n-gram code: splitmix64(code) mod n_buckets."""
    with np.errstate(over="ignore"):
        return (_splitmix64(np.asarray(codes, np.int64).view(np.uint64)) % np.uint64(n_buckets)).astype(np.int64)


def hashed_histogram(tokens, n: int, n_buckets: int = DEFAULT_BUCKETS, vocab_size: int = 256) -> np.ndarray:
    """(B,) share of the n-grams falling in each of ``n_buckets`` hash buckets (sums to 1).

    ToEdit (§3.2, Fig. 11) hashes uni- and bi-gram features into 10,000 buckets; text whose
    n-grams concentrate in fewer buckets is "over-concentrated".  The hash is fixed and
    seedless, so histograms of different texts are comparable bucket by bucket.
    """
    codes = ngram_codes(tokens, n, vocab_size)
    hist = np.bincount(bucket_of(codes, n_buckets), minlength=n_buckets).astype(float)
    return hist / max(hist.sum(), 1.0)


def _normalise(p, eps: float) -> np.ndarray:
    p = np.asarray(p, float) + eps
    return p / p.sum()


def kl_divergence(p, q, eps: float = 1e-10) -> float:
    """KL(p || q) = sum_i p_i log(p_i / q_i) in nats, after adding ``eps`` to every entry of
    both histograms and renormalising (a bucket empty in q would otherwise make it infinite).
    With p the real text's histogram it grows as the synthetic text q loses the real mass."""
    p, q = _normalise(p, eps), _normalise(q, eps)
    return float(np.sum(p * (np.log(p) - np.log(q))))


def total_variation(p, q) -> float:
    """TV(p, q) = (1/2) sum_i |p_i - q_i| of two histograms (each normalised to sum 1)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    return 0.5 * float(np.abs(p / p.sum() - q / q.sum()).sum())


# --------------------------------------------------------------------------- top-K


class TopK(NamedTuple):
    codes: np.ndarray  # (K,) n-gram codes, most frequent first (ties: smaller code first)
    shares: np.ndarray  # (K,) their share of all n-grams of the text


def top_k(tokens, n: int = 2, k: int = 40, vocab_size: int = 256) -> TopK:
    """The k most frequent n-grams and their relative frequencies (ToEdit Figs. 12-13)."""
    c = ngram_counts(tokens, n, vocab_size)
    order = np.lexsort((c.codes, -c.counts))[:k]
    total = max(int(c.counts.sum()), 1)
    return TopK(c.codes[order], c.counts[order] / total)


def shares_of(tokens, codes, n: int, vocab_size: int = 256) -> np.ndarray:
    """Relative frequency in ``tokens`` of each given n-gram code (0 where absent)."""
    c = ngram_counts(tokens, n, vocab_size)
    codes = np.asarray(codes, np.int64)
    if c.codes.size == 0:
        return np.zeros(codes.shape)
    pos = np.clip(np.searchsorted(c.codes, codes), 0, c.codes.size - 1)
    return np.where(c.codes[pos] == codes, c.counts[pos], 0) / c.counts.sum()


# ------------------------------------------------------------------ lexical diversity


def distinct_n(tokens, n: int, vocab_size: int = 256) -> float:
    """distinct-n (Li et al. 2016): distinct n-grams / all n-grams of the whole text."""
    codes = ngram_codes(tokens, n, vocab_size)
    return float(np.unique(codes).size / codes.size) if codes.size else 0.0


def type_token_ratio(tokens) -> float:
    """Mean over sequences of (distinct tokens in the sequence) / (its length).

    Per sequence, so it does not fall merely because more text was pooled (distinct-1 of the
    whole text does); compare it only between texts of equal sequence length."""
    x = as_rows(tokens)
    if x.shape[1] == 0:
        return 0.0
    s = np.sort(x, axis=1)
    types = 1 + np.sum(s[:, 1:] != s[:, :-1], axis=1)
    return float(np.mean(types / x.shape[1]))


def entropy(tokens, n: int = 1, vocab_size: int = 256) -> float:
    """Entropy (nats) of the empirical n-gram distribution; n = 1 is the unigram entropy."""
    c = ngram_counts(tokens, n, vocab_size).counts
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(-np.sum(p * np.log(p)))


class Zipf(NamedTuple):
    exponent: float  # s in frequency ∝ rank^(-s)
    intercept: float  # log frequency at rank 1 of the fitted line
    n_types: int  # ranks used in the fit


def zipf_fit(tokens, n: int = 1, vocab_size: int = 256, min_count: int = 1) -> Zipf:
    """Least-squares fit of log count = a - s log rank over the types seen at least
    ``min_count`` times (rank 1 = most frequent)."""
    c = ngram_counts(tokens, n, vocab_size).counts
    c = np.sort(c[c >= min_count])[::-1].astype(float)
    if c.size < 2:
        return Zipf(float("nan"), float("nan"), int(c.size))
    r = np.arange(1, c.size + 1, dtype=float)
    slope, intercept = np.polyfit(np.log(r), np.log(c), 1)
    return Zipf(float(-slope), float(intercept), int(c.size))


# --------------------------------------------------------------------------- survival


class Survival(NamedTuple):
    all: float  # share of the reference's n-gram types present in the other text
    rare: float  # the same share among the reference's rare types
    n_types: int  # types of the reference
    n_rare: int  # rare types of the reference


def survival(reference, other, n: int = 1, rare_quantile: float = 0.25, vocab_size: int = 256) -> Survival:
    """Which of the reference text's n-gram types still occur in ``other``.

    Rare types are those whose count in the reference is at most the ``rare_quantile``
    quantile of the reference's type counts (so at least one type is rare).  "Tails disappear
    first" (Shumailov et al. 2024) reads: ``rare`` falls before, and further than, ``all``.
    Compare texts of equal size: a smaller text holds fewer types by chance alone.
    """
    ref = ngram_counts(reference, n, vocab_size)
    present = np.isin(ref.codes, ngram_counts(other, n, vocab_size).codes)
    if ref.codes.size == 0:
        return Survival(float("nan"), float("nan"), 0, 0)
    rare = ref.counts <= np.quantile(ref.counts, rare_quantile)
    return Survival(float(present.mean()), float(present[rare].mean()), int(ref.codes.size), int(rare.sum()))


# ----------------------------------------------------------------- model-based measures


def sequence_perplexity(logprobs, mask=None) -> np.ndarray:
    """(N,) per-sequence perplexity exp(-mean_i log p(x_i | x_<i)) from (N, L) token
    log-probabilities; ``mask`` (N, L) marks the positions to count (default: all)."""
    lp = np.asarray(logprobs, float)
    if lp.ndim == 1:
        lp = lp[None]
    m = np.ones(lp.shape, bool) if mask is None else np.asarray(mask, bool)
    return np.exp(-np.sum(np.where(m, lp, 0.0), -1) / np.maximum(m.sum(-1), 1))


def perplexity_under(token_logprobs: Callable, params, tokens, batch: int = 256) -> np.ndarray:
    """(N,) per-sequence perplexity of ``tokens`` (N, W) under a model, in batches.

    ``token_logprobs(params, tokens) -> (N, W-1)`` is a text world's
    ``LanguageModel.token_logprobs`` (the n-gram's or the transformer's: both score positions
    1..W-1, so the same text gets comparable numbers); this is the generation-0-scored
    histogram of Shumailov et al. (Fig. 1) when ``params`` is the generation-0 model."""
    x = as_rows(tokens).astype(np.int32)
    out = [np.asarray(token_logprobs(params, x[i : i + batch])) for i in range(0, x.shape[0], batch)]
    return sequence_perplexity(np.concatenate(out) if out else np.zeros((0, 1)))


def probability_histogram(logprobs, n_bins: int = 10, mask=None) -> np.ndarray:
    """(n_bins,) share of tokens whose probability p = exp(logprob) falls in each of the bins
    [0, 1/n), [1/n, 2/n), ..., [1 - 1/n, 1] (the last bin is closed), as in ToEdit Table 6."""
    p = np.exp(np.asarray(logprobs, float))
    m = np.ones(p.shape, bool) if mask is None else np.asarray(mask, bool)
    bins = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    hist = np.bincount(bins[m].reshape(-1), minlength=n_bins).astype(float)
    return hist / max(m.sum(), 1)


# ----------------------------------------------------------------------- words (bytes)


def to_words(*texts, separators=(9, 10, 32)) -> tuple:
    """Byte texts as streams of word ids over one shared vocabulary.

    A word is a maximal run of bytes containing no separator (tab, newline, space by default).
    Each text (any shape; read in row-major order as one stream) becomes a (T_w,) int64 array of
    word ids, the ids numbering the distinct words of all the given texts in sorted order, so
    every other function here measures word types, word bi-grams and so on.
    Returns ``(streams, vocab_size)``.
    """
    sep = set(int(s) for s in separators)
    words_per_text = []
    for t in texts:
        stream = np.asarray(t).reshape(-1)
        is_sep = np.isin(stream, list(sep))
        words, cur = [], []
        for b, s in zip(stream.tolist(), is_sep.tolist()):
            if s:
                if cur:
                    words.append(bytes(cur))
                    cur = []
            else:
                cur.append(b)
        if cur:
            words.append(bytes(cur))
        words_per_text.append(words)
    vocab = sorted(set(w for ws in words_per_text for w in ws))
    index = {w: i for i, w in enumerate(vocab)}
    streams = tuple(np.array([index[w] for w in ws], np.int64) for ws in words_per_text)
    return streams, max(len(vocab), 1)


def label(code: int, n: int, vocab_size: int = 256) -> str:
    """A printable label of a byte n-gram: ␣ for space, ↵ for newline, \\xNN for other
    non-printable bytes."""
    def one(t):
        if t == 32:
            return "␣"
        if t == 10:
            return "↵"
        return chr(t) if 33 <= t < 127 else f"\\x{t:02x}"

    return "".join(one(t) for t in decode(code, n, vocab_size))
