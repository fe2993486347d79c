"""Worlds: what is fitted and sampled, one module per world.

Each world module exposes ``Config`` (a dataclass, also the hydra schema of
``world=<name>``) and ``make_world(config) -> simulator.world.World``.
"""

from __future__ import annotations

import importlib

# name -> module; modules are imported on demand so that a light world does not
# pay for importing a heavy one (the transformer imports flax and optax).
WORLDS = {
    "regression": "collapse_sim.simulator.worlds.regression",
    "gaussian": "collapse_sim.simulator.worlds.gaussian",
    "gmm": "collapse_sim.simulator.worlds.gmm",
    "kde": "collapse_sim.simulator.worlds.kde",
    "categorical": "collapse_sim.simulator.worlds.categorical",
    "ngram": "collapse_sim.simulator.worlds.ngram",
    "transformer": "collapse_sim.simulator.worlds.transformer",
}


def world_module(name: str):
    if name not in WORLDS:
        raise ValueError(f"world.name={name!r} is not known; allowed: {', '.join(WORLDS)}")
    return importlib.import_module(WORLDS[name])


def make_world(cfg):
    """Build the world named by ``cfg.name`` from its config dataclass."""
    return world_module(cfg.name).make_world(cfg)
