"""Traced numbers (simulator/traced.py): runs that differ only in them share one compiled
program, a grid of them runs as one vmapped call with the numbers of separate runs seed for
seed, and grid points share their random draws unless common random numbers are off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import collapse_sim as cs
from collapse_sim.simulator import compute, traced
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
    # a grid over a shape runs one program per size
    grid = cs.simulate("regression", "mix", grid={"T": [10, 12], "real_fraction": [0.3, 0.6]}, d=3, n_seeds=2,
                       n_generations=1, theory_designs=20)
    assert [r["test_error"].shape for r in grid] == [(2, 2)] * 4
    assert [r.config["world"]["T"] for r in grid] == [10, 10, 12, 12]


def test_a_grid_needs_a_list_of_values():
    with pytest.raises(ValueError, match=r"grid\['real_fraction'\]=0.3 is not allowed"):
        cs.simulate("regression", "mix", grid={"real_fraction": 0.3}, **SMALL)
    with pytest.raises(ValueError, match="real_fraction= is given both"):
        cs.simulate("regression", "mix", grid={"real_fraction": [0.3]}, real_fraction=0.2, **SMALL)


def test_a_command_line_sweep_over_a_traced_field_compiles_once(tmp_path):
    args = ["--multirun", "regime=mix", "regime.real_fraction=0.2,0.7", "world.d=3", "world.T=10",
            "run.n_seeds=4", "run.n_generations=2", "run.theory_designs=20", f"hydra.sweep.dir={tmp_path}",
            "run.figure=false", "run.progress=false"]
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
