"""Saved results: one directory per run, plain files only.

- ``records.npz``: per-seed, per-generation arrays, shape (S, G+1) (or
  (S, G+1, ...) for vector metrics), plus theory curves of shape (G+1,)
  under ``theory/<name>``.
- ``results.json``: the resolved config, versions, device, wall time and any
  scalar facts (units, theory kind and source).

Everything loads with ``allow_pickle=False``.  Files are written to a temporary
file in the same folder, flushed to disk and renamed into place, so a file of
a run is either whole or absent; a file that cannot be read raises
:class:`CorruptFile` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

RECORDS = "records.npz"
META = "results.json"


class CorruptFile(ValueError):
    """A saved file that exists but cannot be read (truncated, zero bytes, damaged, a folder)."""

    def __init__(self, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path} cannot be read: {reason}")


class WriteError(OSError):
    """A file of a run could not be written (full disk, read-only folder, ...); nothing partial is left."""

    def __init__(self, path, error: OSError, note: str = ""):
        super().__init__(error.errno, error.strerror)
        self.path, self.error, self.note = Path(path), error, note

    def __str__(self) -> str:
        why = self.error.strerror or str(self.error)
        return f"could not write {self.path}: {why} ({free_space(self.path.parent)} free there){self.note}"


def free_space(folder) -> str:
    """Free space on the disk that holds ``folder`` (or its nearest existing parent), e.g. '1.2 GB'."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        n = float(shutil.disk_usage(p).free)
    except OSError:
        return "unknown space"
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() would give a new file (mkstemp gives 0600)


def _write_temp(path: Path, write) -> Path:
    """Write a temporary sibling of ``path`` (flushed to disk) and return it; on any error
    remove it and raise (an OSError as :class:`WriteError` naming ``path``)."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        return Path(tmp)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(path, e) from e
        raise


def _atomic_write(path: Path, write) -> None:
    tmp = _write_temp(path, write)
    try:
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WriteError(path, e) from e


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(out_dir, records: dict, meta: dict) -> dict:
    """Write records and metadata into ``out_dir`` atomically (temp file, rename);
    return the SHA-256 of each file written, by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in records.items()}
    _atomic_write(out / RECORDS, lambda f: np.savez_compressed(f, **arrays))
    text = json.dumps(meta, indent=2, sort_keys=True, default=_jsonable).encode()
    _atomic_write(out / META, lambda f: f.write(text))
    return {name: sha256(out / name) for name in (RECORDS, META)}


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"cannot store {type(x).__name__} in results.json")


def read_npz(path) -> dict:
    """Every array of an ``.npz`` file, read in full (so a damaged member fails here), or
    :class:`CorruptFile` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise CorruptFile(path, "it is a folder, not a file")
    try:
        if path.stat().st_size == 0:
            raise CorruptFile(path, "it is empty (0 bytes)")
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (FileNotFoundError, CorruptFile):
        raise
    except Exception as e:  # BadZipFile, zlib.error, EOFError, a bad .npy header, ...
        raise CorruptFile(path, f"damaged or truncated ({type(e).__name__}: {e})") from None


def read_json(path) -> dict:
    """A JSON object from ``path``, or :class:`CorruptFile` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise CorruptFile(path, "it is a folder, not a file")
    try:
        value = json.loads(path.read_bytes().decode())
    except FileNotFoundError:
        raise
    except Exception as e:  # UnicodeDecodeError, JSONDecodeError
        raise CorruptFile(path, f"damaged or truncated ({type(e).__name__}: {e})") from None
    if not isinstance(value, dict):
        raise CorruptFile(path, f"it holds a JSON {type(value).__name__}, not an object")
    return value


def load(run_dir) -> tuple[dict, dict]:
    """(records, meta) of one run directory; :class:`CorruptFile` (naming the file) if
    either cannot be read."""
    run = Path(run_dir)
    if not (run / RECORDS).exists():
        raise FileNotFoundError(f"{run} holds no {RECORDS}; is it a result directory of collapse-sim?")
    records = read_npz(run / RECORDS)
    if not (run / META).exists():
        raise FileNotFoundError(f"{run} holds {RECORDS} but no {META}; the run did not finish saving")
    return records, read_json(run / META)


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


def tidy(path):
    """Every run at or below ``path`` as one tidy pandas DataFrame: the columns of
    :func:`simulator.frame.records_frame` (seed, generation, metric, value, theory,
    theory_se, theory_bound, theory/<curve>), a ``run`` column (the run's folder) and
    the run's config joined as ``world.*``, ``regime.*`` and ``run.*`` columns."""
    import pandas as pd

    from collapse_sim.simulator.frame import records_frame

    frames = []
    for run in find_runs(path):
        records, meta = load(run)
        theory = {k[len("theory/") :]: v for k, v in records.items() if k.startswith("theory/")}
        frame = records_frame({k: v for k, v in records.items() if not k.startswith("theory/")}, theory)
        config = _flatten("", meta["config"])
        frame.insert(0, "run", str(run))
        for k, v in config.items():
            if not isinstance(v, (list, tuple, dict)):
                frame[k] = v
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["run", "seed", "generation", "metric", "value"])
    return pd.concat(frames, ignore_index=True)
