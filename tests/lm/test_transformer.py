"""Tests of the transformer LM core: model, training, scoring, sampling.

Tiny sizes (1 layer, d=32, 2 heads, context 16) keep the file at about 35 s
of CPU time on 2 cores, almost all of it XLA compilation; tests share jitted
functions (module-level samplers, the ``short_train`` fixture) to compile less.
The suite's conftest turns on x64: the LM must stay float32 regardless.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collapse_sim.simulator.lm.sample import filter_logits, make_sampler, sample_logits
from collapse_sim.simulator.lm.train import TrainConfig, draw_rows, make_loss, make_train
from collapse_sim.simulator.lm.transformer import (
    TransformerConfig,
    apply,
    decode_step,
    init_cache,
    init_params,
    prefill,
)

CFG = TransformerConfig(vocab_size=256, n_layers=1, d_model=32, n_heads=2, context=16)
W = CFG.context + 1  # tokens per training block
TEXT = b"the quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. " * 8
SHORT = TrainConfig(steps=8, batch_size=8, lr=1e-2, warmup=2)

# Eager NNX calls dispatch op by op (slow); tests call the model jitted.
apply_jit = jax.jit(apply, static_argnums=0)


def text_blocks(text=TEXT, width=W, stride=3):
    arr = np.frombuffer(text, np.uint8).astype(np.int32)
    return np.stack([arr[i : i + width] for i in range(0, len(arr) - width + 1, stride)])


# Per-seed stacking and indexing in numpy: eager jnp ops compile once per shape.
def stack_seeds(trees):
    return jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *trees)


def seed(tree, s):
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[s]), tree)


def random_tokens(n, width=CFG.context, seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, CFG.vocab_size, (n, width)), jnp.int32)


def unigram_entropy_nats(text):
    counts = np.bincount(np.frombuffer(text, np.uint8), minlength=256).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@pytest.fixture(scope="module")
def blocks():
    return text_blocks()


@pytest.fixture(scope="module")
def params():
    return init_params(jax.random.key(0), CFG)


@pytest.fixture(scope="module")
def short_train():
    """A jitted short training run (continuing from given params) that counts
    its traces.  Starting from scratch (params=None) is covered by the
    overfitting test."""
    train = make_train(CFG, SHORT)
    traces = {"n": 0}

    def counted(key, params, blocks, weights):
        traces["n"] += 1
        return train(key, params, blocks, weights)

    return jax.jit(counted), traces


# ---------------------------------------------------------------- model


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(d_model=30, n_heads=4), "d_model"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(n_layers=-1), "n_layers"),
        (dict(context=0), "context"),
        (dict(n_heads=0), "n_heads"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_config_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TransformerConfig(**kwargs)


def test_shapes_finite_and_small_initial_logits(params):
    tokens = random_tokens(4)
    logits = apply_jit(CFG, params, tokens)
    assert logits.shape == (4, CFG.context, CFG.vocab_size)
    assert bool(jnp.all(jnp.isfinite(logits)))
    # Small init: the initial model is close to uniform, loss ~ log V.
    assert float(jnp.abs(logits).max()) < 1.0


def test_kv_cache_matches_full_context(params):
    tokens = random_tokens(4, seed=2)
    full = apply_jit(CFG, params, tokens)
    n_prefix = 5

    @jax.jit
    def incremental(params, tokens):
        logits_pre, cache = prefill(CFG, params, tokens[:, :n_prefix], init_cache(CFG, 4))

        def step(cache, t):
            logits, cache = decode_step(CFG, params, cache, tokens[:, t], t)
            return cache, logits

        _, logits_rest = jax.lax.scan(step, cache, jnp.arange(n_prefix, CFG.context))
        return jnp.concatenate([logits_pre, logits_rest.transpose(1, 0, 2)], axis=1)

    np.testing.assert_allclose(incremental(params, tokens), full, atol=1e-5, rtol=1e-5)


def test_dropout_only_with_a_key(params):
    cfg = TransformerConfig(vocab_size=256, n_layers=1, d_model=32, n_heads=2, context=16, dropout=0.2)
    tokens = random_tokens(4)
    plain = apply_jit(CFG, params, tokens)
    np.testing.assert_allclose(apply_jit(cfg, params, tokens), plain, rtol=1e-6, atol=1e-6)
    a = apply_jit(cfg, params, tokens, jax.random.key(0))
    b = apply_jit(cfg, params, tokens, jax.random.key(1))
    np.testing.assert_array_equal(a, apply_jit(cfg, params, tokens, jax.random.key(0)))
    assert not np.allclose(a, plain) and not np.allclose(a, b)


# ---------------------------------------------------------------- training


def test_overfits_tiny_text(blocks):
    cfg = TrainConfig(steps=100, batch_size=16, lr=1e-2, warmup=10)
    params, metrics = jax.jit(make_train(CFG, cfg))(
        jax.random.key(0), None, blocks, np.ones(len(blocks), np.float32)
    )
    assert metrics["loss"].shape == (cfg.steps,)
    assert bool(jnp.all(jnp.isfinite(metrics["loss"])))
    # float32 throughout, even under the test suite's x64 mode.
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    final = float(jax.jit(make_loss(CFG).loss)(params, jnp.asarray(blocks)))
    h = unigram_entropy_nats(TEXT)
    assert float(metrics["loss"][0]) > h  # starts near log(256), above the unigram level
    assert final < 0.5 * h, (final, h)


def test_vmap_over_seeds_equals_separate_runs(blocks, short_train):
    """Stacked keys, params and data: jit(vmap(train)) equals one run per seed."""
    train_one, _ = short_train
    n = len(blocks)
    keys = jax.random.split(jax.random.key(3), 2)
    params_S = stack_seeds([init_params(k, CFG) for k in keys])
    blocks_S = np.stack([blocks, np.roll(blocks, 1, axis=0)])
    weights_S = np.stack([np.ones(n, np.float32), np.linspace(0.0, 1.0, n, dtype=np.float32)])
    train_S = jax.jit(jax.vmap(make_train(CFG, SHORT)))

    tuned_S, metrics_S = train_S(keys, params_S, blocks_S, weights_S)
    for s in range(2):
        params = seed(params_S, s)
        tuned, metrics = train_one(keys[s], params, blocks_S[s], weights_S[s])
        np.testing.assert_allclose(metrics_S["loss"][s], metrics["loss"], rtol=1e-6, atol=1e-6)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a[s], b, rtol=1e-5, atol=1e-7), tuned_S, tuned
        )
    # Training moved the parameters, and the two seeds differ.
    assert float(metrics_S["loss"][0, -1]) < float(metrics_S["loss"][0, 0])
    assert not np.allclose(metrics_S["loss"][0], metrics_S["loss"][1])


def test_train_compiles_once_for_new_keys_and_data(blocks, params, short_train):
    train_one, traces = short_train
    weights = np.ones(len(blocks), np.float32)
    out1 = train_one(jax.random.key(10), params, blocks, weights)
    other = np.random.default_rng(0).integers(0, 256, blocks.shape).astype(np.int32)
    out2 = train_one(jax.random.key(11), out1[0], other, 0.5 + weights)
    assert traces["n"] == 1
    assert train_one._cache_size() == 1
    assert not np.allclose(out1[1]["loss"], out2[1]["loss"])


def test_zero_weight_rows_never_drawn():
    w = jnp.array([0.0, 1.0, 0.0, 3.0, 0.0, 0.0], jnp.float32)
    idx = jax.jit(jax.vmap(lambda k: draw_rows(k, w, 64)))(jax.random.split(jax.random.key(4), 200))
    counts = np.bincount(np.asarray(idx).ravel(), minlength=len(w))
    assert counts[[0, 2, 4, 5]].sum() == 0
    n = counts.sum()
    p = 0.75
    assert abs(counts[3] / n - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_zero_weight_rows_do_not_affect_training(blocks, params, short_train):
    train_one, _ = short_train
    weights = (np.arange(len(blocks)) % 3 != 0).astype(np.float32)
    garbage = np.random.default_rng(1).integers(0, 256, blocks.shape).astype(np.int32)
    poisoned = np.where(weights[:, None] > 0, blocks, garbage)
    key = jax.random.key(5)
    p_clean, m_clean = train_one(key, params, blocks, weights)
    p_poison, m_poison = train_one(key, params, poisoned, weights)
    np.testing.assert_array_equal(m_clean["loss"], m_poison["loss"])
    jax.tree.map(np.testing.assert_array_equal, p_clean, p_poison)


# ---------------------------------------------------------------- scoring


def test_perplexity_equals_exp_mean_nll_in_numpy(params, blocks):
    fns = make_loss(CFG)
    chunked = make_loss(CFG, eval_batch=4)  # 4 does not divide N = 10: padded chunks
    tokens = jnp.asarray(blocks[:10])
    w = np.array([0, 1, 2, 0, 1, 1, 0, 3, 1, 1], np.float32)
    evaluate = jax.jit(
        lambda p, x, w: (
            fns.token_logprobs(p, x),
            chunked.token_logprobs(p, x),
            fns.nll_per_sequence(p, x),
            fns.perplexity(p, x),
            fns.perplexity(p, x, w),
            fns.loss(p, x),
        )
    )
    got_logp, got_logp_chunked, got_nll, got_ppl, got_ppl_w, got_loss = evaluate(params, tokens, w)
    logits = np.asarray(apply_jit(CFG, params, tokens[:, :-1]), np.float64)
    logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    logp = np.take_along_axis(logits, np.asarray(blocks[:10, 1:, None]), -1)[..., 0] - logz
    nll_rows = -logp.sum(-1)

    assert got_logp.shape == (10, W - 1)
    np.testing.assert_allclose(got_logp, logp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_logp_chunked, logp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_nll, nll_rows, rtol=1e-5)
    np.testing.assert_allclose(got_ppl, np.exp(-logp.mean()), rtol=1e-5)
    ppl_w = np.exp((w * nll_rows).sum() / (w.sum() * logp.shape[1]))
    np.testing.assert_allclose(got_ppl_w, ppl_w, rtol=1e-5)
    np.testing.assert_allclose(got_loss, -logp.mean(), rtol=1e-5)


# ---------------------------------------------------------------- sampling


def test_filter_logits():
    logits = jnp.log(jnp.array([[0.5, 0.05, 0.3, 0.15]]))
    top2 = filter_logits(logits, top_k=2)
    np.testing.assert_array_equal(jnp.isfinite(top2), [[True, False, True, False]])
    np.testing.assert_array_equal(top2[:, [0, 2]], logits[:, [0, 2]])
    # Nucleus 0.75: 0.5 (mass before it 0) and 0.3 (0.5) are kept, 0.15 (0.8) is not.
    for top_p, kept in [
        (0.75, [True, False, True, False]),
        (0.81, [True, False, True, True]),
        (1e-3, [True, False, False, False]),  # the most likely token always survives
    ]:
        np.testing.assert_array_equal(jnp.isfinite(filter_logits(logits, top_p=top_p)), [kept])
    np.testing.assert_array_equal(filter_logits(logits), logits)


def test_filter_logits_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    logits = np.round(rng.normal(0, 3, (16, 50))).astype(np.float32)  # many ties, and -0.0
    logits[0, :3] = -0.0
    greater = logits[:, None, :] > logits[:, :, None]  # [b, j, i]: logit i > logit j
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    top_p = jax.jit(lambda x, p: filter_logits(x, top_p=p))
    for k in (1, 7):
        got = np.isfinite(np.asarray(filter_logits(jnp.asarray(logits), top_k=k)))
        np.testing.assert_array_equal(got, greater.sum(-1) < k)
    for p in (0.1, 0.5, 0.9):
        mass_before = (probs[:, None, :] * greater).sum(-1)
        clear = np.abs(mass_before - p) > 1e-5  # float summation order aside
        got = np.isfinite(np.asarray(top_p(jnp.asarray(logits), p)))
        np.testing.assert_array_equal(got[clear], (mass_before < p)[clear])


@functools.partial(jax.jit, static_argnames=("top_k", "top_p"))
def _naive_next(key, params, seq, t, temperature, top_k=None, top_p=None):
    logits = apply(CFG, params, seq)[:, t - 1]  # the full context, recomputed
    return sample_logits(jax.random.fold_in(key, t), logits, temperature, top_k, top_p)


def naive_sample(key, params, prefix, length, temperature, top_k=None, top_p=None):
    """Reference sampler: recompute the full context for every token.

    The sequence is kept at a fixed padded width so ``_naive_next`` compiles
    once; causal masking makes the padding after position t irrelevant.
    """
    B, P = prefix.shape
    seq = jnp.zeros((B, CFG.context), jnp.int32).at[:, :P].set(prefix)
    out = [jnp.asarray(prefix, jnp.int32)]
    for t in range(P, length):
        token = _naive_next(key, params, seq, t, temperature, top_k=top_k, top_p=top_p)
        out.append(token[:, None])
        if t < CFG.context:
            seq = seq.at[:, t].set(token)
    return jnp.concatenate(out, axis=1)


# Built once per module so tests share compilations (samplers jit on first call).
PROMPTED = make_sampler(CFG, W, top_k=3, top_p=0.95, prompt_len=4)
FROM_BOS = make_sampler(CFG, W)  # no prompt: starts from BOS byte 10
B_SAMPLE = 64


def test_cached_sampler_equals_full_recompute(params, blocks):
    key = jax.random.key(6)
    prompts = jnp.asarray(blocks[:B_SAMPLE])
    out = PROMPTED(key, params, prompts, 1.0)
    assert out.shape == (B_SAMPLE, W) and out.dtype == jnp.int32
    np.testing.assert_array_equal(out[:, :4], prompts[:, :4])
    np.testing.assert_array_equal(out, naive_sample(key, params, prompts[:, :4], W, 1.0, 3, 0.95))

    out = FROM_BOS(key, params, prompts, 0.0)  # temperature 0 = greedy
    assert bool(jnp.all(out[:, 0] == 10))
    # (greedy ignores the filters; passing the same ones reuses the reference's compilation)
    reference = naive_sample(key, params, jnp.full((B_SAMPLE, 1), 10), W, 0.0, 3, 0.95)
    np.testing.assert_array_equal(out, reference)


def test_top_k_never_emits_outside_top_k_and_temperature_is_traced(params, blocks):
    k = 3
    prompts = jnp.asarray(blocks[:B_SAMPLE])
    out = PROMPTED(jax.random.key(9), params, prompts, 2.0)
    again = PROMPTED(jax.random.key(9), params, prompts, jnp.float32(2.0))
    np.testing.assert_array_equal(out, again)
    assert PROMPTED.jitted._cache_size() == 1  # Python float and jnp scalar: one compile

    logits = apply_jit(CFG, params, out[:, :-1])  # logits[:, t] predicts out[:, t+1]
    kth = jax.lax.top_k(logits, k)[0][..., -1]
    chosen = jnp.take_along_axis(logits, out[:, 1:, None], axis=-1)[..., 0]
    assert bool(jnp.all(chosen[:, 3:] >= kth[:, 3:]))  # sampled positions (after the prompt)
    assert len(np.unique(np.asarray(out[:, 4:]))) > k  # and the draws are not trivial


def test_sampler_vmappable_over_seeds(params, blocks):
    keys = jax.random.split(jax.random.key(8), 2)
    params_S = stack_seeds([params, init_params(jax.random.key(1), CFG)])
    prompts = jnp.asarray(blocks[:B_SAMPLE])
    out_S = jax.vmap(FROM_BOS, in_axes=(0, 0, None, None))(keys, params_S, prompts, 1.0)
    for s in range(2):
        one = FROM_BOS(keys[s], seed(params_S, s), prompts, 1.0)
        np.testing.assert_array_equal(out_S[s], one)
    assert not np.array_equal(out_S[0], out_S[1])


SMALL_V = TransformerConfig(vocab_size=8, n_layers=1, d_model=32, n_heads=2, context=16)
FREQ_SAMPLERS = {top_p: make_sampler(SMALL_V, 2, top_p=top_p, bos=3) for top_p in (None, 0.8)}


@pytest.mark.parametrize("temperature, top_p", [(1.0, None), (0.7, None), (1.0, 0.8)])
def test_next_token_frequencies_match_softmax(temperature, top_p):
    cfg = SMALL_V
    # CFG's weights with the embedding cut to 8 rows (saves an init compile), scaled so
    # that the next-token distribution is far from uniform.
    params = jax.tree.map(lambda x: x, init_params(jax.random.key(11), CFG))
    params["tok_embed"]["embedding"] = nnx.Param(40.0 * params["tok_embed"]["embedding"][...][:8])
    n = 20_000
    out = FREQ_SAMPLERS[top_p](jax.random.key(12), params, jnp.zeros((n, 1), jnp.int32), temperature)
    logits = np.asarray(apply_jit(cfg, params, jnp.array([[3]]))[0, 0], np.float64) / temperature
    p = np.exp(logits - logits.max())
    p /= p.sum()
    if top_p is not None:
        order = np.argsort(-p)
        before = np.cumsum(p[order]) - p[order]
        keep = np.zeros_like(p, bool)
        keep[order[before < top_p]] = True
        p = np.where(keep, p, 0.0) / p[keep].sum()
        assert (p == 0).any()  # the nucleus cut something
    assert p.max() > 0.3  # the check is not a uniform-distribution triviality
    freq = np.bincount(np.asarray(out[:, 1]), minlength=cfg.vocab_size) / n
    tol = 4 * np.sqrt(p * (1 - p) / n) + 1e-12
    assert np.all(np.abs(freq - p) <= tol), (freq, p)
