"""The sweep's figure callback (experiments/callbacks.py) renders every run of the sweep."""

import os
import time

from omegaconf import OmegaConf

from collapse_sim.experiments import callbacks
from collapse_sim.simulator import results


def test_a_resumed_sweep_renders_its_jobs_that_were_complete_before_it_started(tmp_path, monkeypatch):
    """A job already complete from an interrupted invocation (its results older than this sweep's
    start) is one of the sweep's runs and joins its figure; an older run of another command in
    the same folder that is no job of this sweep does not."""
    old_job, new_job, stranger = (tmp_path / n for n in ("a=0.0", "a=0.5", "other"))
    for d in (old_job, new_job, stranger):
        d.mkdir()
        (d / results.RECORDS).write_bytes(b"")
        (d / results.META).write_text("{}")
    hour_ago = time.time() - 3600
    for d in (old_job, stranger):
        os.utime(d / results.META, (hour_ago, hour_ago))
    drawn = []
    monkeypatch.setattr("collapse_sim.figures.render.render_runs", lambda runs, out: drawn.append(list(runs)) or [])

    def config(out_dir=None):
        return OmegaConf.create({"run": {"out_dir": out_dir, "figure": True},
                                 "hydra": {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["a=0.0,0.5"]},
                                           "runtime": {"output_dir": "unused"}}})

    cb = callbacks.RenderFigures()
    cb.on_multirun_start(config())
    for job in (old_job, new_job):
        cb.on_job_end(config(str(job)))
    cb.on_multirun_end(config())
    assert drawn == [[old_job, new_job]]
