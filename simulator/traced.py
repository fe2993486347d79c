"""Traced numbers: the config fields that enter a compiled run as arguments, not constants.

A world or regime config names its traced fields in a class attribute ``TRACED`` (a
tuple of field names): numbers that set no shape and choose no code path (a noise
level, a ridge penalty, a share of real rows).  Everything else is static: it is read
in Python while the program is traced, so a change of it is a new program.

- :func:`numbers` gives a config's traced values (concrete, checked when the config was
  made), :func:`skeleton` the config with them blanked: two runs whose skeletons agree
  run one compiled program, with their numbers as its arguments (``simulator/compute.py``
  caches programs by skeleton and vmaps a grid of numbers beside the seeds).
- :func:`with_numbers` is the config rebuilt inside the trace with tracers in place of
  the numbers; world and regime code then uses those fields in ``jnp`` arithmetic only.
  A traced field whose value still picks a code path (``ridge > 0``: OLS or ridge) says
  so in the config's ``structure()``, a dict of the static facts its numbers decide;
  the structure is part of the skeleton and :func:`structure` reads it from either form.
- :func:`count` is round(share·n) as an int (a number) or an int32 array (a tracer),
  for shares that pick how many rows a mask selects.

A field that holds a config with its own ``TRACED`` (a regime's ``curation``) is traced
with it: its numbers are named ``field.name`` (``curation.half_width``), its skeleton
and structure sit inside the outer one, and :func:`with_numbers` rebuilds it too.  A
config whose traced fields depend on its values may give ``TRACED`` as a property.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import jax.numpy as jnp

_TRACED_MARK = "_traced_structure"


def _own(cfg) -> tuple[str, ...]:
    return tuple(getattr(cfg, "TRACED", ()))


def _nested(cfg) -> list[str]:
    """The fields of ``cfg`` that hold a config with traced fields of its own."""
    if not dataclasses.is_dataclass(cfg):
        return []
    return [f.name for f in dataclasses.fields(cfg) if traced_fields(getattr(cfg, f.name, None))]


def traced_fields(cfg) -> tuple[str, ...]:
    """``cfg``'s traced fields, those of a nested config as ``field.name``."""
    if cfg is None or isinstance(cfg, (str, int, float, list, dict, tuple)):
        return ()
    inner = tuple(f"{n}.{f}" for n in _nested(cfg) for f in traced_fields(getattr(cfg, n)))
    return _own(cfg) + inner


def numbers(cfg) -> dict:
    """{field: value} of the traced fields of ``cfg`` (concrete Python numbers)."""
    out = {f: getattr(cfg, f) for f in _own(cfg)}
    for n in _nested(cfg):
        out.update({f"{n}.{f}": v for f, v in numbers(getattr(cfg, n)).items()})
    return out


def is_traced(cfg) -> bool:
    """True for a config made by :func:`with_numbers` (its traced fields hold tracers)."""
    return _TRACED_MARK in vars(cfg)


def structure(cfg) -> dict:
    """The static facts that ``cfg``'s traced numbers decide (``cfg.structure()``), from a
    concrete config or from one made by :func:`with_numbers`."""
    if is_traced(cfg):
        return vars(cfg)[_TRACED_MARK]
    return cfg.structure() if hasattr(cfg, "structure") else {}


def skeleton(cfg) -> dict:
    """The config as a plain dict with its traced fields blanked, plus its structure."""
    out = dataclasses.asdict(cfg)
    for f in _own(cfg):
        out[f] = None
    for n in _nested(cfg):
        out[n] = skeleton(getattr(cfg, n))
    out["__structure__"] = structure(cfg)
    return out


def with_numbers(cfg, values: dict):
    """A copy of ``cfg`` whose traced fields hold ``values`` (tracers inside a trace); no
    validation runs (the concrete config was checked when it was made)."""
    if not traced_fields(cfg):
        return cfg
    out = copy.copy(cfg)
    vars(out).update({f: values[f] for f in _own(cfg)})
    for n in _nested(cfg):
        inner = {f[len(n) + 1:]: v for f, v in values.items() if f.startswith(n + ".")}
        vars(out)[n] = with_numbers(getattr(cfg, n), inner)
    vars(out)[_TRACED_MARK] = structure(cfg)
    return out


def count(share, n):
    """round(share · n), half to even (Python's ``round`` and ``jnp.round`` agree): an int for
    numbers, an int32 array when either is a tracer (``n``: a padded grid's count of rows)."""
    if isinstance(share, (int, float)) and isinstance(n, int):
        return int(round(share * n))
    return jnp.round(share * n).astype(jnp.int32)


def as_arrays(values: dict, dtype) -> dict:
    """Traced numbers as arrays of the run's float dtype (what the compiled program takes)."""
    return {part: {f: jnp.asarray(v, dtype) for f, v in fields.items()} for part, fields in values.items()}


def key_of(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
