"""Data parallelism and sharded embedding tables with ``jax.sharding``, on one host or many.

One 1-D mesh (axis ``data``) spans every device of every process. Batches are split along their first axis
over it (``bs`` is the *global* batch size: each of N devices gets ``bs / N`` rows, each of P processes
``bs / P``); parameters and optimizer state are replicated, except embedding tables when asked
(``table_shapes``): their rows are split over the same axis, so each device holds ``1/N`` of every such table
and of its Adam moments. The same code runs on 1 CPU, 8 GPUs, a TPU host or a pod.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over all devices of all processes (or the given ones), grouped by process so that each
    process's devices hold one contiguous block of the batch's rows."""
    devs = devices if devices is not None else sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    return Mesh(np.asarray(devs), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def table_sharding(mesh: Mesh) -> NamedSharding:
    """Rows of a 2-D table split over the mesh's data axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS, None))


def check_batch_size(bs: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if bs % n:
        raise ValueError(f"batch size {bs} is not divisible by the {n} devices of the data mesh; "
                         f"use a multiple of {n} (bs is the global batch: {n} devices get bs/{n} rows each)")


def process_rows(mesh: Mesh, n: int) -> slice:
    """The rows of a global batch of ``n`` rows that this process's devices hold (one contiguous block)."""
    idx = batch_sharding(mesh).addressable_devices_indices_map((n,)).values()
    starts = [s[0].start or 0 for s in idx]
    stops = [n if s[0].stop is None else s[0].stop for s in idx]
    lo, hi = min(starts), max(stops)
    if hi - lo != sum(b - a for a, b in zip(starts, stops)):
        raise ValueError("this process's devices do not hold one contiguous block of rows: build the mesh with "
                         "data_mesh(), which groups devices by process")
    return slice(lo, hi)


def shard_batch(batch: Any, mesh: Mesh, global_bs: int | None = None) -> Any:
    """Place a host batch on the mesh, split along the batch axis. With several processes each one passes
    either the global batch (``global_bs`` rows: it keeps only its own rows) or just its own rows (a loader
    that reads only this process's slice), and the global array is assembled without any copy between hosts."""
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)

    def put(a):
        a = np.asarray(a)
        n = global_bs if global_bs is not None else a.shape[0] * jax.process_count()
        local = a[process_rows(mesh, n)] if a.shape[0] == n else a
        return jax.make_array_from_process_local_data(sharding, local, (n, *a.shape[1:]))

    return jax.tree_util.tree_map(put, batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
    return jax.device_put(tree, replicated(mesh))


def leaf_sharding(leaf: Any, mesh: Mesh, table_shapes: Collection[tuple[int, ...]] = ()) -> NamedSharding:
    """Rows split for a leaf shaped like one of the sharded tables (weights and their Adam moments alike),
    replicated otherwise."""
    shape = tuple(np.shape(leaf))
    return table_sharding(mesh) if shape in table_shapes else replicated(mesh)


def place(tree: Any, mesh: Mesh, table_shapes: Collection[tuple[int, ...]] = ()) -> Any:
    """Put a parameter/optimizer pytree on the mesh: sharded tables split by rows, the rest replicated."""
    if not table_shapes:
        return replicate(tree, mesh)
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, leaf_sharding(a, mesh, table_shapes)), tree)


def constrain(tree: Any, mesh: Mesh, table_shapes: Collection[tuple[int, ...]] = ()) -> Any:
    """Inside ``jit``: keep a parameter/optimizer pytree laid out as ``place`` put it (updated tables stay split)."""
    return jax.tree_util.tree_map(
        lambda a: jax.lax.with_sharding_constraint(a, leaf_sharding(a, mesh, table_shapes)), tree)


def shardable_tables(params: Any, mesh: Mesh) -> set[tuple[int, ...]]:
    """Shapes of the embedding tables (leaves named ``embedding``) whose rows divide evenly over the mesh."""
    n = mesh.devices.size
    shapes = set()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "embedding" and np.ndim(leaf) == 2 and np.shape(leaf)[0] % n == 0:
            shapes.add(tuple(np.shape(leaf)))
    return shapes


def tables_to_shard(params: Any, mesh: Mesh, shard_tables: bool | None) -> set[tuple[int, ...]]:
    """The table shapes to split by rows: all shardable ones when asked (``True``), none when ``False``, and
    with ``None`` only when the tables and their two Adam moments would take more than half of a device's
    memory (known on GPUs/TPUs; a CPU device reports none, so CPU runs shard only when asked)."""
    if shard_tables is False or mesh.devices.size == 1:
        return set()
    shapes = shardable_tables(params, mesh)
    if shard_tables is None:
        need = 3 * sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(params)
                       if tuple(np.shape(leaf)) in shapes)
        return set() if tables_fit(need, mesh) else shapes
    if not shapes:
        import warnings

        warnings.warn(f"shard_tables=True but no embedding table has a row count divisible by the "
                      f"{mesh.devices.size} devices: all tables stay replicated (pad the tables, as "
                      "collab_learner does, to split them)", stacklevel=3)
    return shapes


def tables_fit(nbytes: int, mesh: Mesh) -> bool:
    """Whether ``nbytes`` of tables (with their optimizer moments) fit in half of one device's memory; True
    when the device does not say (CPU)."""
    if mesh.devices.size == 1:
        return True
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    limit = (local[0].memory_stats() or {}).get("bytes_limit") if local else None
    return not limit or nbytes <= limit / 2


def per_device_bytes(tree: Any) -> dict[str, int]:
    """Bytes of a pytree's arrays held by each device (what sharding saves, measured on the real buffers)."""
    out: dict[str, int] = {}
    for leaf in jax.tree_util.tree_leaves(tree):
        for shard in getattr(leaf, "addressable_shards", ()):
            out[str(shard.device)] = out.get(str(shard.device), 0) + shard.data.nbytes
    return out


def to_host(x: Any) -> Any:
    """NumPy copies of (possibly multi-process) arrays: arrays spread over several hosts are gathered first."""
    def get(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable and not a.is_fully_replicated:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return np.asarray(a)

    return jax.tree_util.tree_map(get, x)
