"""Tidy tables of records: one row per (seed, generation, metric), the form pandas,
seaborn and xarray users expect.

Columns: ``seed``, ``generation``, ``metric``, ``value``, and the theory for that
metric where the run has one: ``theory`` (the expected value), ``theory_se`` (its
standard error, for curves averaged over sampled designs) and ``theory_bound`` (a
proven bound).  A theory curve belongs to the record of the same name; the
regression world's ``prediction``/``prediction_se``/``bound`` belong to
``test_error``, and so does the ``paper_*`` line of a paper's own claim (column
``theory/<name>``).  Curves that name no record (``w2sq_approx``, ...) become columns
``theory/<name>`` on every row of their generation.  Vector metrics (a histogram per
generation) are left out.
"""

from __future__ import annotations

import numpy as np

_TEST_ERROR = {"prediction": "theory", "prediction_se": "theory_se", "bound": "theory_bound"}


def _theory_columns(metric: str, theory: dict) -> dict[str, np.ndarray]:
    cols = {}
    if metric == "test_error":
        cols |= {col: theory[name] for name, col in _TEST_ERROR.items() if name in theory}
    if metric in theory:
        cols["theory"] = theory[metric]
    for suffix, col in (("_se", "theory_se"), ("_bound", "theory_bound")):
        if metric + suffix in theory:
            cols[col] = theory[metric + suffix]
    return cols


def _claimed(name: str, records: dict) -> bool:
    """Whether a theory curve is shown in a metric's own columns."""
    if name in _TEST_ERROR:
        return "test_error" in records
    base = name[: -len("_se")] if name.endswith("_se") else name[: -len("_bound")] if name.endswith("_bound") else name
    return base in records


def records_frame(records: dict, theory: dict):
    """A pandas DataFrame of one run's records and theory curves (module docstring)."""
    import pandas as pd

    others = {f"theory/{k}": np.asarray(v, float) for k, v in theory.items() if not _claimed(k, records)}
    blocks = []
    for metric, a in sorted(records.items()):
        a = np.asarray(a)
        if a.ndim != 2:
            continue
        S, G = a.shape
        block = {
            "seed": np.repeat(np.arange(S), G),
            "generation": np.tile(np.arange(G), S),
            "metric": np.full(S * G, metric, dtype=object),
            "value": a.reshape(-1).astype(float),
        }
        for col, curve in (_theory_columns(metric, theory) | others).items():
            block[col] = np.tile(np.asarray(curve, float)[:G], S)
        blocks.append(pd.DataFrame(block))
    if not blocks:
        return pd.DataFrame(columns=["seed", "generation", "metric", "value"])
    frame = pd.concat(blocks, ignore_index=True)
    for col in ("theory", "theory_se", "theory_bound"):
        if col not in frame:
            frame[col] = np.nan
    return frame
