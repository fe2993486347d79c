"""Compiled programs kept on disk by their config (simulator/program_store.py): a rerun
loads them without tracing or compiling, with the same numbers; an entry that does not
load is compiled again; an executable that JAX served from its own cache is never stored
(it would not run when loaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import collapse_sim as cs

ARGS = ["regime=mix", "world.d=3", "world.T=10", "run.n_seeds=4", "run.n_generations=2", "run.theory_designs=20",
        "run.figure=false", "hydra.mode=RUN", "~experiment"]


def cli(tmp_path, *args):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLLAPSE_SIM_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("COLLAPSE_SIM_NO_CACHE", None)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    p = subprocess.run([sys.executable, "-m", "collapse_sim", *ARGS, f"run.out_dir={tmp_path / 'run'}", *args],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stderr, json.loads((tmp_path / "run" / "results.json").read_text())


def entries(tmp_path, kind="exe"):
    return sorted((tmp_path / "cache" / "programs").glob(f"*.{kind}"))


def test_a_rerun_loads_the_stored_program_and_computes_the_same_numbers(tmp_path):
    said, _ = cli(tmp_path)
    assert "compiling" in said and len(entries(tmp_path)) == 1 and len(entries(tmp_path, "shapes")) == 1
    first = cs.Records.load(tmp_path / "run")
    said, meta = cli(tmp_path, "run.resume=false")
    assert "compiling" not in said, said  # found in the store: nothing traced or compiled
    assert meta["compile"]["cache_hits"] >= 1
    again = cs.Records.load(tmp_path / "run")
    for name in first.keys():
        np.testing.assert_array_equal(again[name], first[name], err_msg=name)
    # an entry that does not load is compiled again and replaced
    (exe,) = entries(tmp_path)
    exe.write_bytes(exe.read_bytes()[:1000])
    said, _ = cli(tmp_path, "run.resume=false")
    assert "compiling" in said and entries(tmp_path)[0].stat().st_size > 1000
    np.testing.assert_array_equal(cs.Records.load(tmp_path / "run")["test_error"], first["test_error"])
    # off with the compilation cache
    said, meta = cli(tmp_path, "run.resume=false", "run.compile_cache=false")
    assert "compiling" in said and meta["compile"]["cache_dir"] is None


def test_a_program_that_jax_served_from_its_cache_is_not_stored(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLLAPSE_SIM_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("COLLAPSE_SIM_NO_CACHE", None)
    code = ("import sys, numpy as np, collapse_sim as cs; from collapse_sim.simulator import compute, provenance; "
            "compute.set_precision('float64'); provenance.enable_compile_cache(True); "
            "e = cs.experiment('regression', 'mix', d=3, T=10, n_seeds=4, n_generations=2, theory_designs=20); "
            "r = compute.run_all(compute.build(e, store=sys.argv[1] == 'store'), 2); "
            "print(float(np.asarray(r['test_error']).sum()))")
    runs = [subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, env=env)
            for how in ("jax_cache_only", "store", "store")]
    for p in runs:
        assert p.returncode == 0, p.stderr[-3000:]
    assert entries(tmp_path) == []  # JAX's cache served it both times: nothing stored, nothing broken
    assert len({p.stdout for p in runs}) == 1
