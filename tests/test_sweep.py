"""A sweep's jobs that differ only in traced numbers run as one compiled call (the grid
launcher, ``hydra/launcher=grid``, and ``simulator/sweep.py``), and each job's folder holds
what a separate run of it writes: the same numbers seed for seed, resumable, its failure its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import collapse_sim as cs
from collapse_sim.simulator import checkpoint, driver, sweep
from collapse_sim.simulator.progress import Progress

SMALL = dict(d=3, T=10, n_seeds=4, n_generations=3, chunk_generations=2, theory_designs=20, progress=False)
FRACTIONS = (0.2, 0.5, 0.7)


def cli(tmp_path, *args):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLLAPSE_SIM_NO_CACHE": "1"}
    base = ["--multirun", "regime=mix", "world.d=3", "world.T=10", "run.n_seeds=4", "run.n_generations=3",
            "run.chunk_generations=2", "run.theory_designs=20", "run.figure=false", f"hydra.sweep.dir={tmp_path}"]
    return subprocess.run([sys.executable, "-m", "collapse_sim", *base, *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path)


def saved(tmp_path) -> dict:
    out = {}
    for meta in tmp_path.glob("regression/mix/*/results.json"):
        r = cs.Records.load(meta.parent)
        out[r.config["regime"]["real_fraction"]] = (r, json.loads(meta.read_text()))
    return out


def test_a_command_line_sweep_runs_as_one_grid_call_with_the_numbers_of_separate_runs(tmp_path):
    p = cli(tmp_path, "regime.real_fraction=" + ",".join(map(str, FRACTIONS)))
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.count("compiling") == 1  # one program for the three jobs
    runs = saved(tmp_path)
    assert sorted(runs) == list(FRACTIONS)
    for j, f in enumerate(FRACTIONS):
        r, meta = runs[f]
        assert meta["grid"]["points"] == 3 and meta["grid"]["point"] == j
        alone = cs.simulate("regression", "mix", real_fraction=f, **SMALL)
        for name in alone.keys():
            np.testing.assert_allclose(r[name], alone[name], rtol=1e-13, atol=0, err_msg=name)
    # the same command again finds every job complete; each job's .hydra folder is hydra's own
    again = cli(tmp_path, "regime.real_fraction=" + ",".join(map(str, FRACTIONS)))
    assert again.returncode == 0 and again.stderr.count("already complete") == 3, again.stderr[-2000:]
    assert len(list(tmp_path.glob("regression/mix/*/.hydra/overrides.yaml"))) == 3


def test_jobs_that_differ_in_T_run_as_one_padded_grid_and_a_lone_job_alone(tmp_path):
    p = cli(tmp_path, "regime.real_fraction=0.2,0.7", "world.T=10,12")
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.count("compiling") == 1  # T is padded (simulator/padding.py): one program
    runs = [cs.Records.load(m.parent) for m in tmp_path.glob("regression/mix/*/results.json")]
    assert sorted((r.config["world"]["T"], r.meta["grid"]["points"]) for r in runs) == [(10, 4), (10, 4), (12, 4),
                                                                                          (12, 4)]
    for r in runs:
        alone = cs.simulate("regression", "mix", real_fraction=r.config["regime"]["real_fraction"],
                            **{**SMALL, "T": r.config["world"]["T"]})
        np.testing.assert_allclose(r["test_error"], alone["test_error"], rtol=1e-12, atol=0)
    jobs = [sweep.Job(cs.experiment("regression", "mix", real_fraction=f, **SMALL), tmp_path / f"j{f}", "j")
            for f in (0.2, 0.7)]
    other = sweep.Job(cs.experiment("regression", "accumulate_subsample", **{**SMALL, "T": 12}), tmp_path / "x", "x")
    assert sweep.groups(jobs) == [[0, 1]] and sweep.groups([jobs[0], other]) == []
    text = [sweep.Job(cs.experiment("ngram", "mix", real_fraction=f), tmp_path / f"t{f}", "t") for f in (0.2, 0.7)]
    assert sweep.groups(text) == []  # a text world's jobs run one by one


def jobs_in(tmp_path, precision="float64", sigmas=(1.0, 1.0)):
    return [sweep.Job(cs.experiment("regression", "mix", real_fraction=f, sigma=s, precision=precision, **SMALL),
                      tmp_path / f"run{i}", f"run{i}") for i, (f, s) in enumerate(zip((0.2, 0.7), sigmas))]


def test_a_grid_call_interrupted_leaves_checkpoints_that_each_job_resumes(tmp_path, monkeypatch):
    jobs = jobs_in(tmp_path)

    def stop(self, done, n, seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", stop)  # after the first chunk's checkpoints are written
    with pytest.raises(KeyboardInterrupt):
        sweep.run_saved_grid(jobs)
    monkeypatch.undo()
    for job in jobs:
        assert checkpoint.saved_generation(job.out_dir, driver.run_key(job.config)) == 2
    assert sweep.groups(jobs) == []  # each resumes on its own
    for job in jobs:
        assert sweep.outcome(job.config, job.out_dir) is None
        r = cs.Records.load(driver.run_saved(job.config, job.out_dir))
        alone = cs.simulate("regression", "mix", real_fraction=job.config.regime.real_fraction, **SMALL)
        np.testing.assert_allclose(r["test_error"], alone["test_error"], rtol=1e-13, atol=0)


def test_a_point_that_fails_fails_alone(tmp_path, monkeypatch):
    jobs = jobs_in(tmp_path)
    first_bad = driver._first_bad

    def second_point_diverges(records, g0):  # the point with 70% real rows "diverges" after generation 0
        if g0 > 0 and "real_share" in records and np.isclose(records["real_share"], 0.7).all():
            return "test_error", g0, [1, 3]
        return first_bad(records, g0)

    monkeypatch.setattr(driver, "_first_bad", second_point_diverges)
    assert sweep.run_saved_grid(jobs) == [0, 1]
    ok, bad = (sweep.outcome(j.config, j.out_dir) for j in jobs)
    assert ok == jobs[0].out_dir and (ok / "records.npz").is_file()
    assert isinstance(bad, FloatingPointError) and "seeds [1, 3]" in str(bad) and "nothing of this run" in str(bad)
    assert not (jobs[1].out_dir / "records.npz").exists()


def test_a_job_whose_config_fails_its_checks_is_left_to_its_own_run(tmp_path):
    bad = jobs_in(tmp_path, precision="float32", sigmas=(1.0, 1e30))  # σ² overflows float32
    assert sweep.run_saved_grid(bad) == []
    three = [*jobs_in(tmp_path / "b"), bad[1]]
    assert sweep.run_saved_grid(three) == [0, 1]
    assert sweep.outcome(bad[1].config, bad[1].out_dir) is None
    with pytest.raises(ValueError, match=r"world.sigma=1e\+30 is too large"):
        driver.run_saved(bad[1].config, bad[1].out_dir)


def test_run_with_a_grid_saves_each_point_in_its_own_folder_from_one_call(tmp_path):
    paths = cs.run("regression", "mix", out_dir=tmp_path, grid={"real_fraction": [0.2, 0.7], "sigma": [1.0]},
                   **SMALL)
    assert [p.name for p in paths] == ["real_fraction=0.2,sigma=1.0", "real_fraction=0.7,sigma=1.0"]
    together = cs.simulate("regression", "mix", grid={"real_fraction": [0.2, 0.7], "sigma": [1.0]}, **SMALL)
    for path, mem in zip(paths, together):
        saved = cs.Records.load(path)
        assert saved.meta["grid"]["points"] == 2
        np.testing.assert_allclose(saved["test_error"], mem["test_error"], rtol=1e-13, atol=0)
    again = cs.run("regression", "mix", out_dir=tmp_path, grid={"real_fraction": [0.2, 0.7], "sigma": [1.0]},
                   **SMALL)
    assert again == paths  # complete: found, not run again
    rules = [dict(rule="verifier", centre=0.0, half_width=1.0), dict(rule="verifier", centre=0.5, half_width=2.0)]
    named = cs.run("gaussian", "replace", out_dir=tmp_path / "g", grid={"curation": rules}, d=2, M=12,
                   n_seeds=3, n_generations=2, progress=False)
    assert [p.name for p in named] == ["curation#0", "curation#1"]


def test_the_programs_of_jobs_run_one_by_one_are_compiled_first_on_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSE_SIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COLLAPSE_SIM_NO_CACHE", raising=False)
    from collapse_sim.simulator import compute

    small = {**SMALL, "d": 4, "T": 11}  # programs no other test compiles
    jobs = [sweep.Job(cs.experiment("regression", r, **small), tmp_path / r, r) for r in ("replace", "accumulate")]
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: nothing to compile beside")
    assert sweep.precompile(jobs) == 2
    for job in jobs:
        prog = compute.build(job.config, store=True)
        assert not prog.compile(prog.blank(), True, check_only=True)  # its program is ready
        r = cs.Records.load(driver.run_saved(job.config, job.out_dir))
        alone = cs.simulate("regression", job.config.regime.name, **small)
        np.testing.assert_allclose(r["test_error"], alone["test_error"], rtol=1e-13, atol=0)
    assert sweep.precompile(jobs) == 0  # complete now: nothing to compile


def test_ctrl_c_during_a_grid_call_says_what_each_job_has_saved(tmp_path):
    import signal
    import time

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLLAPSE_SIM_NO_CACHE": "1"}
    args = ["--multirun", "regime=mix", "regime.real_fraction=0.2,0.7", "world.d=3", "world.T=10", "run.n_seeds=4",
            "run.n_generations=3000", "run.chunk_generations=1", "run.theory_designs=20", "run.figure=false",
            f"hydra.sweep.dir={tmp_path}"]
    p = subprocess.Popen([sys.executable, "-m", "collapse_sim", *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=env, cwd=tmp_path)
    for line in p.stderr:  # a line per chunk once the grid call runs
        if "generation 2/3000" in line:
            break
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(timeout=60) == 130, rest[-2000:]
    said = [line for line in rest.splitlines() if "interrupted" in line]
    assert len(said) == 2 and all("are saved in" in line or "no generation" in line for line in said), rest[-2000:]
    assert {"regime.real_fraction=0.2" in said[0], "regime.real_fraction=0.2" in said[1]} == {True, False}
    assert "Traceback" not in rest


def test_runs_of_generation_0_only_are_saved_alone_and_in_a_grid(tmp_path):
    """n_generations=0 (a single fit, as experiment=strong_collapse): a chunk of no generations."""
    kw = dict(n_generations=0, d=3, n_seeds=4, theory_designs=20, progress=False)
    alone = cs.Records.load(cs.run("regression", "replace", out_dir=tmp_path / "alone", T=10, **kw))
    grid = [cs.Records.load(p) for p in cs.run("regression", "replace", out_dir=tmp_path / "grid",
                                                 grid={"T": [10, 20]}, **kw)]
    assert alone["test_error"].shape == (4, 1) and grid[0].meta["grid"]["points"] == 2
    np.testing.assert_allclose(grid[0]["test_error"], alone["test_error"], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(alone["test_error"], cs.simulate("regression", "replace", T=10, **kw)["test_error"])
