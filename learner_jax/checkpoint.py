"""Checkpoints with orbax-checkpoint: whole training states (resume) and model weights (``save``/``load``).

Orbax writes into a temporary directory and renames it when complete, so a checkpoint is either whole or
absent: a run killed mid-save leaves the previous checkpoint as the latest. Pytrees are stored as a flat
``{index: array}`` dict (orbax wants string keys and arrays; our param dicts have integer keys) and rebuilt
against a template of the same structure, which the caller builds (same model, same freeze stage).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


def flatten_for_save(tree: Any) -> dict[str, jax.Array]:
    leaves = jax.tree_util.tree_leaves(tree)
    return {f"{i:06d}": jnp.asarray(x) for i, x in enumerate(leaves)}


def unflatten_like(flat: dict[str, Any], template: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(flat) != len(leaves):
        raise ValueError(f"checkpoint holds {len(flat)} arrays but the model expects {len(leaves)}: "
                         "was it saved from a different model or freeze stage?")
    restored = []
    for i, ref in enumerate(leaves):
        arr = flat[f"{i:06d}"]
        if tuple(np.shape(arr)) != tuple(np.shape(ref)):
            raise ValueError(f"checkpoint array {i} has shape {np.shape(arr)}, the model expects {np.shape(ref)}")
        restored.append(jnp.asarray(arr, dtype=jnp.asarray(ref).dtype))
    return jax.tree_util.tree_unflatten(treedef, restored)


def _abstract(flat: dict[str, jax.Array]) -> dict[str, jax.ShapeDtypeStruct]:
    # with the template's sharding: restored tables stay split and multi-process restores read only their shards
    return {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=getattr(v, "sharding", None))
            for k, v in flat.items()}


class TrainingCheckpoints:
    """Step-numbered training checkpoints (state + JSON metadata) in one directory; keeps the last ``keep``."""

    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True))

    def save(self, step: int, state: Any, meta: dict) -> None:
        flat = flatten_for_save(state)
        self.manager.save(int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(flat),
                                                               meta=ocp.args.JsonSave(meta)))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def read_meta(self, step: int | None = None) -> dict | None:
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        flat_t = _abstract(flatten_for_save(template))
        out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(flat_t),
                                                                  meta=ocp.args.JsonRestore()))
        return unflatten_like(out["state"], template), out["meta"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def save_tree(path: str | os.PathLike, tree: Any, meta: dict | None = None) -> Path:
    """Save a pytree (e.g. params + model state) to ``path`` (a directory), replacing any older copy only
    once the new one is complete."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".saving")
    old = path.with_name(path.name + ".old")
    main = jax.process_index() == 0  # several processes: all write their shards, process 0 moves the files
    for p in (tmp, old):
        if main and p.exists():
            shutil.rmtree(p)
    _sync("save_tree:clean")
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp / "tree", flatten_for_save(tree))
    ckpt.wait_until_finished()
    ckpt.close()
    if main:
        meta_tmp = tmp / "meta.json.tmp"
        meta_tmp.write_text(json.dumps(meta or {}))
        os.replace(meta_tmp, tmp / "meta.json")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    _sync("save_tree:done")
    return path


def _sync(name: str) -> None:
    """A barrier across processes (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def load_tree(path: str | os.PathLike, template: Any) -> tuple[Any, dict]:
    """Load what ``save_tree`` wrote, into the structure of ``template``."""
    path = Path(path).absolute()
    if not path.exists() and path.with_name(path.name + ".old").exists():  # interrupted replace: old is whole
        path = path.with_name(path.name + ".old")
    if not (path / "tree").exists():
        raise FileNotFoundError(f"no saved model at {path}")
    ckpt = ocp.StandardCheckpointer()
    flat = ckpt.restore(path / "tree", _abstract(flatten_for_save(template)))
    ckpt.close()
    meta = json.loads((path / "meta.json").read_text()) if (path / "meta.json").exists() else {}
    return unflatten_like(flat, template), meta
