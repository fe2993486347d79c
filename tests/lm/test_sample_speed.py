"""The fast sampler (simulator/lm/sample.py: the argmax as a max and a min, the cache
in segments) draws the tokens of a straightforward reference: the whole context
recomputed for every token, ``jax.random.categorical`` with the key
``fold_in(key, t)``, ``jnp.argmax`` when greedy.  Tiny model (1 layer, d=32,
context 16); the tokens must be equal, not close.  (The sampler under vmap equals
separate calls: tests/lm/test_transformer.py.)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collapse_sim.simulator.lm.sample import filter_logits, first_argmax, make_sampler, segments
from collapse_sim.simulator.lm.transformer import TransformerConfig, apply, init_params

CFG = TransformerConfig(vocab_size=256, n_layers=1, d_model=32, n_heads=2, context=16)
B = 48


@functools.partial(jax.jit, static_argnames=("top_k", "top_p"))
def reference_next(key, params, seq_BxC, t, temperature, top_k, top_p):
    """Token t of every row: logits of the full padded context (causal: the
    padding after t-1 is not seen), then categorical, or argmax if greedy."""
    logits_BxV = apply(CFG, params, seq_BxC)[:, t - 1].astype(jnp.float32)
    scaled_BxV = filter_logits(logits_BxV / jnp.maximum(temperature, 1e-6), top_k, top_p)
    drawn_B = jax.random.categorical(jax.random.fold_in(key, t), scaled_BxV, axis=-1)
    return jnp.where(temperature > 0, drawn_B, jnp.argmax(logits_BxV, axis=-1)).astype(jnp.int32)


def reference_sample(key, params, prefix_BxP, length, temperature, top_k=None, top_p=None):
    seq_BxC = np.zeros((prefix_BxP.shape[0], CFG.context), np.int32)
    seq_BxC[:, : prefix_BxP.shape[1]] = prefix_BxP
    out = [np.asarray(prefix_BxP, np.int32)]
    temperature = jnp.float32(temperature)
    for t in range(prefix_BxP.shape[1], length):
        token_B = np.asarray(reference_next(key, params, jnp.asarray(seq_BxC), t, temperature, top_k, top_p))
        out.append(token_B[:, None])
        if t < CFG.context:
            seq_BxC[:, t] = token_B
    return np.concatenate(out, axis=1)


@pytest.fixture(scope="module")
def params():
    p = init_params(jax.random.key(0), CFG)
    # a larger embedding: peaked next-token distributions, so filters and draws matter
    p["tok_embed"]["embedding"] = nnx.Param(10.0 * p["tok_embed"]["embedding"][...])
    return p


@pytest.fixture(scope="module")
def prompts():
    return np.random.default_rng(0).integers(32, 127, (B, CFG.context + 1)).astype(np.int32)


# (length, prompt_len, top_k, top_p, cache_segments, temperatures): a full block from the BOS
# byte with the whole cache throughout and with the default segments; a short block that ends
# inside a segment, prompted, drawn and greedy (one compilation: the
# temperature is traced).
CASES = [
    (CFG.context + 1, 0, None, None, 1, (1.0,)),
    (CFG.context + 1, 0, None, None, None, (1.0,)),
    (11, 5, None, None, None, (0.8, 0.0)),
]


@pytest.mark.parametrize("length, prompt_len, top_k, top_p, cache_segments, temperatures", CASES)
def test_sampler_draws_the_reference_tokens(params, prompts, length, prompt_len, top_k, top_p, cache_segments,
                                            temperatures):
    key = jax.random.key(3)
    prefix = prompts[:, :prompt_len] if prompt_len else np.full((B, 1), 10, np.int32)
    kw = {} if cache_segments is None else {"cache_segments": cache_segments}
    sampler = make_sampler(CFG, length, top_k, top_p, prompt_len=prompt_len, **kw)
    for temperature in temperatures:
        want = reference_sample(key, params, prefix, length, temperature, top_k, top_p)
        assert len(np.unique(want[:, prefix.shape[1]:])) > 5  # the tokens are not trivial
        got = np.asarray(sampler(key, params, jnp.asarray(prompts), temperature))
        np.testing.assert_array_equal(got, want, err_msg=f"temperature={temperature}")


def test_first_argmax_is_argmax():
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(0, 2, (64, 37))).astype(np.float32)  # many ties
    x[0] = -np.inf
    x[1, [3, 9]] = np.inf
    x[2, [4, 20]] = np.nan
    x[3, 5] = -0.0
    np.testing.assert_array_equal(np.asarray(first_argmax(jnp.asarray(x))), np.argmax(x, axis=-1))
    np.testing.assert_array_equal(np.asarray(jax.jit(first_argmax)(jnp.asarray(x))), np.asarray(jnp.argmax(x, -1)))


def test_segments_cover_the_positions_fed():
    assert segments(1, 64, 4) == [(1, 16), (16, 32), (32, 48), (48, 64)]
    assert segments(5, 7, 4) == [(5, 6), (6, 7)]
    assert segments(3, 3, 4) == []
    for first, stop, n in [(1, 64, 3), (4, 16, 8), (0, 256, 4)]:
        runs = segments(first, stop, n)
        assert runs[0][0] == first and runs[-1][1] == stop and len(runs) <= n
        assert all(a[1] == b[0] for a, b in zip(runs, runs[1:])) and all(s < e for s, e in runs)
