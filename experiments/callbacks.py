"""Hydra callback: render figures from the saved results once the jobs are done.

Figures are drawn from the files a run wrote, never by the simulation code;
this callback only calls the figure scripts on the finished output directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class RenderFigures(Callback):
    def _render(self, config: DictConfig, path: str) -> None:
        if not config.run.get("figure", True):
            return
        from figures.render import render_path

        for out in render_path(Path(path)):
            print(f"[collapse-sim] figure: {out}", flush=True)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._render(config, config.run.out_dir or config.hydra.runtime.output_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._render(config, config.run.out_dir or config.hydra.sweep.dir)
