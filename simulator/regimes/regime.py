"""The shared regime type and the base of every regime's config.

A regime builds generation n's training set from the real data, model n-1's
samples and (where needed) the pool of earlier data, as pure functions closed
over its static config and the world:

- ``init(key, truth, real, params0) -> state`` with ``real`` the generation-0
  (real) training set and ``params0`` the model fitted on it;
- ``step(key, state, truth, params, g) -> (train, state, stats)`` builds the
  training set of generation ``g >= 1`` from ``params`` = model g-1;
- ``initial_train(real) -> train``: generation 0's training set, the real data
  laid out as the regime's later training sets are (``accumulate`` puts it in
  its pool), so every generation's fit sees the same shapes;
- ``fit(key, train, params0) -> params``: optional; a regime that fits generation
  ``g >= 1`` itself (``weighted`` averages a fit on real rows with a fit on
  synthetic rows, so its ``train`` holds both tables; ``accumulate`` fits the running
  summary of its pool with ``world.fit_summary``).  The loop calls it in
  place of ``world.fit`` when given; generation 0 is always ``world.fit`` of
  ``initial_train(real)``.

Regimes that compose with curation (``replace``, ``mix``, ``accumulate``,
``accumulate_subsample``) have a ``curation`` field (``simulator/curation.py``)
and draw their synthetic rows through ``curation.source``; with
``curation.rule=none`` (the default) that is ``world.sample`` itself.

Shapes are static: a growing pool is preallocated for every generation and
masked by row weights.  Every regime splits its key the same way
(``sample, real, mask``), so ``token_edit`` with the ``full`` schedule draws
exactly the labels ``replace`` draws.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple, Optional


def _same(real):
    return real


class Regime(NamedTuple):
    name: str
    init: Callable[..., Any]
    step: Callable[..., tuple]
    initial_train: Callable[[dict], dict] = _same
    fit: Optional[Callable[..., Any]] = None


def split_keys(key):
    """(sample, real, mask): the one key split every regime uses."""
    import jax

    k_sample, k_real, k_mask = jax.random.split(key, 3)
    return k_sample, k_real, k_mask


@dataclasses.dataclass
class RegimeConfig:
    """Base of the per-regime configs: ``name`` is the regime's own name (set by
    each subclass; a config of one regime cannot carry another's name)."""

    name: str = ""

    NAME = ""  # the subclass's regime name (a class attribute, not a field)

    def __post_init__(self):
        if self.name == "":
            self.name = self.NAME
        if self.name != self.NAME:
            raise ValueError(
                f"regime.name={self.name!r} does not match the config class {type(self).__name__} "
                f"(regime {self.NAME!r}); build another regime's config with regimes.config(name, ...)"
            )
        if hasattr(self, "curation"):
            from collapse_sim.simulator.curation import as_config

            self.curation = as_config(self.curation)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the offending value and what is allowed."""

    def numbers(self) -> dict:
        """The fields that can change a run's numbers (the run hash covers exactly
        these); a field that a setting makes inert is left out."""
        return dataclasses.asdict(self)


def curated_numbers(cfg, out: dict) -> dict:
    """``out`` (a regime's numbers) with its ``curation`` entry reduced to the fields the
    rule reads, or dropped without curation (so an uncurated run keeps its hash)."""
    out = dict(out)
    if cfg.curation.active:
        out["curation"] = cfg.curation.numbers()
    else:
        out.pop("curation", None)
    return out


def check_choice(field: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"regime.{field}={value!r} is not known; allowed: {', '.join(allowed)}")


def check_real(field: str, value, lo: float, hi: float, *, lo_open=False, hi_open=False) -> None:
    """A finite number in [lo, hi] (or the open ends asked for)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"regime.{field}={value!r} must be a finite number in {interval}")


def check_count(field: str, value, lo: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < lo:
        raise ValueError(f"regime.{field}={value!r} must be a whole number >= {lo}")
