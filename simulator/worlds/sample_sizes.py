"""Per-generation sample sizes for the distribution worlds (gaussian, gmm, kde, categorical).

A world draws M_g samples at generation g.  The size is either constant
(``M``) or an explicit schedule ``M_schedule = [M_0, M_1, ...]``: generation g
uses ``M_schedule[min(g, len - 1)]``, so the last entry repeats (``[10, 20, 40,
80]`` grows for three generations, then stays at 80).  Shumailov et al. (2024,
SI §3.1.1) need M_g to grow superlinearly for the W_2 distance to stay finite.

Shapes stay static: every training set has ``max(M_g)`` rows and generation g
puts weight 1 on its first M_g rows and 0 on the rest, so a world's ``fit``
must honour weights.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def validate(M, schedule, minimum: int, why: str) -> None:
    """Raise ValueError naming the value when a size is not a whole number >= ``minimum``."""
    if schedule is None:
        if isinstance(M, bool) or not isinstance(M, (int, np.integer)) or M < minimum:
            raise ValueError(f"world.M={M!r} must be a whole number of samples >= {minimum} ({why})")
        return
    sizes = list(schedule)
    if not sizes:
        raise ValueError("world.M_schedule=[] must hold at least one size (or be null to use world.M)")
    for g, m in enumerate(sizes):
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < minimum:
            raise ValueError(f"world.M_schedule[{g}]={m!r} must be a whole number of samples >= {minimum} ({why})")


def schedule(M, M_schedule) -> np.ndarray:
    """The distinct sizes as an int array: ``[M]`` or ``M_schedule``."""
    return np.asarray([M] if M_schedule is None else list(M_schedule), dtype=np.int64)


def sizes(M, M_schedule, n_generations: int) -> np.ndarray:
    """M_g for g = 0..G (length G+1), the last schedule entry repeated."""
    s = schedule(M, M_schedule)
    return s[np.minimum(np.arange(n_generations + 1), s.size - 1)]


def n_rows(M, M_schedule) -> int:
    """Rows of one training set: the largest M_g."""
    return int(schedule(M, M_schedule).max())


def make_weights(M, M_schedule, dtype):
    """``weights(g) -> (N,)``: 1 on the first M_g rows, 0 elsewhere (g may be traced)."""
    s = schedule(M, M_schedule)
    n = int(s.max())
    table = jnp.asarray(s)

    def weights(g):
        m = table[jnp.minimum(g, s.size - 1)]
        return (jnp.arange(n) < m).astype(dtype)

    return weights
