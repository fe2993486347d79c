"""Seeds across devices: a one-axis mesh over the seed axis.

A seed count that does not divide the number of devices is padded with extra
seeds (seed indices past the requested ones) whose results are dropped; seeds
are independent, so padding changes no requested seed's numbers.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def seed_mesh(devices=None) -> Mesh:
    devices = np.asarray(devices if devices is not None else jax.devices())
    return Mesh(devices, ("seeds",))


def padded_seed_count(n_seeds: int, n_devices: int) -> int:
    return -(-n_seeds // n_devices) * n_devices


def shard_seeds(tree, mesh: Mesh):
    """Place every array of ``tree`` with its leading (seed) axis split over the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec("seeds"))
    return jax.device_put(tree, sharding)
