"""The distribution-world figures render from tiny saved results, alone and through figures.render.

The saved results are synthetic but shaped by the real code: record names and shapes come from
``jax.eval_shape`` of the world's evaluate (no compile), the theory curves from the real
predictors, so a change of either format breaks these tests.
"""

import dataclasses
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from collapse_sim.experiments.predictions import predict
from collapse_sim.figures import categorical as fig_categorical
from collapse_sim.figures import gaussian as fig_gaussian
from collapse_sim.figures import gmm as fig_gmm
from collapse_sim.figures import kazdan as fig_kazdan
from collapse_sim.figures import render
from collapse_sim.simulator import results
from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds import categorical, gaussian, gmm, kde, make_world

G, S = 6, 5


def record_shapes(world_cfg) -> dict:
    world = make_world(world_cfg)
    key = jax.random.key(0)
    truth = jax.eval_shape(world.init, key)
    rows = jax.eval_shape(lambda k, t: world.real(k, t, 0), key, truth)
    params = jax.eval_shape(lambda k, r: world.fit(k, r, None), key, rows)
    return {k: v.shape for k, v in jax.eval_shape(world.evaluate, truth, params).items()}


def save_run(path, world_cfg, regime: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    records = {}
    for name, shape in record_shapes(world_cfg).items():
        records[name] = rng.uniform(0.1, 1.0, size=(S, G + 1) + shape)
    if "covs" in records:  # the density snapshots need a valid mixture
        K, d = records["means"].shape[2:]
        records["covs"] = np.broadcast_to(np.eye(d), (S, G + 1, K, d, d)).copy()
        records["weights"] = np.full((S, G + 1, K), 1.0 / K)
    regime_cfg = regime_config(regime)
    run_cfg = SimpleNamespace(n_generations=G, n_seeds=S, seed=0, theory_designs=2)
    theory = predict(world_cfg, regime_cfg, run_cfg)
    records |= {f"theory/{k}": v for k, v in theory.pop("curves").items()}
    meta = {
        "config": {
            "world": dataclasses.asdict(world_cfg),
            "regime": dataclasses.asdict(regime_cfg),
            "run": {"n_seeds": S, "n_generations": G},
        },
        "theory": theory,
    }
    results.save(path, records, meta)
    return path


CASES = [
    (fig_gaussian, "gaussian_collapse", [(gaussian.Config(d=1, M=10), "replace"), (gaussian.Config(d=1, M=30), "replace")]),
    (fig_kazdan, "kazdan_gaussian", [(gaussian.Config(d=3, M=12, estimator="mle"), r) for r in
                                     ("replace", "accumulate", "accumulate_subsample")]),
    (fig_gmm, "gmm_collapse", [(gmm.Config(M=20), r) for r in ("replace", "mix", "accumulate")]),
    (fig_categorical, "categorical_tails", [(categorical.Config(V=5, M=8, dist="zipf"), r) for r in
                                            ("replace", "accumulate")]),
]


@pytest.mark.parametrize("module, stem, runs", CASES, ids=[c[1] for c in CASES])
def test_figure_renders_pdf_and_png(tmp_path, module, stem, runs):
    dirs = [save_run(tmp_path / f"run{i}", cfg, regime, i) for i, (cfg, regime) in enumerate(runs)]
    paths = module.plot(dirs, tmp_path / "out")
    assert [p.name for p in paths] == [f"{stem}.pdf", f"{stem}.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_render_dispatches_each_run_to_the_figures_that_apply(tmp_path):
    save_run(tmp_path / "g1", gaussian.Config(d=1, M=10), "replace")
    save_run(tmp_path / "g3", gaussian.Config(d=3, M=12), "accumulate")
    save_run(tmp_path / "kde", kde.Config(M=8, n_test=4), "replace")
    assert fig_gaussian.plot([tmp_path / "g3"], tmp_path / "x") == []
    assert fig_kazdan.plot([tmp_path / "g1"], tmp_path / "x") == []
    names = {p.name for p in render.render_path(tmp_path)}
    assert names == {f"{s}.{e}" for s in ("gaussian_collapse", "kazdan_gaussian") for e in ("pdf", "png")}
