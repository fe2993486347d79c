"""Checkpoints of a run in progress, and the marker of a finished run.

After each chunk of generations the loop carry (truth, models, regime state),
the records so far, the generation counter and the config hash are written as
ONE file, ``checkpoint.npz`` (its ``info`` member holds the counter and the
hash), through a temporary file and a rename.  The checkpoint before it is
kept as ``checkpoint.prev.npz``, so a checkpoint that does not load still
leaves the chunk before it.  A checkpoint whose parts disagree (its records do
not hold generation+1 entries, its carry has the wrong leaves) is refused.

A finished run leaves ``complete.json``: the config hash and the SHA-256 of
every result file, checked before a rerun calls the run complete.

Files that cannot be used are renamed ``<name>.damaged-<time>`` (never deleted).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

from collapse_sim.simulator import results
from collapse_sim.simulator.results import CorruptFile, _atomic_write, _write_temp

STATE = "checkpoint.npz"
PREVIOUS = "checkpoint.prev.npz"
COMPLETE = "complete.json"
LEGACY_INFO = "checkpoint.json"  # the second file of checkpoints written before the info moved inside
FORMAT = 2
# Files written through a temporary sibling ``.<name>.<random>.tmp``.
WRITTEN = (STATE, PREVIOUS, COMPLETE, results.RECORDS, results.META)


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON of the settings that determine the numbers."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(out_dir, key: str, generation: int, carry, records: dict) -> None:
    """Write the state after ``generation`` (records hold generations 0..generation)."""
    out = Path(out_dir)
    leaves = jax.tree.leaves(carry)
    arrays = {f"carry/{i:05d}": np.asarray(a) for i, a in enumerate(leaves)}
    arrays |= {f"records/{k}": np.asarray(v) for k, v in records.items()}
    info = {"format": FORMAT, "config_hash": key, "generation": int(generation), "n_leaves": len(leaves)}
    arrays["info"] = np.array(json.dumps(info))
    tmp = _write_temp(out / STATE, lambda f: np.savez(f, **arrays))
    try:
        if (out / STATE).is_file():
            os.replace(out / STATE, out / PREVIOUS)
        os.replace(tmp, out / STATE)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise results.WriteError(out / STATE, e) from e
    (out / LEGACY_INFO).unlink(missing_ok=True)


def _read(path: Path) -> tuple[dict, list, dict]:
    """(info, carry leaves, records) of one checkpoint file; CorruptFile if it does not read."""
    z = results.read_npz(path)
    if "info" in z:
        try:
            info = json.loads(str(z["info"]))
        except ValueError:
            raise CorruptFile(path, "its info member is not JSON") from None
    elif (path.parent / LEGACY_INFO).is_file() and path.name == STATE:
        info = results.read_json(path.parent / LEGACY_INFO)  # two files: cross-checked below
    else:
        raise CorruptFile(path, "it holds no info member (generation, config hash)")
    if not all(isinstance(info.get(k), t) for k, t in (("config_hash", str), ("generation", int), ("n_leaves", int))):
        raise CorruptFile(path, f"its info {info} lacks config_hash, generation or n_leaves")
    n = sum(1 for k in z if k.startswith("carry/"))
    leaves = [z[f"carry/{i:05d}"] for i in range(n) if f"carry/{i:05d}" in z]
    recs = {k[len("records/") :]: v for k, v in z.items() if k.startswith("records/")}
    return info, leaves, recs


def _disagreement(info: dict, leaves: list, records: dict, leaves_like) -> str | None:
    g = info["generation"]
    if info["n_leaves"] != len(leaves):
        return f"its info names {info['n_leaves']} carry leaves but it holds {len(leaves)}"
    if len(leaves) != len(leaves_like):
        return f"it holds {len(leaves)} carry leaves where this run carries {len(leaves_like)}"
    bad = [i for i, (a, b) in enumerate(zip(leaves, leaves_like)) if a.shape != b.shape or a.dtype != b.dtype]
    if bad:
        i = bad[0]
        return f"carry leaf {i} is {leaves[i].dtype}{list(leaves[i].shape)}, this run's is {leaves_like[i].dtype}{list(leaves_like[i].shape)}"
    lengths = {k: v.shape[1] if v.ndim > 1 else None for k, v in records.items()}
    wrong = {k: n for k, n in lengths.items() if n != g + 1}
    if not records or wrong:
        k, n = next(iter(wrong.items())) if wrong else ("(none)", 0)
        return f"it says generation {g} but record {k!r} holds {n} generations, not {g + 1}"
    return None


def set_aside(path) -> Path:
    """Rename a file (or folder) that cannot be used to ``<name>.damaged-<time>`` and return the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    new = path.with_name(f"{path.name}.damaged-{stamp}")
    i = 1
    while new.exists():
        new, i = path.with_name(f"{path.name}.damaged-{stamp}-{i}"), i + 1
    os.replace(path, new)
    return new


def restore(out_dir, key: str, carry_like, say=print):
    """(generation, carry, records) of the newest checkpoint of this config that loads and
    agrees with itself, else None.  ``carry_like``: a pytree of the carry's structure (e.g.
    from ``jax.eval_shape``).  A checkpoint that does not read or whose parts disagree is set
    aside with one line through ``say``; one of another config is left for this run to replace."""
    out = Path(out_dir)
    leaves_like, treedef = jax.tree.flatten(carry_like)
    for name in (STATE, PREVIOUS):
        path = out / name
        if not path.exists():
            continue
        try:
            info, leaves, recs = _read(path)
        except CorruptFile as e:
            problem = e.reason
        else:
            if info["config_hash"] != key:
                say(f"{path} is a checkpoint of another config; starting afresh (this run replaces it)")
                return None
            problem = _disagreement(info, leaves, recs, leaves_like)
            if problem is None:
                return info["generation"], jax.tree.unflatten(treedef, leaves), recs
        moved = [set_aside(path).name]
        if name == STATE and (out / LEGACY_INFO).is_file():
            moved.append(set_aside(out / LEGACY_INFO).name)
        say(f"{path} cannot be used ({problem}); set aside as {', '.join(moved)}")
    return None


def saved_generation(out_dir, key: str) -> int | None:
    """The generation the newest usable checkpoint of this config holds, read from disk (None: none)."""
    out = Path(out_dir)
    for name in (STATE, PREVIOUS):
        try:
            info, leaves, recs = _read(out / name)
        except (OSError, CorruptFile):
            continue
        if info["config_hash"] == key and info["n_leaves"] == len(leaves):
            if all(v.ndim > 1 and v.shape[1] == info["generation"] + 1 for v in recs.values()):
                return info["generation"]
    return None


def mark_complete(out_dir, key: str, generation: int, checksums: dict) -> None:
    """The run finished and its results are saved: record their checksums, then drop the
    (possibly large) state, so running the same command again finds the run complete (after
    checking every file) instead of resuming or redoing it."""
    out = Path(out_dir)
    info = {"format": FORMAT, "config_hash": key, "generation": int(generation), "complete": True, "sha256": checksums}
    _atomic_write(out / COMPLETE, lambda f: f.write(json.dumps(info, indent=1).encode()))
    for name in (STATE, PREVIOUS, LEGACY_INFO):
        (out / name).unlink(missing_ok=True)


def check_complete(out_dir, key: str, say=print, fix: bool = True) -> bool:
    """True if the folder holds this config's finished run and every result file matches its
    recorded SHA-256.  A result that is missing or does not match is said and (``fix``) set
    aside with the marker dropped, so the run is done again."""
    out = Path(out_dir)
    marker = out / COMPLETE
    if not marker.exists():
        return False
    try:
        info = results.read_json(marker)
    except CorruptFile as e:
        if not fix:
            return False
        say(f"{marker} cannot be used ({e.reason}); set aside as {set_aside(marker).name}; running the run again")
        return False
    if info.get("config_hash") != key:
        if fix:
            say(f"{out} holds a finished run of another config; starting afresh (this run replaces it)")
        return False
    sums = info.get("sha256") or {}
    for name in (results.RECORDS, results.META):
        path = out / name
        if not path.exists():
            problem = "is missing"
        elif path.is_dir():
            problem = "is a folder, not a file"
        elif sums.get(name) != results.sha256(path):
            problem = "does not match the checksum recorded when the run finished"
        else:
            continue
        if not fix:
            return False
        aside = f"; set aside as {set_aside(path).name}" if path.exists() else ""
        say(f"{path} {problem}{aside}; running the run again")
        marker.unlink()
        return False
    return True


def stored_hash(out_dir) -> str | None:
    """The config hash of what the folder holds: its finished run, else its checkpoint."""
    out = Path(out_dir)
    for path in (out / COMPLETE, out / STATE):
        try:
            info = results.read_json(path) if path.suffix == ".json" else _read(path)[0]
        except (OSError, CorruptFile):
            continue
        return info.get("config_hash")
    return None


def remove_stale_temporaries(out_dir) -> list[tuple[str, int]]:
    """Delete the temporary files a killed writer left (``.<name>.*.tmp``); (name, bytes) of each.
    Call it only while holding the folder's lock: no other writer is then active."""
    gone = []
    for name in WRITTEN:
        for tmp in Path(out_dir).glob(f".{name}.*.tmp"):
            try:
                size = tmp.stat().st_size
                tmp.unlink()
            except OSError:
                continue
            gone.append((tmp.name, size))
    return gone
