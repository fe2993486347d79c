"""Hydra launcher ``hydra/launcher=grid`` (collapse-sim's default): a sweep's jobs that differ
only in traced numbers run as one compiled call.

Hydra's basic launcher runs the jobs one after another.  This one composes every job's
config first, hands them to ``collapse_sim.experiments.main.run_grids`` (which runs each
group of jobs sharing a program as one call of ``simulator/sweep.py``, the grid points
vmapped beside the seeds, and saves every job's folder), then goes through the jobs as the
basic launcher does: each job's folder, its ``.hydra`` configs, its callbacks and its line,
the simulation already done for the jobs of a grid.  ``collapse-sim`` registers it
(``Plugins.register``) so that it is found from an editable install too.
"""

# No ``from __future__ import annotations``: hydra's plugin scan runs this module before it is
# in ``sys.modules``, where a dataclass with string annotations cannot be built.
import dataclasses
import logging
from pathlib import Path

from omegaconf import open_dict

from hydra.core.utils import configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher

log = logging.getLogger(__name__)


@dataclasses.dataclass
class GridLauncherConf:
    _target_: str = "hydra_plugins.collapse_sim_launcher.GridLauncher"


def _keep_composed(loader) -> None:
    """Hydra's basic sweeper composes every job's config to check a batch before launching it;
    the launcher then takes those configs instead of composing each one again (hydra composes a
    config in about 0.1-0.2 s)."""
    if getattr(loader, "_collapse_sim_kept", None) is not None:
        return
    compose, kept = loader.load_sweep_config, {}

    def load_sweep_config(master_config, sweep_overrides):
        key = (id(master_config), tuple(sweep_overrides))
        if key in kept:
            return kept.pop(key)  # the second request for a job takes the first one's config
        kept[key] = compose(master_config, sweep_overrides)
        return kept[key]

    loader.load_sweep_config = load_sweep_config
    loader._collapse_sim_kept = kept


class GridLauncher(Launcher):
    def __init__(self) -> None:
        super().__init__()
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        _keep_composed(hydra_context.config_loader)

    def launch(self, job_overrides, initial_job_idx):
        from collapse_sim.experiments.main import run_grids

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally")
        configs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            configs.append(sweep_config)
        self.hydra_context.config_loader._collapse_sim_kept.clear()  # this batch's configs are taken
        run_grids(configs)
        runs = []
        for idx, (overrides, sweep_config) in enumerate(zip(job_overrides, configs), start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            runs.append(run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                                config=sweep_config, job_dir_key="hydra.sweep.dir",
                                job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return runs
