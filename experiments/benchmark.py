"""``collapse-bench``: how fast the engine runs, against plain numpy and PyTorch.

Never part of the test suite.  One run measures, on the machine it runs on:

1. Closed-form worlds (regression in every regime, Gaussian, categorical; see
   ``experiments/bench_reference.py`` for the workloads): the engine
   (``make_simulate``: one jit-compiled, vmapped, scanned call) against two
   numpy references measured in the same run on the same workload, (a) a loop
   over seeds, one at a time, and (b) batched numpy.  Throughput is seeds x
   generations per second (S G / t, generation 0 included in t); compile time
   (``lower().compile()``) is reported apart.  Steady state: best of up to 3
   calls.  A call that would take longer than ``--budget`` seconds is measured
   on fewer seeds and scaled linearly (seeds are independent; the table marks
   such figures with *): the engine then runs the compiled program of the
   largest smaller seed count, the per-seed loop as many seeds as fit.
   Sweep: seeds x sizes; the engine's mean test error is checked against the
   references' (z-score of the difference of means, reported).
2. Kernels: the fit and sampling kernels behind the worlds, batched, in JAX and
   numpy (to say what limits a workload).
3. The transformer world: training tokens per second of the default small
   model (2 layers, d=64, 4 heads, context 64, batch 32) with
   ``simulator.lm.train.make_train``, against the same model and optimiser in
   PyTorch (eager, ``scaled_dot_product_attention``; ``pip install -e .[bench]``),
   and achieved FLOP/s against a float32 1024^2 matmul measured in the same run.

BLAS threads: 1 by default (``--blas-threads``), for the numpy references and
for the engine alike: JAX's CPU LAPACK kernels (eigh, cholesky, solve) call
the OpenBLAS that scipy ships, which spawns a thread per core next to XLA's own
threads; on 2 busy cores a threaded 100 x 100 eigh was measured 100x slower
than a single-threaded one (lm-on-cpu.md pitfall 7).  The kernel table also
reports the JAX kernels at the process default, one BLAS thread per core.
Where OPENBLAS_CORETYPE is set, OpenBLAS runs an older kernel than the CPU
supports: benchmark with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
collapse-bench`` (the JSON records the kernel OpenBLAS used).

Writes ``benchmark.json`` (every figure, machine, versions, date),
``benchmark.md`` (tables) and ``scaling.png`` / ``scaling.pdf`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import bench_reference as ref

DEFAULT_OUT = Path(__file__).resolve().parent / "benchmarks"
TARGET_VS_LOOP = 20.0
TARGET_VS_BATCHED = 2.0
TARGET_SEEDS = 256
TARGET_VS_TORCH = 1.0
TARGET_PEAK_SHARE = 0.30


def log(msg: str) -> None:
    print(f"[collapse-bench] {msg}", flush=True)


# ----------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return {"commit": head.stdout.strip() or None, "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def blas_info() -> list:
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [
        {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
        for i in threadpoolctl.threadpool_info()
    ]


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit the threads of every BLAS library loaded in the process (numpy's and
    scipy's OpenBLAS; the latter runs JAX's CPU LAPACK kernels) with threadpoolctl.
    Without threadpoolctl the environment the process started with decides
    (OPENBLAS_NUM_THREADS), and the JSON records ``blas`` as it was."""
    try:
        import threadpoolctl
    except ImportError:
        yield False
        return
    jnp.linalg.cholesky(jnp.eye(2)).block_until_ready()  # loads JAX's LAPACK (scipy's OpenBLAS) first
    with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
        yield True


def machine_info() -> dict:
    from experiments.run import versions

    v = versions()
    from importlib import metadata

    v["jaxlib"] = v.get("jaxlib") or metadata.version("jaxlib")
    try:
        import torch

        v["torch"] = torch.__version__
    except ImportError:
        v["torch"] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_gib(),
        "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "versions": v,
        "blas": blas_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS", "JAX_PLATFORMS")},
        "loadavg_start": list(os.getloadavg()),
        "git": _git(),
        "command": " ".join(["collapse-bench", *sys.argv[1:]]),
    }


# ----------------------------------------------------------------------------- timing


def best_time(fn, budget: float, max_reps: int = 3):
    """(best seconds, last output) over up to ``max_reps`` calls, fewer when one call
    takes more than a third of ``budget`` (then a single call is the measurement)."""
    best, out, spent = math.inf, None, 0.0
    for _ in range(max_reps):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent + dt > budget:
            break
    return best, out


def figure(seeds_run: int, seconds: float, n_seeds: int, G: int, **extra) -> dict:
    """One method's measurement: ``seeds_run`` seeds took ``seconds``; scaled when fewer than ``n_seeds``."""
    return {"seeds_run": seeds_run, "seconds": seconds, "throughput": seeds_run * G / seconds, "scaled": seeds_run < n_seeds, **extra}


def measure_loop(wl, n_seeds: int, budget: float) -> tuple[dict, np.ndarray]:
    """The per-seed loop: seeds one after another until all ran or ``budget`` is spent."""
    outs, t0 = [], time.perf_counter()
    for s in range(n_seeds):
        outs.append(ref.loop_seed(wl, s))
        if time.perf_counter() - t0 > budget:
            break
    dt = time.perf_counter() - t0
    if len(outs) == n_seeds and n_seeds <= 16 and dt < budget / 3:
        # Tiny sweeps: best of 3 as for the other methods.
        for _ in range(2):
            t1 = time.perf_counter()
            ref.loop_reference(wl, n_seeds)
            dt = min(dt, time.perf_counter() - t1)
    return figure(len(outs), dt, n_seeds, wl.G), np.stack(outs)


def _scaled_seed_count(n_seeds: int, sec_per_seed: float | None, measured: list[int], budget: float) -> int:
    """Seeds to actually run: all of them when the estimate fits ``budget``, else the
    largest seed count already measured (its compiled program / chunk is reused)."""
    if sec_per_seed is None or sec_per_seed * n_seeds <= budget or not measured:
        return n_seeds
    return max(measured)


def bench_workload(wl, seeds: list[int], budget: float, loop_budget: float) -> list[dict]:
    """Engine, per-seed loop and batched numpy for one workload over the seed sweep."""
    from simulator.loop import make_simulate, seed_keys
    from simulator.regimes import make_regime
    from simulator.worlds import make_world

    world_cfg, regime_cfg = ref.engine_configs(wl)
    world = make_world(world_cfg)
    simulate = make_simulate(world, make_regime(regime_cfg, world, wl.G), wl.G)
    root = jax.random.key(0)
    compiled: dict[int, object] = {}
    spp = {"engine": None, "batched": None}  # seconds per seed, from the last measurement
    done = {"engine": [], "batched": []}
    rows = []
    for S in sorted(seeds):
        load0 = os.getloadavg()[0]
        keys = seed_keys(root, np.arange(S))
        t0, c0 = time.perf_counter(), time.process_time()
        compiled[S] = simulate.lower(keys).compile()
        compile_s, compile_cpu_s = time.perf_counter() - t0, time.process_time() - c0

        s_eng = _scaled_seed_count(S, spp["engine"], done["engine"], budget)
        keys_run = keys if s_eng == S else seed_keys(root, np.arange(s_eng))
        fn = compiled[s_eng]
        t_eng, rec = best_time(lambda: jax.block_until_ready(fn(keys_run)), budget)
        engine_err = np.asarray(rec["test_error"])
        spp["engine"] = t_eng / s_eng
        done["engine"].append(s_eng)

        s_bat = _scaled_seed_count(S, spp["batched"], done["batched"], budget)
        t_bat, batched_err = best_time(lambda: ref.batched_reference(wl, s_bat), budget)
        spp["batched"] = t_bat / s_bat
        done["batched"].append(s_bat)
        loop_fig, loop_err = measure_loop(wl, S, loop_budget)
        row = {
            "workload": wl.name,
            "world": wl.world,
            "regime": wl.regime,
            "d": wl.d,
            "rows": wl.n,
            "G": wl.G,
            "seeds": S,
            "compile_s": compile_s,
            "compile_cpu_s": compile_cpu_s,
            "engine": figure(s_eng, t_eng, S, wl.G),
            "batched_numpy": figure(s_bat, t_bat, S, wl.G, chunk=ref.batch_chunk(wl)),
            "loop_numpy": loop_fig,
            "loadavg_1min": [load0, os.getloadavg()[0]],
        }
        row["engine_vs_loop"] = row["engine"]["throughput"] / row["loop_numpy"]["throughput"]
        row["engine_vs_batched"] = row["engine"]["throughput"] / row["batched_numpy"]["throughput"]
        agreement = {}
        if engine_err.shape[0] >= 64 and batched_err.shape[0] >= 64:
            agreement["batched"] = ref.compare_means(engine_err, batched_err)
        if engine_err.shape[0] >= 64 and loop_err.shape[0] >= 64:
            agreement["loop"] = ref.compare_means(engine_err, loop_err)
        row["agreement"] = agreement
        rows.append(row)
        log(
            f"{wl.name:34s} d={wl.d:<4d} S={S:<5d} compile {compile_s:6.2f}s  engine {row['engine']['throughput']:10.0f}"
            f"{'*' if row['engine']['scaled'] else ' '} loop {row['loop_numpy']['throughput']:9.0f}"
            f"{'*' if row['loop_numpy']['scaled'] else ' '} batched {row['batched_numpy']['throughput']:10.0f}"
            f"{'*' if row['batched_numpy']['scaled'] else ' '} S.G/s  x{row['engine_vs_loop']:.1f} / x{row['engine_vs_batched']:.2f}"
        )
    return rows


# ----------------------------------------------------------------------------- kernels


def bench_kernels(dims: list[int], S: int = 64, budget: float = 1.0) -> list[dict]:
    """Batched float64 kernels behind the worlds, S matrices at once, JAX (jit) against numpy
    (under the run's BLAS thread limit), and JAX again with one BLAS thread per core."""
    out = []
    rng = np.random.default_rng(0)
    for d in dims:
        T = 4 * d
        X = rng.standard_normal((S, T, d))
        gram = X.transpose(0, 2, 1) @ X
        rhs = gram[..., :1]
        gram_j, rhs_j, X_j = jnp.asarray(gram), jnp.asarray(rhs), jnp.asarray(X)
        jax_fns = {
            "gram X^T X": (jax.jit(lambda a: jnp.einsum("snk,snl->skl", a, a)), (X_j,)),
            "eigh": (jax.jit(jnp.linalg.eigh), (gram_j,)),
            "eigvalsh": (jax.jit(jnp.linalg.eigvalsh), (gram_j,)),
            "solve": (jax.jit(jnp.linalg.solve), (gram_j, rhs_j)),
            "cholesky": (jax.jit(jnp.linalg.cholesky), (gram_j,)),
        }
        np_fns = {
            "gram X^T X": (lambda: X.transpose(0, 2, 1) @ X),
            "eigh": (lambda: np.linalg.eigh(gram)),
            "eigvalsh": (lambda: np.linalg.eigvalsh(gram)),
            "solve": (lambda: np.linalg.solve(gram, rhs)),
            "cholesky": (lambda: np.linalg.cholesky(gram)),
        }
        for name, (f, args) in jax_fns.items():
            jax.block_until_ready(f(*args))
            t_j, _ = best_time(lambda: jax.block_until_ready(f(*args)), budget, 5)
            t_n, _ = best_time(np_fns[name], budget, 5)
            t_jt = None
            if name != "gram X^T X":
                with blas_threads(os.cpu_count()):
                    t_jt, _ = best_time(lambda: jax.block_until_ready(f(*args)), 4 * budget, 3)
            out.append({"kernel": name, "d": d, "matrices": S, "rows": T, "jax_s": t_j, "numpy_s": t_n, "jax_s_blas_threads_per_core": t_jt})
            log(f"kernel {name:11s} d={d:<4d} x{S}: jax {t_j * 1e3:8.2f} ms  numpy {t_n * 1e3:8.2f} ms"
                + (f"  jax with {os.cpu_count()} BLAS threads {t_jt * 1e3:8.2f} ms" if t_jt else ""))
    # Categorical sampling: the engine's own world.sample draws M outcomes (rows);
    # the batched reference draws the counts directly (a multinomial, O(V) binomials).
    from simulator.worlds import make_world

    for V in dims:
        wl = ref.make_workload("categorical", "replace", V)
        world = make_world(ref.engine_configs(wl)[0])
        truth = world.init(jax.random.key(0))
        params = {"p": truth["p"]}
        keys = jax.random.split(jax.random.key(1), S)
        f = jax.jit(jax.vmap(lambda k: world.sample(k, truth, params, 0)["x"]))
        jax.block_until_ready(f(keys))
        t_j, _ = best_time(lambda: jax.block_until_ready(f(keys)), budget, 5)
        p = np.full((S, V), 1.0 / V)
        t_n, _ = best_time(lambda: rng.multinomial(wl.n, p), budget, 5)
        out.append({"kernel": f"categorical sample, M={wl.n} (engine: world.sample; numpy: multinomial counts)", "d": V, "matrices": S, "rows": wl.n, "jax_s": t_j, "numpy_s": t_n})
        log(f"kernel categorical V={V:<4d} x{S}: jax world.sample {t_j * 1e3:8.2f} ms  numpy multinomial {t_n * 1e3:8.2f} ms")
    return out


# ----------------------------------------------------------------------------- profile


def profile_compiled(compiled, args: tuple, calls: int = 3, top: int = 8) -> dict:
    """Where a compiled program spends its time: a ``jax.profiler`` trace of ``calls``
    calls, XLA ops summed over the worker threads (loop and call wrappers
    excluded), the ``top`` ops by share, each named by the jax op it came from."""
    import collections
    import re
    import tempfile

    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            for _ in range(calls):
                jax.block_until_ready(compiled(*args))
        data = jax.profiler.ProfileData.from_file(str(next(Path(tmp).rglob("*.xplane.pb"))))
        per_op = collections.Counter()
        for plane in data.planes:
            for line in plane.lines:
                if "XLAEigen" not in line.name and "PjRtCpu" not in line.name and "/device:" not in plane.name:
                    continue
                for ev in line.events:
                    if ev.name.startswith(("ThunkExecutor", "while", "call", "conditional", "end:")):
                        continue
                    per_op[ev.name] += ev.duration_ns
    hlo = {}
    for m in re.finditer(r"%([\w.-]+) = [^\n]*metadata=\{op_name=\"([^\"]+)\"", compiled.as_text()):
        hlo.setdefault(m.group(1), re.sub(r"^jit\(\w+\)/", "", m.group(2)))
    total = sum(per_op.values()) or 1
    ops = [{"op": k, "source": hlo.get(k, ""), "ms_per_call": v / 1e6 / calls, "share": v / total} for k, v in per_op.most_common(top)]
    return {"calls": calls, "busy_ms_per_call": total / 1e6 / calls, "ops": ops}


def profile_engine(wl, n_seeds: int, calls: int = 3, top: int = 8) -> dict:
    """``profile_compiled`` of the engine's program for one workload."""
    from simulator.loop import make_simulate, seed_keys
    from simulator.regimes import make_regime
    from simulator.worlds import make_world

    world_cfg, regime_cfg = ref.engine_configs(wl)
    world = make_world(world_cfg)
    simulate = make_simulate(world, make_regime(regime_cfg, world, wl.G), wl.G)
    keys = seed_keys(jax.random.key(0), np.arange(n_seeds))
    prof = profile_compiled(simulate.lower(keys).compile(), (keys,), calls, top)
    return {"name": f"engine, {wl.name}, d={wl.d}, {n_seeds} seeds", "workload": wl.name, "d": wl.d, "seeds": n_seeds, **prof}


# ----------------------------------------------------------------------------- transformer


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
    from simulator.lm.train import TrainConfig, make_train
    from simulator.lm.transformer import TransformerConfig, init_params

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
    from simulator.lm.train import TrainConfig
    from simulator.lm.transformer import TransformerConfig

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


# ----------------------------------------------------------------------------- reports


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(m: dict) -> str:
    return _fmt(m["throughput"]) + ("\\*" if m["scaled"] else "")


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def targets(report: dict) -> dict:
    rows = [r for r in report["closed_form"] if r["seeds"] == TARGET_SEEDS]
    out = {"closed_form": [], "transformer": None}
    for r in rows:
        out["closed_form"].append(
            {
                "workload": r["workload"],
                "d": r["d"],
                "vs_loop": r["engine_vs_loop"],
                "vs_loop_met": r["engine_vs_loop"] >= TARGET_VS_LOOP,
                "vs_batched": r["engine_vs_batched"],
                "vs_batched_met": r["engine_vs_batched"] >= TARGET_VS_BATCHED,
            }
        )
    tr = report.get("transformer")
    if tr:
        out["transformer"] = {
            "vs_torch": tr["vs_torch"],
            "vs_torch_met": tr["vs_torch"] is not None and tr["vs_torch"] >= TARGET_VS_TORCH,
            "peak_share": tr["peak_share"],
            "peak_share_met": tr["peak_share"] >= TARGET_PEAK_SHARE,
        }
    return out


def target_table(report: dict) -> list[str]:
    t = targets(report)
    lines = []
    if t["closed_form"]:
        lines += [
            f"| workload | d | engine ÷ per-seed loop (target ≥ {TARGET_VS_LOOP:.0f}×) | engine ÷ batched numpy (target ≥ {TARGET_VS_BATCHED:.0f}×) |",
            "|---|---|---|---|",
        ]
        for r in t["closed_form"]:
            lines.append(f"| {r['workload']} | {r['d']} | {_fmt(r['vs_loop'])}× {_ok(r['vs_loop_met'])} | {_fmt(r['vs_batched'])}× {_ok(r['vs_batched_met'])} |")
    return lines


def transformer_table(report: dict) -> list[str]:
    tr = report.get("transformer")
    if not tr:
        return []
    jx, th = tr["jax"], tr["torch"]
    m = jx["model"]
    lines = [
        f"Model: {m['n_layers']} layers, d={m['d_model']}, {m['n_heads']} heads, context {m['context']}, vocabulary {m['vocab_size']}, batch {jx['batch']}, "
        f"AdamW + clipping, float32, random tokens; {jx['steps']} steps timed, best of {tr.get('rounds', '?')} interleaved rounds; JAX compile {jx['compile_s']:.1f} s.",
        "",
        "| | train tokens/s | achieved GFLOP/s | share of matmul peak |",
        "|---|---|---|---|",
        f"| JAX (`make_train`, one jitted `lax.scan`) | {_fmt(jx['tokens_per_s'])} | {tr['achieved_flops_per_s'] / 1e9:.1f} | {100 * tr['peak_share']:.0f}% (target ≥ {100 * TARGET_PEAK_SHARE:.0f}%: {_ok(tr['peak_share'] >= TARGET_PEAK_SHARE)}) |",
    ]
    if th:
        lines.append(
            f"| PyTorch {report['machine']['versions'].get('torch')} eager, {th['threads']} thread(s) | {_fmt(th['tokens_per_s'])} | "
            f"{jx['flops_per_token']['train'] * th['tokens_per_s'] / 1e9:.1f} | {100 * jx['flops_per_token']['train'] * th['tokens_per_s'] / tr['matmul_peak']['flops_per_s']:.0f}% |"
        )
        lines.append(f"| JAX ÷ PyTorch | {tr['vs_torch']:.2f}× (target ≥ 1×: {_ok(tr['vs_torch'] >= TARGET_VS_TORCH)}) | | |")
        by = ", ".join(f"{n} thread(s) {_fmt(v)}" for n, v in tr.get("torch_by_threads", {}).items())
        lines += ["", f"PyTorch tokens/s by `torch.set_num_threads`: {by} (the faster is compared)."]
    else:
        lines.append("| PyTorch | not installed (`pip install -e .[bench]`) | | |")
    lines += [
        "",
        f"Matmul peak: float32 {tr['matmul_peak']['n']}² `jnp.matmul`, best of 5, measured before each round and at the end: "
        + ", ".join(f"{p['flops_per_s'] / 1e9:.0f}" for p in tr["matmul_peak"]["all"])
        + " GFLOP/s (the largest is the peak). "
        f"FLOPs per token: {tr['flops_method']}; {jx['flops_per_token']['train'] / 1e3:.0f} kFLOP/token analytic, "
        f"{(jx['xla_flops_per_step'] or float('nan')) / (jx['batch'] * m['context']) / 1e3:.0f} kFLOP/token by XLA "
        f"({tr['achieved_flops_per_s_xla'] / 1e9:.1f} GFLOP/s).",
    ]
    return lines


def markdown(report: dict) -> str:
    mach = report["machine"]
    v = mach["versions"]
    blas = next((b for b in mach["blas"] if b.get("internal_api") == "openblas"), {})
    settings = report["settings"]
    lines = [
        f"# collapse-sim benchmark — {mach['date']}",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB; JAX backend `{mach['jax_backend']}` ({', '.join(mach['jax_devices'])}). "
        f"jax {v.get('jax')}, jaxlib {v.get('jaxlib')}, flax {v.get('flax')}, optax {v.get('optax')}, numpy {v.get('numpy')} "
        f"(OpenBLAS {blas.get('version', '?')}, kernel {blas.get('architecture', '?')}), "
        f"BLAS threads {settings['blas_threads']} for the engine's LAPACK calls and the references, "
        f"torch {v.get('torch')}, Python {v.get('python')}. Load average (1 min) at start {mach['loadavg_start'][0]:.1f}, "
        f"at end {report.get('loadavg_end', [float('nan')])[0]:.1f}. Command: `{mach['command']}`; total {report.get('total_seconds', float('nan')):.0f} s.",
        "",
        "## Closed-form worlds",
        "",
        f"Seeds × generations per second (G = {settings['generations']}, generation 0 included in the time; float64 throughout). "
        "*engine*: `make_simulate`, one jit-compiled call, seeds vmapped, generations scanned; *per-seed loop*: numpy, one seed "
        "at a time (the published codes' way); *batched numpy*: every seed of a chunk at once. "
        f"\\* = measured on fewer seeds and scaled linearly (a call would have exceeded {settings['budget_s']:.0f} s "
        f"({settings['loop_budget_s']:.2g} s for the loop); seeds are independent, so cost is linear in seeds). "
        "Compile time is `lower().compile()` for that seed count. z: largest |z| over generations of the difference between the engine's and "
        "the batched reference's mean test error (only with ≥ 64 seeds on both sides).",
        "",
        f"### Targets at {TARGET_SEEDS} seeds",
        "",
        *target_table(report),
        "",
        "### Full sweep",
        "",
        "| workload | d | rows | seeds | engine | compile s | per-seed loop | batched numpy | ÷ loop | ÷ batched | z |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["closed_form"]:
        z = r["agreement"].get("batched", {}).get("max_abs_z")
        lines.append(
            f"| {r['workload']} | {r['d']} | {r['rows']} | {r['seeds']} | {_cell(r['engine'])} | {r['compile_s']:.1f} | "
            f"{_cell(r['loop_numpy'])} | {_cell(r['batched_numpy'])} | {_fmt(r['engine_vs_loop'])} | {_fmt(r['engine_vs_batched'])} | "
            f"{'–' if z is None else f'{z:.1f}'} |"
        )
    if report.get("kernels"):
        lines += [
            "",
            "## Kernels",
            "",
            "Batched float64 kernels behind the worlds (milliseconds for the whole batch, best of up to 5), JAX jit against numpy, "
            f"{settings['blas_threads']} BLAS thread(s), and JAX again with one BLAS thread per core (JAX's CPU LAPACK kernels run on scipy's OpenBLAS): "
            "the regression fit of the engine runs `eigh` on the Gram matrix (to record its smallest eigenvalue and give the "
            "minimum-norm solution); the references `solve`. The Gaussian world samples through `eigh`; the categorical world draws "
            "M outcomes (rows) where the batched reference draws the counts.",
            "",
            f"| kernel | d (V) | batch | rows | JAX ms | numpy ms | JAX ms, {mach['cores']} BLAS threads |",
            "|---|---|---|---|---|---|---|",
        ]
        for k in report["kernels"]:
            tt = k.get("jax_s_blas_threads_per_core")
            lines.append(
                f"| {k['kernel']} | {k['d']} | {k['matrices']} | {k['rows']} | {k['jax_s'] * 1e3:.2f} | {k['numpy_s'] * 1e3:.2f} | "
                f"{'–' if tt is None else f'{tt * 1e3:.2f}'} |"
            )
    profiles = list(report.get("profiles", []))
    if report.get("transformer") and report["transformer"]["jax"].get("profile"):
        profiles.append(report["transformer"]["jax"]["profile"])
    for prof in profiles:
        lines += [
            "",
            f"### Profile: {prof.get('name') or 'engine, %s, d=%s, %s seeds' % (prof['workload'], prof['d'], prof['seeds'])}",
            "",
            f"`jax.profiler` trace of {prof['calls']} calls; XLA ops summed over the CPU threads ({prof['busy_ms_per_call']:.1f} ms of thread time per call), top ops:",
            "",
            "| XLA op | from (jax op) | ms / call | share |",
            "|---|---|---|---|",
        ]
        for op in prof["ops"]:
            lines.append(f"| {op['op']} | `{op['source'][:70]}` | {op['ms_per_call']:.2f} | {100 * op['share']:.0f}% |")
    if report.get("transformer"):
        lines += ["", "## Transformer world (training)", "", *transformer_table(report)]
    if report.get("skipped"):
        lines += ["", "## Skipped", ""] + [f"- {s}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def plot_scaling(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = report["closed_form"]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    dims = sorted({r["d"] for r in rows})
    ncols = min(4, len(workloads) + 1)
    nrows = math.ceil((len(workloads) + 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), squeeze=False)
    methods = [("engine", "engine (JAX)", "-", "o"), ("batched_numpy", "batched numpy", "--", "s"), ("loop_numpy", "per-seed numpy loop", ":", "^")]
    colors = {d: c for d, c in zip(dims, ["tab:blue", "tab:orange", "tab:green", "tab:red"])}
    for ax, wl in zip(axes.flat, workloads):
        for d in dims:
            sel = sorted((r for r in rows if r["workload"] == wl and r["d"] == d), key=lambda r: r["seeds"])
            if not sel:
                continue
            x = [r["seeds"] for r in sel]
            for key, _, ls, mk in methods:
                y = [r[key]["throughput"] for r in sel]
                ax.plot(x, y, ls=ls, color=colors[d], lw=1.3)
                for xi, yi, r in zip(x, y, sel):
                    ax.plot([xi], [yi], mk, color=colors[d], ms=4, mfc="white" if r[key]["scaled"] else colors[d])
        ax.set_xscale("log")
        ax.set_yscale("log")
        seeds = sorted({r["seeds"] for r in rows if r["workload"] == wl})
        ax.set_xticks(seeds, [str(s) for s in seeds])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(wl, fontsize=9)
        ax.set_xlabel("seeds", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="both", lw=0.4)
    for ax in axes[:, 0]:
        ax.set_ylabel("seeds × generations / s", fontsize=8)
    legend_ax = axes.flat[len(workloads)]
    for key, label, ls, mk in methods:
        legend_ax.plot([], [], ls=ls, marker=mk, color="k", label=label)
    for d in dims:
        legend_ax.plot([], [], color=colors[d], lw=3, label=f"d = {d}")
    legend_ax.plot([], [], "o", color="k", mfc="white", label="scaled from fewer seeds")
    legend_ax.legend(loc="center", fontsize=8, frameon=False)
    legend_ax.axis("off")
    for ax in list(axes.flat)[len(workloads) + 1 :]:
        ax.axis("off")
    mach = report["machine"]
    fig.suptitle(f"collapse-sim throughput, {mach['cpu']} ({mach['cores']} cores, {mach['jax_backend']}), {mach['date'][:10]}", fontsize=10)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out / f"scaling.{ext}", dpi=150)
    plt.close(fig)


# ----------------------------------------------------------------------------- entry point


def write_reports(report: dict, out: Path) -> None:
    """benchmark.md and scaling.png/.pdf from a report (as saved in benchmark.json)."""
    (out / "benchmark.md").write_text(markdown(report))
    if report["closed_form"]:
        plot_scaling(report, out)


def parse_workloads(spec: str) -> list[tuple[str, str]]:
    """``regression`` (every regime), ``regression/mix``, ``gaussian``, ``categorical``, comma separated."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        world, _, regime = item.partition("/")
        if world not in ref.WORLDS:
            raise SystemExit(f"collapse-bench: error: --worlds item {item!r}: world {world!r} is not benchmarked; allowed: {', '.join(ref.WORLDS)}")
        regimes = [regime] if regime else (list(ref.REGRESSION_REGIMES) if world == "regression" else ["replace"])
        out += [(world, r) for r in regimes]
    return out


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="collapse-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sweep for a smoke run (seeds 1,16,256; d=10; short transformer run)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--worlds", default="regression,gaussian,categorical", help="comma list: regression, regression/<regime>, gaussian, categorical")
    p.add_argument("--seeds", type=_ints, default=None, help="seed counts (default 1,16,256,4096)")
    p.add_argument("--dims", type=_ints, default=None, help="sizes d (default 10,100)")
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--budget", type=float, default=None, help="seconds one timed call may take before it is scaled from fewer seeds (default 2.5)")
    p.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads for the engine's LAPACK kernels and the numpy references (default 1)")
    p.add_argument("--profile", default="regression/replace", help="workloads whose engine program is profiled with jax.profiler (256 seeds at d <= 10, else 16; '' for none)")
    p.add_argument("--skip-transformer", action="store_true")
    p.add_argument("--skip-kernels", action="store_true")
    p.add_argument("--render", type=Path, default=None, metavar="JSON", help="only re-render benchmark.md and the plot from a saved benchmark.json into --out")
    p.add_argument("--transformer-steps", type=int, default=None, help="timed training steps (default 50; 20 with --quick)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.render:
        report = json.loads(args.render.read_text())
        args.out.mkdir(parents=True, exist_ok=True)
        write_reports(report, args.out)
        return
    seeds = args.seeds or ([1, 16, 256] if args.quick else [1, 16, 256, 4096])
    dims = args.dims or ([10] if args.quick else [10, 100])
    budget = args.budget or (1.0 if args.quick else 2.5)
    loop_budget = budget / 2
    steps = args.transformer_steps or (20 if args.quick else 50)
    pairs = parse_workloads(args.worlds)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    jax.config.update("jax_enable_x64", True)  # the engine's default precision (run.precision=float64)
    machine = machine_info()
    if machine["env"]["OPENBLAS_CORETYPE"]:
        log(f"note: OPENBLAS_CORETYPE={machine['env']['OPENBLAS_CORETYPE']} pins numpy's BLAS kernel; run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` for the CPU's own")
    report = {
        "machine": machine,
        "settings": {"seeds": seeds, "dims": dims, "generations": args.generations, "budget_s": budget, "loop_budget_s": loop_budget,
                     "blas_threads": args.blas_threads, "precision": "float64", "transformer_steps": steps, "quick": args.quick},
        "targets": {"vs_loop": TARGET_VS_LOOP, "vs_batched": TARGET_VS_BATCHED, "at_seeds": TARGET_SEEDS, "vs_torch": TARGET_VS_TORCH, "peak_share": TARGET_PEAK_SHARE},
        "closed_form": [],
        "kernels": [],
        "profiles": [],
        "transformer": None,
        "skipped": [],
    }
    from simulator.worlds import WORLDS as ENGINE_WORLDS

    for world, regime in pairs:
        if world not in ENGINE_WORLDS:
            report["skipped"].append(f"{world}/{regime}: the engine has no {world} world")
            continue
        for d in dims:
            wl = ref.make_workload(world, regime, d, args.generations)
            with blas_threads(args.blas_threads):
                report["closed_form"] += bench_workload(wl, seeds, budget, loop_budget)
    if not args.skip_kernels:
        with blas_threads(args.blas_threads):
            report["kernels"] = bench_kernels(dims)
    with blas_threads(args.blas_threads):
        for world, regime in parse_workloads(args.profile):
            if world not in ENGINE_WORLDS:
                continue
            for d in dims:
                prof = profile_engine(ref.make_workload(world, regime, d, args.generations), 256 if d <= 10 else 16)
                report["profiles"].append(prof)
                log(f"profile {prof['name']}: " + ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in prof["ops"][:4]))
    if not args.skip_transformer:
        try:
            report["transformer"] = bench_transformer(steps, rounds=2 if args.quick else 3)
        except ImportError as e:
            report["skipped"].append(f"transformer: {e}")
    report["loadavg_end"] = list(os.getloadavg())
    report["total_seconds"] = time.perf_counter() - t_start
    report["target_summary"] = targets(report)

    (args.out / "benchmark.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    write_reports(report, args.out)
    log(f"wrote {args.out}/benchmark.json, benchmark.md, scaling.png, scaling.pdf in {report['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
