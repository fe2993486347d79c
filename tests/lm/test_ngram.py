"""Tests for simulator/lm/ngram.py: counts, smoothing, perplexity, sampling, theory."""

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from simulator.lm.ngram import (DenseCounts, NGramConfig, fit, next_token_logprobs,
                                ngram_count, perplexity, sample, token_logprobs)

TEXT = (b"the cat sat on the mat. the dog sat on the log. a cat and a dog met "
        b"on a mat by the log; the end.")
N, L = 4, 24
BLOCKS_NxL = np.frombuffer(TEXT[:N * L], np.uint8).astype(np.int32).reshape(N, L)
WEIGHTS_N = np.array([1.0, 0.0, 2.5, 1.0], np.float32)  # a weight-0 row and a fractional one
# Held-out blocks with contexts the model has and has not seen.
TEST_NxL = np.frombuffer(b"the cat met the log. xyzthe dog sat on a mat", np.uint8
                         ).astype(np.int32)[:40].reshape(2, 20)

LAM3 = (0.1, 0.2, 0.3, 0.4)
# (name, config) pairs covering every table layout: dense orders 1-2 and sparse
# order 3 (the default), everything sparse, everything dense (ASCII vocabulary).
LAYOUTS = {
    "default": dict(),
    "sparse": dict(max_dense=0),
    "dense": dict(vocab_size=128, max_dense=2**21),
}
SMOOTHINGS = {
    "additive": dict(smoothing="additive", alpha=0.5),
    "interpolate": dict(smoothing="interpolate", lambdas=LAM3),
    "witten_bell": dict(smoothing="witten_bell"),
}


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


# ----------------------------------------------------------------------------
# counting


@pytest.mark.parametrize("layout", LAYOUTS)
def test_counts_equal_counter_for_every_order(layout):
    cfg = NGramConfig(order=3, **LAYOUTS[layout])
    params = jax.jit(fit, static_argnums=0)(cfg, BLOCKS_NxL, WEIGHTS_N)
    for j, counter in enumerate(ref_counters(BLOCKS_NxL, WEIGHTS_N, 3), start=1):
        grams = np.array(list(counter), np.int32)
        got = np.asarray(ngram_count(cfg, params, grams))
        np.testing.assert_allclose(got, [counter[tuple(g)] for g in grams.tolist()], rtol=1e-6)
        # counts are non-negative, so equal totals mean no n-gram outside the Counter
        assert table_total(params[j - 1]) == pytest.approx(sum(counter.values()), rel=1e-6)
    # n-grams only in the weight-0 row, and never-seen ones, count 0
    only_absent = [g for g in ref_counters(BLOCKS_NxL[1:2], [1.0], 3)[2]
                   if g not in ref_counters(BLOCKS_NxL, WEIGHTS_N, 3)[2]]
    assert only_absent
    assert np.all(np.asarray(ngram_count(cfg, params, np.array(only_absent + [(0, 1, 2)]))) == 0)


def test_zero_weight_rows_contribute_nothing():
    rng = np.random.default_rng(0)
    junk_NxL = rng.integers(0, 256, size=(3, L)).astype(np.int32)
    keep = WEIGHTS_N > 0
    for layout in ("default", "sparse"):
        cfg = NGramConfig(order=3, smoothing="interpolate", lambdas=LAM3, **LAYOUTS[layout])
        padded = fit(cfg, np.concatenate([BLOCKS_NxL, junk_NxL]),
                     np.concatenate([WEIGHTS_N, np.zeros(3, np.float32)]))
        clean = fit(cfg, BLOCKS_NxL[keep], WEIGHTS_N[keep])
        np.testing.assert_allclose(token_logprobs(cfg, padded, TEST_NxL),
                                   token_logprobs(cfg, clean, TEST_NxL), rtol=1e-6)
        ctx = np.concatenate([TEST_NxL[:, :5], junk_NxL[:2, :5]])
        np.testing.assert_allclose(next_token_logprobs(cfg, padded, ctx),
                                   next_token_logprobs(cfg, clean, ctx), rtol=1e-6)
        assert np.all(np.asarray(ngram_count(cfg, padded, junk_NxL[:, :3])) == 0)
    # perplexity skips weight-0 rows (which may score -inf) and weights the others
    cfg = NGramConfig(order=2, smoothing="interpolate", lambdas=(0.0, 0.5, 0.5))
    params = fit(cfg, BLOCKS_NxL)
    data = np.concatenate([BLOCKS_NxL[:2], junk_NxL[:1]])
    ppl = perplexity(cfg, params, data, np.array([2.0, 1.0, 0.0]))
    np.testing.assert_allclose(ppl, perplexity(cfg, params, BLOCKS_NxL[[0, 0, 1]]), rtol=1e-5)


def test_hashed_contexts_merge_and_stay_normalised():
    # One bucket: every order-3 context is merged, so the order-3 count of (a, b, w)
    # is the number of trigrams ending in w, whatever a and b are.
    cfg = NGramConfig(order=3, n_buckets=1)
    assert cfg.is_hashed(3) and not cfg.is_hashed(2)
    params = fit(cfg, BLOCKS_NxL, WEIGHTS_N)
    ends = collections.Counter()
    for g, n in ref_counters(BLOCKS_NxL, WEIGHTS_N, 3)[2].items():
        ends[g[-1]] += n
    for a, b in [(0, 0), (116, 104), (7, 9)]:
        got = ngram_count(cfg, params, np.array([[a, b, w] for w in range(256)]))
        np.testing.assert_allclose(got, [ends[w] for w in range(256)])
    # Order 4 hashed into many buckets: no collision on this text, counts exact.
    cfg4 = NGramConfig(order=4, n_buckets=2**20)
    assert cfg4.is_hashed(4)
    params4 = fit(cfg4, BLOCKS_NxL, WEIGHTS_N)
    counter = ref_counters(BLOCKS_NxL, WEIGHTS_N, 4)[3]
    grams = np.array(list(counter), np.int32)
    np.testing.assert_allclose(ngram_count(cfg4, params4, grams),
                               [counter[tuple(g)] for g in grams.tolist()])
    for c, p in ((cfg, params), (cfg4, params4)):
        lp = next_token_logprobs(c, p, TEST_NxL[:, :6])
        np.testing.assert_allclose(jnp.exp(lp).sum(-1), 1.0, atol=1e-5)


# ----------------------------------------------------------------------------
# probabilities


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("layout", ["default", "sparse"])
def test_probabilities_match_reference(smoothing, layout):
    cfg = NGramConfig(order=3, **SMOOTHINGS[smoothing], **LAYOUTS[layout])
    params = fit(cfg, BLOCKS_NxL, WEIGHTS_N)
    ref = RefModel(cfg, ref_counters(BLOCKS_NxL, WEIGHTS_N, 3))
    lp_NxL = np.asarray(token_logprobs(cfg, params, TEST_NxL))
    want = [[math.log(ref.prob(row[:i], row[i])) for i in range(len(row))]
            for row in TEST_NxL.tolist()]
    np.testing.assert_allclose(lp_NxL, want, rtol=1e-5, atol=1e-6)
    # whole next-token distributions, short and long contexts, seen and unseen
    for ctx in ([], [116], [116, 104], [120, 121], [1, 2, 3, 116, 104]):
        got = np.asarray(next_token_logprobs(cfg, params, np.array(ctx, np.int32)))
        want = [math.log(ref.prob(ctx, w)) for w in range(256)]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_additive_matches_numpy_hand_computation():
    V, alpha = 8, 0.3
    rng = np.random.default_rng(1)
    x_NxL = rng.integers(0, V, size=(5, 30)).astype(np.int32)
    x_NxL[:, :10] = rng.integers(0, 3, size=(5, 10))  # skewed, so some contexts go unseen
    w_N = np.array([1.0, 2.0, 0.0, 0.5, 1.0])
    c1 = np.zeros(V)
    c2 = np.zeros((V, V))
    c3 = np.zeros((V, V, V))
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
    for max_dense in (2**16, 0):
        cfg = NGramConfig(order=3, vocab_size=V, smoothing="additive", alpha=alpha,
                          max_dense=max_dense)
        params = fit(cfg, x_NxL, w_N)
        np.testing.assert_allclose(token_logprobs(cfg, params, test), want, rtol=1e-5)
        full = np.log((c3[2, 1] + alpha) / (c3[2, 1].sum() + alpha * V))
        np.testing.assert_allclose(next_token_logprobs(cfg, params, np.array([2, 1])), full,
                                   rtol=1e-5)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_probabilities_are_normalised(smoothing):
    rng = np.random.default_rng(2)
    for layout in ("default", "sparse"):
        cfg = NGramConfig(order=3, **SMOOTHINGS[smoothing], **LAYOUTS[layout])
        params = fit(cfg, BLOCKS_NxL, WEIGHTS_N)
        seen = BLOCKS_NxL[:, 3:9]
        for ctx in (rng.integers(0, 256, size=(16, 5)), seen, seen[:, :1], seen[:, :0]):
            p = jnp.exp(next_token_logprobs(cfg, params, ctx.astype(np.int32))).sum(-1)
            np.testing.assert_allclose(p, 1.0, atol=2e-6)


def test_token_logprobs_agree_with_next_token_logprobs():
    cfg = NGramConfig(order=3, smoothing="witten_bell", max_dense=256)
    params = fit(cfg, BLOCKS_NxL, WEIGHTS_N)
    lp_NxL = token_logprobs(cfg, params, TEST_NxL)
    for i in range(TEST_NxL.shape[1]):
        ctx = TEST_NxL[:, max(0, i - 4):i]  # longer than k - 1 when possible
        nt = next_token_logprobs(cfg, params, ctx)
        np.testing.assert_allclose(lp_NxL[:, i], nt[np.arange(2), TEST_NxL[:, i]], rtol=1e-5)


def test_perplexity_equals_exp_mean_nll_from_model_probabilities():
    cfg = NGramConfig(order=3, smoothing="interpolate", lambdas=LAM3)
    params = fit(cfg, BLOCKS_NxL, WEIGHTS_N)
    nll = []  # from the model's own next-token distributions, in numpy
    for x in TEST_NxL:
        for i in range(len(x)):
            probs = np.exp(np.asarray(next_token_logprobs(cfg, params, x[:i]), np.float64))
            nll.append(-np.log(probs[x[i]] / probs.sum()))
    np.testing.assert_allclose(perplexity(cfg, params, TEST_NxL), np.exp(np.mean(nll)),
                               rtol=1e-5)
    w = np.array([3.0, 1.0])
    per_row = np.array(nll).reshape(2, -1).sum(1)
    np.testing.assert_allclose(perplexity(cfg, params, TEST_NxL, w),
                               np.exp((w * per_row).sum() / (w.sum() * TEST_NxL.shape[1])),
                               rtol=1e-5)


# ----------------------------------------------------------------------------
# sampling


def _skewed_blocks(V, seed=3, n=6, length=40):
    rng = np.random.default_rng(seed)
    return rng.choice(V, size=(n, length), p=np.arange(1, V + 1) / (V * (V + 1) / 2)
                      ).astype(np.int32)


@pytest.mark.parametrize("kw", [
    dict(smoothing="additive", alpha=0.5),  # all dense
    dict(smoothing="witten_bell", max_dense=0),  # all sparse
    dict(smoothing="interpolate", lambdas=(0.1, 0.2, 0.3, 0.4), max_dense=16),  # mixed
], ids=["additive-dense", "wb-sparse", "interp-mixed"])
def test_sample_frequencies_match_model(kw):
    V, n = 4, 40_000
    cfg = NGramConfig(order=3, vocab_size=V, **kw)
    params = fit(cfg, _skewed_blocks(V))
    x_nx3 = np.asarray(jax.jit(sample, static_argnums=(0, 3, 4))(
        cfg, params, jax.random.key(0), n, 3))
    assert x_nx3.dtype == np.int32 and x_nx3.min() >= 0 and x_nx3.max() < V
    # every triple's frequency against the model's joint p(x0) p(x1|x0) p(x2|x0,x1)
    grid = np.stack(np.meshgrid(*[np.arange(V)] * 3, indexing="ij"), -1).reshape(-1, 3)
    p = np.exp(np.asarray(token_logprobs(cfg, params, grid), np.float64).sum(-1))
    freq = np.bincount(x_nx3 @ (V ** np.arange(2, -1, -1)), minlength=V**3) / n
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 4 * se), np.max(np.abs(freq - p) / se)


def test_prompted_and_tempered_sampling_match_conditionals():
    V, n = 6, 40_000
    cfg = NGramConfig(order=3, vocab_size=V, smoothing="witten_bell", max_dense=36)
    params = fit(cfg, _skewed_blocks(V, seed=4))
    prompt = np.array([5, 4], np.int32)
    logp = np.asarray(next_token_logprobs(cfg, params, prompt), np.float64)
    draw = jax.jit(sample, static_argnums=(0, 3, 4), static_argnames="top_k")
    for temperature, top_k in [(None, None), (0.7, 3), (jnp.float32(1.3), None)]:
        x = np.asarray(draw(cfg, params, jax.random.key(1), n, 3, prompt,
                            temperature=temperature, top_k=top_k))
        assert np.all(x[:, :2] == prompt)
        logits = logp / (1.0 if temperature is None else float(temperature))
        if top_k is not None:
            logits[np.argsort(logits)[:-top_k]] = -np.inf
        p = np.exp(logits - logits.max())
        p /= p.sum()
        freq = np.bincount(x[:, 2], minlength=V) / n
        assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n)), (temperature, freq, p)


def test_unigram_refit_loses_categories_like_categorical_theory():
    # Theory section 4.1: a category of probability q misses all M draws of a
    # generation with probability (1 - q)^M, and a lost category never returns.
    V, M, S, q = 10, 100, 4000, 0.02
    cfg = NGramConfig(order=1, vocab_size=V, smoothing="interpolate", lambdas=(0.0, 1.0))
    gen0 = np.repeat(np.arange(V), [2] * 8 + [42, 42]).astype(np.int32)[None]  # 8 at q=0.02
    params0 = fit(cfg, gen0)

    def two_generations(key):
        k1, k2 = jax.random.split(key)
        x1 = sample(cfg, params0, k1, 4, M // 4)
        p1 = fit(cfg, x1)
        x2 = sample(cfg, p1, k2, 4, M // 4)
        return p1[0].counts_RxV[0], fit(cfg, x2)[0].counts_RxV[0]

    c1_SxV, c2_SxV = jax.jit(jax.vmap(two_generations))(
        jax.random.split(jax.random.key(5), S))
    lost_S = np.asarray((c1_SxV[:, :8] == 0).mean(-1))
    theory = (1 - q) ** M
    se = lost_S.std(ddof=1) / math.sqrt(S)
    assert abs(lost_S.mean() - theory) <= 4 * se, (lost_S.mean(), theory, se)
    assert np.all(np.asarray(c2_SxV)[np.asarray(c1_SxV) == 0] == 0)
    assert np.all(np.asarray(c1_SxV).sum(-1) == M)


def test_sample_keys_and_batching():
    cfg = NGramConfig(order=3)
    params = fit(cfg, BLOCKS_NxL, WEIGHTS_N)
    draw = jax.jit(sample, static_argnums=(0, 3, 4))
    a = draw(cfg, params, jax.random.key(0), 6, 20)
    assert a.shape == (6, 20) and a.dtype == jnp.int32
    np.testing.assert_array_equal(a, draw(cfg, params, jax.random.key(0), 6, 20))
    assert not np.array_equal(a, draw(cfg, params, jax.random.key(1), 6, 20))
    # a block depends on its own index only, not on how many blocks are drawn
    np.testing.assert_array_equal(a[:3], draw(cfg, params, jax.random.key(0), 3, 20))


def test_short_blocks_and_order_one():
    cfg = NGramConfig(order=4, smoothing="witten_bell")
    params = fit(cfg, BLOCKS_NxL[:, :2])  # shorter than the order
    assert np.all(np.isfinite(token_logprobs(cfg, params, TEST_NxL)))
    cfg1 = NGramConfig(order=1, smoothing="additive")
    p1 = fit(cfg1, BLOCKS_NxL)
    x = sample(cfg1, p1, jax.random.key(0), 2, 5)
    assert x.shape == (2, 5)
    np.testing.assert_allclose(jnp.exp(next_token_logprobs(cfg1, p1, x)).sum(-1), 1, atol=1e-6)


# ----------------------------------------------------------------------------
# transformations


def test_jit_equals_no_jit():
    cfg = NGramConfig(order=3, smoothing="interpolate", lambdas=LAM3)
    key = jax.random.key(7)
    p_eager = fit(cfg, BLOCKS_NxL, WEIGHTS_N)
    p_jit = jax.jit(fit, static_argnums=0)(cfg, BLOCKS_NxL, WEIGHTS_N)
    jax.tree.map(np.testing.assert_array_equal, p_eager, p_jit)
    for f in (token_logprobs, perplexity):
        np.testing.assert_allclose(f(cfg, p_eager, TEST_NxL),
                                   jax.jit(f, static_argnums=0)(cfg, p_jit, TEST_NxL), rtol=1e-6)
    np.testing.assert_allclose(next_token_logprobs(cfg, p_eager, TEST_NxL[:, :5]),
                               jax.jit(next_token_logprobs, static_argnums=0)(
                                   cfg, p_jit, TEST_NxL[:, :5]), rtol=1e-6)
    for kw in (dict(), dict(temperature=0.8, top_k=5)):
        np.testing.assert_array_equal(
            sample(cfg, p_eager, key, 4, 16, TEST_NxL[0, :3], **kw),
            jax.jit(sample, static_argnums=(0, 3, 4), static_argnames="top_k")(
                cfg, p_jit, key, 4, 16, TEST_NxL[0, :3], **kw))


def test_vmapped_seeds_equal_separate_runs():
    cfg = NGramConfig(order=3, max_dense=256)  # dense unigram, sparse bigram and trigram
    params0 = fit(cfg, BLOCKS_NxL, WEIGHTS_N)

    def generation(key):  # sample from model 0, refit, evaluate on held-out text
        x = sample(cfg, params0, key, 4, 24)
        params = fit(cfg, x)
        return x, params, perplexity(cfg, params, TEST_NxL)

    keys = jax.random.split(jax.random.key(8), 3)
    batched = jax.jit(jax.vmap(generation))(keys)
    single = jax.jit(generation)
    for s, key in enumerate(keys):
        jax.tree.map(lambda b, o: np.testing.assert_allclose(b[s], o, rtol=1e-6),
                     batched, single(key))


def test_no_retrace_on_second_call():
    cfg = NGramConfig(order=3)
    traces = []

    @jax.jit
    def generation(params, key):
        traces.append(1)
        x = sample(cfg, params, key, 4, 16)
        return fit(cfg, x), perplexity(cfg, params, x)

    params = fit(cfg, BLOCKS_NxL)
    params, _ = generation(params, jax.random.key(0))
    generation(params, jax.random.key(1))
    assert len(traces) == 1


# ----------------------------------------------------------------------------
# validation


@pytest.mark.parametrize("kwargs, named", [
    (dict(order=0), "0"),
    (dict(order=2.5), "2.5"),
    (dict(vocab_size=1), "1"),
    (dict(smoothing="kneser_ney"), "'kneser_ney'"),
    (dict(alpha=0.0, smoothing="additive"), "0.0"),
    (dict(alpha=-1.0), "-1.0"),
    (dict(alpha=float("nan")), "nan"),
    (dict(smoothing="interpolate"), "lambdas=None"),
    (dict(smoothing="interpolate", lambdas=(0.5, 0.5)), "(0.5, 0.5)"),
    (dict(smoothing="interpolate", lambdas=(0.5, 0.7, -0.1, -0.1)), "-0.1"),
    (dict(smoothing="interpolate", lambdas=(0.1, 0.1, 0.1, 0.1)), "(0.1, 0.1, 0.1, 0.1)"),
    (dict(max_dense=-1), "-1"),
    (dict(n_buckets=0), "0"),
    (dict(n_buckets=2**30), str(2**30)),
])
def test_bad_config_raises_naming_the_value(kwargs, named):
    with pytest.raises(ValueError) as err:
        NGramConfig(**kwargs)
    field = next(iter(kwargs)) if "lambdas" not in str(err.value) else "lambdas"
    assert named in str(err.value) and field in str(err.value)


def test_bad_sampling_arguments_raise():
    cfg = NGramConfig(order=2)
    params = fit(cfg, BLOCKS_NxL)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="top_k.*300"):
        sample(cfg, params, key, 2, 8, top_k=300)
    with pytest.raises(ValueError, match="temperature.*0"):
        sample(cfg, params, key, 2, 8, temperature=0.0)
    with pytest.raises(ValueError, match="prompt length 9"):
        sample(cfg, params, key, 2, 8, prompts=np.zeros(9, np.int32))
    with pytest.raises(ValueError, match="got 3"):
        ngram_count(cfg, params, np.zeros((1, 3), np.int32))
