"""Checks shared by the world configs: each raises ValueError naming ``world.<field>``,
its value and what is allowed, before anything is compiled.

Two kinds: :func:`number` and :func:`whole` check a field on its own (run when a
config is made); :func:`representable` checks that the largest quantity a world
forms from a field stays finite in the run's precision (run by ``make_world``,
which knows the dtype).
"""

from __future__ import annotations

import math

import numpy as np

# Factor kept below the dtype's largest number by :func:`representable`, for what a world
# multiplies a field's square by (dimensions, rows, generations, heavy tails).
HEADROOM = 1e12


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def number(name: str, value, *, low=None, high=None, low_open=False, inf_ok=False, why: str = "") -> None:
    """A real number in [low, high] ((low, high] with ``low_open``); NaN never, infinity only
    with ``inf_ok`` (where the field's docstring says what it means)."""
    ok = _is_number(value) and not math.isnan(value) and (inf_ok or math.isfinite(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if ok:
        return
    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"<= {high:g}"
    bound = " and ".join(b for b in (lo, hi) if b)
    kind = "a number (infinity allowed)" if inf_ok else "a finite number"
    raise ValueError(f"world.{name}={value!r} must be {kind}{' ' + bound if bound else ''}"
                     f"{' (' + why + ')' if why else ''}")


def whole(name: str, value, minimum: int, what: str) -> None:
    """A whole number >= ``minimum`` (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"world.{name}={value!r} must be a whole number of {what} >= {minimum}")


def limit(dtype, power: float = 2.0, factor: float = 1.0) -> float:
    """Largest x with factor · x**power <= finfo(dtype).max / HEADROOM."""
    return float((np.finfo(dtype).max / HEADROOM / factor) ** (1.0 / power))


def smallest(dtype, power: float = 2.0, factor: float = 1.0) -> float:
    """Smallest x > 0 with factor · x**power >= finfo(dtype).tiny * HEADROOM."""
    return float((np.finfo(dtype).tiny * HEADROOM / factor) ** (1.0 / power))


def representable(name: str, value, dtype, *, power: float = 2.0, factor: float = 1.0, what: str = "",
                  small: bool = False) -> None:
    """``factor · value**power`` (what the world computes from the field, ``what``) must stay
    HEADROOM below the largest finite number of ``dtype`` and, with ``small``, for a value
    > 0, HEADROOM above the smallest normal one; the message gives the limits in both
    precisions."""
    dtype = np.dtype(dtype)
    what = what or f"{name}^{power:g}"
    if abs(value) > limit(dtype, power, factor):
        both = ", ".join(f"{limit(np.dtype(t), power, factor):.3g} in {t}" for t in ("float32", "float64"))
        raise ValueError(
            f"world.{name}={value!r} is too large for run.precision={dtype.name}: the world computes "
            f"{what}, which must stay {HEADROOM:.0e} times below the largest {dtype.name} "
            f"({np.finfo(dtype).max:.3g}); allowed: |world.{name}| <= {both}"
        )
    if small and 0 < abs(value) < smallest(dtype, power, factor):
        both = ", ".join(f"{smallest(np.dtype(t), power, factor):.3g} in {t}" for t in ("float32", "float64"))
        raise ValueError(
            f"world.{name}={value!r} is too small for run.precision={dtype.name}: the world computes "
            f"{what}, which must stay {HEADROOM:.0e} times above the smallest normal {dtype.name} "
            f"({np.finfo(dtype).tiny:.3g}); allowed: world.{name} >= {both}"
        )
