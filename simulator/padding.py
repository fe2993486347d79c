"""A grid whose points differ in their number of rows runs as one program: every point's
tables have the largest point's rows, those past its own of weight 0.

A point then computes what a run of its own size computes, to float rounding (a sum over
more rows, the extra ones zero, may be added in another order), because

- JAX's random bits are counter-based, one counter per entry of the drawn array in
  row-major order, so the first T rows of a draw of T_max rows are a draw of T rows (the
  design, the labels, the noise; ``tests/test_padding.py`` checks it);
- the regression world's fit, its running summaries and its records read rows by their
  weights (the Gram matrix X̃ᵀWX̃, the penalty λ·Σw, the count of rows of positive weight);
- ``mix``'s subset mask ranks 32-bit keys drawn for every row: the padded rows get the
  largest key, so the m smallest keys are those of the point's own rows (one sort below
  1,626 rows; above, ``jax.random.permutation`` shuffles in rounds whose keys depend on
  the count, and a grid compiles once per size).

Padded: ``world=regression`` (``world.T``) with ``regime=replace``, ``mix`` or
``accumulate`` without curation, T at most ``rows.PADDED_MAX_N``.  Not padded (one program
per size): ``accumulate_subsample`` draws its subsample's keys over the whole pool, whose
layout (generation g's rows at g·T) depends on T; ``token_edit``'s schedules and
``weighted``'s synthetic rows are counts of rows set at start; curation draws K proposals a
row; the other worlds' sample sizes (``M``) are not padded.
"""

from __future__ import annotations

from collapse_sim.simulator.rows import PADDED_MAX_N

REGIMES = ("replace", "mix", "accumulate")


def paddable(exp) -> bool:
    """Whether ``exp`` can run as a point of a grid padded to more rows (and JAX draws its
    random bits by counter per entry, its default: ``jax_threefry_partitionable``)."""
    import jax

    curation = getattr(exp.regime, "curation", None)
    return (exp.world.name == "regression" and exp.regime.name in REGIMES
            and getattr(curation, "rule", "none") == "none" and exp.world.T <= PADDED_MAX_N
            and bool(jax.config.jax_threefry_partitionable))


def sizes(exps) -> list[int] | None:
    """Each point's rows when the points need padding (paddable, not all the same size), else None."""
    if not all(paddable(e) for e in exps) or len({e.world.T for e in exps}) < 2:
        return None
    return [e.world.T for e in exps]


def template(exps):
    """The experiment whose program runs the padded grid: the points' own, with the most rows."""
    return max(exps, key=lambda e: e.world.T)
