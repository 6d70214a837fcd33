"""Data parallelism with ``jax.sharding``: batches split along their first axis over all local devices,
parameters and optimizer state replicated. The same code runs on 1 CPU, 8 GPUs or a TPU host."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over the local devices (or the given ones)."""
    devs = np.asarray(devices if devices is not None else jax.local_devices())
    return Mesh(devs, (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(bs: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if bs % n:
        raise ValueError(f"batch size {bs} is not divisible by the {n} devices of the data mesh; "
                         f"use a multiple of {n}")


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Place a host batch on the mesh, split along the batch axis."""
    return jax.device_put(batch, batch_sharding(mesh))


def replicate(tree: Any, mesh: Mesh) -> Any:
    return jax.device_put(tree, replicated(mesh))
