"""Traced numbers (simulator/traced.py): runs that differ only in them share one compiled
program, a grid of them runs as one vmapped call with the numbers of separate runs seed for
seed, and grid points share their random draws unless common random numbers are off."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import collapse_sim as cs
from collapse_sim.simulator import compute, traced
from collapse_sim.simulator.api import grid_experiments
from collapse_sim.simulator.worlds.regression import RegressionConfig

SMALL = dict(d=3, T=10, n_seeds=6, n_generations=3, chunk_generations=2, theory_designs=20)


def executables() -> int:
    """Programs compiled by compute.build's cache so far (one XLA compilation each)."""
    return sum(len(p.executables) for p in compute._PROGRAMS.values())


def test_a_sweep_over_traced_numbers_compiles_once_and_its_grid_equals_separate_runs():
    compute._PROGRAMS.clear()
    fractions, sigmas = [0.1, 0.5, 0.9], [0.5, 2.0]
    separate = {(p, s): cs.simulate("regression", "mix", real_fraction=p, sigma=s, **SMALL)
                for p in fractions for s in sigmas}
    assert executables() == 1  # six runs, one program
    grid = cs.simulate("regression", "mix", grid={"real_fraction": fractions, "sigma": sigmas}, **SMALL)
    assert executables() == 2  # the grid is one more program: six points in one call
    for r, (p, s) in zip(grid, [(p, s) for p in fractions for s in sigmas]):
        assert r.config["regime"]["real_fraction"] == p and r.config["world"]["sigma"] == s
        for name in separate[p, s].keys():
            np.testing.assert_array_equal(r[name], separate[p, s][name], err_msg=name)
        for name in separate[p, s].theory:
            np.testing.assert_array_equal(r.theory[name], separate[p, s].theory[name], err_msg=name)


def test_grid_points_share_random_numbers_unless_told_not_to():
    grid = {"real_fraction": [0.2, 0.8]}
    common = cs.simulate("regression", "mix", grid=grid, **SMALL)
    # generation 0 is fitted on the real data only: the same draws give the same fit
    np.testing.assert_array_equal(common[0]["test_error"][:, 0], common[1]["test_error"][:, 0])
    apart = cs.simulate("regression", "mix", grid=grid, common_random_numbers=False, **SMALL)
    assert not np.allclose(apart[0]["test_error"][:, 0], apart[1]["test_error"][:, 0])
    alone = cs.simulate("regression", "mix", real_fraction=0.8, common_random_numbers=False, **SMALL)
    np.testing.assert_array_equal(apart[1]["test_error"], alone["test_error"])


def test_shapes_and_code_paths_stay_static():
    # T is a shape, ridge > 0 a code path: each value of them is a skeleton of its own
    a, b = cs.experiment("regression", "mix", d=3, T=10), cs.experiment("regression", "mix", d=3, T=12)
    assert compute.skeleton(a) != compute.skeleton(b)
    ols, ridge = cs.experiment("regression", "mix", ridge=0.0), cs.experiment("regression", "mix", ridge=0.1)
    assert compute.skeleton(ols) != compute.skeleton(ridge)
    r1, r2 = cs.experiment("regression", "mix", ridge=0.1), cs.experiment("regression", "mix", ridge=0.3)
    assert compute.skeleton(r1) == compute.skeleton(r2)
    assert traced.structure(RegressionConfig(shift_share=0.01, T=40)) == {"ridge": False, "shifted": False}
    # a grid over a shape that is not padded (simulator/padding.py) runs one program per size
    compute._PROGRAMS.clear()
    grid = cs.simulate("regression", "accumulate_subsample", grid={"T": [10, 12], "sigma": [0.5, 1.0]}, d=3,
                       n_seeds=2, n_generations=1, theory_designs=20)
    assert executables() == 2
    assert [r["test_error"].shape for r in grid] == [(2, 2)] * 4
    assert [r.config["world"]["T"] for r in grid] == [10, 10, 12, 12]


def test_a_grid_needs_a_list_of_values():
    with pytest.raises(ValueError, match=r"grid\['real_fraction'\]=0.3 is not allowed"):
        cs.simulate("regression", "mix", grid={"real_fraction": 0.3}, **SMALL)
    with pytest.raises(ValueError, match="real_fraction= is given both"):
        cs.simulate("regression", "mix", grid={"real_fraction": [0.3]}, real_fraction=0.2, **SMALL)
    with pytest.raises(ValueError, match=r"grid\['sigma'\]=\[\] is not allowed"):
        cs.simulate("regression", "mix", grid={"sigma": []}, **SMALL)
    points = grid_experiments("regression", "mix", {"real_fraction": (f for f in (0.2, 0.4))}, {})
    assert [e.regime.real_fraction for e in points] == [0.2, 0.4]  # a generator is read once, not consumed twice


def test_a_command_line_sweep_over_a_traced_field_compiles_once(tmp_path):
    args = ["--multirun", "regime=mix", "regime.real_fraction=0.2,0.7", "world.d=3", "world.T=10",
            "run.n_seeds=4", "run.n_generations=2", "run.theory_designs=20", f"hydra.sweep.dir={tmp_path}",
            "run.figure=false", "run.progress=false", "hydra/launcher=basic"]  # jobs one after another
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLLAPSE_SIM_NO_CACHE": "1"}
    p = subprocess.run([sys.executable, "-m", "collapse_sim", *args], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    runs = sorted(tmp_path.glob("regression/mix/*/results.json"))
    assert len(runs) == 2
    compiled = [json.loads(r.read_text())["compile"]["programs"] for r in runs]
    assert sorted(compiled)[0] == 0 and sorted(compiled)[1] >= 1  # the second job compiles nothing
    a, b = (cs.Records.load(r.parent) for r in runs)
    np.testing.assert_array_equal(a["test_error"][:, 0], b["test_error"][:, 0])  # common random numbers


def test_the_new_run_switches_at_their_defaults_keep_the_hash_of_earlier_runs():
    from collapse_sim.simulator.driver import run_key

    exp = cs.experiment("regression", "mix", **SMALL)
    # the hash of this config before the switch existed (computed by the code of that time)
    plain = {k: v for k, v in vars(exp.run).items() if k not in ("common_random_numbers", "compile_effort")}
    from collapse_sim.simulator import checkpoint
    from collapse_sim.simulator.driver import PRESENTATION_FIELDS

    before = {"world": vars(exp.world).copy(), "regime": exp.regime.numbers(),
              "run": {k: v for k, v in plain.items() if k not in PRESENTATION_FIELDS}}
    assert run_key(exp) == checkpoint.config_hash(before)
    apart = cs.experiment("regression", "mix", common_random_numbers=False, **SMALL)
    assert run_key(apart) != run_key(exp)
    assert run_key(cs.experiment("regression", "mix", compile_effort="full", **SMALL)) != run_key(exp)


TINY = dict(n_seeds=3, n_generations=2, chunk_generations=2)
GAUSS = dict(d=2, M=12)
# (world, regime, fixed fields, grid): each grid sweeps traced numbers only
SWEEPS = {
    "categorical": ("categorical", "replace", dict(V=4, M=20),
                    {"temperature": [0.5, 2.0], "smoothing": [0.0, 0.5]}),
    "kde": ("kde", "replace", dict(M=12, n_test=16, true_K=2),
            {"h": [0.3, 0.8], "separation": [2.0, 3.0], "spread": [0.5, 1.0]}),
    "gmm": ("gmm", "replace", dict(M=12, K=2, true_K=2, em_iters=2, kmeans_iters=1, tail_points=8,
                                   record_params=False),
            {"separation": [2.0, 3.0], "spread": [0.7, 1.0], "reg": [1e-3], "mode_radius": [0.5],
             "mode_weight": [0.1], "tail_k": [1.0, 2.5]}),
    "regression_power": ("regression", "replace", dict(d=3, T=10, spectrum="power_law", theory_designs=20),
                         {"power": [0.5, 1.5]}),
    "gaussian_power": ("gaussian", "replace", dict(GAUSS, spectrum="power_law"), {"power": [0.5, 1.5]}),
    "weighted": ("gaussian", "weighted", GAUSS, {"weight": [0.2, 0.7]}),
    "token_edit": ("regression", "token_edit", dict(d=3, T=10, theory_designs=20), {"q": [0.1, 0.5]}),
    "window": ("gaussian", "mix", GAUSS, {"curation": [dict(rule="verifier", centre=c, half_width=h)
                                                        for c, h in ((0.0, 1.0), (0.5, 2.0))]}),
    "yi_verifier": ("regression", "replace", dict(d=3, T=10, theory_designs=20),
                    {"curation": [dict(rule="verifier", bias=b, gamma=g) for b, g in ((0.0, 0.0), (0.3, 0.2))]}),
    "preference": ("gaussian", "accumulate_subsample", GAUSS,
                   {"curation": [dict(rule="preference", K=2, beta=b) for b in (0.5, 2.0)]}),
    "top_fraction": ("categorical", "replace", dict(V=4, M=20),
                     {"curation": [dict(rule="top_fraction", keep_fraction=a, reward="quadratic", target=t)
                                   for a, t in ((0.4, 1.0), (0.45, 2.0))]}),
    "best_of_k": ("gaussian", "accumulate", GAUSS,
                  {"curation": [dict(rule="best_of_k", K=2, direction=v) for v in ([1.0, -1.0], [0.5, 2.0])]}),
}


GRID_TOO = ("categorical", "weighted", "window", "best_of_k")  # nested and list numbers stacked on a grid axis


@pytest.mark.parametrize("case", list(SWEEPS))
def test_a_sweep_over_each_worlds_and_regimes_traced_numbers_compiles_once(case):
    world, regime, fixed, grid = SWEEPS[case]
    compute._PROGRAMS.clear()
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    alone = [cs.simulate(world, regime, **TINY, **fixed, **point) for point in points]
    assert executables() == 1, case  # every point runs the one program
    # the numbers reach the program: the first and last point record different values
    assert any(not np.array_equal(alone[0][n], alone[-1][n], equal_nan=True) for n in alone[0].keys()), case
    if case in GRID_TOO:
        together = cs.simulate(world, regime, grid=grid, **TINY, **fixed)
        assert executables() == 2
        for r, a in zip(together, alone):
            for name in a.keys():
                np.testing.assert_array_equal(r[name], a[name], err_msg=f"{case}: {name}")


def test_what_a_traced_curation_number_decides_stays_static():
    def skel(**curation):
        return compute.skeleton(cs.experiment("gaussian", "replace", curation=curation))

    # top_fraction proposes ⌈1/α⌉ sets: α = 0.4 and 0.45 share a program, 0.5 does not
    top = dict(rule="top_fraction")
    assert skel(**top, keep_fraction=0.4) == skel(**top, keep_fraction=0.45) != skel(**top, keep_fraction=0.5)
    # a list direction is a (D,) argument, one number a scalar
    best = dict(rule="best_of_k")
    assert skel(**best, direction=1.0) == skel(**best, direction=-2.0) != skel(**best, direction=[1.0, 2.0])
    # K and rounds set shapes
    assert skel(**best, K=2) != skel(**best, K=3)
    # a rule reads only its own numbers, and no curation traces none
    assert traced.numbers(cs.experiment("gaussian", "replace").regime) == {}
    assert set(traced.numbers(cs.experiment("gaussian", "replace", curation=dict(rule="preference")).regime)) == {
        "curation.beta", "curation.direction"}
    # weight golden is static; the temperature τ = 1 samples p̂ itself
    assert traced.numbers(cs.experiment("gaussian", "weighted").regime) == {}
    one, two = (cs.experiment("categorical", "replace", temperature=t) for t in (1.0, 2.0))
    assert compute.skeleton(one) != compute.skeleton(two)
