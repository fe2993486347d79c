"""``regime.prior=base``: ToEdit (Zhu et al. 2024, arXiv 2412.14689, §4.1) with the world's
pretrained base model as the prior.  A tiny base checkpoint (1 layer, d=16, context 16) is
written here; its token probabilities on the real rows are computed directly with
``transformer.apply`` and compared with what the regime selects and redraws."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collapse_sim.simulator.lm import checkpoint_io as cio
from collapse_sim.simulator.lm import transformer as tf
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import ngram
from collapse_sim.simulator.worlds import transformer as tw

MC = tf.TransformerConfig(vocab_size=256, n_layers=1, d_model=16, n_heads=2, context=16)
SIZES = dict(block_len=MC.context + 1, train_blocks=8, reservoir_blocks=8, test_blocks=4, inspect_blocks=0)
EDIT_K = 8
# LLVM's optimisations off: halves the compilation that dominates these tests, changes no checked number.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(path, params) of a tiny base model; the embedding is scaled so that its
    next-token distributions are peaked (a spread of probabilities to select from)."""
    params = tf.init_params(jax.random.key(0), MC)
    params["tok_embed"]["embedding"] = nnx.Param(20.0 * params["tok_embed"]["embedding"][...])
    path = tmp_path_factory.mktemp("base") / "tiny_base.npz"
    config = cio.json_array({f.name: getattr(MC, f.name) for f in dataclasses.fields(MC)})
    cio.save_atomic(path, {**cio.flatten("params", params), "config": config})
    return str(path), cio.load_base(path)[1]


def world_with(path, threshold):
    cfg = tw.Config(init="pretrained", base=path, finetune_steps=0, edit_threshold=threshold,
                    edit_top_k=EDIT_K, **SIZES)
    return tw.make_world(cfg)


def token_probs(params, tokens):
    """(log P(. | x_<i) (N, W-1, V), P(x_i | x_<i) (N, W-1)) of a model, directly."""
    logits = jax.jit(tf.apply, static_argnums=0)(MC, params, jnp.asarray(tokens[:, :-1]))
    logp = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1))
    return logp, np.exp(np.take_along_axis(logp, tokens[:, 1:, None], -1)[..., 0])


def test_base_prior_edits_with_the_base_models_probabilities(base):
    path, base_params = base
    probe = world_with(path, 0.5)
    truth = probe.init(jax.random.key(0))
    real = probe.real(jax.random.key(1), truth, 0)
    tokens = np.asarray(real["tokens"])
    other = tf.init_params(jax.random.key(7), MC)  # model n-1, unlike the base
    logp, p = token_probs(base_params, tokens)
    # a threshold in the widest gap between the base's 30% and 70% quantiles: no token near it
    s = np.sort(p.ravel())
    lo, hi = int(0.3 * s.size), int(0.7 * s.size)
    i = lo + int(np.argmax(np.diff(s[lo:hi])))
    threshold = float((s[i] + s[i + 1]) / 2)
    assert s[i + 1] - s[i] > 1e-3 * s[i]
    _, p_other = token_probs(other, tokens)
    want = {"base": np.mean(p >= threshold), "previous": np.mean(p_other >= threshold)}
    assert 0.25 < want["base"] < 0.75 and abs(want["previous"] - want["base"]) > 0.1

    world = world_with(path, threshold)
    for prior in ("base", "previous"):
        regime = make_regime(regime_config("token_edit", schedule="full", prior=prior), world, 2)
        state = regime.init(jax.random.key(2), truth, real, {"lm": other})
        args = (jax.random.key(3), state, truth, {"lm": other})
        step = jax.jit(lambda k, st, tr, pr: regime.step(k, st, tr, pr, 1)).lower(*args).compile(FAST_COMPILE)
        edited, _, stats = step(*args)
        assert float(stats["selected_share"]) == pytest.approx(want[prior], abs=1e-12), prior
        if prior == "base":
            new = np.asarray(edited["tokens"])
            changed = new[:, 1:] != tokens[:, 1:]
            np.testing.assert_array_equal(new[:, 0], tokens[:, 0])  # position 0 is context only
            assert not np.any(changed & (p < threshold))  # only selected tokens change
            assert changed.sum() > 0 and float(stats["changed_share"]) == pytest.approx(changed.mean())
            # a redrawn token is one of the base model's top-k at its position
            top_k = np.argsort(-logp, axis=-1)[..., :EDIT_K]
            assert np.all(np.any(top_k == new[:, 1:, None], -1)[changed])


@pytest.mark.parametrize("make", [
    lambda: ngram.make_world(ngram.Config(order=2, **{**SIZES, "block_len": 32})),
    lambda: tw.make_world(tw.Config(**SIZES)),  # init=scratch: no base model
], ids=["ngram", "transformer-scratch"])
def test_base_prior_without_a_base_model_is_an_error(make):
    world = make()
    message = ("regime.prior='base' needs a world with a pretrained base model (world=transformer with "
               f"world.init=pretrained); world '{world.name}' has none: allowed here are "
               "regime.prior=previous, generation0")
    with pytest.raises(ValueError, match=re.escape(message)):
        make_regime(regime_config("token_edit", prior="base"), world, 2)
