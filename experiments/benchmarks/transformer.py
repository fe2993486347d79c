"""The transformer world's part of ``collapse-bench``: training tokens per second of
the default small model with ``collapse_sim.simulator.lm.train.make_train`` against the same
model, batch and optimiser in PyTorch (eager; ``pip install -e .[bench]``), and the
achieved FLOP/s against a float32 matmul peak measured in the same run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

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
