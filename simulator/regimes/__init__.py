"""Regimes: how generation n's training set is built.  One module per regime,
each with its ``Config`` dataclass and its factory ``make(cfg, world, G)``;
the shared ``Regime`` type lives in ``regime.py``.

| name | generation n trains on | source |
|---|---|---|
| ``replace`` | model n-1's samples only | Shumailov et al. 2024; Dohmatob et al. 2024 |
| ``mix`` | a real share (fresh or original rows), the rest synthetic | He, Xu & Cheng 2025; Shumailov et al. 2024 |
| ``accumulate`` | the real data plus all earlier synthetic data | Gerstgrasser et al. 2024 |
| ``accumulate_subsample`` | a fixed-size subsample of that pool | Kazdan et al. 2024 |
| ``token_edit`` | the previous data with scheduled rows rewritten | Zhu et al. 2024 (ToEdit) |
| ``weighted`` | (model) w·fit(fresh real rows) + (1−w)·fit(synthetic rows) | He, Xu & Cheng 2025 |

``replace``, ``mix``, ``accumulate`` and ``accumulate_subsample`` also take a
``curation`` (``simulator/curation.py``): a rule that keeps some of more proposed
synthetic rows (verifier, best_of_k, preference, top_fraction).
"""

from __future__ import annotations

import dataclasses
import importlib

from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig
from collapse_sim.simulator.world import World

__all__ = ["REGIMES", "Regime", "RegimeConfig", "config", "config_class", "make_regime", "regime_module"]

REGIMES = {
    "replace": "collapse_sim.simulator.regimes.replace",
    "mix": "collapse_sim.simulator.regimes.mix",
    "accumulate": "collapse_sim.simulator.regimes.accumulate",
    "accumulate_subsample": "collapse_sim.simulator.regimes.accumulate_subsample",
    "token_edit": "collapse_sim.simulator.regimes.token_edit",
    "weighted": "collapse_sim.simulator.regimes.weighted",
}


def regime_module(name: str):
    if name not in REGIMES:
        raise ValueError(f"regime={name!r} is not known; allowed: {', '.join(REGIMES)}")
    return importlib.import_module(REGIMES[name])


def config_class(name: str) -> type:
    return regime_module(name).Config


def fields_of(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "name"]


def config(name: str, **fields) -> RegimeConfig:
    """The config of regime ``name`` with the given fields; a field the regime does
    not have is an error that lists the fields it has."""
    cls = config_class(name)
    allowed = fields_of(cls)
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        has = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"regime {name!r} has no field {', '.join(unknown)}; its fields: {has}")
    return cls(**fields)


def make_regime(cfg: RegimeConfig, world: World, n_generations: int) -> Regime:
    """Build the regime's (init, step) pair for a world and a run length."""
    if not isinstance(cfg, RegimeConfig):
        raise TypeError(f"make_regime takes a regime config (regimes.config(name, ...)), got {type(cfg).__name__}")
    return regime_module(cfg.name).make(cfg, world, n_generations)
