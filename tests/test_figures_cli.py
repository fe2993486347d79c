"""figures/cli.py: the command line every figure script shares."""

import pytest

from collapse_sim.experiments.config import Config, RunConfig
from collapse_sim.simulator.driver import run_saved as run_experiment
from collapse_sim.figures import gmm, regression
from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds.regression import RegressionConfig


def test_renders_saved_runs_and_prints_the_files(tmp_path, capsys):
    cfg = Config(
        world=RegressionConfig(d=3, T=12),
        regime=regime_config("replace"),
        run=RunConfig(n_generations=2, n_seeds=4, theory_designs=4, progress=False, figure=False),
    )
    run_experiment(cfg, tmp_path / "runs" / "replace")
    regression.main([str(tmp_path / "runs"), "--out", str(tmp_path / "fig")])
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(tmp_path / "fig" / f"regression.{ext}") for ext in ("pdf", "png"))
    assert all((tmp_path / "fig" / f"regression.{ext}").stat().st_size > 1000 for ext in ("pdf", "png"))

    with pytest.raises(SystemExit) as e:  # runs of another world: nothing this figure can draw
        gmm.main([str(tmp_path / "runs"), "--generations", "0", "1"])
    assert e.value.code == 2
    assert "no gmm-world runs with recorded parameters under" in capsys.readouterr().err


def test_a_missing_path_is_a_usage_error_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        regression.main([str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert f"no such result path: {tmp_path / 'nowhere'}" in capsys.readouterr().err
