"""The public Python API: simulate (in memory) = run (saved) = the CLI, one set of defaults,
foreign fields rejected, tidy frames with theory, and one importable name from a wheel."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import collapse_sim as cs
from collapse_sim.simulator import regimes
from collapse_sim.simulator.driver import PRESENTATION_FIELDS, run_key
from collapse_sim.simulator.run_config import RunConfig
from collapse_sim.simulator.worlds import WORLDS, world_module

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(d=3, T=10, n_seeds=8, n_generations=3, theory_designs=20)


def test_simulate_equals_run_and_load_bit_for_bit(tmp_path):
    mem = cs.simulate("regression", "mix", real_fraction=0.3, chunk_generations=2, **SMALL)
    path = cs.run("regression", "mix", real_fraction=0.3, chunk_generations=2, out_dir=tmp_path, progress=False, **SMALL)
    saved = cs.Records.load(path)
    assert set(mem.keys()) == set(saved.keys()) and set(mem.theory) == set(saved.theory)
    for k in mem.keys():
        np.testing.assert_array_equal(mem[k], saved[k])
    for k in mem.theory:
        np.testing.assert_array_equal(mem.theory[k], saved.theory[k])
    assert mem.config["world"] == saved.config["world"] and mem.config["regime"] == saved.config["regime"]
    skip = set(PRESENTATION_FIELDS)
    assert {k: v for k, v in mem.config["run"].items() if k not in skip} == {
        k: v for k, v in saved.config["run"].items() if k not in skip
    }


@pytest.mark.parametrize("grid", [None, {"reg": [1e-6, 1e-3]}])
def test_records_of_several_values_keep_them_after_the_generation_axis(tmp_path, grid):
    """A record holding a vector per seed (the mixture's fitted means) has the shape
    (seeds, generations, ...) in memory, in a grid and saved, and the same numbers."""
    small = dict(K=2, M=40, n_seeds=3, n_generations=2, progress=False)
    path = cs.run("gmm", "replace", out_dir=tmp_path, **small)
    saved = cs.Records.load(path)
    points = cs.simulate("gmm", "replace", grid=grid, **small) if grid else [cs.simulate("gmm", "replace", **small)]
    for mem in points:
        assert mem["means"].shape == saved["means"].shape == (3, 3, 2, 2)
    np.testing.assert_array_equal(points[0]["means"], saved["means"])


def test_simulate_equals_the_cli(tmp_path):
    args = ["regime=accumulate", "world.d=3", "world.T=10", "run.n_seeds=8", "run.n_generations=3",
            "run.theory_designs=20", f"run.out_dir={tmp_path}", "hydra.mode=RUN", "run.figure=false", "run.progress=false"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, "-m", "collapse_sim", *args], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    cli = cs.Records.load(tmp_path)
    mem = cs.simulate("regression", "accumulate", **SMALL)
    np.testing.assert_array_equal(mem["test_error"], cli["test_error"])


def _compose(overrides):
    from collapse_sim.experiments.config import register

    register()
    with initialize_config_module(version_base="1.3", config_module="collapse_sim.experiments.conf"):
        return OmegaConf.to_object(compose("config", overrides=overrides))


@pytest.mark.parametrize("name", list(regimes.REGIMES))
def test_python_and_cli_defaults_agree_for_every_regime(name):
    assert _compose([f"regime={name}"]).regime == regimes.config(name)


@pytest.mark.parametrize("name", list(WORLDS))
def test_python_and_cli_defaults_agree_for_every_world(name):
    assert _compose([f"world={name}"]).world == world_module(name).Config()


def test_the_run_defaults_are_the_dataclass_defaults_outside_an_experiment():
    """experiment=regimes (the default command) sets its own run size; without it the run
    settings are RunConfig's."""
    composed = _compose(["~experiment"]).run
    assert dataclasses.replace(composed, experiment="") == RunConfig()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cs.simulate("regression", "replace", q=0.9), r"q=0.9 is not a field of the run, of world 'regression' or of regime 'replace'"),
        (lambda: cs.simulate("regression", "recycle"), r"regime='recycle' is not known; allowed: replace, mix"),
        (lambda: cs.simulate("banana"), r"world='banana' is not known"),
        (lambda: cs.simulate("regression", regimes.config("mix"), real_fraction=0.5), r"real_fraction given with a regime config object"),
        (lambda: regimes.config("token_edit", real_fraction=0.5), r"regime 'token_edit' has no field real_fraction; its fields: edit_source"),
    ],
)
def test_foreign_fields_and_unknown_names_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_an_inert_field_changes_neither_the_hash_nor_the_numbers():
    exp = cs.experiment("regression", "token_edit", schedule="full", **SMALL)
    inert = cs.experiment("regression", "token_edit", schedule="full", q=0.9, **SMALL)
    live = cs.experiment("regression", "token_edit", schedule="bernoulli", q=0.9, **SMALL)
    assert run_key(exp) == run_key(inert) != run_key(live)
    assert run_key(cs.experiment("regression", "mix", real_source="fresh", resample_real=False, **SMALL)) == run_key(
        cs.experiment("regression", "mix", real_source="fresh", **SMALL)
    )


def test_to_frame_has_the_documented_columns_and_the_theory():
    r = cs.simulate("regression", "replace", **SMALL)
    frame = r.to_frame()
    assert {"seed", "generation", "metric", "value", "theory", "theory_se", "theory_bound"} <= set(frame.columns)
    te = frame[frame.metric == "test_error"]
    assert len(te) == 8 * 4
    np.testing.assert_array_equal(te.pivot(index="seed", columns="generation", values="value").to_numpy(), r["test_error"])
    np.testing.assert_allclose(te.groupby("generation")["theory"].first().to_numpy(), r.theory["prediction"])
    assert frame[frame.metric != "test_error"]["theory"].isna().all()
    lo, hi = r.band()
    assert np.all(lo < r.mean()) and np.all(r.mean() < hi)


def test_tidy_reads_saved_runs_with_config_and_theory(tmp_path):
    for regime in ("replace", "accumulate"):
        cs.run("regression", regime, out_dir=tmp_path / regime, progress=False, **SMALL)
    table = cs.tidy(tmp_path)
    assert set(table["regime.name"]) == {"replace", "accumulate"} and set(table["world.d"]) == {3}
    rec = cs.Records.load(tmp_path / "accumulate")
    sel = table[(table["regime.name"] == "accumulate") & (table.metric == "test_error") & (table.seed == 5) & (table.generation == 2)]
    assert sel["value"].item() == rec["test_error"][5, 2]
    assert sel["theory"].item() == rec.theory["prediction"][2] and sel["theory_bound"].item() == rec.theory["bound"][2]


def test_version_is_the_package_version():
    p = subprocess.run([sys.executable, "-m", "collapse_sim", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == f"collapse-sim {cs.__version__}" and cs.__version__ != "0+unknown"


def test_a_wheel_installs_one_top_level_name_that_user_folders_do_not_shadow(tmp_path):
    """Built as a wheel (not editable) and installed alone into a fresh environment, the
    project adds the single top-level package ``collapse_sim`` (and its launcher in hydra's
    plugin namespace, which hydra's scan finds there); from a folder holding the user's own
    ``experiments/`` and ``figures/`` packages it still imports and runs."""
    wheels = tmp_path / "wheels"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    (wheel,) = wheels.glob("collapse_sim-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist() if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"collapse_sim", "hydra_plugins"}, tops
    plugins = {n.split("/")[1] for n in zipfile.ZipFile(wheel).namelist() if n.startswith("hydra_plugins/")}
    assert plugins == {"collapse_sim_launcher"}, plugins
    assert any(n.endswith("experiments/conf/regime/mix.yaml") for n in zipfile.ZipFile(wheel).namelist())
    site = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    user = tmp_path / "user"
    for pkg in ("experiments", "figures", "simulator", "theory"):
        (user / pkg).mkdir(parents=True)
        (user / pkg / "__init__.py").write_text("raise ImportError('the user package, not the project')\n")
    # -S: no site-packages of this environment (so not the editable checkout); the dependencies
    # come from this environment's site-packages placed after the wheel's folder.
    deps = [p for p in sys.path if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *deps]), "JAX_PLATFORMS": "cpu"}
    code = ("import collapse_sim, collapse_sim.experiments.main, collapse_sim.figures.render as f; "
            "assert collapse_sim.__file__.startswith(%r), collapse_sim.__file__; print(collapse_sim.__version__)" % str(site))
    p = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=user)
    assert p.returncode == 0, p.stderr[-2000:]
    args = ["-m", "collapse_sim", "world.d=2", "world.T=8", "run.n_seeds=2", "run.n_generations=1", "run.theory_designs=10",
            "run.figure=false", "run.progress=false", "hydra.mode=RUN", f"run.out_dir={tmp_path / 'out'}", "~experiment"]
    p = subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True, env=env, cwd=user)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "out" / "records.npz").is_file()
    code = ("from hydra.core.plugins import Plugins; "
            "print('hydra_plugins.collapse_sim_launcher.GridLauncher' in Plugins.instance().class_name_to_class)")
    p = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=user)
    assert p.stdout.strip() == "True", p.stderr[-2000:]  # found by hydra's own scan, not only registered
