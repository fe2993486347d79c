"""The model card of the pretrained base model (simulator/lm/pretrain.py): the markdown
file ``<name>.md`` written next to exported weights ``<name>.npz``.

It records what the weights file records (architecture, optimiser, steps, wall time,
held-out perplexity, SHA-256 of corpus and weights) and what is measured here against
the same test blocks: the n-gram bar (:func:`ngram_bar`, the model of the n-gram world,
simulator/lm/ngram.py, Witten-Bell) and the model's token probabilities
P(x_i | x_<i) (:func:`token_prob_stats`: the share at or above ToEdit's thresholds,
Zhu et al. 2024, arXiv 2412.14689, §4.1, and their ten-bin histogram, ToEdit Table 6).
Position 0 of a block is context only, as in the text worlds.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator.lm import checkpoint_io as cio
from collapse_sim.simulator.lm import ngram
from collapse_sim.simulator.lm.pretrain import PretrainConfig, load_data
from collapse_sim.simulator.lm.train import make_loss
from collapse_sim.simulator.lm.transformer import TransformerConfig
from collapse_sim.simulator.text.corpus import load_splits
from collapse_sim.simulator.text.tokenizer import ByteTokenizer
from collapse_sim.simulator.worlds.text import load_text


def ngram_bar(orders=(3, 4, 5, 6), context: int = 64, corpus: Optional[str] = None,
              eval_blocks: int = 256, train_blocks: Optional[int] = None) -> list[dict]:
    """Test NLL of the n-gram model of the n-gram world (simulator/lm/ngram.py,
    Witten-Bell, the world's default) at each order, fitted on the training split's
    blocks of context + 1 bytes (all of them, or the world's first ``train_blocks``
    of its seeded shuffle) and scored on the same tokens as the transformer: the
    whole test split and the ``eval_blocks`` spread over it (position 0 of a block
    is context only)."""
    cfg = PretrainConfig(context=context, corpus=corpus, eval_blocks=eval_blocks)
    data = load_data(cfg)
    train = load_splits(corpus, ByteTokenizer(), context + 1)["train"]
    if train_blocks is not None:
        train = load_text(corpus, context + 1, train_blocks, eval_blocks).reservoir[:train_blocks]
    rows = []
    for order in orders:
        mc = ngram.NGramConfig(order=order, vocab_size=256, smoothing="witten_bell")
        params = ngram.fit(mc, jnp.asarray(train), jnp.ones(train.shape[0], jnp.float32))
        lp = jax.jit(lambda b: ngram.token_logprobs(mc, params, b)[:, 1:])
        full = float(np.mean([-np.mean(np.asarray(lp(jnp.asarray(c)))) for c in np.array_split(data["test"], 16)]))
        ev = float(-jnp.mean(lp(jnp.asarray(data["test_eval"]))))
        rows.append({"order": order, "train_blocks": int(train.shape[0]), "test_nll": full,
                     "test_ppl": math.exp(full), "test_eval_nll": ev, "test_eval_ppl": math.exp(ev)})
    return rows


def token_prob_stats(mc: TransformerConfig, params, blocks, thresholds=(0.99, 0.9)) -> dict:
    """The model's probabilities p_i = P(x_i | x_<i) of the real tokens of
    ``blocks`` (positions 1..W-1): the share with p_i >= each threshold (ToEdit's
    selection rule, Zhu et al. 2024, arXiv 2412.14689, §4.1) and their ten-bin
    histogram of width 0.1 (ToEdit Table 6; the bins ``N_PROB_BINS`` of
    simulator/worlds/text.py)."""
    lp = jax.jit(make_loss(mc).token_logprobs)
    p = np.concatenate([np.exp(np.asarray(lp(params, jnp.asarray(c)))).ravel()
                        for c in np.array_split(np.asarray(blocks), max(1, len(blocks) // 1024))])
    hist = np.bincount(np.clip((p * 10).astype(np.int64), 0, 9), minlength=10) / p.size
    return {"tokens": int(p.size), **{f"share_ge_{t}": float(np.mean(p >= t)) for t in thresholds},
            "hist": [float(h) for h in hist]}


def write_card(npz_path, ngram_rows: list, world_ngram_rows: list, stats: dict) -> Path:
    """The model card ``<name>.md`` next to exported weights ``<name>.npz``, from
    the numbers the weights file records and those measured here."""
    npz_path = Path(npz_path)
    config, _ = cio.read(npz_path)
    sm, pc = config["summary"], config["pretrain"]
    ln2 = math.log(2)
    sha = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    defaults = PretrainConfig().to_json()
    flags = "".join(f"--{k.replace('_', '-')} {v} " for k, v in pc.items() if v != defaults[k])
    n_params = sum(int(np.prod(a.shape)) for k, a in cio.read(npz_path)[1].items() if k.startswith("params."))
    ng = "\n".join(f"| {r['order']} | {r['test_ppl']:.3f} | {r['test_nll'] / ln2:.3f} | {r['test_eval_ppl']:.3f} |"
                    for r in ngram_rows)
    wng = "\n".join(f"| {r['order']} | {r['test_ppl']:.3f} | {r['test_nll'] / ln2:.3f} |" for r in world_ngram_rows)
    hist = " | ".join(f"{h:.4f}" for h in stats["hist"])
    text = f"""# {npz_path.stem}: the pretrained base model

A byte-level decoder-only transformer (simulator/lm/transformer.py) pretrained on the whole training
split of the shipped Shakespeare corpus (simulator/text/corpus.py), the base model that
`world.init=pretrained` fine-tunes every generation (Shumailov et al. 2024, Nature 631:755, fine-tune
a pretrained model each generation).  Load it with
`collapse_sim.simulator.lm.checkpoint_io.load_base()` -> `(TransformerConfig, params)`.

## Model and training

| field | value |
|---|---|
| architecture | {config['n_layers']} layers, d_model {config['d_model']}, {config['n_heads']} heads, context {config['context']}, vocabulary {config['vocab_size']} (bytes), dropout {config['dropout']}, head tied to the embedding |
| parameters | {n_params:,} (float32) |
| optimiser | AdamW, batch {pc['batch_size']} windows of {pc['context'] + 1} bytes, peak lr {pc['lr']}, {pc['warmup']} warmup steps, cosine to {pc['final_lr_frac']} x peak at step {pc['steps']}, weight decay {pc['weight_decay']}, clip {pc['clip']} |
| seed | {pc['seed']} |
| steps | {sm['steps']} |
| tokens seen | {sm['tokens_seen']:,} predicted bytes ({sm['tokens_seen'] / sm['train_stream_tokens']:.1f} passes over the {sm['train_stream_tokens']:,}-byte training split) |
| wall time | {sm['wall_s'] / 60:.1f} min on {sm['machine']}, under `nice -n 10` beside other jobs |
| corpus SHA-256 | `{sm['corpus_sha256']}` |
| weights SHA-256 | `{sha}` |

Rebuild (deterministic from this config; rerunning the same command after an interruption resumes from
`DIR/checkpoint.npz`):

```bash
collapse-pretrain --out results/pretrain/base {flags}--export simulator/lm/pretrained/{npz_path.stem}.npz
```

## Held-out perplexity

Per byte, position 0 of each block of {pc['context'] + 1} bytes being context only (the scoring of the text worlds).

| split | blocks | perplexity per byte | bits per byte |
|---|---|---|---|
| validation (whole split) | {sm['validation_blocks']} | {math.exp(sm['validation_nll']):.4f} | {sm['validation_nll'] / ln2:.4f} |
| test (whole split) | {sm['test_blocks']} | {sm['test_ppl']:.4f} | {sm['test_bits_per_byte']:.4f} |
| test, 256 evenly spread blocks (`world=transformer`'s test set) | {sm['test_eval_blocks']} | {sm['test_eval_ppl']:.4f} | {sm['test_eval_nll'] / ln2:.4f} |

test perplexity per byte on the 256 evenly spread test blocks: {sm['test_eval_ppl']:.4f}

The bar: the n-gram model of `world=ngram` (simulator/lm/ngram.py, Witten-Bell) on the same test blocks,
fitted on the same whole training split (`model_card.ngram_bar()`):

| order | test ppl per byte (whole split) | bits per byte | test ppl, 256 blocks |
|---|---|---|---|
{ng}

and fitted, as the n-gram world does, on the 1024 training blocks of a world (`train_blocks=1024`):

| order | test ppl per byte (whole split) | bits per byte |
|---|---|---|
{wng}

Training curve (`{npz_path.stem}.curve.json`; validation and test on {pc['eval_blocks']} blocks each, train =
mean batch loss since the previous point):

![training curve]({npz_path.stem}.png)

## Token probabilities (ToEdit's selection)

The model's P(x_i | x_<i) of the {stats['tokens']:,} real tokens of the whole test split: a share
{stats['share_ge_0.99']:.4f} has P >= 0.99 and {stats['share_ge_0.9']:.4f} has P >= 0.9 (ToEdit, Zhu et al. 2024,
arXiv 2412.14689, §4.1, resamples a token when P >= p).  Ten bins of width 0.1 (ToEdit Table 6):

| [0,.1) | [.1,.2) | [.2,.3) | [.3,.4) | [.4,.5) | [.5,.6) | [.6,.7) | [.7,.8) | [.8,.9) | [.9,1] |
|---|---|---|---|---|---|---|---|---|---|
| {hist} |

## Limits

Trained on Shakespeare only (3.9 MB of early-modern English verse and prose): it is a prior for this
corpus, not a general language model.  Context {config['context']} bytes.
"""
    card = npz_path.with_suffix(".md")
    card.write_text(text)
    return card


def card_for(cfg: PretrainConfig, npz_path) -> Path:
    """Measure the n-gram bars (the whole training split, and a world's 1024 training
    blocks) and the model's token probabilities on the whole test split, then write
    the card of ``npz_path``."""
    rows = ngram_bar(context=cfg.context, corpus=cfg.corpus, eval_blocks=256)
    world_rows = ngram_bar(context=cfg.context, corpus=cfg.corpus, eval_blocks=256, train_blocks=1024)
    mc, params = cio.load_base(npz_path)
    stats = token_prob_stats(mc, params, load_data(cfg)["test"])
    return write_card(npz_path, rows, world_rows, stats)
