"""Saved results: one directory per run, plain files only.

- ``records.npz``: per-seed, per-generation arrays, shape (S, G+1) (or
  (S, G+1, ...) for vector metrics), plus theory curves of shape (G+1,)
  under ``theory/<name>``.
- ``results.json``: the resolved config, versions, device, wall time and any
  scalar facts (units, theory kind and source).

Everything loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

RECORDS = "records.npz"
META = "results.json"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(out_dir, records: dict, meta: dict) -> Path:
    """Write records and metadata into ``out_dir`` atomically (temp file, rename)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in records.items()}
    _atomic_write(out / RECORDS, lambda f: np.savez_compressed(f, **arrays))
    text = json.dumps(meta, indent=2, sort_keys=True, default=_jsonable).encode()
    _atomic_write(out / META, lambda f: f.write(text))
    return out


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot store {type(x).__name__} in results.json")


def load(run_dir) -> tuple[dict, dict]:
    """(records, meta) of one run directory."""
    run = Path(run_dir)
    if not (run / RECORDS).is_file():
        raise FileNotFoundError(f"{run} holds no {RECORDS}; is it a result directory of collapse-sim?")
    with np.load(run / RECORDS, allow_pickle=False) as z:
        records = {k: z[k] for k in z.files}
    meta = json.loads((run / META).read_text())
    return records, meta


def find_runs(path) -> list[Path]:
    """Every run directory at or below ``path`` (a run, or a sweep of runs), sorted."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such result path: {root}")
    return sorted(p.parent for p in root.rglob(RECORDS))


def _flatten(prefix: str, d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(f"{prefix}{k}.", v)
        else:
            out[f"{prefix}{k}"] = v
    return out


def tidy(path) -> dict:
    """Every run at or below ``path`` as one long table: a dict of equal-length
    numpy columns with one row per (run, seed, generation, metric) and the run's
    config joined as ``world.*``, ``regime.*`` and ``run.*`` columns.  Vector
    metrics are left out; ``pandas.DataFrame(tidy(path))`` gives a data frame."""
    columns: dict[str, list] = {}
    n = 0
    for run in find_runs(path):
        records, meta = load(run)
        config = _flatten("", meta["config"])
        for metric, a in sorted(records.items()):
            if metric.startswith("theory/") or a.ndim != 2:
                continue
            S, G = a.shape
            block = {
                "run": np.full(S * G, str(run)),
                "seed": np.repeat(np.arange(S), G),
                "generation": np.tile(np.arange(G), S),
                "metric": np.full(S * G, metric),
                "value": a.reshape(-1).astype(float),
            }
            block |= {k: np.full(S * G, v) for k, v in config.items() if not isinstance(v, (list, tuple))}
            for k in set(columns) | set(block):
                columns.setdefault(k, [np.full(n, None, dtype=object)] if n else [])
                columns[k].append(block.get(k, np.full(S * G, None, dtype=object)))
            n += S * G
    return {k: np.concatenate(v) if v else np.array([]) for k, v in columns.items()}
