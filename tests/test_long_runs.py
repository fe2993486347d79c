"""Long runs: resume after SIGKILL bit-identically, stop on NaN, shard seeds, tidy loading."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from collapse_sim.experiments.config import Config, RunConfig
from collapse_sim.simulator.driver import run_saved as run_experiment
from collapse_sim.simulator import checkpoint, results
from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds.regression import RegressionConfig

ROOT = Path(__file__).resolve().parents[1]


def small(**run):
    base = dict(n_generations=6, n_seeds=12, chunk_generations=2, theory_designs=20, progress=False, figure=False)
    return Config(
        world=RegressionConfig(d=3, T=12),
        regime=regime_config("replace"),
        run=RunConfig(**(base | run)),
    )


# The run the SIGKILL test interrupts, built the same way in the child process and here: each
# chunk of one generation takes long enough (about 0.1 s) for the parent, which polls the
# checkpoint every 20 ms, to see it mid-run even when the child loads its program compiled.
LONG_RUN = """
Config(world=RegressionConfig(d=30, T=120), regime=regime_config("accumulate"),
       run=RunConfig(n_generations=20, n_seeds=512, chunk_generations=1, theory_designs=20,
                     progress=False, figure=False))
"""


def saved_generation(folder) -> int:
    """The generation the checkpoint file in ``folder`` holds (-1 if none can be read now)."""
    try:
        with np.load(Path(folder) / checkpoint.STATE) as z:
            return json.loads(str(z["info"]))["generation"]
    except (OSError, ValueError, KeyError):
        return -1


def test_sigkill_mid_run_then_resume_is_bit_identical(tmp_path, capsys):
    """A run killed by SIGKILL in another process resumes here from its last checkpoint and
    ends with exactly the records of a run never interrupted."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from collapse_sim.experiments.config import Config, RunConfig
        from collapse_sim.simulator.driver import run_saved as run_experiment
        from collapse_sim.simulator.regimes import config as regime_config
        from collapse_sim.simulator.worlds.regression import RegressionConfig
        """
    ) + f"run_experiment({LONG_RUN.strip()}, sys.argv[1])\n"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", script, str(killed)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and saved_generation(killed) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    g_killed = saved_generation(killed)
    assert 3 <= g_killed < 20 and not (killed / results.RECORDS).exists(), "the run finished before it was killed"

    cfg = eval(LONG_RUN)  # the child's config, so the checkpoint's config hash matches
    run_experiment(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, progress=True)), killed)
    assert f"resuming from generation {g_killed} " in capsys.readouterr().err
    run_experiment(cfg, tmp_path / "clean")
    a, _ = results.load(killed)
    b, _ = results.load(tmp_path / "clean")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_ctrl_c_says_where_to_resume_and_the_rerun_finishes_the_same_run(tmp_path, capsys, monkeypatch):
    """KeyboardInterrupt after the second chunk (Ctrl-C): the run names the saved generations and
    the command that resumes; running again finishes with the records of an uninterrupted run."""
    from collapse_sim.simulator import driver as run_module

    real_update, calls = run_module.Progress.update, []

    def interrupt_on_second_chunk(self, done, n, dt):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_update(self, done, n, dt)

    monkeypatch.setattr(run_module.Progress, "update", interrupt_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(small(), tmp_path / "cut")
    err = capsys.readouterr().err
    assert f"interrupted; generations 0..4 are saved in {tmp_path / 'cut'}" in err
    assert "run the same command to resume from generation 4" in err
    monkeypatch.setattr(run_module.Progress, "update", real_update)
    a, _ = results.load(run_experiment(small(progress=True), tmp_path / "cut"))
    assert "resuming from generation 4" in capsys.readouterr().err
    b, _ = results.load(run_experiment(small(), tmp_path / "clean"))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_changed_config_never_resumes_an_old_checkpoint(tmp_path, capsys):
    run_experiment(small(n_generations=4), tmp_path)
    old_hash = checkpoint.stored_hash(tmp_path)
    run_experiment(small(n_generations=4, seed=1), tmp_path)
    assert checkpoint.stored_hash(tmp_path) != old_hash
    assert "another config; starting afresh" in capsys.readouterr().err
    rec_new, _ = results.load(tmp_path)
    rec_fresh, _ = results.load(run_experiment(small(n_generations=4, seed=1), tmp_path / "fresh"))
    np.testing.assert_array_equal(rec_new["test_error"], rec_fresh["test_error"])


def test_resume_false_starts_afresh(tmp_path, capsys):
    run_experiment(small(n_generations=4, progress=True), tmp_path)
    run_experiment(small(n_generations=4, progress=True, resume=False), tmp_path)
    assert "resuming" not in capsys.readouterr().err


def test_non_finite_record_stops_with_generation_and_seeds(tmp_path, monkeypatch):
    """Synthetic labels that turn NaN from generation 2 on make NaN fits: the run stops after
    the chunk that recorded them, naming the record, generation and seeds, with the chunk
    before kept on disk."""
    import jax.numpy as jnp

    from collapse_sim.simulator import driver
    from collapse_sim.simulator.worlds import make_world

    def world_with_nan_samples(cfg):
        world = make_world(cfg)

        def sample(key, truth, params, g):
            rows = world.sample(key, truth, params, g)
            return rows | {"y": rows["y"] * jnp.where(g >= 2, jnp.nan, 1.0)}

        return world._replace(sample=sample)

    monkeypatch.setattr(driver.compute, "make_world", world_with_nan_samples)
    monkeypatch.setattr(driver.compute, "_PROGRAMS", type(driver.compute._PROGRAMS)())  # no program of another world
    # the first chunk (generations 0..2) recorded them: nothing is saved yet
    with pytest.raises(FloatingPointError, match=r"record '[a-z_]+' is not finite at generation 2 for seeds \[0, 1, 2, 3\]; "
                       r"nothing of this run is saved"):
        run_experiment(small(n_seeds=4, n_generations=4), tmp_path)
    assert saved_generation(tmp_path) == -1


def test_non_finite_state_stops_the_run_though_every_record_is_finite(tmp_path, monkeypatch):
    """Rows of an accumulated pool that carry a NaN no metric reads (an extra column, NaN in
    the synthetic rows from generation 3 on) stop the run after the chunk that made them,
    naming the state, the generation and the seeds, with generations 0..2 kept."""
    import jax.numpy as jnp

    from collapse_sim.simulator import driver as run_module
    from collapse_sim.simulator.worlds import make_world

    def world_with_a_bad_column(cfg):
        world = make_world(cfg)

        def real(key, truth, g):
            rows = world.real(key, truth, g)
            return rows | {"shadow": jnp.zeros_like(rows["weight"])}

        def sample(key, truth, params, g):
            rows = world.sample(key, truth, params, g)
            return rows | {"shadow": jnp.where(g >= 3, jnp.nan, 0.0) * jnp.ones_like(rows["weight"])}

        # without sufficient statistics (World.summarize) accumulate carries the pool of rows
        return world._replace(real=real, sample=sample, summarize=None, fit_summary=None)

    monkeypatch.setattr(run_module.compute, "make_world", world_with_a_bad_column)
    monkeypatch.setattr(run_module.compute, "_PROGRAMS", type(run_module.compute._PROGRAMS)())
    cfg = small(n_seeds=3)
    cfg = dataclasses.replace(cfg, regime=regime_config("accumulate"))
    with pytest.raises(FloatingPointError, match=r"'shadow'.* is not finite after generation 4 for seeds \[0, 1, 2\]; "
                       r"generations 0..2 are saved"):
        run_experiment(cfg, tmp_path)
    assert saved_generation(tmp_path) == 2


def test_seeds_sharded_over_four_devices_equal_one_device(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import jax
        from collapse_sim.experiments.config import Config, RunConfig
        from collapse_sim.simulator.driver import run_saved as run_experiment
        from collapse_sim.simulator.regimes import config as regime_config
        from collapse_sim.simulator.worlds.regression import RegressionConfig
        print(len(jax.devices()))
        cfg = Config(world=RegressionConfig(d=3, T=12), regime=regime_config("mix", real_source="fresh"),
                     run=RunConfig(n_generations=4, n_seeds=10, theory_designs=20, progress=False, figure=False))
        run_experiment(cfg, sys.argv[1])
        """
    )
    outs = {}
    for n_dev in (1, 4):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_dev}"}
        out = tmp_path / f"dev{n_dev}"
        p = subprocess.run([sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        assert p.stdout.split()[0] == str(n_dev)
        outs[n_dev], meta = results.load(out)
        assert len(meta["devices"]) == n_dev
    assert outs[4]["test_error"].shape == (10, 5)  # 10 seeds padded to 12 on 4 devices, padding dropped
    np.testing.assert_array_equal(outs[1]["test_error"], outs[4]["test_error"])


def test_a_finished_run_drops_its_state_and_is_not_redone(tmp_path, capsys):
    run_experiment(small(n_generations=2, progress=True), tmp_path)
    assert not (tmp_path / checkpoint.STATE).exists()
    before = (tmp_path / results.RECORDS).stat().st_mtime_ns
    run_experiment(small(n_generations=2, progress=True), tmp_path)
    assert "already complete" in capsys.readouterr().err
    assert (tmp_path / results.RECORDS).stat().st_mtime_ns == before


def test_seed_batches_give_the_numbers_of_one_batch(tmp_path):
    a, _ = results.load(run_experiment(small(n_generations=3, n_seeds=10, seed_batch=4), tmp_path / "a"))
    b, _ = results.load(run_experiment(small(n_generations=3, n_seeds=10, seed_batch=0), tmp_path / "b"))
    assert a["test_error"].shape == (10, 4)
    np.testing.assert_allclose(a["test_error"], b["test_error"], rtol=1e-12)
