"""Configs compose, the entry point runs and saves, bad input fails at start."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from collapse_sim.experiments.config import register
from collapse_sim.simulator import results

register()
CONF = Path(__file__).resolve().parents[1] / "experiments" / "conf"
WORLDS = sorted(p.stem for p in (CONF / "world").glob("*.yaml"))
REGIMES = sorted(p.stem for p in (CONF / "regime").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def compose_config(overrides):
    with initialize_config_module(version_base="1.3", config_module="collapse_sim.experiments.conf"):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("regime", REGIMES)
def test_every_world_and_regime_composes_and_validates(world, regime):
    cfg = OmegaConf.to_object(compose_config([f"world={world}", f"regime={regime}"]))
    assert world.startswith(cfg.world.name) and cfg.regime.name == regime


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment):
    cfg = OmegaConf.to_object(compose_config([f"experiment={experiment}"]))
    assert cfg.run.n_seeds >= 1


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "collapse_sim.experiments.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        # its own compilation cache: a program stored by another run would skip the compiling looked for
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", "COLLAPSE_SIM_CACHE_DIR": str(Path(cwd) / "cache")},
    )


def test_entry_point_runs_saves_and_renders(tmp_path):
    out = tmp_path / "run"
    p = cli(
        "regime=accumulate",
        "world.d=3",
        "world.T=10",
        "run.n_generations=3",
        "run.n_seeds=16",
        "run.theory_designs=50",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"results in {out}" in p.stdout
    (run,) = results.find_runs(out)
    assert run == out  # one regime named: a single run, in hydra.run.dir
    rec, meta = results.load(run)
    assert rec["test_error"].shape == (16, 4)
    assert meta["config"]["regime"]["name"] == "accumulate"
    assert meta["config"]["world"]["d"] == 3
    assert meta["run_seconds"] > 0 and meta["versions"]["jax"]
    np.testing.assert_equal(rec["theory/prediction"].shape, (4,))
    assert (out / "regression.png").is_file() and (out / "regression.pdf").is_file()  # its figure in its folder
    assert "figure: " in p.stdout
    assert "compiling generation 0" in p.stderr and "compiling generation 0" in (out / "main.log").read_text()
    assert "compiling" not in p.stdout  # the collapse_sim logger's lines are not repeated by hydra's console
    json.loads((run / "results.json").read_text())


@pytest.mark.parametrize(
    "override, message",
    [
        ("regime=nope", "regime"),
        ("world.d=oops", "world.d"),
        ("world.nonexistent=1", "nonexistent"),
        ("world.T=5", "world.T=5 with world.d=10: ordinary least squares needs T >= d+2"),
        ("regime=mix regime.real_fraction=-0.5", "regime.real_fraction=-0.5 must be a finite number in [0, 1]"),
        ("run.precision=float16", "run.precision='float16' is not known; allowed: float32, float64"),
        ("regime.curation.rule=best_of_k", "regime.curation.rule=best_of_k needs a reward on its rows"),
        ("world=gaussian regime.curation.rule=verifier regime.curation.centre=50",
         "accepts none of the 100 real rows of generation 0 on world 'gaussian'"),
    ],
)
def test_bad_input_fails_at_start_with_a_clear_message(tmp_path, override, message):
    p = cli(*override.split(), f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    assert p.returncode != 0
    assert message in p.stderr
    assert "Traceback" not in p.stderr


def test_a_curated_run_from_the_command_line_matches_the_python_api(tmp_path):
    """regime.curation.* from the command line: the run saves the rule's records, and the Python
    API (``curation=`` a dict of the rule's fields) gives the same numbers for the same seeds."""
    import collapse_sim as cs

    out = tmp_path / "run"
    p = cli("world=categorical", "regime=replace", "regime.curation.rule=top_fraction", "regime.curation.keep_fraction=0.25",
            "world.M=40", "run.n_generations=2", "run.n_seeds=3", "run.figure=false", f"hydra.run.dir={out}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    rec, meta = results.load(out)
    assert meta["config"]["regime"]["curation"]["rule"] == "top_fraction"
    assert rec["accept_rate"].shape == (3, 3) and np.all(rec["accept_rate"][:, 1:] == 0.25)
    r = cs.simulate("categorical", "replace", curation={"rule": "top_fraction", "keep_fraction": 0.25}, M=40,
                    n_generations=2, n_seeds=3)
    for name in ("test_error", "entropy", "reward_mean", "reward_proposed", "train_rows"):
        np.testing.assert_array_equal(r[name], rec[name], err_msg=name)


@pytest.mark.parametrize("variant", ["curated_gaussian", "curated_gmm", "curated_categorical"])
def test_the_curation_experiment_builds_every_rule_on_its_world(variant):
    """experiment=curation_rules: each world's variant serves every rule, and the verifier's window
    accepts enough of the real rows to fill a set in its rounds (no warning)."""
    import warnings

    from collapse_sim.simulator.regimes import make_regime
    from collapse_sim.simulator.worlds import make_world

    for rule in ("verifier", "best_of_k", "preference", "top_fraction"):
        cfg = OmegaConf.to_object(compose_config(["experiment=curation_rules", f"+variant={variant}",
                                                  f"regime.curation.rule={rule}"]))
        assert cfg.world.name == variant.removeprefix("curated_") and cfg.run.experiment == "curation_rules"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            make_regime(cfg.regime, make_world(cfg.world), cfg.run.n_generations)


def test_the_temperature_phase_grid_straddles_the_stability_boundary():
    """experiment=temperature_phase sweeps (alpha, tau) cells on both sides of rho = 1
    (theory/temperature.py): stable at the lowest temperature for every share, the boundary crossed
    between two swept temperatures at three shares or more; a whole number of real rows in each."""
    from collapse_sim.theory import temperature as tt

    exp = OmegaConf.load(CONF / "experiment" / "temperature_phase.yaml")
    params = exp.hydra.sweeper.params
    alphas = [float(a) for a in str(params["regime.real_fraction"]).split(",")]
    taus = [float(t) for t in str(params["world.temperature"]).split(",")]
    M = compose_config(["experiment=temperature_phase"]).world.M
    assert all(abs(a * M - round(a * M)) < 1e-9 for a in alphas)
    stable = np.array([[tt.spectral_radius(a, t, M) < 1 for t in taus] for a in alphas])
    assert stable[:, 0].all()
    assert all(not np.any(np.diff(row.astype(int)) > 0) for row in stable)  # stable below a τ, unstable above
    assert sum(row.any() and not row.all() for row in stable) >= 3
