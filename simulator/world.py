"""The world interface: what is fitted and sampled, as pure functions.

A *world* is a bundle of pure functions closed over its static configuration.
All of them are traceable (jit/vmap/scan safe) and take explicit PRNG keys.

Data sets are *row tables*: a dict of arrays that share a leading row axis N,
plus a ``"weight"`` entry of shape (N,) (0 marks an absent row, so pools that
grow are preallocated at full size and masked).  A row is the unit a regime
moves around: one (x, y) pair in the regression world, one point in the
Gaussian world, one block of tokens in a text world.

Functions (``truth`` is the per-seed ground truth pytree returned by ``init``):

- ``init(key) -> truth``: the real world of one seed (true parameters, fixed
  design, ...).
- ``real(key, truth, g) -> rows``: a real training set (generation 0 uses
  g = 0; regimes that draw fresh real data call it again with the generation).
- ``fit(key, rows, params0) -> params``: fit a model to a (weighted) training set;
  ``params0`` is None for generation 0 and the generation-0 model afterwards (a
  world may start from it, as fine-tuning does, or ignore it).
- ``sample(key, truth, params, g) -> rows``: a synthetic training set drawn
  from a fitted model, with the same row layout as ``real``.
- ``evaluate(truth, params) -> dict[str, scalar]``: test error and the world's
  own metrics; must contain ``"test_error"``.
- ``edit(key, truth, params, rows, eligible) -> (rows, stats)``: optional,
  used by the ``token_edit`` regime.  ``eligible`` (N,) bool marks the rows the
  edit schedule allows to change; the world decides what changes inside them
  (the regression world resamples every eligible label; a text world resamples
  only the confident tokens of eligible blocks).  ``stats`` is a dict of
  scalars (e.g. the share of units selected and changed).
- ``inspect(truth, params0, rows) -> dict``: optional; metrics of a training
  set as seen by the generation-0 model (recorded for every generation's
  training set, generation 0's being the real data).

Optional hooks of curated synthetic data (``simulator/curation.py``); a rule
that needs a hook the world lacks is refused when the regime is made:

- ``point(rows) -> (N, D)``: the coordinates of each row that a reward
  (linear, quadratic) or a verifier window reads (Gaussian and mixture worlds:
  the point x; categorical: the outcome's index).
- ``score(params0, rows) -> (N,)``: a per-row value under the generation-0
  model, read as a one-coordinate point where the world has no ``point``
  (text worlds: each block's perplexity).
- ``verify(truth, rows, rule) -> (N,) bool``: the world's own verifier, used by
  ``rule="verifier"`` in place of a window (regression: Yi et al.'s residual
  test, arXiv 2510.16657); ``rule`` is the ``curation.CurationConfig``.
- ``average(w, params_a, params_b) -> params``: the model w·a + (1−w)·b, for
  the ``weighted`` regime (Gaussian: mean and covariance; regression: OLS
  weights).

Optional sufficient statistics, both or neither:

- ``summarize(rows) -> summary``: a pytree of arrays, additive over disjoint row
  tables (the summary of A ∪ B is the leafwise sum of theirs), with a scalar
  ``"rows"`` entry counting the rows of positive weight;
- ``fit_summary(key, summary, params0) -> params``: the fit from a summary, so
  that ``fit(key, rows, params0) == fit_summary(key, summarize(rows), params0)``.

With them ``accumulate`` carries a running summary instead of the pool of every
generation's rows, and a generation costs one training set's statistics whatever
the pool's size (regression: G̃ = X̃ᵀWX̃, X̃ᵀWy and Σw).

``fixed_fields``: the row fields that every real and synthetic training set takes
unchanged from the truth entry of the same name (regression's fixed design: ``x``
and ``weight``).  A regime that keeps real rows (``mix``, ``token_edit``) carries
them without those fields and reads them from the truth, so a training set's x is
the truth's array itself and what is computed from it alone (the Gram matrix and
its factorisation) is computed once a run, not every generation.

``rows``: in a grid whose points differ in their number of rows (``simulator/padding.py``),
each point's count of live rows, a traced number; the tables have ``n_rows`` (the largest
point's) rows and those past ``rows`` have weight 0.  None: every row is live.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

Rows = dict  # dict[str, jax.Array], leading axis = rows, includes "weight"


class World(NamedTuple):
    name: str
    n_rows: int  # rows in one real or synthetic training set
    init: Callable[..., Any]
    real: Callable[..., Rows]
    fit: Callable[..., Any]
    sample: Callable[..., Rows]
    evaluate: Callable[..., dict]
    edit: Optional[Callable[..., tuple]] = None
    inspect: Optional[Callable[..., dict]] = None
    point: Optional[Callable[..., Any]] = None
    score: Optional[Callable[..., Any]] = None
    verify: Optional[Callable[..., Any]] = None
    average: Optional[Callable[..., Any]] = None
    summarize: Optional[Callable[..., Any]] = None
    fit_summary: Optional[Callable[..., Any]] = None
    fixed_fields: tuple = ()
    rows: Any = None  # a padded grid's live rows among n_rows (a traced count; None: all n_rows)


def check_temperature(value, field: str = "world.temperature") -> None:
    """A sampling temperature τ: a finite number > 0 (τ = 1 samples the model itself)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ValueError(
            f"{field}={value!r} is not allowed; allowed: a finite number > 0 (the sampling temperature τ: "
            "1 samples the model itself, < 1 sharpens it, > 1 flattens it)"
        )
