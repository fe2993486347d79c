"""Text worlds (simulator/worlds/text.py, ngram.py, transformer.py) and ToEdit's edit rule
(simulator/lm/toedit.py): the rule and deletion against numpy, test error against numpy, every
regime through the engine, seeds, compilation, corpus and config errors.

Model-level properties (n-gram counts, top-k sampling, softmax frequencies, overfitting, corpus
determinism) are tested in tests/lm and tests/text.  Exact checks use an order-3 n-gram with
additive smoothing, whose probabilities numpy recomputes from plain-Python counts; regime runs
use an order-2 n-gram, the cheapest to compile.  Compilation dominates the runtime.

Axis letters: N blocks, L scored positions (W - 1), W tokens per block, V vocabulary, S seeds.
"""

import collections
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.lm import transformer as tf
from collapse_sim.simulator.worlds import ngram, transformer
from collapse_sim.simulator.lm.toedit import chunked_rule, toedit_rule
from collapse_sim.simulator.worlds.text import load_text

V = 256
TINY = dict(block_len=32, train_blocks=32, test_blocks=16, reservoir_blocks=128, inspect_blocks=4)
ALPHA = 0.01
# Thresholds are chosen so that no (c + ALPHA) / (t + ALPHA V) with integer c, t equals one.
EXACT = ngram.Config(order=3, smoothing="additive", alpha=ALPHA, edit_threshold=0.5, **TINY)
FAST = ngram.Config(order=2, edit_threshold=0.5, **TINY)
G = 2
# The exact world's prior log-probabilities (N, W-1, V) on the original prefix; the n-gram model
# does not depend on the edit settings, so one jitted function serves every config below.
next_logprobs = jax.jit(ngram.language_model(EXACT).next_logprobs)
rule = jax.jit(toedit_rule, static_argnums=4)


# ----------------------------------------------------------------------------- numpy reference


def additive_probs(train_NxW, blocks_NxW, order=3, alpha=ALPHA):
    """P[n, i-1, :] = p(. | x_<i) for i = 1..W-1 of each block, additive smoothing of the
    longest available order min(order, i + 1) (simulator/lm/ngram.py), from plain-Python counts
    of the j-grams lying wholly inside the training blocks."""
    counts = collections.defaultdict(lambda: np.zeros(V))
    for row in np.asarray(train_NxW).tolist():
        for j in range(1, order + 1):
            for i in range(len(row) - j + 1):
                counts[tuple(row[i : i + j - 1])][row[i + j - 1]] += 1
    N, W = blocks_NxW.shape
    P = np.empty((N, W - 1, V))
    for n, row in enumerate(np.asarray(blocks_NxW).tolist()):
        for i in range(1, W):
            c = counts.get(tuple(row[max(0, i - order + 1) : i]), np.zeros(V))
            P[n, i - 1] = (c + alpha) / (c.sum() + alpha * V)
    return P


@pytest.fixture(scope="module")
def exact():
    """The additive order-3 world, its real rows, the fitted prior and numpy's probabilities."""
    world = ngram.make_world(EXACT)
    data = load_text(None, EXACT.block_len, EXACT.reservoir_blocks, EXACT.test_blocks)
    rows = world.real(jax.random.key(0), {}, 0)
    prior = jax.jit(world.fit)(jax.random.key(1), rows, None)
    train = np.asarray(rows["tokens"])
    np.testing.assert_array_equal(train, data.reservoir[: EXACT.train_blocks])
    return world, data, rows, prior, additive_probs(train, train)


def edit_once(world, prior, rows, eligible, seed=5):
    out, stats = jax.jit(world.edit)(jax.random.key(seed), {}, prior, rows, jnp.asarray(eligible))
    return np.asarray(out["tokens"]), {k: np.asarray(v) for k, v in stats.items()}


def at_most_kth(P_xV, tok_x, k):
    """Whether tok_x is among the k most likely tokens of P_xV (ties with the k-th kept)."""
    kth = -np.sort(-P_xV, axis=-1)[..., k - 1]
    return np.take_along_axis(P_xV, tok_x[..., None], -1)[..., 0] >= kth * (1 - 1e-5)


# ----------------------------------------------------------------------------- the edit rule


def test_edit_selects_exactly_the_confident_positions_of_eligible_present_rows(exact):
    world, _, rows, prior, P = exact
    tok = np.asarray(rows["tokens"])
    N = tok.shape[0]
    weight = np.ones(N, np.float32)
    weight[-4:] = 0  # absent rows: never edited, never counted
    rows = {**rows, "weight": jnp.asarray(weight)}
    eligible = np.arange(N) % 2 == 0
    out, stats = edit_once(world, prior, rows, eligible)

    p_NxL = np.take_along_axis(P, tok[:, 1:, None], -1)[..., 0]
    rows_ok = (eligible & (weight > 0))[:, None]
    expect = (p_NxL >= EXACT.edit_threshold) & rows_ok
    n = (weight > 0).sum() * (tok.shape[1] - 1)
    changed = out[:, 1:] != tok[:, 1:]
    assert out.shape == tok.shape and out.dtype == tok.dtype
    np.testing.assert_array_equal(out[:, 0], tok[:, 0])  # context only
    assert not changed[~expect].any()  # nothing outside the selection changes
    assert expect.sum() > 20 and changed.sum() > 0
    assert stats["selected_share"] == pytest.approx(expect.sum() / n, abs=1e-9)
    assert stats["changed_share"] == pytest.approx(changed.sum() / n, abs=1e-9)
    assert stats["changed_share"] <= stats["selected_share"]
    assert stats["deleted_share"] == 0
    # a resampled token is always one of the prior's top k on the original prefix
    assert at_most_kth(P[changed], out[:, 1:][changed], EXACT.edit_top_k).all()
    # the selection itself, bit for bit, from the pure rule with the edit's key
    lp = next_logprobs(prior["lm"], rows["tokens"])
    np.testing.assert_allclose(np.exp(np.asarray(lp)), P, rtol=2e-5, atol=1e-7)
    k_rule = jax.random.split(jax.random.key(5))[0]  # the edit's rule key
    edited, selected, prob = rule(k_rule, lp, rows["tokens"][:, 1:], EXACT.edit_threshold, 8, 1.0)
    np.testing.assert_array_equal(np.asarray(selected) & rows_ok, expect)
    np.testing.assert_array_equal(out[:, 1:][expect], np.asarray(edited)[expect])
    # scoring the blocks in chunks (as the world does for large sets) draws the same tokens
    chunked = jax.jit(chunked_rule, static_argnums=(0, 5, 7))(
        ngram.language_model(EXACT), k_rule, prior["lm"], rows["tokens"], EXACT.edit_threshold, 8, 1.0, 5)
    for a, b in zip(chunked, (edited, selected, prob)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(prob), p_NxL, rtol=2e-5)
    # the ten-bin histogram of the present rows' token probabilities
    hist = stats["prior_prob_hist"]
    assert hist.shape == (10,) and hist.sum() == pytest.approx(1.0)
    ref = np.histogram(np.minimum(p_NxL[weight > 0], 1 - 1e-9), bins=10, range=(0, 1))[0] / n
    np.testing.assert_allclose(hist, ref, atol=1e-9)


def test_threshold_above_one_changes_nothing_and_zero_selects_every_position(exact):
    _, _, rows, prior, P = exact
    tok = rows["tokens"]
    lp = next_logprobs(prior["lm"], tok)
    for threshold in (1.0 + 1e-6, 1.5):
        edited, selected, _ = rule(jax.random.key(0), lp, tok[:, 1:], threshold, 8, 1.0)
        assert not np.asarray(selected).any()
        np.testing.assert_array_equal(edited, tok[:, 1:])
    edited, selected, _ = rule(jax.random.key(0), lp, tok[:, 1:], 0.0, 8, 1.0)
    assert np.asarray(selected).all()
    assert at_most_kth(P, np.asarray(edited), 8).all()
    # k = 1 at any temperature: every selected token becomes the prior's most likely one
    edited, _, _ = rule(jax.random.key(1), lp, tok[:, 1:], 0.0, 1, 3.0)
    assert at_most_kth(P, np.asarray(edited), 1).all()
    # through the world, p = 0 selects every scored position of every eligible row
    world0 = ngram.make_world(dataclasses.replace(EXACT, edit_threshold=0.0))
    out, stats = edit_once(world0, prior, rows, np.ones(tok.shape[0], bool))
    assert stats["selected_share"] == 1.0 and 0 < stats["changed_share"] < 1
    # every position resampled, in batches of selected positions: the rule's draws exactly
    edited, _, _ = rule(jax.random.split(jax.random.key(5))[0], lp, tok[:, 1:], 0.0, 8, 1.0)
    np.testing.assert_array_equal(out[:, 1:], edited)


def test_deletion_removes_exactly_the_improbable_tokens_and_refills_from_the_prior(exact):
    _, _, rows, prior, P = exact
    cfg = dataclasses.replace(EXACT, edit_threshold=0.6, edit_drop_below=0.2)
    world = ngram.make_world(cfg)
    tok = np.asarray(rows["tokens"])
    N, W = tok.shape
    eligible = np.arange(N) % 3 != 0
    key = jax.random.key(9)
    out, stats = edit_once(world, prior, rows, eligible, seed=9)

    p_NxL = np.take_along_axis(P, tok[:, 1:, None], -1)[..., 0]
    deleted = (p_NxL < cfg.edit_drop_below) & eligible[:, None]
    selected = (p_NxL >= cfg.edit_threshold) & eligible[:, None]
    assert deleted.sum() > 20 and selected.sum() > 0 and not (deleted & selected).any()
    assert stats["deleted_share"] == pytest.approx(deleted.mean(), abs=1e-9)
    assert stats["selected_share"] == pytest.approx(selected.mean(), abs=1e-9)
    assert out.shape == (N, W)
    np.testing.assert_array_equal(out[~eligible], tok[~eligible])
    # the kept tokens, resampled where selected, closed up in order
    lp = next_logprobs(prior["lm"], rows["tokens"])
    new = np.asarray(rule(jax.random.split(key)[0], lp, rows["tokens"][:, 1:], cfg.edit_threshold, cfg.edit_top_k, 1.0)[0])
    edited = np.concatenate([tok[:, :1], np.where(selected, new, tok[:, 1:])], axis=1)
    keep = np.concatenate([np.ones((N, 1), bool), ~deleted], axis=1)
    n_keep = keep.sum(1)
    for n in range(N):
        np.testing.assert_array_equal(out[n, : n_keep[n]], edited[n][keep[n]])
    # the freed tail: prior samples (top-k) given the compacted block before them
    P_out = additive_probs(tok, out)
    tail = np.arange(1, W)[None, :] >= n_keep[:, None]
    assert tail.sum() == deleted.sum()
    assert at_most_kth(P_out[tail], out[:, 1:][tail], cfg.edit_top_k).all()


def test_test_error_is_the_mean_nll_of_the_held_out_split(exact):
    world, data, _, prior, _ = exact
    metrics = {k: float(v) for k, v in jax.jit(world.evaluate)({}, prior).items()}
    train = data.reservoir[: EXACT.train_blocks]
    P = additive_probs(train, data.test)
    nll = -np.mean(np.log(np.take_along_axis(P, data.test[:, 1:, None], -1)))
    assert metrics["test_error"] == pytest.approx(nll, rel=1e-5)
    assert metrics["test_ppl"] == pytest.approx(np.exp(metrics["test_error"]), rel=1e-6)
    assert metrics["test_bits_per_token"] == pytest.approx(metrics["test_error"] / np.log(2), rel=1e-6)
    # the same blocks on every load (not the cached copy): spread evenly over the test split
    again = load_text.__wrapped__(None, EXACT.block_len, EXACT.reservoir_blocks, EXACT.test_blocks)
    np.testing.assert_array_equal(again.test, data.test)
    np.testing.assert_array_equal(again.reservoir, data.reservoir)


# ----------------------------------------------------------------------------- the engine

REGIMES = [
    regime_config("replace"),
    regime_config("mix", real_fraction=0.25, real_source="original"),
    regime_config("mix", real_fraction=0.25, real_source="fresh"),
    regime_config("accumulate"),
    regime_config("accumulate_subsample"),
    regime_config("token_edit", schedule="full", edit_source="previous", prior="previous"),
    regime_config("token_edit", schedule="bernoulli", q=0.5, edit_source="original", prior="generation0"),
    regime_config("token_edit", schedule="bernoulli", q=0.5, edit_source="previous", prior="generation0"),
    regime_config("token_edit", schedule="bernoulli", q=0.5, edit_source="original", prior="previous"),
]


def regime_id(r):
    return "-".join(str(v) for k, v in r.numbers().items() if k not in ("q", "k", "eta"))


# The smoke runs below are compiled with LLVM's optimisations off: it halves the compilation
# that dominates their runtime and changes no number these tests check.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


_COMPILED = {}


def run_fast(world, regime_cfg, keys):
    """The run of these seeds, compiled once per (world, regime, number of seeds)."""
    at = (id(world), repr(regime_cfg), keys.shape)
    if at not in _COMPILED:
        simulate = make_simulate(world, make_regime(regime_cfg, world, G), G)
        _COMPILED[at] = simulate.lower(keys).compile(FAST_COMPILE)
    return _COMPILED[at](keys)


@pytest.fixture(scope="module")
def fast_world():
    return ngram.make_world(FAST)


@pytest.mark.parametrize("regime_cfg", REGIMES, ids=regime_id)
def test_every_regime_runs_with_finite_records_of_static_shape(regime_cfg, fast_world):
    rec = run_fast(fast_world, regime_cfg, seed_keys(jax.random.key(0), range(2)))
    rec = {k: np.asarray(v) for k, v in rec.items()}
    for name, a in rec.items():
        assert a.shape[:2] == (2, G + 1), name
        assert np.all(np.isfinite(a)), name
    assert rec["train_seq_ppl_gen0"].shape == (2, G + 1, FAST.inspect_blocks)
    np.testing.assert_allclose(rec["test_ppl"], np.exp(rec["test_error"]), rtol=1e-6)
    if regime_cfg.name == "token_edit":
        assert rec["prior_prob_hist"].shape == (2, G + 1, 10)
        np.testing.assert_allclose(rec["prior_prob_hist"][:, 1:].sum(-1), 1.0, rtol=1e-6)
        assert np.all(rec["changed_share"] <= rec["selected_share"])
        assert rec["selected_share"][:, 1:].min() > 0 and np.all(rec["deleted_share"] == 0)


def test_vmapped_seeds_equal_separate_runs(fast_world):
    regime_cfg = REGIMES[6]  # token_edit, bernoulli rows, base original, prior generation 0
    keys = seed_keys(jax.random.key(0), range(2))
    together = run_fast(fast_world, regime_cfg, keys)
    alone = run_fast(fast_world, regime_cfg, keys[1:])
    for name, a in together.items():
        np.testing.assert_allclose(alone[name][0], a[1], rtol=1e-6, atol=1e-7, err_msg=name)
    assert not np.allclose(together["test_error"][0, 1:], together["test_error"][1, 1:])


def test_whole_run_compiles_once_across_new_keys(fast_world):
    simulate = make_simulate(fast_world, make_regime(regime_config("replace"), fast_world, G), G)
    first = simulate(seed_keys(jax.random.key(0), range(2)))["test_error"]
    for seed in (1, 2):
        other = simulate(seed_keys(jax.random.key(seed), range(2)))["test_error"]
    assert simulate._cache_size() == 1
    assert not np.allclose(first[:, 1:], other[:, 1:])


def test_transformer_world_runs_replace_and_token_edit_with_deletion():
    cfg = transformer.Config(
        block_len=17, train_blocks=32, test_blocks=16, reservoir_blocks=64, inspect_blocks=4,
        n_layers=1, d_model=16, n_heads=2, steps=10, batch_size=8, warmup=2,
        edit_threshold=0.5, edit_drop_below=0.01,
    )
    world = transformer.make_world(cfg)
    keys = seed_keys(jax.random.key(0), range(2))
    for regime_cfg in (regime_config("replace"), regime_config("token_edit", schedule="full")):
        rec = run_fast(world, regime_cfg, keys)
        for name, a in rec.items():
            assert a.shape[:2] == (2, G + 1), (regime_cfg.name, name)
            assert np.all(np.isfinite(np.asarray(a))), (regime_cfg.name, name)
    # An all but untrained model gives most bytes p < 0.01: they are deleted and refilled.
    assert np.all(np.asarray(rec["deleted_share"])[:, 1:] > 0.5)


def test_transformer_completion_keeps_the_prefix_and_continues_from_the_model():
    cfg = transformer.Config(block_len=9, n_layers=1, d_model=16, n_heads=2)
    lm = transformer.language_model(cfg)
    params = tf.init_params(jax.random.key(0), transformer.model_config(cfg))
    tok = jax.random.randint(jax.random.key(1), (4, 9), 0, V, jnp.int32)
    n_keep = jnp.array([9, 1, 4, 8])
    args = (jax.random.key(2), params, tok, n_keep, 1, 1.0)
    out = jax.jit(lm.complete, static_argnums=4).lower(*args).compile(FAST_COMPILE)(*args[:4], 1.0)
    out, lp = np.asarray(out), np.asarray(jax.jit(lm.next_logprobs)(params, out))
    for n, k in enumerate(np.asarray(n_keep)):
        np.testing.assert_array_equal(out[n, :k], np.asarray(tok)[n, :k])
        # top-1: each new token is the argmax of the model given the completed prefix
        for t in range(k, 9):
            assert lp[n, t - 1, out[n, t]] >= lp[n, t - 1].max() - 1e-5


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "undecodable", "empty_folder"],
)
def test_bad_corpus_fails_at_start_naming_the_path(tmp_path, case):
    path = tmp_path / f"{case}.txt"
    if case == "empty":
        path.write_text("  \n")
    elif case == "undecodable":
        path.write_bytes(b"To be, or not \xff\xfe to be")
    elif case == "empty_folder":
        path = tmp_path / "folder"
        path.mkdir()
    with pytest.raises(ValueError, match=str(path)):
        ngram.make_world(ngram.Config(corpus=str(path), **TINY))


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("edit_threshold", 1.5, r"world.edit_threshold=1.5 .*\[0, 1\]"),
        ("edit_threshold", -0.1, r"world.edit_threshold=-0.1 .*\[0, 1\]"),
        ("edit_top_k", 0, r"world.edit_top_k=0 .*vocabulary size 256"),
        ("edit_top_k", 300, r"world.edit_top_k=300 .*vocabulary size 256"),
        ("edit_temperature", 0.0, r"world.edit_temperature=0.0 .*\[0.001, 1000\]"),
        ("edit_drop_below", 0.999, r"world.edit_drop_below=0.999 .*world.edit_threshold=0.99"),
        ("edit_drop_below", -0.001, r"world.edit_drop_below=-0.001"),
    ],
)
@pytest.mark.parametrize("module", [ngram, transformer], ids=["ngram", "transformer"])
def test_bad_edit_values_fail_naming_the_field(module, field, value, match):
    with pytest.raises(ValueError, match=match):
        module.Config(**{field: value})
