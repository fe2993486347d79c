"""simulator/diagnostics.py against plain-Python computations (Counter, loops) on a small text."""

import math
from collections import Counter

import jax
import numpy as np
import pytest

from collapse_sim.simulator import diagnostics as D

TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
)
OTHER = "to be or not to be, to be or not to be, that is the the the question\n" * 2


def rows(text: str, L: int) -> np.ndarray:
    b = np.frombuffer(text.encode(), np.uint8).astype(np.int32)
    n = len(b) // L
    return b[: n * L].reshape(n, L)


X = rows(TEXT, 24)  # (N, L) sequences
Y = rows(OTHER, 24)


def py_ngrams(x: np.ndarray, n: int) -> list:
    """Every n-gram inside one row, as tuples, by plain loops."""
    out = []
    for row in x.tolist():
        for i in range(len(row) - n + 1):
            out.append(tuple(row[i : i + n]))
    return out


def py_code(gram, V=256):
    c = 0
    for t in gram:
        c = c * V + t
    return c


def py_splitmix64(x: int) -> int:
    m = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ngram_counts_match_counter(n):
    c = D.ngram_counts(X, n)
    ref = Counter(py_code(g) for g in py_ngrams(X, n))
    assert dict(zip(c.codes.tolist(), c.counts.tolist())) == dict(ref)
    assert D.decode(c.codes[0], n) == min(py_ngrams(X, n))
    # a 1-D stream is one sequence
    assert D.ngram_codes(X[0], n).tolist() == [py_code(g) for g in py_ngrams(X[:1], n)]


@pytest.mark.parametrize("n", [1, 2])
def test_hashed_histogram_matches_python_hash(n):
    B = 97
    h = D.hashed_histogram(X, n, n_buckets=B)
    grams = py_ngrams(X, n)
    ref = Counter(py_splitmix64(py_code(g)) % B for g in grams)
    expected = np.array([ref[b] for b in range(B)], float) / len(grams)
    np.testing.assert_allclose(h, expected)
    assert D.hashed_histogram(X, n).shape == (10_000,)


def test_kl_and_total_variation():
    p = D.hashed_histogram(X, 2, 50)
    q = D.hashed_histogram(Y, 2, 50)
    eps = 1e-10
    pp = [(a + eps) for a in p]
    qq = [(b + eps) for b in q]
    sp, sq = sum(pp), sum(qq)
    kl = sum(a / sp * math.log((a / sp) / (b / sq)) for a, b in zip(pp, qq))
    assert D.kl_divergence(p, q) == pytest.approx(kl, rel=1e-9)
    assert D.kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    tv = 0.5 * sum(abs(a - b) for a, b in zip(p, q))
    assert D.total_variation(p, q) == pytest.approx(tv, rel=1e-12)
    assert D.total_variation(p, q) == pytest.approx(D.total_variation(q, p))


def test_top_k_and_shares():
    grams = py_ngrams(X, 2)
    ref = Counter(grams)
    expected = sorted(ref.items(), key=lambda kv: (-kv[1], py_code(kv[0])))[:5]
    t = D.top_k(X, 2, 5)
    assert [D.decode(c, 2) for c in t.codes] == [g for g, _ in expected]
    np.testing.assert_allclose(t.shares, [c / len(grams) for _, c in expected])
    other = Counter(py_ngrams(Y, 2))
    n_other = sum(other.values())
    np.testing.assert_allclose(D.shares_of(Y, t.codes, 2), [other[g] / n_other for g, _ in expected])
    assert D.label(py_code((ord("e"), 32)), 2) == "e␣"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_distinct_n(n):
    grams = py_ngrams(X, n)
    assert D.distinct_n(X, n) == pytest.approx(len(set(grams)) / len(grams))


def test_type_token_ratio_and_entropy():
    ttr = np.mean([len(set(r)) / len(r) for r in X.tolist()])
    assert D.type_token_ratio(X) == pytest.approx(ttr)
    c = Counter(X.reshape(-1).tolist())
    tot = sum(c.values())
    h = -sum(v / tot * math.log(v / tot) for v in c.values())
    assert D.entropy(X) == pytest.approx(h)
    c2 = Counter(py_ngrams(X, 2))
    tot2 = sum(c2.values())
    assert D.entropy(X, 2) == pytest.approx(-sum(v / tot2 * math.log(v / tot2) for v in c2.values()))


def test_zipf_fit_matches_least_squares_and_recovers_an_exponent():
    c = sorted(Counter(X.reshape(-1).tolist()).values(), reverse=True)
    r = np.arange(1, len(c) + 1)
    slope, icpt = np.polyfit(np.log(r), np.log(c), 1)
    z = D.zipf_fit(X)
    assert z.exponent == pytest.approx(-slope) and z.intercept == pytest.approx(icpt) and z.n_types == len(c)
    # a text whose rank-frequency curve is exactly 1000 / rank
    stream = np.concatenate([np.full(1000 // k, k - 1) for k in range(1, 21)])
    assert D.zipf_fit(stream).exponent == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("n", [1, 2])
def test_survival_all_and_rare(n):
    ref = Counter(py_ngrams(X, n))
    seen = set(py_ngrams(Y, n))
    counts = np.array(list(ref.values()))
    cut = np.quantile(counts, 0.25)
    rare = [g for g, v in ref.items() if v <= cut]
    s = D.survival(X, Y, n, rare_quantile=0.25)
    assert s.all == pytest.approx(sum(g in seen for g in ref) / len(ref))
    assert s.rare == pytest.approx(sum(g in seen for g in rare) / len(rare))
    assert (s.n_types, s.n_rare) == (len(ref), len(rare))
    assert D.survival(X, X, n) == (1.0, 1.0, len(ref), len(rare))


def test_sequence_perplexity_of_a_counted_bigram_model():
    """Per-sequence perplexity of an add-one bigram model built with Counter, computed in plain
    Python, equals diagnostics.perplexity_under with the n-gram LM (order 2, additive)."""
    from collapse_sim.simulator.lm import ngram

    V, alpha = 256, 1.0
    big = Counter(py_ngrams(X, 2))
    ctx = Counter()
    for (a, _), v in big.items():
        ctx[a] += v
    expected = []
    for row in Y.tolist():
        lps = [math.log((big[(row[i - 1], row[i])] + alpha) / (ctx[row[i - 1]] + alpha * V)) for i in range(1, len(row))]
        expected.append(math.exp(-sum(lps) / len(lps)))
    cfg = ngram.NGramConfig(order=2, smoothing="additive", alpha=alpha)
    params = jax.jit(ngram.fit, static_argnums=0)(cfg, X)
    score = jax.jit(lambda p, t: ngram.token_logprobs(cfg, p, t)[:, 1:])
    got = D.perplexity_under(score, params, Y)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # batching does not change the result
    np.testing.assert_allclose(D.perplexity_under(lambda p, t: np.asarray(score(p, t)), params, Y, batch=2), got)
    lp = np.log(np.array([[0.5, 0.25], [1.0, 0.125]]))
    np.testing.assert_allclose(D.sequence_perplexity(lp), [math.sqrt(8), math.sqrt(8)])
    np.testing.assert_allclose(D.sequence_perplexity(lp, mask=[[1, 0], [1, 1]]), [2.0, math.sqrt(8)])


def test_probability_histogram_matches_numpy_histogram():
    rng = np.random.default_rng(0)
    p = rng.beta(0.3, 0.3, size=(7, 33))
    h = D.probability_histogram(np.log(p))
    ref, _ = np.histogram(p, bins=np.linspace(0, 1, 11))
    np.testing.assert_allclose(h, ref / p.size)
    assert D.probability_histogram(np.log([[1.0, 0.0 + 1e-30]])).tolist() == [0.5] + [0.0] * 8 + [0.5]


def test_words_share_a_vocabulary():
    (a, b), V = D.to_words(rows("the cat the dog\n", 8), np.frombuffer(b"dog eats\tcat", np.uint8))
    words = sorted({b"the", b"cat", b"dog", b"eats"})
    assert V == 4
    assert [words[i] for i in a] == [b"the", b"cat", b"the", b"dog"]
    assert [words[i] for i in b] == [b"dog", b"eats", b"cat"]
    assert D.survival(a, b).all == pytest.approx(2 / 3)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        D.ngram_codes(np.array([1, -1]), 1)
    with pytest.raises(ValueError, match="vocab_size"):
        D.ngram_codes(np.array([300]), 1)
    with pytest.raises(ValueError, match="int64"):
        D.ngram_codes(np.array([1, 2]), 8, vocab_size=256)


def test_sequence_perplexity_under_the_transformer_world_model():
    """perplexity_under takes either text world's LanguageModel.token_logprobs: here the
    transformer's, against log_softmax of its logits computed in numpy."""
    from collapse_sim.simulator.lm import transformer as tf
    from collapse_sim.simulator.worlds import transformer as tw

    cfg = tw.Config(block_len=24, n_layers=1, d_model=16, n_heads=2, steps=1)
    lm = tw.language_model(cfg)
    params = tf.init_params(jax.random.key(0), tw.model_config(cfg))
    logits = np.asarray(jax.jit(lambda p, x: tf.apply(tw.model_config(cfg), p, x))(params, X[:, :-1]), np.float64)
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    lp = np.take_along_axis(logp, X[:, 1:, None], -1)[..., 0]
    got = D.perplexity_under(jax.jit(lm.token_logprobs), params, X)
    np.testing.assert_allclose(got, np.exp(-lp.mean(-1)), rtol=1e-4)
