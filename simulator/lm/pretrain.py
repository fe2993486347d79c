"""Pretrain the project's byte-level transformer (simulator/lm/transformer.py) on
the whole training split of a corpus (the shipped Shakespeare by default), the
base model that ``world.init=pretrained`` fine-tunes every generation
(Shumailov et al. 2024, Nature 631:755, fine-tune a pretrained model).

    python -m collapse_sim.simulator.lm.pretrain --out results/pretrain/base
    collapse-pretrain --out DIR [--steps N --n-layers L --d-model D ...]

Training: step t draws ``batch_size`` windows of ``context + 1`` consecutive
bytes at uniform offsets of the training split's token stream and takes one
AdamW step of simulator/lm/train.py (:func:`make_chunk_train`; warmup then a
cosine to ``final_lr_frac * lr`` at the last planned step).  Everything is a
function of the config (seed included): ``init_key, run_key =
split(key(seed))``, step t uses ``fold_in(run_key, t)``.

Every ``eval_every`` steps the mean NLL of ``eval_blocks`` validation and test
blocks (spread evenly over each split, the rule of
simulator/worlds/text.py:load_text) is added to the curve.  Every
``checkpoint_every`` steps ``DIR/checkpoint.npz`` is replaced atomically by one
file with the step, the run key, params, optimiser state, curve and wall time
(simulator/lm/checkpoint_io.py).  Rerunning the same command resumes from it
and ends with the same weights as an uninterrupted run; a different config on
an existing checkpoint is an error.  At the end the whole validation and test
splits are scored and ``DIR/base.npz`` (config + params + results),
``DIR/curve.json`` and ``DIR/curve.png`` are written; ``--export PATH.npz``
also writes them to PATH.npz, PATH.curve.json and PATH.png, and the model card
PATH.md (simulator/lm/model_card.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator.lm import checkpoint_io as cio
from collapse_sim.simulator.lm.train import TrainConfig, make_chunk_train, make_loss, optimizer
from collapse_sim.simulator.lm.transformer import TransformerConfig, init_params


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Model (n_layers, d_model, n_heads, context, dropout), optimisation (steps,
    batch_size, lr, warmup, weight_decay, clip, final_lr_frac), seed, corpus
    (None = shipped), and bookkeeping (chunk: steps per jitted call; eval_every and
    checkpoint_every: multiples of chunk; eval_blocks per split)."""

    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    context: int = 64
    dropout: float = 0.0
    steps: int = 8000
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 200
    weight_decay: float = 0.1
    clip: float = 1.0
    final_lr_frac: float = 0.05
    seed: int = 0
    corpus: Optional[str] = None
    chunk: int = 50
    eval_every: int = 250
    checkpoint_every: int = 250
    eval_blocks: int = 256

    def __post_init__(self):
        self.model_config()
        self.train_config()
        for name in ("chunk", "eval_every", "checkpoint_every", "eval_blocks"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"pretrain {name}={v!r} must be a positive int")
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) % self.chunk:
                raise ValueError(f"pretrain {name}={getattr(self, name)} must be a multiple of chunk={self.chunk}")

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=256, n_layers=self.n_layers, d_model=self.d_model,
                                 n_heads=self.n_heads, context=self.context, dropout=self.dropout)

    def train_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup=self.warmup,
                           weight_decay=self.weight_decay, clip=self.clip, final_lr_frac=self.final_lr_frac)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def load_data(cfg: PretrainConfig) -> dict:
    """The training split as one token stream (T,), and the validation and test
    splits as blocks of context + 1 tokens (all, and ``eval_blocks`` spread evenly)."""
    from collapse_sim.simulator.text.corpus import load_splits
    from collapse_sim.simulator.text.tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    stream = load_splits(cfg.corpus, tok, 1)["train"].reshape(-1)
    splits = load_splits(cfg.corpus, tok, cfg.context + 1)
    out = {"train": stream}
    for split in ("validation", "test"):
        blocks = splits[split]
        pick = np.linspace(0, blocks.shape[0] - 1, min(cfg.eval_blocks, blocks.shape[0])).round().astype(int)
        out[split] = blocks
        out[split + "_eval"] = blocks[pick]
    return out


@functools.lru_cache(maxsize=8)
def _chunk_fn(mc: TransformerConfig, tc: TrainConfig, n: int):
    return make_chunk_train(mc, tc, n)


@functools.lru_cache(maxsize=8)
def make_scorer(model_cfg: TransformerConfig):
    """``nll(params, blocks) -> mean NLL`` (nats per scored byte; position 0 of a
    block is context only), jitted, 256 blocks at a time."""
    token_logprobs = jax.jit(make_loss(model_cfg).token_logprobs)

    def nll(params, blocks):
        return float(-jnp.mean(token_logprobs(params, jnp.asarray(blocks, jnp.int32))))

    return nll


def _config_diff(saved: dict, now: dict) -> list[str]:
    return [f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)]


class _Progress:
    """tqdm on a terminal; otherwise a plain line at every evaluation."""

    def __init__(self, total: int, initial: int):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, n: int, loss: float):
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss:.3f}")

    def line(self, text: str):
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _lr_at(cfg: PretrainConfig, step: int) -> float:
    from collapse_sim.simulator.lm.train import lr_schedule
    return float(lr_schedule(cfg.train_config())(step))


def pretrain(cfg: PretrainConfig, out_dir, *, stop_at: Optional[int] = None, quiet: bool = False,
             full_eval: bool = True) -> dict:
    """Run (or resume) the pretraining in ``out_dir``; returns the summary written
    into ``base.npz``'s config (or, with ``stop_at``, the state after the first
    checkpoint at or beyond step ``stop_at``: a deliberate interruption).
    ``full_eval=False`` scores only the ``eval_blocks`` at the end, not the whole
    validation and test splits (faster; the weights are the same)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.npz"
    mc, tc = cfg.model_config(), cfg.train_config()
    tx = optimizer(tc)
    data = load_data(cfg)
    stream = jnp.asarray(data["train"], jnp.int32)
    nll = make_scorer(mc)
    init_key, run_key = jax.random.split(jax.random.key(cfg.seed))

    if ckpt_path.exists():
        saved, arrays = cio.read(ckpt_path)
        diff = _config_diff(saved.get("pretrain", {}), cfg.to_json())
        if diff:
            raise cio.CheckpointError(
                f"checkpoint {ckpt_path} was written by a different config ({'; '.join(diff)}); "
                "rerun with that config to resume, or use a new --out folder"
            )
        params = cio.unflatten("params", cio.abstract_params(mc), arrays, f"checkpoint {ckpt_path}")
        opt_state = cio.unflatten("opt", jax.eval_shape(tx.init, params), arrays, f"checkpoint {ckpt_path}")
        step = int(arrays["step"])
        run_key = jax.random.wrap_key_data(jnp.asarray(arrays["run_key"]))
        curve = json.loads(bytes(arrays["curve"]).decode())
        wall = float(arrays["wall_s"])
    else:
        params = init_params(init_key, mc)
        opt_state = tx.init(params)
        step, curve, wall = 0, [], 0.0

    def save(step, params, opt_state, curve, wall):
        arrays = {
            "config": cio.json_array({**{f: getattr(mc, f) for f in cio.MODEL_FIELDS}, "pretrain": cfg.to_json()}),
            "step": np.int64(step),
            "run_key": np.asarray(jax.random.key_data(run_key)),
            "curve": cio.json_array(curve),
            "wall_s": np.float64(wall),
            **cio.flatten("params", params),
            **cio.flatten("opt", opt_state),
        }
        cio.save_atomic(ckpt_path, arrays)

    progress = None if quiet else _Progress(cfg.steps, step)
    if progress and step:
        progress.line(f"resuming {ckpt_path} at step {step}/{cfg.steps}")
    losses = []
    t_start = time.perf_counter() - wall
    try:
        while step < cfg.steps:
            n = min(cfg.chunk, cfg.steps - step)
            params, opt_state, m = _chunk_fn(mc, tc, n)(run_key, params, opt_state, stream, jnp.int32(step))
            step += n
            losses.append(np.asarray(m["loss"]))
            if progress:
                progress.update(n, float(losses[-1].mean()))
            if step % cfg.eval_every == 0 or step == cfg.steps:
                row = {
                    "step": step,
                    "tokens": step * cfg.batch_size * cfg.context,
                    "wall_s": round(time.perf_counter() - t_start, 2),
                    "lr": _lr_at(cfg, step),
                    "train_nll": float(np.concatenate(losses).mean()) if losses else float("nan"),
                    "val_nll": nll(params, data["validation_eval"]),
                    "test_nll": nll(params, data["test_eval"]),
                }
                losses = []
                curve.append(row)
                if progress:
                    progress.line(
                        f"step {step}/{cfg.steps} train {row['train_nll'] / math.log(2):.3f} "
                        f"val {row['val_nll'] / math.log(2):.3f} test {row['test_nll'] / math.log(2):.3f} bits/byte, "
                        f"{row['wall_s']:.0f} s"
                    )
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save(step, params, opt_state, curve, time.perf_counter() - t_start)
                if stop_at is not None and step >= stop_at and step < cfg.steps:
                    return {"step": step, "stopped": True}
    except KeyboardInterrupt:
        if progress:
            progress.close()
        print(f"\ninterrupted; the checkpoint {ckpt_path} holds the last saved step; "
              "rerun the same command to resume", file=sys.stderr)
        raise
    if progress:
        progress.close()
    wall = time.perf_counter() - t_start
    summary = finish(cfg, out, params, curve, data, nll, wall, full_eval)
    return summary


def finish(cfg: PretrainConfig, out: Path, params, curve: list, data: dict, nll, wall: float,
           full_eval: bool = True) -> dict:
    """Score the whole validation and test splits; write base.npz, curve.json, curve.png."""
    from collapse_sim.simulator.text.corpus import shipped_sha256

    mc = cfg.model_config()
    split = "" if full_eval else "_eval"
    val, test = nll(params, data["validation" + split]), nll(params, data["test" + split])
    summary = {
        "steps": cfg.steps,
        "tokens_seen": cfg.steps * cfg.batch_size * cfg.context,
        "train_stream_tokens": int(data["train"].shape[0]),
        "wall_s": round(wall, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, jax {jax.__version__} "
                   f"{jax.default_backend()}".replace("  ", " "),
        "corpus": cfg.corpus or "shipped Shakespeare",
        "corpus_sha256": shipped_sha256() if cfg.corpus is None else None,
        "validation_nll": val, "test_nll": test,
        "validation_blocks": int(data["validation" + split].shape[0]), "test_blocks": int(data["test" + split].shape[0]),
        "test_eval_nll": curve[-1]["test_nll"], "test_eval_ppl": math.exp(curve[-1]["test_nll"]),
        "test_eval_blocks": int(data["test_eval"].shape[0]),
        "test_ppl": math.exp(test), "test_bits_per_byte": test / math.log(2),
    }
    arrays = {
        "config": cio.json_array({**{f: getattr(mc, f) for f in cio.MODEL_FIELDS}, "pretrain": cfg.to_json(),
                                  "summary": summary}),
        **cio.flatten("params", params),
    }
    cio.save_atomic(out / "base.npz", arrays)
    (out / "curve.json").write_text(json.dumps(curve, indent=1))
    try:
        plot_curve(curve, out / "curve.png", f"{mc.n_layers} layers, d={mc.d_model}, context {mc.context}")
    except ImportError:
        pass
    return summary


def plot_curve(curve: list, path, title: str = "") -> None:
    """Training curve (bits per byte against step) rendered from a saved curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = [r["step"] for r in curve]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for key, label in (("train_nll", "train (batches)"), ("val_nll", "validation"), ("test_nll", "test")):
        ax.plot(s, [r[key] / math.log(2) for r in curve], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("bits per byte")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def export(out_dir, dest) -> Path:
    """Copy ``out_dir``'s base.npz, curve.json and curve.png to dest(.npz),
    dest.curve.json and dest.png."""
    out, dest = Path(out_dir), Path(dest)
    dest = dest.with_suffix(".npz")
    cio.save_atomic(dest, {**cio.read(out / "base.npz")[1],
                           "config": cio.json_array(cio.read(out / "base.npz")[0])})
    dest.with_suffix(".curve.json").write_text((out / "curve.json").read_text())
    if (out / "curve.png").exists():
        dest.with_suffix(".png").write_bytes((out / "curve.png").read_bytes())
    return dest


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="collapse-pretrain", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="results/pretrain/base", help="folder of the checkpoint and results")
    p.add_argument("--export", default=None, help="also write the weights, curve and figure to this .npz path")
    p.add_argument("--no-full-eval", action="store_true",
                   help="at the end score only the eval blocks, not the whole validation and test splits")
    for f in dataclasses.fields(PretrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = {int: int, float: float}.get(type(f.default), str)
        p.add_argument(flag, type=kind, default=f.default, dest=f.name)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainConfig)}
    try:
        cfg = PretrainConfig(**fields)
    except ValueError as err:
        print(f"collapse-pretrain: {err}", file=sys.stderr)
        return 2
    try:
        summary = pretrain(cfg, args.out, full_eval=not args.no_full_eval)
    except cio.CheckpointError as err:
        print(f"collapse-pretrain: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(summary, indent=1))
    if args.export:
        from collapse_sim.simulator.lm import model_card  # it reads this module's config and data

        dest = export(args.out, args.export)
        print(f"exported {dest} and its model card {model_card.card_for(cfg, dest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
