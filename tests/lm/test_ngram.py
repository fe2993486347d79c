"""Tests for simulator/lm/ngram.py and ngram_counts.py: counts, smoothing, perplexity, sampling, theory.

Compilation dominates the runtime, so the tests share jitted entry points,
configurations and array shapes wherever they can.
"""

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_sim.simulator.lm.ngram import (NGramConfig, all_next_logprobs, fit, next_token_logprobs,
                                             perplexity, sample, token_logprobs)
from collapse_sim.simulator.lm.ngram_counts import DenseCounts, ngram_count

jfit = jax.jit(fit, static_argnums=0)
jtoken_logprobs = jax.jit(token_logprobs, static_argnums=0)
jnext_logprobs = jax.jit(next_token_logprobs, static_argnums=0)
jperplexity = jax.jit(perplexity, static_argnums=0)
jcount = jax.jit(ngram_count, static_argnums=0)
jsample = jax.jit(sample, static_argnums=(0, 3, 4), static_argnames="top_k")
# ngram_count for a tuple of n-gram arrays in one program
jcounts = jax.jit(lambda cfg, params, grams: [ngram_count(cfg, params, g) for g in grams],
                  static_argnums=0)

TEXT = (b"the cat sat on the mat. the dog sat on the log. a cat and a dog met "
        b"on a mat by the log; the end.")
N, L = 4, 24
BLOCKS_NxL = np.frombuffer(TEXT[:N * L], np.uint8).astype(np.int32).reshape(N, L)
WEIGHTS_N = np.array([1.0, 0.0, 2.5, 1.0], np.float32)  # a weight-0 row and a fractional one
# Held-out blocks with contexts the model has and has not seen.
TEST_NxL = np.frombuffer(b"the cat met the log. xyzthe dog sat on a mat", np.uint8
                         ).astype(np.int32)[:40].reshape(2, 20)
# Contexts of one shape (Q, 5): seen ones, and random (almost surely unseen) ones.
CTX_Qx5 = np.concatenate([
    np.lib.stride_tricks.sliding_window_view(BLOCKS_NxL[0], 5)[::2],
    np.random.default_rng(0).integers(0, 256, size=(6, 5)),
    [[1, 2, 3, 116, 104], [120, 121, 122, 32, 116]],
]).astype(np.int32)

LAM3 = (0.1, 0.2, 0.3, 0.4)
WB = NGramConfig(order=3)  # Witten-Bell; dense orders 1-2, sparse order 3
WB_SPARSE = NGramConfig(order=3, max_dense=0)  # every order sparse
WB_DENSE = NGramConfig(order=3, vocab_size=128, max_dense=2**21)  # every order dense (ASCII)
ADDITIVE = NGramConfig(order=3, smoothing="additive", alpha=0.5)
INTERP = NGramConfig(order=3, smoothing="interpolate", lambdas=LAM3)
REFERENCE_CONFIGS = {"additive": ADDITIVE, "interpolate": INTERP, "witten_bell": WB,
                     "witten_bell-sparse": WB_SPARSE}


# ----------------------------------------------------------------------------
# plain-Python reference model


def ref_counters(blocks, weights, order):
    """[Counter of j-grams, j = 1..order], weighted by block, windows inside blocks only."""
    out = []
    for j in range(1, order + 1):
        c = collections.Counter()
        for row, w in zip(np.asarray(blocks).tolist(), np.asarray(weights).tolist()):
            if w > 0:
                for i in range(len(row) - j + 1):
                    c[tuple(row[i:i + j])] += w
        out.append(c)
    return out


class RefModel:
    """The module docstring's smoothing rules, in plain Python floats."""

    def __init__(self, cfg, counters):
        self.cfg, self.counters = cfg, counters
        self.tot = [collections.Counter() for _ in counters]
        self.dist = [collections.Counter() for _ in counters]
        for j, c in enumerate(counters):
            for g, n in c.items():
                self.tot[j][g[:-1]] += n
                self.dist[j][g[:-1]] += n > 0

    def prob(self, hist, w):
        cfg, k, V = self.cfg, self.cfg.order, self.cfg.vocab_size
        hist = tuple(hist)

        def stats(j):  # None if the order needs more history than there is
            if j - 1 > len(hist):
                return None
            h = hist[len(hist) - (j - 1):] if j > 1 else ()
            return (self.counters[j - 1].get(h + (w,), 0.0), self.tot[j - 1][h],
                    self.dist[j - 1][h])

        if cfg.smoothing == "additive":
            c, tot, _ = stats(min(k, len(hist) + 1))
            return (c + cfg.alpha) / (tot + cfg.alpha * V)
        if cfg.smoothing == "interpolate":
            num, den = cfg.lambdas[0] / V, cfg.lambdas[0]
            for j in range(1, k + 1):
                s = stats(j)
                if s is not None and s[1] > 0:
                    num += cfg.lambdas[j] * s[0] / s[1]
                    den += cfg.lambdas[j]
            return num / den if den > 0 else 1.0 / V
        p = 1.0 / V
        for j in range(1, k + 1):
            s = stats(j)
            if s is not None and s[1] > 0:
                p = (s[0] + s[2] * p) / (s[1] + s[2])
        return p


def table_total(table):
    return float(table.total_R.sum() if isinstance(table, DenseCounts) else table.counts_E.sum())


def padded(grams, size=128):
    """Pad an (n, j) n-gram list to a fixed number of rows so lookups share one compile."""
    grams = np.asarray(grams, np.int32)
    return np.concatenate([grams, np.zeros((size - len(grams), grams.shape[1]), np.int32)])


# ----------------------------------------------------------------------------
# counting


@pytest.mark.parametrize("cfg", [WB, WB_SPARSE, WB_DENSE], ids=["default", "sparse", "dense"])
def test_counts_equal_counter_for_every_order(cfg):
    params = jfit(cfg, BLOCKS_NxL, WEIGHTS_N)
    counters = ref_counters(BLOCKS_NxL, WEIGHTS_N, 3)
    absent = ref_counters(BLOCKS_NxL[1:2], [1.0], 3)  # n-grams of the weight-0 row
    present = [list(c) for c in counters]
    only_absent = [[g for g in a if g not in c] + [(0,) * j]  # and one never seen
                   for j, (a, c) in enumerate(zip(absent, counters), start=1)]
    assert all(len(a) > 1 for a in only_absent[1:])
    got = jcounts(cfg, params, [padded(g) for g in present + only_absent])
    for j, counter in enumerate(counters, start=1):
        np.testing.assert_allclose(np.asarray(got[j - 1])[:len(counter)],
                                   [counter[g] for g in present[j - 1]], rtol=1e-6)
        assert np.all(np.asarray(got[3 + j - 1]) == 0)
        # counts are non-negative, so equal totals leave no room for other n-grams
        assert table_total(params[j - 1]) == pytest.approx(sum(counter.values()), rel=1e-6)


def test_zero_weight_rows_contribute_nothing():
    # Random junk rows at weight 0 change nothing (row 1 of BLOCKS_NxL is already
    # at weight 0, and the Counter test shows it is not counted).
    cfg = WB  # its sparse order 3 is where absent rows could leave entries behind
    junk_NxL = np.random.default_rng(1).integers(0, 256, size=(3, L)).astype(np.int32)
    full = jfit(cfg, np.concatenate([BLOCKS_NxL, junk_NxL]),
                np.concatenate([WEIGHTS_N, np.zeros(3, np.float32)]))
    clean = jfit(cfg, BLOCKS_NxL, WEIGHTS_N)
    np.testing.assert_allclose(jtoken_logprobs(cfg, full, TEST_NxL),
                               jtoken_logprobs(cfg, clean, TEST_NxL), rtol=1e-6)
    assert np.all(np.asarray(jcount(cfg, full, padded(junk_NxL[:, :3]))) == 0)
    # perplexity leaves weight-0 blocks out and weights the others
    data = np.concatenate([TEST_NxL, junk_NxL[:1, :20]])
    np.testing.assert_allclose(jperplexity(cfg, clean, data, np.array([2.0, 1.0, 0.0])),
                               jperplexity(cfg, clean, TEST_NxL[[0, 0, 1]], np.ones(3)),
                               rtol=1e-5)


def test_hashed_contexts_merge():
    # One bucket: every order-3 context is merged, so the order-3 count of (a, b, w)
    # is the number of trigrams ending in w, whatever a and b are.
    cfg = NGramConfig(order=3, n_buckets=1)
    assert cfg.is_hashed(3) and not cfg.is_hashed(2)
    params = jfit(cfg, BLOCKS_NxL, WEIGHTS_N)
    ends = collections.Counter()
    for g, n in ref_counters(BLOCKS_NxL, WEIGHTS_N, 3)[2].items():
        ends[g[-1]] += n
    for a, b in [(0, 0), (116, 104), (7, 9)]:
        got = jcount(cfg, params, np.array([[a, b, w] for w in range(256)], np.int32))
        np.testing.assert_allclose(got, [ends[w] for w in range(256)])
    # Order 4 hashed into 2^20 buckets: no collision on this text, so counts are exact.
    cfg4 = NGramConfig(order=4, n_buckets=2**20)
    assert cfg4.is_hashed(4)
    params4 = jfit(cfg4, BLOCKS_NxL, WEIGHTS_N)
    counter = ref_counters(BLOCKS_NxL, WEIGHTS_N, 4)[3]
    got = np.asarray(jcount(cfg4, params4, padded(list(counter))))[:len(counter)]
    np.testing.assert_allclose(got, list(counter.values()))


# ----------------------------------------------------------------------------
# probabilities


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_probabilities_match_reference(name):
    cfg = REFERENCE_CONFIGS[name]
    params = jfit(cfg, BLOCKS_NxL, WEIGHTS_N)
    ref = RefModel(cfg, ref_counters(BLOCKS_NxL, WEIGHTS_N, 3))
    # every position, including the short-history ones at the block start
    want = [[math.log(ref.prob(row[:i], row[i])) for i in range(len(row))]
            for row in TEST_NxL.tolist()]
    np.testing.assert_allclose(jtoken_logprobs(cfg, params, TEST_NxL), want,
                               rtol=1e-5, atol=1e-6)
    # whole next-token distributions after seen and unseen contexts
    want = [[math.log(ref.prob(ctx, w)) for w in range(256)] for ctx in CTX_Qx5.tolist()]
    np.testing.assert_allclose(jnext_logprobs(cfg, params, CTX_Qx5), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_probabilities_are_normalised(name):
    cfg = REFERENCE_CONFIGS[name]
    params = jfit(cfg, BLOCKS_NxL, WEIGHTS_N)
    total_Q = jnp.exp(jnext_logprobs(cfg, params, CTX_Qx5)).sum(-1)
    np.testing.assert_allclose(total_Q, 1.0, atol=2e-6)
    # short contexts (block starts) are checked in the next-token consistency test


def test_additive_matches_numpy_hand_computation():
    V, alpha = 8, 0.3
    rng = np.random.default_rng(2)
    x_NxL = rng.integers(0, V, size=(5, 30)).astype(np.int32)
    x_NxL[:, :10] = rng.integers(0, 3, size=(5, 10))  # skewed, so some contexts go unseen
    w_N = np.array([1.0, 2.0, 0.0, 0.5, 1.0], np.float32)
    c1, c2, c3 = np.zeros(V), np.zeros((V, V)), np.zeros((V, V, V))
    for x, w in zip(x_NxL, w_N):
        np.add.at(c1, x, w)
        np.add.at(c2, (x[:-1], x[1:]), w)
        np.add.at(c3, (x[:-2], x[1:-1], x[2:]), w)
    test = rng.integers(0, V, size=(3, 12)).astype(np.int32)
    want = np.empty(test.shape)
    for n, x in enumerate(test):
        for i, w in enumerate(x):
            c = c1 if i == 0 else c2[x[i - 1]] if i == 1 else c3[x[i - 2], x[i - 1]]
            want[n, i] = np.log((c[w] + alpha) / (c.sum() + alpha * V))
    cfg = NGramConfig(order=3, vocab_size=V, smoothing="additive", alpha=alpha)  # dense
    params = jfit(cfg, x_NxL, w_N)
    np.testing.assert_allclose(jtoken_logprobs(cfg, params, test), want, rtol=1e-5)


def test_token_logprobs_agree_with_next_token_logprobs():
    params = jfit(WB, BLOCKS_NxL, WEIGHTS_N)
    lp_NxL = jtoken_logprobs(WB, params, TEST_NxL)
    every_NxLxV = jax.jit(all_next_logprobs, static_argnums=0)(WB, params, TEST_NxL)
    np.testing.assert_allclose(np.take_along_axis(every_NxLxV, TEST_NxL[..., None], -1)[..., 0],
                               lp_NxL, rtol=1e-5)
    for i in range(TEST_NxL.shape[1]):
        ctx = TEST_NxL[:, max(0, i - 2):i]  # contexts of 0, 1, then k - 1 = 2 tokens
        nt = jnext_logprobs(WB, params, ctx)
        np.testing.assert_allclose(lp_NxL[:, i], nt[np.arange(2), TEST_NxL[:, i]], rtol=1e-5)
        np.testing.assert_allclose(jnp.exp(nt).sum(-1), 1.0, atol=2e-6)  # normalised


def test_perplexity_equals_exp_mean_nll_from_model_probabilities():
    params = jfit(INTERP, BLOCKS_NxL, WEIGHTS_N)
    # the model's own probabilities of the observed tokens (token_logprobs is checked
    # against next_token_logprobs above), then the NLL in numpy
    prob_NxL = np.exp(np.asarray(jtoken_logprobs(INTERP, params, TEST_NxL), np.float64))
    nll_NxL = -np.log(prob_NxL)
    np.testing.assert_allclose(jperplexity(INTERP, params, TEST_NxL, None),
                               np.exp(nll_NxL.mean()), rtol=1e-5)
    w = np.array([3.0, 1.0])
    np.testing.assert_allclose(jperplexity(INTERP, params, TEST_NxL, w),
                               np.exp((w * nll_NxL.sum(1)).sum() / (w.sum() * nll_NxL.shape[1])),
                               rtol=1e-5)


# ----------------------------------------------------------------------------
# sampling


def _skewed_blocks(V, seed, n=6, length=40):
    rng = np.random.default_rng(seed)
    p = np.arange(1, V + 1) / (V * (V + 1) / 2)
    return rng.choice(V, size=(n, length), p=p).astype(np.int32)


@pytest.mark.parametrize("kw, prompt", [
    (dict(smoothing="additive", alpha=0.5), None),  # every order dense
    (dict(smoothing="witten_bell", max_dense=4), None),  # orders 2 and 3 sparse
    (dict(smoothing="interpolate", lambdas=(0.1, 0.2, 0.3, 0.4), max_dense=16), [3]),  # mixed
], ids=["additive-dense", "wb-sparse", "interp-mixed-prompted"])
def test_sample_frequencies_match_model(kw, prompt):
    # The empirical frequency of every block against the model's joint
    # p(x0) p(x1 | x0) p(x2 | x0 x1) ..., from token_logprobs. With a prompt x0 is
    # fixed and one more token is drawn, so both cases have V^3 free cells.
    V, n = 4, 40_000
    length = 3 if prompt is None else 4
    cfg = NGramConfig(order=3, vocab_size=V, **kw)
    params = jfit(cfg, _skewed_blocks(V, seed=3), None)
    x = np.asarray(jsample(cfg, params, jax.random.key(0), n, length,
                           None if prompt is None else np.array(prompt, np.int32)))
    assert x.dtype == np.int32 and x.min() >= 0 and x.max() < V
    grid = np.stack(np.meshgrid(*[np.arange(V)] * length, indexing="ij"), -1
                    ).reshape(-1, length)
    lp = np.asarray(jtoken_logprobs(cfg, params, grid.astype(np.int32)), np.float64)
    if prompt is not None:  # the prompt is fixed, the rest is drawn given it
        assert np.all(x[:, 0] == prompt[0])
        lp[:, 0] = np.where(grid[:, 0] == prompt[0], 0.0, -np.inf)
    p = np.exp(lp.sum(-1))
    freq = np.bincount(x @ (V ** np.arange(length - 1, -1, -1)), minlength=V**length) / n
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 4 * se), np.max(np.abs(freq - p) / np.maximum(se, 1e-12))


def test_tempered_top_k_sampling_matches_conditionals():
    V, n, top_k = 6, 40_000, 3
    cfg = NGramConfig(order=3, vocab_size=V, max_dense=36)
    params = jfit(cfg, _skewed_blocks(V, seed=4), None)
    prompt = np.array([5, 4], np.int32)
    logp = np.asarray(jnext_logprobs(cfg, params, prompt), np.float64)
    for temperature in (0.7, 1.3):  # traced: one compile for both
        x = np.asarray(jsample(cfg, params, jax.random.key(1), n, 3, prompt,
                               jnp.float32(temperature), top_k=top_k))
        assert np.all(x[:, :2] == prompt)
        logits = logp / temperature
        logits[np.argsort(logits)[:-top_k]] = -np.inf
        p = np.exp(logits - logits.max())
        p /= p.sum()
        freq = np.bincount(x[:, 2], minlength=V) / n
        assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n)), (temperature, freq, p)


def test_unigram_refit_loses_categories_like_categorical_theory():
    # Theory section 4.1: a category of probability q misses all M draws of a
    # generation with probability (1 - q)^M, and once lost never returns.
    V, M, S, q = 10, 100, 4000, 0.02
    cfg = NGramConfig(order=1, vocab_size=V, smoothing="interpolate", lambdas=(0.0, 1.0))
    gen0 = np.repeat(np.arange(V), [2] * 8 + [42, 42]).astype(np.int32)[None]  # 8 at q = 0.02
    params0 = fit(cfg, gen0)

    def two_generations(key):
        def generation(params, g):  # draw M tokens, refit on them alone
            params = fit(cfg, sample(cfg, params, jax.random.fold_in(key, g), 4, M // 4))
            return params, params[0].counts_RxV[0]
        return jax.lax.scan(generation, params0, jnp.arange(2))[1]

    c_SxGxV = np.asarray(jax.jit(jax.vmap(two_generations))(
        jax.random.split(jax.random.key(5), S)))
    c1_SxV, c2_SxV = c_SxGxV[:, 0], c_SxGxV[:, 1]
    assert np.all(c1_SxV.sum(-1) == M)
    lost_S = (c1_SxV[:, :8] == 0).mean(-1)
    theory, se = (1 - q) ** M, lost_S.std(ddof=1) / math.sqrt(S)
    assert abs(lost_S.mean() - theory) <= 4 * se, (lost_S.mean(), theory, se)
    assert np.all(c2_SxV[c1_SxV == 0] == 0)


def test_sample_keys_and_batching():
    params = jfit(WB, BLOCKS_NxL[:, :16], None)  # shapes shared with the vmap test
    a = jsample(WB, params, jax.random.key(0), 4, 16)
    assert a.shape == (4, 16) and a.dtype == jnp.int32
    np.testing.assert_array_equal(a, jsample(WB, params, jax.random.key(0), 4, 16))
    assert not np.array_equal(a, jsample(WB, params, jax.random.key(1), 4, 16))
    # more or shorter blocks: the common part is the same
    np.testing.assert_array_equal(a[:, :10], jsample(WB, params, jax.random.key(0), 6, 10)[:4])


def test_blocks_shorter_than_the_order():
    cfg = NGramConfig(order=4)
    params = jfit(cfg, BLOCKS_NxL[:, :2], None)  # blocks shorter than the order
    lp = np.asarray(jtoken_logprobs(cfg, params, TEST_NxL))
    assert np.all(np.isfinite(lp)) and np.all(lp < 0)


# ----------------------------------------------------------------------------
# transformations


def test_jit_equals_no_jit():
    p_eager = fit(WB, BLOCKS_NxL, WEIGHTS_N)
    p_jit = jfit(WB, BLOCKS_NxL, WEIGHTS_N)
    jax.tree.map(np.testing.assert_array_equal, p_eager, p_jit)
    np.testing.assert_allclose(token_logprobs(WB, p_eager, TEST_NxL),
                               jtoken_logprobs(WB, p_jit, TEST_NxL), rtol=1e-6)
    # sample's body is a lax.scan, traced and compiled with or without jit, so
    # only its set-up would run op by op; the vmap test compares it with jit.


def test_vmapped_seeds_equal_separate_runs_without_retracing():
    # The tables' shapes follow the data's: fitting generation 0 on (4, 16) blocks
    # like the samples keeps every generation at the same shapes.
    params0 = jfit(WB, BLOCKS_NxL[:, :16], None)

    def generation(params, key):  # sample from a model, refit, evaluate on held-out text
        x = jsample(WB, params, key, 4, 16)
        new = jfit(WB, x, None)
        return x, new, jperplexity(WB, new, TEST_NxL, None)

    keys = jax.random.split(jax.random.key(8), 3)
    batched = jax.jit(jax.vmap(generation, (None, 0)))(params0, keys)
    for s, key in enumerate(keys):
        jax.tree.map(lambda b, o: np.testing.assert_allclose(b[s], o, rtol=1e-6),
                     batched, generation(params0, key))
    # later generations, from refitted tables and new keys, compile nothing new
    sizes = [f._cache_size() for f in (jsample, jfit, jperplexity)]
    params1 = generation(params0, keys[0])[1]
    generation(generation(params1, keys[1])[1], keys[2])
    assert [f._cache_size() for f in (jsample, jfit, jperplexity)] == sizes


# ----------------------------------------------------------------------------
# validation


@pytest.mark.parametrize("kwargs, field, named", [
    (dict(order=0), "order", "0"),
    (dict(order=2.5), "order", "2.5"),
    (dict(vocab_size=1), "vocab_size", "1"),
    (dict(smoothing="kneser_ney"), "smoothing", "'kneser_ney'"),
    (dict(smoothing="additive", alpha=0.0), "alpha", "0.0"),
    (dict(alpha=-1.0), "alpha", "-1.0"),
    (dict(alpha=float("nan")), "alpha", "nan"),
    (dict(smoothing="interpolate"), "lambdas", "lambdas=None"),
    (dict(smoothing="interpolate", lambdas=(0.5, 0.5)), "lambdas", "(0.5, 0.5)"),
    (dict(smoothing="interpolate", lambdas=(0.5, 0.7, -0.1, -0.1)), "lambdas", "-0.1"),
    (dict(smoothing="interpolate", lambdas=(0.1, 0.1, 0.1, 0.1)), "lambdas", "0.1, 0.1"),
    (dict(max_dense=-1), "max_dense", "-1"),
    (dict(n_buckets=0), "n_buckets", "0"),
    (dict(n_buckets=2**30), "n_buckets", str(2**30)),
])
def test_bad_config_raises_naming_the_value(kwargs, field, named):
    with pytest.raises(ValueError) as err:
        NGramConfig(**kwargs)
    assert field in str(err.value) and named in str(err.value), str(err.value)


def test_bad_sampling_arguments_raise():
    params = jfit(WB, BLOCKS_NxL, WEIGHTS_N)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="top_k.*300"):
        sample(WB, params, key, 2, 8, top_k=300)
    with pytest.raises(ValueError, match="temperature.*0"):
        sample(WB, params, key, 2, 8, temperature=0.0)
    with pytest.raises(ValueError, match="prompt length 9"):
        sample(WB, params, key, 2, 8, prompts=np.zeros(9, np.int32))
    with pytest.raises(ValueError, match="got 4"):
        ngram_count(WB, params, np.zeros((1, 4), np.int32))
