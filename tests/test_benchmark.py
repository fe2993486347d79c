"""The benchmark's numpy references (experiments/benchmarks/reference.py) compute the same
statistics as the engine: mean test error per generation agrees within Monte Carlo
error.  Correctness only, at a tiny size; timing lives in ``collapse-bench``
(experiments/benchmarks/benchmark.py), never in the test suite.

Each engine comparison costs a compilation (~2.5 s), so two workloads are checked
against the engine here (the pool and subsample of ``accumulate_subsample``, the
Gaussian refit); every workload's two references are checked against each
other, and ``collapse-bench`` records the engine agreement (z-scores) of every
benchmarked workload in its JSON.
"""

import jax
import numpy as np
import pytest

from collapse_sim.experiments.benchmarks import reference as ref
from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import make_regime
from collapse_sim.simulator.worlds import make_world

WORKLOADS = [("regression", r) for r in ref.REGRESSION_REGIMES] + [("gaussian", "replace"), ("categorical", "replace")]
ENGINE_CHECKED = [("regression", "accumulate_subsample"), ("gaussian", "replace")]
Z_MAX = 4.5  # about 50 z-scores in the file: a false alarm has probability ~1e-3


def ids(pairs):
    return [f"{w}-{r}" for w, r in pairs]


def engine_test_error(wl, n_seeds):
    world_cfg, regime_cfg = ref.engine_configs(wl)
    world = make_world(world_cfg)
    simulate = make_simulate(world, make_regime(regime_cfg, world, wl.G), wl.G)
    records = simulate(seed_keys(jax.random.key(0), np.arange(n_seeds)))
    return np.asarray(records["test_error"])


@pytest.mark.parametrize("world,regime", ENGINE_CHECKED, ids=ids(ENGINE_CHECKED))
def test_references_match_engine(world, regime):
    wl = ref.make_workload(world, regime, d=3, G=3)
    engine = engine_test_error(wl, 2000)
    batched = ref.batched_reference(wl, 2000, chunk=512)
    loop = ref.loop_reference(wl, 300)
    assert engine.shape == batched.shape == (2000, 4) and loop.shape == (300, 4)
    for other in (batched, loop):
        agreement = ref.compare_means(engine, other)
        assert agreement["max_abs_z"] < Z_MAX, agreement


@pytest.mark.parametrize("world,regime", WORKLOADS, ids=ids(WORKLOADS))
def test_loop_and_batched_references_agree(world, regime):
    wl = ref.make_workload(world, regime, d=3, G=3)
    batched = ref.batched_reference(wl, 4000, chunk=1000)
    loop = ref.loop_reference(wl, 300)
    assert np.all(np.isfinite(batched)) and np.all(np.isfinite(loop))
    agreement = ref.compare_means(batched, loop)
    assert agreement["max_abs_z"] < Z_MAX, agreement


def test_batched_replace_matches_closed_form():
    """Fixed-design OLS under replace: E test error after g refits = (g+1) sigma^2 d / (T - d - 1)."""
    wl = ref.make_workload("regression", "replace", d=3, G=3)
    err = ref.batched_reference(wl, 20000)
    expected = (np.arange(wl.G + 1) + 1) * wl.sigma**2 * wl.d / (wl.n - wl.d - 1)
    se = err.std(axis=0, ddof=1) / np.sqrt(err.shape[0])
    assert np.all(np.abs(err.mean(axis=0) - expected) < Z_MAX * se), (err.mean(axis=0), expected, se)


def test_batched_reference_chunks():
    wl = ref.make_workload("regression", "accumulate_subsample", d=2, G=2)
    for chunk in (40, 16):
        out = ref.batched_reference(wl, 40, chunk=chunk)
        assert out.shape == (40, 3) and np.all(np.isfinite(out))


def test_unknown_workload_is_rejected():
    with pytest.raises(ValueError, match="regime"):
        ref.make_workload("gaussian", "accumulate", d=2)
    with pytest.raises(ValueError, match="world"):
        ref.make_workload("kde", "replace", d=2)


def test_reports_render_from_a_tiny_saved_report(tmp_path):
    """benchmark.md and the scaling plot render from a saved report (no timing here)."""
    from collapse_sim.experiments.benchmarks import report

    def fig(tp, scaled=False):
        return {"seeds_run": 1, "seconds": 1.0, "throughput": tp, "scaled": scaled}

    rows = []
    for S in (1, 256):
        rows.append(
            {
                "workload": "regression/replace", "world": "regression", "regime": "replace", "d": 3, "rows": 12, "G": 3,
                "seeds": S, "compile_s": 1.0, "compile_cpu_s": 1.0, "engine": fig(100.0 * S), "batched_numpy": fig(50.0 * S),
                "loop_numpy": fig(10.0, scaled=S > 1), "engine_vs_loop": 10.0 * S, "engine_vs_batched": 2.0,
                "agreement": {"batched": {"max_abs_z": 0.5}}, "loadavg_1min": [0.0, 0.0],
            }
        )
    saved = {
        "machine": {"date": "2026-01-01T00:00:00+00:00", "cpu": "test cpu", "cores": 2, "memory_gib": 1.0, "jax_backend": "cpu",
                    "jax_devices": ["cpu:0"], "versions": {"jax": "x"}, "blas": [], "loadavg_start": [0.0], "command": "collapse-bench"},
        "settings": {"generations": 3, "budget_s": 1.0, "loop_budget_s": 0.5, "blas_threads": 1},
        "closed_form": rows, "kernels": [], "profiles": [], "transformer": None, "skipped": [],
        "loadavg_end": [0.0], "total_seconds": 1.0,
    }
    report.write_reports(saved, tmp_path)
    md = (tmp_path / "benchmark.md").read_text()
    assert "| 2,560× met | 2.00× met |" in md  # the 256-seed targets
    assert "\\*" in md  # the scaled loop figure is marked
    assert (tmp_path / "scaling.png").stat().st_size > 0 and (tmp_path / "scaling.pdf").stat().st_size > 0


def test_collapse_bench_render_redoes_the_saved_tables(tmp_path):
    """``collapse-bench --render`` (the entry point of experiments/benchmarks/benchmark.py)
    rebuilds the saved benchmark.md, byte for byte, from the benchmark.json beside it."""
    from collapse_sim.experiments.benchmarks import benchmark

    saved = benchmark.DEFAULT_OUT / "benchmark.json"
    benchmark.main(["--render", str(saved), "--out", str(tmp_path)])
    assert (tmp_path / "benchmark.md").read_text() == (saved.parent / "benchmark.md").read_text()


def test_lm_speed_tables_render_and_add_up():
    """The text world's per-generation tables render from a saved report, and a
    generation's seconds per seed follow from the timed steps and the sampling."""
    from collapse_sim.experiments.benchmarks import report
    from collapse_sim.experiments.benchmarks.transformer import generation_seconds

    # 20 steps of 2 seeds in 10 s: 0.25 s per seed and step, 37.5 s for 150; 4 s of sampling for 2 seeds: 2 s.
    gen = generation_seconds(10.0, 20, 150, 4.0, 2)
    assert gen == {"finetune_s_per_seed": 37.5, "sample_s_per_seed": 2.0, "total_s_per_seed": 39.5}

    def fig(seconds, tokens):
        return {"seconds": seconds, "seconds_all": [seconds], "tokens": tokens, "tokens_per_s": tokens / seconds, "compile_s": 2.0}

    model = {"vocab_size": 256, "n_layers": 4, "d_model": 128, "n_heads": 4, "context": 64, "dropout": 0.0}
    sampling = [{"world": "transformer_pretrained", "model": model, "rows": 1024, "block_len": 65, "temperature": 1.0,
                 "reference": fig(5.0, 131072), "current": fig(4.0, 131072), "current_vs_reference": 0.8, "same_tokens_share": 1.0}]
    finetune = fig(10.0, 81920) | {"steps_timed": 20, "model": model, "loss_first_last": [5.6, 5.5],
                                   "train": {"batch_size": 32, "lr": 1e-4, "warmup": 10}}
    lm = {"seeds": 2, "rounds": 2, "cache_segments": 4, "precision": "float32", "sampling": sampling, "finetune": finetune,
          "generation": {"world": "transformer_pretrained", "finetune_steps": 150, **gen}, "loadavg_1min": [1.0, 2.0]}
    md = "\n".join(report.lm_speed_tables({"lm_speed": lm}))
    assert "| `world=transformer_pretrained` (4 layers, d=128) | current, `cache_segments=4` | 4.00 | 32,768 | 2.0 | 0.80× | 100.0% |" in md
    assert "| fine-tuning, 150 steps of 32 × 64 tokens | 37.5 | 8,192 |" in md
    assert "| total | 39.5 | |" in md
    assert report.lm_speed_tables({}) == []
