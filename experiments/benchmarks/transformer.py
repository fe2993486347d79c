"""The transformer world's part of ``collapse-bench``: training tokens per second of
the default small model with ``collapse_sim.simulator.lm.train.make_train`` against the same
model, batch and optimiser in PyTorch (eager; ``pip install -e .[bench]``), and the
achieved FLOP/s against a float32 matmul peak measured in the same run.

And the text world's per-generation costs (:func:`bench_lm_speed`): sampling
tokens per second of ``make_sampler`` as simulator/worlds/transformer.py builds
it (a generation's synthetic set, vmapped over 2 seeds), for the default model
and the shipped pretrained base, with the whole cache at every step
(``cache_segments=1``, the reference) and the default segments; and the base
model's fine-tuning tokens per second at ``world=transformer_pretrained``'s
settings, so that a generation's training + sampling seconds per seed follow.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.experiments.benchmarks.timing import best_time, log, profile_compiled


def matmul_peak(n: int = 1024, reps: int = 10) -> dict:
    """float32 n x n matmul, best of ``reps``: 2 n^3 / t."""
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    f = jax.jit(jnp.matmul)
    jax.block_until_ready(f(a, b))
    t, _ = best_time(lambda: jax.block_until_ready(f(a, b)), 1e9, reps)
    return {"n": n, "seconds": t, "flops_per_s": 2 * n**3 / t}


def transformer_flops_per_token(cfg) -> dict:
    """Training FLOPs per token, 3 x forward (Kaplan et al. 2020, §2.1): forward
    2 N per token for the N weights in matmuls (L (3 + 1 + 8) d^2 in the blocks
    plus V d in the tied head; embeddings gathers, LayerNorms, biases excluded)
    plus attention 2 x 2 T d per layer (scores and weighted values, the full
    T x T as the code computes it, causal mask not discounted)."""
    L, d, V, T = cfg.n_layers, cfg.d_model, cfg.vocab_size, cfg.context
    n_matmul = L * 12 * d * d + V * d
    fwd = 2 * n_matmul + 4 * L * T * d
    return {"matmul_params": n_matmul, "forward": fwd, "train": 3 * fwd}


def jax_trainer(steps: int, n_rows: int = 4096):
    """``(run, info)``: ``run()`` trains ``steps`` steps of the default model with
    ``make_train`` (one compiled ``lax.scan``) and returns (seconds, losses)."""
    from collapse_sim.simulator.lm.train import TrainConfig, make_train
    from collapse_sim.simulator.lm.transformer import TransformerConfig, init_params

    mcfg = TransformerConfig()
    tcfg = TrainConfig(steps=steps, batch_size=32)
    blocks = jax.random.randint(jax.random.key(3), (n_rows, mcfg.context + 1), 0, mcfg.vocab_size, jnp.int32)
    weights = jnp.ones((n_rows,), jnp.float32)
    key = jax.random.key(0)
    params = init_params(key, mcfg)
    train = jax.jit(make_train(mcfg, tcfg))
    t0 = time.perf_counter()
    compiled = train.lower(key, params, blocks, weights).compile()
    compile_s = time.perf_counter() - t0
    args = (key, params, blocks, weights)
    jax.block_until_ready(compiled(*args))  # first call: allocations
    # XLA's own count for one step (a length-1 scan, so the loop body is counted once).
    one = jax.jit(make_train(mcfg, dataclasses.replace(tcfg, steps=1))).lower(*args).compile()
    cost = one.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    profile = profile_compiled(compiled, args, calls=1, top=10)
    profile["name"] = f"transformer training (JAX), {steps} steps of batch {tcfg.batch_size}"

    def run():
        t = time.perf_counter()
        _, metrics = jax.block_until_ready(compiled(*args))
        return time.perf_counter() - t, np.asarray(metrics["loss"])

    info = {
        "model": dataclasses.asdict(mcfg),
        "batch": tcfg.batch_size,
        "steps": steps,
        "compile_s": compile_s,
        "xla_flops_per_step": float(cost.get("flops", float("nan"))) if cost else None,
        "flops_per_token": transformer_flops_per_token(mcfg),
        "profile": profile,
    }
    return run, info


def torch_trainer(steps: int, n_rows: int = 4096):
    """``run(threads)``: the same model, batch and optimiser in PyTorch (eager),
    ``steps`` steps with ``torch.set_num_threads(threads)``; returns (seconds, losses).
    None when PyTorch is not installed."""
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        log("PyTorch is not installed: skipping the PyTorch comparison (pip install -e .[bench])")
        return None
    from collapse_sim.simulator.lm.train import TrainConfig
    from collapse_sim.simulator.lm.transformer import TransformerConfig

    mcfg, tcfg = TransformerConfig(), TrainConfig(steps=steps, batch_size=32)
    torch.manual_seed(0)
    d, H, V, C, L = mcfg.d_model, mcfg.n_heads, mcfg.vocab_size, mcfg.context, mcfg.n_layers

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
            self.qkv = nn.Linear(d, 3 * d, bias=False)
            self.attn_out = nn.Linear(d, d)
            self.fc, self.fc_out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            for lin, std in ((self.qkv, 0.02), (self.fc, 0.02), (self.attn_out, 0.02 / math.sqrt(2 * L)), (self.fc_out, 0.02 / math.sqrt(2 * L))):
                nn.init.normal_(lin.weight, std=std)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)

        def forward(self, x):
            B, T, D = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn_out(a.transpose(1, 2).reshape(B, T, D))
            return x + self.fc_out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(V, d)
            nn.init.normal_(self.tok.weight, std=0.02)
            self.pos = nn.Parameter(0.02 * torch.randn(C, d))
            self.blocks = nn.ModuleList([Block() for _ in range(L)])
            self.ln_f = nn.LayerNorm(d, eps=1e-5)

        def forward(self, tokens):
            x = self.tok(tokens) + self.pos[: tokens.shape[1]]
            for blk in self.blocks:
                x = blk(x)
            return self.ln_f(x) @ self.tok.weight.T

    model = LM()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tcfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=tcfg.lr, betas=(tcfg.b1, tcfg.b2),
    )

    def lr_at(t):
        if t < tcfg.warmup:
            return tcfg.lr * t / max(tcfg.warmup, 1)
        frac = (t - tcfg.warmup) / max(tcfg.steps - tcfg.warmup, 1)
        return tcfg.lr * (tcfg.final_lr_frac + (1 - tcfg.final_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    blocks = torch.randint(0, V, (n_rows, C + 1))

    def train(n):
        losses = []
        for t in range(n):
            for g in opt.param_groups:
                g["lr"] = lr_at(t)
            batch = blocks[torch.randint(0, n_rows, (tcfg.batch_size,))]
            logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip)
            opt.step()
            losses.append(loss.item())
        return np.asarray(losses)

    def run(threads: int):
        torch.set_num_threads(threads)
        train(3)  # warm-up at this thread count: allocator, oneDNN primitive caches
        t = time.perf_counter()
        losses = train(steps)
        return time.perf_counter() - t, losses

    run.params = sum(p.numel() for p in model.parameters())
    return run


def bench_transformer(steps: int, rounds: int) -> dict:
    """JAX and PyTorch training and the matmul peak, interleaved over ``rounds`` rounds
    (each method's best round counts), so a burst of load on a shared machine
    does not fall on one method only."""
    log("transformer: the float32 matmul peak, the JAX training step and PyTorch, interleaved")
    jax.config.update("jax_enable_x64", False)
    cores = os.cpu_count() or 1
    jax_run, jx = jax_trainer(steps)
    torch_run = torch_trainer(steps)
    thread_counts = sorted({cores, 1}, reverse=True)
    peaks, jax_t, torch_t = [], [], {n: [] for n in thread_counts}
    losses = {}
    for _ in range(rounds):
        peaks.append(matmul_peak(reps=5))
        t, losses["jax"] = jax_run()
        jax_t.append(t)
        if torch_run:
            # torch.set_num_threads(cores) is the fair setting on an idle machine; on a busy
            # one OpenMP's spinning threads can make it several times slower than 1 thread,
            # so both are measured and PyTorch is credited with the faster.
            for n in thread_counts:
                t, losses[f"torch_{n}"] = torch_run(n)
                torch_t[n].append(t)
    peaks.append(matmul_peak(reps=5))
    tokens = steps * jx["batch"] * jx["model"]["context"]
    jx.update(seconds=min(jax_t), seconds_all=jax_t, tokens_per_s=tokens / min(jax_t), loss_first_last=[float(losses["jax"][0]), float(losses["jax"][-1])])
    th = None
    if torch_run:
        by = {n: tokens / min(ts) for n, ts in torch_t.items()}
        n_best = max(by, key=by.get)
        th = {
            "threads": n_best,
            "attention": "F.scaled_dot_product_attention(is_causal=True)",
            "seconds": min(torch_t[n_best]),
            "tokens_per_s": by[n_best],
            "tokens_per_s_by_threads": {str(n): v for n, v in by.items()},
            "seconds_all": {str(n): v for n, v in torch_t.items()},
            "loss_first_last": [float(losses[f"torch_{n_best}"][0]), float(losses[f"torch_{n_best}"][-1])],
            "params": torch_run.params,
        }
    best_peak = max(p["flops_per_s"] for p in peaks)
    flops_tok = jx["flops_per_token"]["train"]
    out = {
        "rounds": rounds,
        "matmul_peak": {"all": peaks, "flops_per_s": best_peak, "n": peaks[0]["n"]},
        "jax": jx,
        "torch": th,
        "torch_by_threads": th["tokens_per_s_by_threads"] if th else {},
        "achieved_flops_per_s": flops_tok * jx["tokens_per_s"],
        "achieved_flops_per_s_xla": (jx["xla_flops_per_step"] or float("nan")) * jx["tokens_per_s"] / (jx["batch"] * jx["model"]["context"]),
        "flops_method": "analytic: 3 x (2 N_matmul + 4 L T d) per token; XLA cost_analysis of one step given as a cross-check",
    }
    out["peak_share"] = out["achieved_flops_per_s"] / best_peak
    out["vs_torch"] = jx["tokens_per_s"] / th["tokens_per_s"] if th else None
    log(
        f"transformer: JAX {jx['tokens_per_s']:.0f} tok/s"
        + (f", PyTorch {th['tokens_per_s']:.0f} tok/s (x{out['vs_torch']:.2f})" if th else "")
        + f"; {out['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s = {100 * out['peak_share']:.0f}% of the {best_peak / 1e9:.0f} GFLOP/s matmul peak"
    )
    return out


# ----------------------------------------------------------------------------- text world, per generation

LM_SEEDS = 2  # seeds vmapped together, as the engine runs them (run.n_seeds=2 in the LM configs)


def world_config(name: str):
    """The transformer world's Config from experiments/conf/world/<name>.yaml (its
    fields over the Config defaults, as hydra composes them)."""
    from omegaconf import OmegaConf

    from collapse_sim import experiments
    from collapse_sim.simulator.worlds.transformer import Config

    fields = OmegaConf.to_container(OmegaConf.load(Path(experiments.__file__).parent / "conf" / "world" / f"{name}.yaml"))
    fields.pop("defaults", None)
    return Config(**fields)


def _seed_axis(tree, S: int):
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (S,) + x.shape), tree)


def _compiled(fn, *args):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def sampler_program(cfg, mc, params, cache_segments: int, S: int = LM_SEEDS) -> dict:
    """One generation's sampling of world ``cfg``: ``make_sampler`` built as
    simulator/worlds/transformer.py builds it (block_len, top_k, top_p,
    prompt_len, temperature), a training set's max(train_blocks, synthetic_ratio
    train_blocks) rows per seed, vmapped over ``S`` seeds, compiled."""
    from collapse_sim.simulator.lm.sample import make_sampler

    sampler = make_sampler(mc, cfg.block_len, cfg.top_k or None, None if cfg.top_p == 1.0 else cfg.top_p,
                           prompt_len=cfg.prompt_len, cache_segments=cache_segments)
    rows = max(cfg.train_blocks, round(cfg.synthetic_ratio * cfg.train_blocks))
    n_prefix = max(cfg.prompt_len, 1)
    prompts_SxNxP = jnp.full((S, rows, n_prefix), 10, jnp.int32)
    args = (jax.random.split(jax.random.key(1), S), _seed_axis(params, S), prompts_SxNxP)
    compiled, compile_s = _compiled(jax.vmap(lambda k, p, pr: sampler(k, p, pr, cfg.temperature)), *args)
    return {"call": lambda: jax.block_until_ready(compiled(*args)), "compile_s": compile_s,
            "tokens": S * rows * (cfg.block_len - n_prefix), "rows": rows}


def finetune_program(cfg, mc, params, steps: int, S: int = LM_SEEDS) -> dict:
    """``steps`` steps of the world's fine-tuning (its TrainConfig with ``steps``
    replaced), vmapped over ``S`` seeds from the one base as the world runs it,
    on random token blocks of the world's training-set shape, compiled."""
    from collapse_sim.simulator.lm.train import make_train
    from collapse_sim.simulator.worlds.transformer import train_config

    tc = dataclasses.replace(train_config(cfg), steps=steps)
    rows = max(cfg.train_blocks, round(cfg.synthetic_ratio * cfg.train_blocks))
    blocks_SxNxW = jax.random.randint(jax.random.key(2), (S, rows, cfg.block_len), 0, mc.vocab_size, jnp.int32)
    args = (jax.random.split(jax.random.key(3), S), params, blocks_SxNxW, jnp.ones((S, rows), jnp.float32))
    compiled, compile_s = _compiled(jax.vmap(make_train(mc, tc), in_axes=(0, None, 0, 0)), *args)
    return {"call": lambda: jax.block_until_ready(compiled(*args)), "compile_s": compile_s,
            "tokens": S * steps * tc.batch_size * (cfg.block_len - 1), "train": dataclasses.asdict(tc)}


def generation_seconds(finetune_s: float, steps_timed: int, finetune_steps: int, sample_s: float, seeds: int) -> dict:
    """Seconds per seed of a generation's fine-tuning (``steps_timed`` steps of ``seeds``
    vmapped seeds took ``finetune_s``; scaled to ``finetune_steps``) and sampling
    (``sample_s`` for the ``seeds``), and their sum."""
    ft = finetune_s / steps_timed * finetune_steps / seeds
    return {"finetune_s_per_seed": ft, "sample_s_per_seed": sample_s / seeds, "total_s_per_seed": ft + sample_s / seeds}


def bench_lm_speed(rounds: int, finetune_steps: int = 20) -> dict:
    """Sampling of world=transformer's default model and world=transformer_pretrained's
    base, ``cache_segments=1`` against the default, and the base's fine-tuning for
    ``finetune_steps`` steps: every program compiled, then called once per round,
    interleaved so a burst of load falls on all of them; each program's best round
    counts (the first round included: its first calls' allocations only add time)."""
    from collapse_sim.simulator.lm.sample import CACHE_SEGMENTS
    from collapse_sim.simulator.lm.transformer import init_params
    from collapse_sim.simulator.worlds.transformer import base_model, model_config

    log(f"transformer: sampling and fine-tuning per generation ({LM_SEEDS} seeds vmapped), {rounds} interleaved rounds")
    jax.config.update("jax_enable_x64", False)
    load0 = os.getloadavg()[0]
    scratch = world_config("transformer")
    pretrained = world_config("transformer_pretrained")
    mc_s = model_config(scratch)
    models = {"transformer": (scratch, mc_s, init_params(jax.random.key(0), mc_s)),
              "transformer_pretrained": (pretrained, *base_model(pretrained))}
    programs = {}
    for world, (cfg, mc, params) in models.items():
        for segs in (1, CACHE_SEGMENTS):
            programs[("sample", world, segs)] = sampler_program(cfg, mc, params, segs)
    cfg_p, mc_p, params_p = models["transformer_pretrained"]
    programs[("finetune",)] = finetune_program(cfg_p, mc_p, params_p, finetune_steps)
    times, outputs = {k: [] for k in programs}, {}
    for _ in range(rounds):
        for k, prog in programs.items():
            t0 = time.perf_counter()
            outputs[k] = prog["call"]()
            times[k].append(time.perf_counter() - t0)

    def fig(k):
        best = min(times[k])
        return {"seconds": best, "seconds_all": times[k], "tokens": programs[k]["tokens"],
                "tokens_per_s": programs[k]["tokens"] / best, "compile_s": programs[k]["compile_s"]}

    sampling = []
    for world, (cfg, mc, _) in models.items():
        ref, cur = fig(("sample", world, 1)), fig(("sample", world, CACHE_SEGMENTS))
        n_prefix = max(cfg.prompt_len, 1)  # the sampled columns follow the prefix
        same = np.mean(np.asarray(outputs[("sample", world, 1)])[..., n_prefix:]
                       == np.asarray(outputs[("sample", world, CACHE_SEGMENTS)])[..., n_prefix:])
        sampling.append({
            "world": world, "model": dataclasses.asdict(mc), "rows": programs[("sample", world, 1)]["rows"],
            "block_len": cfg.block_len, "temperature": cfg.temperature, "reference": ref, "current": cur,
            "current_vs_reference": cur["seconds"] / ref["seconds"], "same_tokens_share": float(same),
        })
        log(f"transformer sampling, world={world}: {ref['seconds']:.2f} s with cache_segments=1, "
            f"{cur['seconds']:.2f} s with {CACHE_SEGMENTS} ({cur['tokens_per_s']:.0f} tok/s; x{cur['seconds'] / ref['seconds']:.2f})")
    loss_SxT = np.asarray(outputs[("finetune",)][1]["loss"])
    ft = fig(("finetune",)) | {"steps_timed": finetune_steps, "train": programs[("finetune",)]["train"],
                               "model": dataclasses.asdict(mc_p), "loss_first_last": [float(loss_SxT[:, 0].mean()), float(loss_SxT[:, -1].mean())],
                               "flops_per_token": transformer_flops_per_token(mc_p)["train"]}
    ft["achieved_flops_per_s"] = ft["flops_per_token"] * ft["tokens_per_s"]
    generation = {"world": "transformer_pretrained", "finetune_steps": cfg_p.finetune_steps,
                  **generation_seconds(ft["seconds"], finetune_steps, cfg_p.finetune_steps, sampling[-1]["current"]["seconds"], LM_SEEDS)}
    log(f"transformer_pretrained generation per seed: fine-tuning {generation['finetune_s_per_seed']:.1f} s "
        f"({ft['tokens_per_s']:.0f} tok/s) + sampling {generation['sample_s_per_seed']:.1f} s = {generation['total_s_per_seed']:.1f} s")
    return {"seeds": LM_SEEDS, "rounds": rounds, "cache_segments": CACHE_SEGMENTS, "precision": "float32",
            "sampling": sampling, "finetune": ft, "generation": generation,
            "loadavg_1min": [load0, os.getloadavg()[0]]}
