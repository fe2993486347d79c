"""Checkpoints of a run in progress: everything needed to continue it.

After each chunk of generations the loop carry (truth, models, regime state),
the records so far and the generation counter are written atomically
(temporary file, then rename), keyed by a hash of the resolved config, so a
killed run resumes from its last complete chunk and a changed config never
resumes an old one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np

from collapse_sim.simulator.results import _atomic_write

STATE = "checkpoint.npz"
INFO = "checkpoint.json"


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON of the settings that determine the numbers."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(out_dir, key: str, generation: int, carry, records: dict) -> None:
    """Write the state after ``generation`` (records hold generations 0..generation)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree.leaves(carry)
    arrays = {f"carry/{i:05d}": np.asarray(a) for i, a in enumerate(leaves)}
    arrays |= {f"records/{k}": np.asarray(v) for k, v in records.items()}
    _atomic_write(out / STATE, lambda f: np.savez(f, **arrays))
    info = {"config_hash": key, "generation": int(generation), "n_leaves": len(leaves)}
    _atomic_write(out / INFO, lambda f: f.write(json.dumps(info).encode()))


def load(out_dir, key: str, carry_like):
    """(generation, carry, records) of a checkpoint with the same config hash, else None.

    ``carry_like`` is a pytree of the carry's structure (e.g. from
    ``jax.eval_shape``); a checkpoint whose info or arrays do not match is
    ignored rather than trusted.
    """
    out = Path(out_dir)
    if not ((out / INFO).is_file() and (out / STATE).is_file()):
        return None
    info = json.loads((out / INFO).read_text())
    if info.get("config_hash") != key:
        return None
    leaves_like, treedef = jax.tree.flatten(carry_like)
    with np.load(out / STATE, allow_pickle=False) as z:
        leaves = [z[f"carry/{i:05d}"] for i in range(info["n_leaves"])]
        records = {k[len("records/") :]: z[k] for k in z.files if k.startswith("records/")}
    if len(leaves) != len(leaves_like) or any(a.shape != b.shape for a, b in zip(leaves, leaves_like)):
        return None
    return info["generation"], jax.tree.unflatten(treedef, leaves), records


def mark_complete(out_dir, key: str, generation: int) -> None:
    """The run finished and its results are saved: drop the (possibly large)
    state and remember the config hash, so running the same command again finds
    the run complete instead of resuming or redoing it."""
    out = Path(out_dir)
    info = {"config_hash": key, "generation": int(generation), "complete": True}
    _atomic_write(out / INFO, lambda f: f.write(json.dumps(info).encode()))
    (out / STATE).unlink(missing_ok=True)


def is_complete(out_dir, key: str) -> bool:
    p = Path(out_dir) / INFO
    if not p.is_file():
        return False
    info = json.loads(p.read_text())
    return bool(info.get("complete")) and info.get("config_hash") == key


def stored_hash(out_dir) -> str | None:
    p = Path(out_dir) / INFO
    return json.loads(p.read_text()).get("config_hash") if p.is_file() else None
