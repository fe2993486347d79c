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
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
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
    ],
)
def test_bad_input_fails_at_start_with_a_clear_message(tmp_path, override, message):
    p = cli(*override.split(), f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    assert p.returncode != 0
    assert message in p.stderr
    assert "Traceback" not in p.stderr
