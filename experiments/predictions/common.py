"""The format every predictor returns, and its small constructors.

``{"kind", "source", "units", "curves": {name: array(G+1)}}`` plus, for curves of mixed status,
``curve_kinds``: each curve's status, ``exact`` (an expectation at the run's sizes), ``limit`` (a
large-sample limit: n → ∞, K → ∞ or M → ∞, shown beside the Monte Carlo, never its expectation) or
``bound``.  ``kind`` is ``exact`` when every curve is exact, else ``limit`` or ``bound``; ``none``
when nothing applies (then no curves: nothing is filled in with a number the theory does not give).
"""

from __future__ import annotations

NONE = {"kind": "none", "source": None, "units": {}, "curves": {}}


def none(source: str, units=None) -> dict:
    return {**NONE, "source": source, "units": units or {}}


def out(curves: dict, kinds: dict, source: str, units=None) -> dict:
    statuses = set(kinds.values())
    kind = "exact" if statuses == {"exact"} else ("limit" if "limit" in statuses else "bound")
    return {"kind": kind, "source": source, "units": units or {}, "curves": curves, "curve_kinds": kinds}


def curated(regime_cfg) -> bool:
    cur = getattr(regime_cfg, "curation", None)
    return cur is not None and cur.active
