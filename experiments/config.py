"""Structured configs: the schema of every hydra option.

The world and regime dataclasses live in ``simulator`` (no hydra there); this
module registers them with hydra's ConfigStore and adds the run settings.
YAML options under ``conf/{world,regime,experiment}`` name their schema in
``defaults:`` so a wrong type or an unknown key fails at composition.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from collapse_sim.simulator.regimes import REGIMES, regime_module
from collapse_sim.simulator.run_config import PRECISIONS, SEED_MAX, RunConfig  # noqa: F401 (re-exported)
from collapse_sim.simulator.worlds import WORLDS, world_module


@dataclasses.dataclass
class Config:
    world: Any = MISSING
    regime: Any = MISSING
    run: RunConfig = dataclasses.field(default_factory=RunConfig)


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for name in REGIMES:
        cs.store(group="regime", name=f"{name}_schema", node=regime_module(name).Config)
    for name in WORLDS:
        cs.store(group="world", name=f"{name}_schema", node=world_module(name).Config)
    # The default launcher: found by hydra's plugin scan in an installed wheel, registered
    # here for an editable install (whose namespace packages the scan does not see).
    from hydra.core.plugins import Plugins
    from hydra_plugins.collapse_sim_launcher import GridLauncher, GridLauncherConf

    Plugins.instance().register(GridLauncher)
    cs.store(group="hydra/launcher", name="grid", node=GridLauncherConf, provider="collapse_sim")
