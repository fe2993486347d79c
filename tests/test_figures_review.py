"""Every figure, rendered from tiny saved results, passes what a figure review checks automatically
(tests/figure_checks.py: legends name drawn artists in their colours, every axis is labelled, no
text leaves the figure or overlaps another, generation ticks are whole numbers) and says how many
seeds its bands average; render picks the sweep figure for a sweep; the t-interval covers.

The regression and distribution results carry the real predictors' theory curves and the real
configs (tests/test_figures_distributions.py builds the latter from ``jax.eval_shape``); the
text-world results are synthetic arrays with the records' real names and shapes.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from figure_checks import capture
from test_figures_distributions import save_run as save_distribution_run
from test_figures_curation import curation_runs, phase_runs

from collapse_sim.experiments.predictions import predict
from collapse_sim.figures import bands, render, sweep
from collapse_sim.simulator import results
from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds import categorical, gaussian, gmm
from collapse_sim.simulator.worlds import ngram as ngram_world
from collapse_sim.simulator.worlds.regression import RegressionConfig


def save_regression(path, regime: str, seed: int = 0, G: int = 20, S: int = 6, world=None, **fields):
    world_cfg = RegressionConfig(**({"d": 3, "T": 12} | (world or {})))
    regime_cfg = regime_config(regime, **fields)
    run = {"n_seeds": S, "n_generations": G, "seed": 0, "theory_designs": 4}
    theory = predict(world_cfg, regime_cfg, SimpleNamespace(**run))
    curves = theory.pop("curves")
    rng = np.random.default_rng(seed)
    mean = curves.get("prediction", theory["units"]["v"] * (1 + 0.3 * np.arange(G + 1)))
    records = {"test_error": mean * rng.gamma(8.0, 1 / 8.0, size=(S, G + 1))}
    records |= {f"theory/{k}": v for k, v in curves.items()}
    meta = {"config": {"world": dataclasses.asdict(world_cfg), "regime": dataclasses.asdict(regime_cfg), "run": run},
            "theory": theory}
    results.save(path, records, meta)
    return path


TEXT_G = 3


def real_blocks():
    """48 blocks of 24 bytes of the shipped corpus."""
    from collapse_sim.simulator.worlds.text import load_text

    return np.asarray(load_text(None, 24, 48, 8).reservoir[:48])


def save_text(path, experiment: str, regime: str, S: int, seed: int = 0, G: int = TEXT_G, world=None, **fields):
    """A text-world run with synthetic records of the real names and shapes."""
    rng = np.random.default_rng(seed)
    w = ngram_world.Config(**({"order": 2, "block_len": 24, "train_blocks": 24} | (world or {})))
    g = np.arange(G + 1)
    growth = {"replace": 0.1, "mix": 0.05, "accumulate": 0.03, "token_edit": 0.02}[regime]
    records = {
        "test_ppl": 8.0 * (1 + growth * g) * rng.lognormal(0, 0.02, size=(S, G + 1)),
        "train_seq_ppl_gen0": rng.lognormal(np.log(8) + 0.1 * g[None, :, None], 0.3, size=(S, G + 1, 16)),
        "train_loss": 2.4 - 0.1 * g * rng.uniform(0.5, 1.5, size=(S, G + 1)),
    }
    real = real_blocks()  # generation g: the real text with a share 0.2 g of its bytes redrawn from it
    tokens = np.broadcast_to(real, (S, G + 1) + real.shape).copy()
    redraw = rng.uniform(size=tokens.shape) < 0.2 * g[None, :, None, None]
    tokens[redraw] = rng.choice(real.reshape(-1), size=int(redraw.sum()))
    records["train_tokens"] = tokens.astype(np.int32)
    if regime == "token_edit":
        hist = rng.dirichlet(np.ones(10), size=(S, G + 1))
        records |= {"prior_prob_hist": hist, "selected_share": rng.uniform(0.01, 0.05, size=(S, G + 1)),
                    "changed_share": rng.uniform(0.001, 0.01, size=(S, G + 1))}
    meta = {
        "config": {
            "world": dataclasses.asdict(w),
            "regime": dataclasses.asdict(regime_config(regime, **fields)),
            "run": {"n_seeds": S, "n_generations": G, "experiment": experiment},
        },
        "theory": {"kind": "none", "units": {}},
    }
    results.save(path, records, meta)
    return path


def _regression_runs(tmp):
    return [save_regression(tmp / r, r, i) for i, r in enumerate(("replace", "mix", "accumulate", "accumulate_subsample"))]


def _toedit_runs(tmp):
    return [save_regression(tmp / s, "token_edit", i, G=6, schedule=s, world={"d": 3, "T": 20})
            for i, s in enumerate(("bernoulli", "disjoint", "fixed", "full"))]


def _sweep_runs(tmp):
    """A tiny version of the README's sweep: regime=mix, real_fraction x T."""
    return [save_regression(tmp / f"p{p}_T{T}", "mix", i, G=8, S=5, world={"T": T}, real_fraction=p)
            for i, (p, T) in enumerate((p, T) for p in (0.0, 0.5, 1.0) for T in (12, 24))]


def _distribution_runs(cases):
    def make(tmp):
        return [save_distribution_run(tmp / f"run{i}", cfg, regime, i) for i, (cfg, regime) in enumerate(cases)]

    return make


def _lm_collapse(tmp):
    return [save_text(tmp / "rep", "lm_collapse", "replace", 3),
            save_text(tmp / "mix", "lm_collapse", "mix", 3, 1, real_fraction=0.1, real_source="original"),
            save_text(tmp / "acc", "lm_collapse", "accumulate", 3, 2),
            save_text(tmp / "te", "lm_collapse", "token_edit", 3, 3, world={"edit_threshold": 0.5},
                      schedule="full", prior="generation0")]


def _lm_ppl(tmp):
    return [save_text(tmp / f"{r}{t}", "lm_ppl_histograms", r, 2, i, world={"temperature": t},
                      **({"real_fraction": 0.1, "real_source": "original"} if r == "mix" else {}))
            for i, (r, t) in enumerate((r, t) for r in ("replace", "mix") for t in (1.0, 0.7))]


def _synthetic(tmp):
    return [save_text(tmp / f"{p}_{t}", "synthetic_proportion", "mix", 3, i, G=1, world={"temperature": t},
                      real_fraction=p, real_source="original", resample_real=False)
            for i, (p, t) in enumerate((p, t) for p in (0.0, 0.25, 0.5, 0.75, 1.0) for t in (1.0, 0.7))]


def _ngram(tmp):
    return [save_text(tmp / "rep", "ngram_diagnostics", "replace", 2),
            save_text(tmp / "te", "ngram_diagnostics", "token_edit", 2, 1, world={"edit_threshold": 0.5},
                      schedule="full", prior="generation0")]


def _toedit_iterative(tmp):
    return [save_text(tmp / "rep", "toedit_iterative", "replace", 2),
            save_text(tmp / "p99", "toedit_iterative", "token_edit", 2, 1, schedule="full", prior="generation0"),
            save_text(tmp / "p5", "toedit_iterative", "token_edit", 2, 2, world={"edit_threshold": 0.5},
                      schedule="full", prior="generation0")]


# stem -> (runs maker, seeds the caption must name or None for a figure without bands)
FIGURES = {
    "regression": (_regression_runs, 6),
    "toedit_audit": (_toedit_runs, 6),
    "sweep": (_sweep_runs, 5),
    "gaussian_collapse": (_distribution_runs([(gaussian.Config(d=1, M=10), "replace"),
                                              (gaussian.Config(d=1, M=30), "replace")]), 5),
    "kazdan_gaussian": (_distribution_runs([(gaussian.Config(d=3, M=12, estimator="mle"), r)
                                            for r in ("replace", "accumulate", "accumulate_subsample")]), 5),
    "gmm_collapse": (_distribution_runs([(gmm.Config(M=20), r) for r in ("replace", "mix", "accumulate")]), 5),
    "categorical_tails": (_distribution_runs([(categorical.Config(V=5, M=8, dist="zipf"), r)
                                              for r in ("replace", "accumulate")]), 5),
    "lm_collapse": (_lm_collapse, 3),
    "lm_ppl_histograms": (_lm_ppl, None),
    "synthetic_proportion": (_synthetic, 3),
    "ngram_diagnostics": (_ngram, None),
    "toedit_iterative": (_toedit_iterative, 2),
    "temperature_phase": (phase_runs, 5),
    "curation_rules": (curation_runs, 5),
}


# stem -> what its text must (not) say, beyond the checks every figure gets
NAMES = {
    "gaussian_collapse": lambda t: "σ²_g" not in t and r"$\sigma^2_g$" in t,  # mathtext, not a raw underscore
    "gmm_collapse": lambda t: t.splitlines().count("truth") == 1,  # the true density once, not in every row
    "categorical_tails": lambda t: "median over seeds" in t,  # the median line has its legend entry
    "regression": lambda t: "theory (exact)" in t and "bound" in t,  # drawn here, so named
    "temperature_phase": lambda t: "stability boundary" in t and "fixed point" in t,
    # each theory curve is named with its status: exact, bound or the limit it is
    "curation_rules": lambda t: "(exact)" in t and "(upper bound)" in t and "K → ∞ limit" in t and "n → ∞ limit" in t,
}


@pytest.mark.parametrize("stem", FIGURES)
def test_figure_passes_the_review(stem, tmp_path, monkeypatch):
    make, seeds = FIGURES[stem]
    runs = make(tmp_path / "runs")
    seen = capture(monkeypatch)
    outs = render.render_runs(runs, tmp_path / "out")
    assert f"{stem}.png" in {p.name for p in outs}, outs  # render picks this figure for these runs
    problems, text = seen[stem]
    assert problems == [], "\n".join(problems)
    if seeds is not None:
        assert f"mean of {seeds} seeds, 95% t-interval" in text
    assert NAMES.get(stem, lambda t: True)(text), text


def test_render_draws_a_sweep_as_a_sweep_and_regimes_as_regimes(tmp_path):
    names = {p.name for p in render.render_path(_sweep_runs(tmp_path / "sweep")[0].parent)}
    assert "sweep.png" in names and "regression.png" not in names
    metas = [results.load(r)[1] for r in results.find_runs(tmp_path / "sweep")]
    assert sweep.parameters(metas) == ["regime.real_fraction", "world.T"]
    names = {p.name for p in render.render_path(_regression_runs(tmp_path / "regimes")[0].parent)}
    assert "regression.png" in names and "sweep.png" not in names
    # regime.real_fraction etc. differ only with the regime's name: not parameters of their own
    assert sweep.parameters([results.load(r)[1] for r in results.find_runs(tmp_path / "regimes")]) == ["regime.name"]


def test_phase_map_has_the_theory_as_contours(tmp_path, monkeypatch):
    seen = capture(monkeypatch)
    sweep.plot(_sweep_runs(tmp_path), tmp_path / "out")
    assert "dashed contours: theory" in seen["sweep"][1]
    rows = (tmp_path / "out" / "sweep.md").read_text().splitlines()[4:]
    assert len(rows) == 6 and all(r.split(" | ")[-1] != "– |" for r in rows)  # every run has its theory value


@pytest.mark.parametrize("S", [2, 3, 5])
def test_t_interval_covers_the_mean_95_percent_of_the_time(S):
    """Normal seeds: the interval covers the true mean with probability 0.95 (z = 1.96 gives 0.70
    at S = 2, 0.81 at S = 3); tolerance 4 binomial standard errors."""
    n = 20_000
    x = np.random.default_rng(S).normal(1.0, 2.0, size=(S, n))
    m, half = bands.mean_interval(x)
    cover = np.mean(np.abs(m - 1.0) <= half)
    assert abs(cover - 0.95) < 4 * np.sqrt(0.95 * 0.05 / n)
    assert bands.describe([S]) == f"mean of {S} seeds, 95% t-interval"
    assert np.isnan(bands.mean_interval(x[:1])[1]).all() and bands.describe([1]) == "1 seed, no interval"


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_render_on_nothing_says_so_and_exits_2(make, tmp_path, capsys):
    path = tmp_path / "results"
    if make == "empty":
        path.mkdir()
    with pytest.raises(SystemExit) as e:
        render.main([str(path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (f"no such result path: {path}" if make == "missing" else f"no runs under {path}") in err


def test_benchmark_scaling_plot_passes_the_review(tmp_path, monkeypatch):
    """experiments/benchmarks/report.py draws scaling.png in the gallery's look, from a saved report."""
    import json
    from pathlib import Path

    from collapse_sim.experiments.benchmarks import report as bench_report

    report = json.loads((Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "benchmark.json").read_text())
    seen = capture(monkeypatch)
    bench_report.plot_scaling(report, tmp_path)
    assert seen["scaling"][0] == [], "\n".join(seen["scaling"][0])
    assert {p.name for p in tmp_path.iterdir()} == {"scaling.png", "scaling.pdf"}
