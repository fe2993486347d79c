"""``collapse-bench``: how fast the engine runs, against plain numpy and PyTorch.

Never part of the test suite.  One run measures, on the machine it runs on:

1. Closed-form worlds (regression in every regime, Gaussian, categorical; see
   ``experiments/benchmarks/reference.py`` for the workloads): the engine
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
   numpy, and ``jax.profiler`` profiles of the engine's programs (``--profile``):
   what limits a workload.
3. The transformer world (``experiments/benchmarks/transformer.py``): training
   tokens per second of the default small model (2 layers, d=64, 4 heads,
   context 64, batch 32) with ``collapse_sim.simulator.lm.train.make_train``, against the
   same model and optimiser in PyTorch (eager, ``scaled_dot_product_attention``;
   ``pip install -e .[bench]``), and achieved FLOP/s against a float32 1024^2
   matmul measured in the same run.
4. The text world per generation (``bench_lm_speed`` in the same file;
   ``--skip-lm-speed``): sampling tokens per second of ``make_sampler`` as the
   world builds it, for the default and the pretrained base model, the whole
   cache at every step (``cache_segments=1``) against the default segments;
   the base model's fine-tuning tokens per second at
   ``world=transformer_pretrained``'s settings; and from them a generation's
   training + sampling seconds per seed.

BLAS threads: 1 by default (``--blas-threads``), for the numpy references and
for the engine alike: JAX's CPU LAPACK kernels (eigh, cholesky, solve) call
the OpenBLAS that scipy ships, which spawns a thread per core next to XLA's own
threads; on 2 busy cores a threaded 100 x 100 eigh was measured 100x slower
than a single-threaded one (see the kernel table of experiments/benchmarks/benchmark.md).  The kernel table also
reports the JAX kernels at the process default, one BLAS thread per core.
Where OPENBLAS_CORETYPE is set, OpenBLAS runs an older kernel than the CPU
supports: benchmark with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
collapse-bench`` (the JSON records the kernel OpenBLAS used).

Writes ``benchmark.json`` (every figure, machine, versions, date, load
average), ``benchmark.md`` (tables) and ``scaling.png`` / ``scaling.pdf`` to
``--out`` (``experiments/benchmarks/report.py``; ``--render`` redoes them from a
saved JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.experiments.benchmarks import reference as ref
from collapse_sim.experiments.benchmarks.machine import blas_threads, machine_info
from collapse_sim.experiments.benchmarks.report import TARGETS, targets, write_reports
from collapse_sim.experiments.benchmarks.timing import best_time, log, profile_compiled

DEFAULT_OUT = Path(__file__).resolve().parent  # benchmark.json, benchmark.md, scaling.* beside the code


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


def bench_workload(wl, seeds: list[int], budget: float, loop_budget: float, profile_seeds: int | None = None) -> tuple[list[dict], dict | None]:
    """Engine, per-seed loop and batched numpy for one workload over the seed sweep;
    with ``profile_seeds`` (one of ``seeds``) also a ``jax.profiler`` profile of the
    engine's program at that seed count (reusing its compilation)."""
    from collapse_sim.simulator.loop import make_simulate, seed_keys
    from collapse_sim.simulator.regimes import make_regime
    from collapse_sim.simulator.worlds import make_world

    world_cfg, regime_cfg = ref.engine_configs(wl)
    world = make_world(world_cfg)
    simulate = make_simulate(world, make_regime(regime_cfg, world, wl.G), wl.G)
    root = jax.random.key(0)
    compiled: dict[int, object] = {}
    spp = {"engine": None, "batched": None}  # seconds per seed, from the last measurement
    done = {"engine": [], "batched": []}
    rows, profile = [], None
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
        if S == profile_seeds:
            profile = profile_compiled(compiled[S], (keys,), calls=3)
            profile.update(name=f"engine, {wl.name}, d={wl.d}, {S} seeds", workload=wl.name, d=wl.d, seeds=S)
        log(
            f"{wl.name:34s} d={wl.d:<4d} S={S:<5d} compile {compile_s:6.2f}s  engine {row['engine']['throughput']:10.0f}"
            f"{'*' if row['engine']['scaled'] else ' '} loop {row['loop_numpy']['throughput']:9.0f}"
            f"{'*' if row['loop_numpy']['scaled'] else ' '} batched {row['batched_numpy']['throughput']:10.0f}"
            f"{'*' if row['batched_numpy']['scaled'] else ' '} S.G/s  x{row['engine_vs_loop']:.1f} / x{row['engine_vs_batched']:.2f}"
        )
    return rows, profile


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
    # Random numbers: the engine draws normals with jax.random (threefry, float64);
    # the references with numpy's PCG64.
    shape = (S, 400, 10)
    f = jax.jit(lambda k: jax.random.normal(k, shape, jnp.float64))
    key = jax.random.key(0)
    jax.block_until_ready(f(key))
    t_j, _ = best_time(lambda: jax.block_until_ready(f(key)), budget, 5)
    t_n, _ = best_time(lambda: rng.standard_normal(shape), budget, 5)
    out.append({"kernel": "standard normals, float64 (jax.random threefry; numpy PCG64)", "d": shape[2], "matrices": S, "rows": shape[1], "jax_s": t_j, "numpy_s": t_n})
    log(f"kernel normals {math.prod(shape)}: jax {t_j * 1e3:8.2f} ms  numpy {t_n * 1e3:8.2f} ms")
    # Categorical sampling: the engine's own world.sample draws M outcomes (rows);
    # the batched reference draws the counts directly (a multinomial, O(V) binomials).
    from collapse_sim.simulator.worlds import make_world

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


# ----------------------------------------------------------------------------- entry point


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
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT}; with --quick a temporary folder, so a smoke run never overwrites the saved results)")
    p.add_argument("--worlds", default="regression,gaussian,categorical", help="comma list: regression, regression/<regime>, gaussian, categorical")
    p.add_argument("--seeds", type=_ints, default=None, help="seed counts (default 1,16,256,4096)")
    p.add_argument("--dims", type=_ints, default=None, help="sizes d (default 10,100)")
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--budget", type=float, default=None, help="seconds one timed call may take before it is scaled from fewer seeds (default 2.5)")
    p.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads for the engine's LAPACK kernels and the numpy references (default 1)")
    p.add_argument("--profile", default=None, help="workloads whose engine program is profiled with jax.profiler, as --worlds (default: the benchmarked ones; '' for none); 256 seeds at d <= 10, else 16")
    p.add_argument("--skip-transformer", action="store_true")
    p.add_argument("--skip-kernels", action="store_true")
    p.add_argument("--skip-lm-speed", action="store_true", help="skip the text world's sampling and fine-tuning speed (about 1 min with --quick)")
    p.add_argument("--render", type=Path, default=None, metavar="JSON", help="only re-render benchmark.md and the plot from a saved benchmark.json into --out")
    p.add_argument("--transformer-steps", type=int, default=None, help="timed training steps (default 50; 20 with --quick)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.render:
        report = json.loads(args.render.read_text())
        args.out = args.out or args.render.parent
        args.out.mkdir(parents=True, exist_ok=True)
        write_reports(report, args.out)
        return
    if args.out is None:
        import tempfile

        args.out = Path(tempfile.gettempdir()) / "collapse-bench-quick" if args.quick else DEFAULT_OUT
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
    import importlib.util

    if importlib.util.find_spec("threadpoolctl") is None:
        log("note: threadpoolctl is not installed, so --blas-threads cannot act; BLAS threads follow "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} (pip install threadpoolctl, or set it to 1)")
    if machine["env"]["OPENBLAS_CORETYPE"]:
        log(f"note: OPENBLAS_CORETYPE={machine['env']['OPENBLAS_CORETYPE']} pins numpy's BLAS kernel; run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` for the CPU's own")
    report = {
        "machine": machine,
        "settings": {"seeds": seeds, "dims": dims, "generations": args.generations, "budget_s": budget, "loop_budget_s": loop_budget,
                     "blas_threads": args.blas_threads, "precision": "float64", "transformer_steps": steps, "quick": args.quick},
        "targets": TARGETS,
        "closed_form": [],
        "kernels": [],
        "profiles": [],
        "transformer": None,
        "skipped": [],
    }
    from collapse_sim.simulator.worlds import WORLDS as ENGINE_WORLDS

    profile_pairs = set(parse_workloads(args.worlds if args.profile is None else args.profile))

    for world, regime in pairs:
        if world not in ENGINE_WORLDS:
            report["skipped"].append(f"{world}/{regime}: the engine has no {world} world")
            continue
        for d in dims:
            wl = ref.make_workload(world, regime, d, args.generations)
            prof_seeds = None
            if (world, regime) in profile_pairs:
                prof_seeds = min(seeds, key=lambda s: abs(s - (256 if d <= 10 else 16)))
            with blas_threads(args.blas_threads):
                rows, prof = bench_workload(wl, seeds, budget, loop_budget, prof_seeds)
            report["closed_form"] += rows
            if prof:
                report["profiles"].append(prof)
                log(f"profile {prof['name']}: " + ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in prof["ops"][:4]))
    if not args.skip_kernels:
        with blas_threads(args.blas_threads):
            report["kernels"] = bench_kernels(dims)
    if not args.skip_transformer:
        try:
            from collapse_sim.experiments.benchmarks.transformer import bench_transformer

            report["transformer"] = bench_transformer(steps, rounds=2 if args.quick else 3)
        except ImportError as e:
            report["skipped"].append(f"transformer: {e}")
    if not (args.skip_transformer or args.skip_lm_speed):
        from collapse_sim.experiments.benchmarks.transformer import bench_lm_speed

        report["lm_speed"] = bench_lm_speed(rounds=2 if args.quick else 4, finetune_steps=10 if args.quick else 20)
    report["loadavg_end"] = list(os.getloadavg())
    report["total_seconds"] = time.perf_counter() - t_start
    report["target_summary"] = targets(report)

    (args.out / "benchmark.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    write_reports(report, args.out)
    log(f"wrote {args.out}/benchmark.json, benchmark.md, scaling.png, scaling.pdf in {report['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
