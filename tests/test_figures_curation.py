"""The temperature phase map and the curation figure render from tiny saved results.

The configs are the experiments' own (``experiment=temperature_phase``, ``experiment=curation_rules``
with its ``+variant=curated_*`` worlds, composed by hydra), the record names and shapes come from
``jax.eval_shape`` of each world's evaluate (tests/test_figures_distributions.py), the theory curves
from the real predictors; the values are synthetic (the theory times noise where there is one).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from test_figures_distributions import record_shapes

from collapse_sim.experiments.config import register
from collapse_sim.experiments.predictions import predict
from collapse_sim.figures import curation_rules, render, temperature_phase
from collapse_sim.simulator import results

register()
G, S = 4, 5
VARIANTS = ("curated_gaussian", "curated_gmm", "curated_categorical")
RULES = ("verifier", "best_of_k", "preference", "top_fraction")


def experiment_configs(overrides_list) -> list:
    """The resolved configs of several command lines (one hydra initialisation for all)."""
    with initialize_config_module(version_base="1.3", config_module="collapse_sim.experiments.conf"):
        return [OmegaConf.to_object(compose("config", overrides=o)) for o in overrides_list]


_SHAPES = {}


def shapes(world_cfg) -> dict:
    key = repr(world_cfg)
    if key not in _SHAPES:
        _SHAPES[key] = record_shapes(world_cfg)
    return _SHAPES[key]


def save(path, cfg, seed: int, noisy: dict):
    """A run of ``cfg`` with G generations and S seeds: every record of the world's shape, the
    theory curves of the real predictor, ``noisy`` records (record: curve) as their theory curve
    times noise where the run has that curve."""
    rng = np.random.default_rng(seed)
    run = SimpleNamespace(n_generations=G, n_seeds=S, seed=0, theory_designs=2)
    theory = predict(cfg.world, cfg.regime, run)
    curves = theory.pop("curves")
    records = {name: rng.uniform(0.1, 1.0, size=(S, G + 1) + shape) for name, shape in shapes(cfg.world).items()}
    for name in ("probs", "weights"):
        if name in records:  # distributions over their last axis
            records[name] = rng.dirichlet(np.ones(records[name].shape[-1]), size=(S, G + 1))
    if "means" in records:
        records["means"] = rng.normal(0.0, 3.0, size=records["means"].shape)
    for name, curve in ((n, c) for n, c in noisy.items() if c in curves):
        records[name] = np.asarray(curves[curve])[None] * rng.gamma(20.0, 1 / 20.0, size=(S, G + 1))
    records |= {f"theory/{k}": v for k, v in curves.items()}
    meta = {"config": {"world": dataclasses.asdict(cfg.world), "regime": dataclasses.asdict(cfg.regime),
                       "run": {**dataclasses.asdict(cfg.run), "n_seeds": S, "n_generations": G}},
            "theory": theory}
    results.save(path, records, meta)
    return path


def phase_runs(tmp, alphas=(0.25, 0.5), taus=(0.8, 1.5)):
    """A 2 × 2 corner of experiment=temperature_phase (M = 20, MLE, fresh real rows)."""
    cells = [(a, t) for a in alphas for t in taus]
    cfgs = experiment_configs([["experiment=temperature_phase", f"regime.real_fraction={a}", f"world.temperature={t}"]
                               for a, t in cells])
    return [save(tmp / f"a{a}_t{t}", cfg, i, {"trace_ratio": "trace_ratio"}) for i, ((a, t), cfg) in enumerate(zip(cells, cfgs))]


def curation_runs(tmp, variants=VARIANTS, rules=RULES):
    """experiment=curation_rules: each world's variant under each rule."""
    jobs = [(v, r) for v in variants for r in rules]
    cfgs = experiment_configs([["experiment=curation_rules", f"+variant={v}", f"regime.curation.rule={r}"] for v, r in jobs])
    return [save(tmp / f"{v}_{rule}", cfg, i, {"trace_cov": "var", "mean": "mean"} if v == "curated_gaussian" else {})
            for i, ((v, rule), cfg) in enumerate(zip(jobs, cfgs))]


def test_the_fixed_point_level_lines_lie_where_the_fixed_point_has_that_level():
    """The phase map's level lines (rendered with the rest of the figure in tests/test_figures_review.py):
    E_∞(α, τ) = level at the τ returned, below the boundary τ_crit(α)."""
    from collapse_sim.theory import temperature as tt

    tau = temperature_phase.fixed_point_level(1.0, 0.5, 20)
    assert tt.fixed_point(0.5, tau, 20)[0] == pytest.approx(1.0, rel=1e-8)
    assert tau < float(np.sqrt(tt.critical_temperature_sq(0.5, 20)))
    assert np.isnan(temperature_phase.fixed_point_level(1e-3, 0.5, 20))  # below E_∞(τ → 0): never reached


def test_the_phase_map_needs_two_shares_and_two_temperatures(tmp_path):
    runs = phase_runs(tmp_path / "runs", alphas=(0.5,))
    assert temperature_phase.plot(runs, tmp_path / "out") == []
    assert "temperature_phase.png" not in {p.name for p in render.render_runs(runs, tmp_path / "out")}


def test_render_draws_curated_gaussian_runs_as_curation_not_as_a_sweep(tmp_path):
    """The curated Gaussian runs, which no Gaussian figure shows, get the curation figure and do not
    fall through to the sweep figure.  All three worlds in one figure: tests/test_figures_review.py."""
    runs = curation_runs(tmp_path / "runs", variants=("curated_gaussian",))
    names = {p.name for p in render.render_runs(runs, tmp_path / "out")}
    assert names == {"curation_rules.pdf", "curation_rules.png"}


def test_two_runs_of_one_world_and_rule_are_left_to_the_other_figures(tmp_path):
    runs = curation_runs(tmp_path / "a", variants=("curated_gaussian",), rules=("best_of_k",))
    runs += curation_runs(tmp_path / "b", variants=("curated_gaussian",), rules=("best_of_k",))
    assert curation_rules.plot(runs, tmp_path / "out") == []


def test_the_model_reward_of_each_world():
    """E r(x) under the model from the records: direction·d·μ̂ (Gaussian), Σ_k w_k direction·μ_k
    (mixture), Σ_k p_k direction·k (categorical); None for a quadratic reward."""
    cur = {"reward": "linear", "direction": 2.0}
    rec = {"mean": np.array([[0.5, 1.0]])}
    np.testing.assert_allclose(curation_rules.model_reward({"name": "gaussian", "d": 3}, cur, rec), [[3.0, 6.0]])
    rec = {"weights": np.array([[[0.25, 0.75]]]), "means": np.array([[[[-2.0], [2.0]]]])}
    np.testing.assert_allclose(curation_rules.model_reward({"name": "gmm", "d": 1}, cur, rec), [[2.0]])
    rec = {"probs": np.array([[[0.5, 0.0, 0.5]]])}
    np.testing.assert_allclose(curation_rules.model_reward({"name": "categorical"}, cur, rec), [[2.0]])
    assert curation_rules.model_reward({"name": "categorical"}, {"reward": "quadratic"}, rec) is None
