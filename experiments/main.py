"""The single hydra entry point: ``collapse-sim [overrides]``.

Examples::

    collapse-sim                                    # every regime, regression world, then the figure
    collapse-sim world=regression regime=accumulate world.d=50 run.n_generations=30 run.n_seeds=256
    collapse-sim --multirun regime=replace,accumulate,mix
"""

from __future__ import annotations

import logging
import os
import sys

# JAX runs its LAPACK kernels (eigh, solve) through OpenBLAS, whose default of one
# thread per core is slower for the many small matrices of a simulation and
# collapses when another process shares the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from collapse_sim.experiments.config import register

register()


def _dir_name(overrides) -> str:
    """A folder name for a list of command-line overrides: the same command always
    maps to the same folder, so running it again can resume."""
    keep = [o for o in overrides if not o.startswith(("hydra.", "hydra/", "run.resume", "run.progress", "run.figure"))]
    return ",".join(sorted(keep)).replace("/", "_") or "default"


OmegaConf.register_new_resolver("dir_name", _dir_name, replace=True)


def fail(message: str) -> None:
    print(f"collapse-sim: error: {message}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from collapse_sim.simulator.driver import run_saved

    # Hydra sets every logger to INFO; JAX's backend probing is noise to a user.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

    try:
        config = OmegaConf.to_object(cfg)
    except (ValueError, OmegaConfBaseException) as e:
        fail(str(e).splitlines()[0])
    hc = HydraConfig.get()
    out_dir = hc.runtime.output_dir
    if config.run.out_dir:
        # In a sweep every job gets its own folder below run.out_dir.
        multirun = hc.mode is not None and hc.mode.name == "MULTIRUN"
        out_dir = Path(config.run.out_dir) / hc.sweep.subdir if multirun else config.run.out_dir
    try:
        path = run_saved(config, out_dir)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)  # the run has said where its checkpoint is; no traceback
    print(f"[collapse-sim] {config.world.name}/{config.regime.name}: results in {path}", flush=True)


def cli() -> None:
    main()


if __name__ == "__main__":
    cli()
