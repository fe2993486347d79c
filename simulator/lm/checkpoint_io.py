"""Transformer checkpoints on disk: one ``.npz`` file holding a JSON config and
named arrays, written atomically; and :func:`load_base`, the pretrained base
model (the shipped one by default, or any file the pretraining command
writes: a training checkpoint or its exported weights).

File layout (``numpy.savez``, no pickles):

- ``config``: UTF-8 JSON bytes (uint8 array) with at least the model fields
  ``vocab_size, n_layers, d_model, n_heads, context`` (and ``dropout``);
- ``params.<path>``: every parameter array, ``<path>`` the dotted pytree path
  of the leaf in :func:`collapse_sim.simulator.lm.transformer.init_params`'s
  ``nnx.State`` (e.g. ``params.blocks.0.fc.kernel.value``);
- training checkpoints add ``step``, ``run_key`` (raw uint32 key data),
  ``opt.<path>`` (the optimiser state) and ``curve`` (JSON bytes).

A missing, unreadable (truncated, not a zip) or inconsistent file (a leaf
missing, extra or of the wrong shape) raises :class:`CheckpointError` naming
the path and what is wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator.lm.transformer import TransformerConfig, init_params

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
BASE_NAME = "shakespeare_base"
BASE_FILE = PRETRAINED_DIR / f"{BASE_NAME}.npz"
MODEL_FIELDS = ("vocab_size", "n_layers", "d_model", "n_heads", "context", "dropout")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or not the model asked for."""


def leaf_name(path) -> str:
    """Dotted name of a pytree path: dict keys, sequence indices, attribute names."""
    parts = []
    for p in path:
        for attr in ("key", "idx", "name"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
        else:
            parts.append(str(p))
    return ".".join(parts)


def flatten(prefix: str, tree) -> dict:
    """``{prefix.path: numpy array}`` for every leaf of ``tree``."""
    return {f"{prefix}.{leaf_name(path)}": np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def unflatten(prefix: str, like, arrays: dict, where) -> object:
    """A tree shaped like ``like`` (arrays or ShapeDtypeStructs) filled from
    ``arrays[prefix.path]``; every leaf must be there with the right shape and
    dtype, and no other ``prefix.`` entry may be."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out, wanted = [], set()
    for path, ref in leaves:
        name = f"{prefix}.{leaf_name(path)}"
        wanted.add(name)
        if name not in arrays:
            raise CheckpointError(f"{where}: leaf {name!r} is missing (wrong leaves: not this model's checkpoint)")
        a = arrays[name]
        if a.shape != tuple(ref.shape) or a.dtype != ref.dtype:
            raise CheckpointError(
                f"{where}: leaf {name!r} has shape {a.shape} {a.dtype}, the model needs "
                f"{tuple(ref.shape)} {ref.dtype}"
            )
        out.append(jnp.asarray(a))
    extra = sorted(k for k in arrays if k.startswith(prefix + ".") and k not in wanted)
    if extra:
        raise CheckpointError(f"{where}: unexpected leaves {extra[:3]} (wrong leaves: not this model's checkpoint)")
    return jax.tree_util.tree_unflatten(treedef, out)


def json_array(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode(), np.uint8)


def save_atomic(path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` (.npz): a temporary file in the same folder,
    flushed, then ``os.replace``, so a reader sees the old or the new file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path) -> tuple[dict, dict]:
    """(config dict, {name: array}) of a checkpoint file; CheckpointError if it is
    missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        config = json.loads(bytes(arrays.pop("config")).decode())
    except CheckpointError:
        raise
    except Exception as err:  # BadZipFile, EOFError, OSError, KeyError, JSON and Unicode errors
        raise CheckpointError(f"checkpoint {path} is corrupt or not a checkpoint file ({type(err).__name__}: {err})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: its config is not a JSON object")
    return config, arrays


def model_config_of(config: dict, where) -> TransformerConfig:
    missing = [f for f in MODEL_FIELDS[:-1] if f not in config]
    if missing:
        raise CheckpointError(f"{where}: its config lacks the model fields {missing}")
    try:
        return TransformerConfig(**{f: config[f] for f in MODEL_FIELDS if f in config})
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: its model config is invalid ({err})") from None


def abstract_params(cfg: TransformerConfig):
    return jax.eval_shape(lambda k: init_params(k, cfg), jax.random.key(0))


def load_base(path: Optional[str | os.PathLike] = None) -> tuple[TransformerConfig, object]:
    """(TransformerConfig, params) of a pretrained model: the shipped base model
    (``pretrained/shakespeare_base.npz``, see its model card) when ``path`` is
    None, else any checkpoint or exported weights of
    ``python -m collapse_sim.simulator.lm.pretrain``."""
    path = Path(BASE_FILE if path is None else path)
    config, arrays = read(path)
    cfg = model_config_of(config, f"checkpoint {path}")
    return cfg, unflatten("params", abstract_params(cfg), arrays, f"checkpoint {path}")


def check_matches(path, cfg: TransformerConfig, wanted: dict) -> None:
    """Raise CheckpointError naming ``path`` and the first field where the
    checkpoint's model ``cfg`` differs from ``wanted`` ({label: (field, value)};
    ``value`` None = take the checkpoint's)."""
    for label, (field, value) in wanted.items():
        have = getattr(cfg, field)
        if value is not None and have != value:
            raise CheckpointError(
                f"checkpoint {path} does not match {label}: the checkpoint has {field}={have}, "
                f"{label} needs {field}={value}"
            )
