"""The pretrained base model: shipped weights against their model card, the
pretraining command's checkpoints and resume, loading errors, and the
transformer world's init=pretrained."""

import hashlib
import re
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_sim.simulator.lm import checkpoint_io as cio
from collapse_sim.simulator.lm import pretrain as pt
from collapse_sim.simulator.lm.train import make_loss
from collapse_sim.simulator.worlds import transformer as tw

CARD = cio.PRETRAINED_DIR / f"{cio.BASE_NAME}.md"
TINY = dict(n_layers=1, d_model=16, n_heads=2, context=16, steps=8, batch_size=4, warmup=2,
            chunk=2, eval_every=4, checkpoint_every=2, eval_blocks=8)


def _card_value(label):
    m = re.search(re.escape(label) + r"[^0-9a-f]*([0-9a-f]{64}|[0-9]+\.[0-9]+)", CARD.read_text())
    assert m, f"{label!r} not found in {CARD}"
    return m.group(1)


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


def _equal(a, b):
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_shipped_weights_match_card_sha256():
    digest = hashlib.sha256(cio.BASE_FILE.read_bytes()).hexdigest()
    assert digest == _card_value("weights SHA-256")


def test_shipped_model_reproduces_card_test_perplexity():
    mc, params = cio.load_base()
    data = pt.load_data(pt.PretrainConfig(context=mc.context, eval_blocks=256))
    nll = -float(jnp.mean(jax.jit(make_loss(mc).token_logprobs)(params, jnp.asarray(data["test_eval"]))))
    card = float(_card_value("test perplexity per byte on the 256 evenly spread test blocks"))
    assert abs(np.exp(nll) - card) < 6e-4 * card


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One uninterrupted tiny run through the command line (main)."""
    out = tmp_path_factory.mktemp("full")
    argv = ["--out", str(out), "--no-full-eval"] + [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert pt.main(argv) == 0
    return out


def test_interrupted_run_resumes_to_identical_weights(tiny_run, tmp_path):
    cfg = pt.PretrainConfig(**TINY)
    stopped = pt.pretrain(cfg, tmp_path, stop_at=3, quiet=True)
    assert stopped == {"step": 4, "stopped": True}
    _, arrays = cio.read(tmp_path / "checkpoint.npz")
    assert int(arrays["step"]) == 4 and not (tmp_path / "base.npz").exists()
    pt.pretrain(cfg, tmp_path, quiet=True, full_eval=False)
    _, resumed = cio.load_base(tmp_path / "base.npz")
    _, full = cio.load_base(tiny_run / "base.npz")
    assert _equal(resumed, full)
    # the curve continues across the interruption: evaluations at steps 4 and 8
    assert [r["step"] for r in pt.json.loads((tmp_path / "curve.json").read_text())] == [4, 8]


def test_resume_with_another_config_is_an_error(tiny_run):
    cfg = pt.PretrainConfig(**{**TINY, "lr": 1e-3})
    with pytest.raises(cio.CheckpointError, match=r"different config \(lr: checkpoint 0.002, now 0.001\)"):
        pt.pretrain(cfg, tiny_run, quiet=True)


@pytest.mark.parametrize("name", ["checkpoint.npz", "base.npz"])
def test_world_base_loads_a_user_checkpoint(tiny_run, name):
    path = tiny_run / name
    cfg = tw.Config(init="pretrained", base=str(path), block_len=TINY["context"] + 1, finetune_steps=0,
                    train_blocks=8, reservoir_blocks=8, test_blocks=4, inspect_blocks=0)
    # the architecture comes from the checkpoint
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads) == (1, 16, 2)
    _, base = cio.load_base(path)
    world = tw.make_world(cfg)
    truth = world.init(jax.random.key(0))
    assert _equal(truth["base"]["lm"], base)
    real = world.real(jax.random.key(1), truth, 0)
    # generation 0 fine-tunes the base: 0 steps returns it exactly
    assert _equal(world.fit(jax.random.key(2), real, None)["lm"], base)


def test_pretrained_generation0_starts_from_base(tiny_run):
    path = str(tiny_run / "base.npz")
    kw = dict(init="pretrained", base=path, block_len=17, train_blocks=8, reservoir_blocks=8,
              test_blocks=4, inspect_blocks=0, batch_size=4, finetune_warmup=0)
    _, base = cio.load_base(path)
    one = tw.make_world(tw.Config(**kw, finetune_steps=1, finetune_lr=1e-4))
    real = one.real(jax.random.key(1), {}, 0)
    tuned = one.fit(jax.random.key(2), real, None)["lm"]
    # one AdamW step of lr 1e-4 moves each weight by at most about lr (plus clipping/decay)
    gap = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(_leaves(tuned), _leaves(base)))
    assert 0 < gap < 2e-4
    # the generation-0 model passed as ``base`` is ignored: every generation starts from the base
    tuned_again = one.fit(jax.random.key(2), real, {"lm": jax.tree.map(jnp.zeros_like, base)})["lm"]
    assert _equal(tuned, tuned_again)


def test_missing_corrupt_and_wrong_files(tiny_run, tmp_path):
    with pytest.raises(cio.CheckpointError, match=f"checkpoint {re.escape(str(tmp_path / 'nope.npz'))} does not exist"):
        cio.load_base(tmp_path / "nope.npz")
    blob = (tiny_run / "base.npz").read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(cio.CheckpointError, match="trunc.npz is corrupt or not a checkpoint"):
        cio.load_base(trunc)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(cio.CheckpointError, match="junk.npz is corrupt"):
        cio.load_base(junk)
    config, arrays = cio.read(tiny_run / "base.npz")
    wrong = tmp_path / "wrong.npz"
    del arrays["params.ln_f.scale.value"]
    cio.save_atomic(wrong, {**arrays, "config": cio.json_array(config)})
    with pytest.raises(cio.CheckpointError, match=r"wrong.npz: leaf 'params.ln_f.scale.value' is missing"):
        cio.load_base(wrong)
    shape = tmp_path / "shape.npz"
    cio.save_atomic(shape, {**arrays, "params.ln_f.scale.value": np.ones(3, np.float32), "config": cio.json_array(config)})
    with pytest.raises(cio.CheckpointError, match=r"shape.npz: leaf 'params.ln_f.scale.value' has shape \(3,\)"):
        cio.load_base(shape)
    assert zipfile.is_zipfile(wrong)


@pytest.mark.parametrize("field, value, message", [
    ("block_len", 33, r"world.block_len=33 \(context = block_len - 1\): the checkpoint has context=16"),
    ("n_layers", 2, r"world.n_layers=2: the checkpoint has n_layers=1"),
    ("d_model", 32, r"world.d_model=32: the checkpoint has d_model=16"),
])
def test_mismatched_world_is_an_error_naming_path_and_field(tiny_run, field, value, message):
    path = str(tiny_run / "base.npz")
    kw = {"init": "pretrained", "base": path, "block_len": 17, field: value}
    with pytest.raises(cio.CheckpointError, match=re.escape(path) + " does not match " + message):
        tw.Config(**kw)


def test_vocabulary_mismatch_is_an_error(tiny_run, tmp_path):
    config, arrays = cio.read(tiny_run / "base.npz")
    other = tmp_path / "vocab.npz"
    emb = arrays["params.tok_embed.embedding.value"][:100]
    cio.save_atomic(other, {**arrays, "params.tok_embed.embedding.value": emb,
                            "config": cio.json_array({**config, "vocab_size": 100})})
    with pytest.raises(cio.CheckpointError, match="the byte vocabulary: the checkpoint has vocab_size=100"):
        tw.Config(init="pretrained", base=str(other), block_len=17)


def test_base_only_with_pretrained():
    with pytest.raises(ValueError, match="world.base='x.npz' is used only with world.init=pretrained"):
        tw.Config(base="x.npz")


def test_model_card_records_the_weights_and_what_it_measures(tiny_run, tmp_path):
    """simulator/lm/model_card.py: the card of exported weights names their SHA-256 and
    test perplexity, the n-gram bar it is given, and the token probabilities it measures."""
    from collapse_sim.simulator.lm import model_card

    dest = pt.export(tiny_run, tmp_path / "tiny.npz")
    mc, params = cio.load_base(dest)
    blocks = pt.load_data(pt.PretrainConfig(**TINY))["test_eval"]
    stats = model_card.token_prob_stats(mc, params, blocks)
    p = np.exp(np.asarray(jax.jit(make_loss(mc).token_logprobs)(params, jnp.asarray(blocks)))).ravel()
    assert stats["tokens"] == p.size == blocks.shape[0] * TINY["context"]
    assert stats["share_ge_0.9"] == pytest.approx(np.mean(p >= 0.9))
    assert stats["hist"][0] == pytest.approx(np.mean(p < 0.1)) and sum(stats["hist"]) == pytest.approx(1.0)
    rows = model_card.ngram_bar(orders=(1,), context=TINY["context"], eval_blocks=8, train_blocks=64)
    assert rows[0]["train_blocks"] == 64 and rows[0]["test_ppl"] == pytest.approx(np.exp(rows[0]["test_nll"]))
    card = model_card.write_card(dest, rows, rows, stats).read_text()
    assert hashlib.sha256(dest.read_bytes()).hexdigest() in card
    summary = cio.read(dest)[0]["summary"]
    assert f"test perplexity per byte on the 256 evenly spread test blocks: {summary['test_eval_ppl']:.4f}" in card
    assert f"| 1 | {rows[0]['test_ppl']:.3f} | {rows[0]['test_nll'] / np.log(2):.3f} |" in card
    assert f"a share\n{stats['share_ge_0.99']:.4f} has P >= 0.99" in card
