"""Hydra callback: render figures from the saved results once the jobs are done.

Figures are drawn from the files a run wrote, never by the simulation code;
this callback only calls the figure scripts on the finished output.  A single
run's figure goes into its own folder; a sweep's figure combines the runs that
this sweep wrote and goes to ``<sweep dir>/figures/<overrides>/`` (figures/render.py picks
the figures; runs that differ in swept parameters get figures/sweep.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from collapse_sim.simulator import results


class RenderFigures(Callback):
    def __init__(self) -> None:
        self.started = None
        self.jobs: list[Path] = []  # the folders of this sweep's jobs run in this process

    def _render(self, config: DictConfig, runs, out_dir) -> None:
        if not config.run.get("figure", True) or not runs:
            return
        from collapse_sim.figures.render import render_runs

        try:
            outs = render_runs(runs, out_dir)
        except (ValueError, OSError) as e:  # the results are saved; only the figure is missing
            print(f"[collapse-sim] no figure drawn ({e}); the results are saved: "
                  f"python -m collapse_sim.figures.render PATH redraws them", flush=True)
            return
        for out in outs:
            print(f"[collapse-sim] figure: {out}", flush=True)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.run.out_dir or config.hydra.runtime.output_dir)
        if (path / results.RECORDS).is_file():
            self._render(config, [path], path)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        self.jobs = []

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        self.jobs.append(Path(config.run.out_dir or config.hydra.runtime.output_dir).resolve())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from collapse_sim.experiments.main import _dir_name

        root = Path(config.run.out_dir or config.hydra.sweep.dir)
        if not root.exists():
            return
        # The runs of this sweep: its jobs' folders (a job already complete from an earlier,
        # interrupted invocation included), and results newer than its start (jobs that ran in
        # other processes, e.g. under the joblib launcher)
        since = (self.started or 0.0) - 1.0
        jobs = set(self.jobs)
        runs = [r for r in results.find_runs(root)
                if r.resolve() in jobs or (r / results.META).stat().st_mtime >= since]
        self._render(config, runs, root / "figures" / _dir_name(list(config.hydra.overrides.task)))
