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
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
    """A checkpoint that is readable but belongs to another model, freeze stage or run (never fallen back past)."""


def flatten_for_save(tree: Any) -> dict[str, jax.Array]:
    leaves = jax.tree_util.tree_leaves(tree)
    return {f"{i:06d}": jnp.asarray(x) for i, x in enumerate(leaves)}


def check_shapes(shapes: list[tuple], template: Any, where: str) -> None:
    """Raise ``CheckpointMismatchError`` unless the stored array shapes are the template's, leaf by leaf."""
    leaves = jax.tree_util.tree_leaves(template)
    if len(shapes) != len(leaves):
        raise CheckpointMismatchError(f"{where} holds {len(shapes)} arrays but the model expects {len(leaves)}: "
                                      "was it saved from a different model or freeze stage?")
    for i, (shape, ref) in enumerate(zip(shapes, leaves)):
        if tuple(shape) != tuple(np.shape(ref)):
            raise CheckpointMismatchError(f"{where}: array {i} has shape {tuple(shape)}, the model expects "
                                          f"{tuple(np.shape(ref))}: was it saved from a different model?")


def unflatten_like(flat: dict[str, Any], template: Any, where: str = "checkpoint") -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(template)
    check_shapes([np.shape(flat[k]) for k in sorted(flat)], template, where)
    restored = [jnp.asarray(flat[f"{i:06d}"], dtype=jnp.asarray(ref).dtype) for i, ref in enumerate(leaves)]
    return jax.tree_util.tree_unflatten(treedef, restored)


def _abstract(flat: dict[str, jax.Array]) -> dict[str, jax.ShapeDtypeStruct]:
    # with the template's sharding: restored tables stay split and multi-process restores read only their shards
    return {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=getattr(v, "sharding", None))
            for k, v in flat.items()}


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` to disk, so a rename that publishes it survives a power cut."""
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TrainingCheckpoints:
    """Step-numbered training checkpoints (state + JSON metadata) in one directory; keeps the last ``keep``."""

    def __init__(self, directory: str | os.PathLike, keep: int = 2, create: bool = True):
        if keep < 1:
            raise ValueError(f"keep={keep}: at least one checkpoint must be kept")
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=create),
            item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()})

    def save(self, step: int, state: Any, meta: dict) -> bool:
        """Save ``state`` as checkpoint ``step``. A step already saved is not written again (False): the same
        step holds the same weights, and a checkpoint taken before an epoch's validation resumes into it."""
        if int(step) in self.manager.all_steps():
            return False
        latest = self.latest_step()
        if latest is not None and latest > step:
            raise RuntimeError(f"checkpoint folder {self.directory} already holds step {latest}, later than this "
                               f"run's step {step}: it belongs to another run. Resume from it (resume_from=...) or "
                               "give CheckpointCallback an empty folder")
        flat = flatten_for_save(state)
        saved = self.manager.save(int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(flat),
                                                                      meta=ocp.args.JsonSave(meta)), force=True)
        if not saved:  # force=True: orbax declines only for a read-only manager
            raise RuntimeError(f"orbax declined to save step {step} in {self.directory}")
        return True

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """Saved steps, newest first."""
        return sorted(self.manager.all_steps(), reverse=True)

    def read_meta(self, step: int | None = None) -> dict | None:
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        if not isinstance(meta, dict):
            raise ValueError(f"checkpoint {step} in {self.directory}: metadata is {type(meta).__name__}, not a dict")
        return meta

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        where = f"checkpoint {step} in {self.directory}"
        stored = self.manager.item_metadata(step)["state"]
        tree = getattr(stored, "tree", stored)
        check_shapes([tree[k].shape for k in sorted(tree)], template, where)
        flat_t = _abstract(flatten_for_save(template))
        out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(flat_t),
                                                                  meta=ocp.args.JsonRestore()))
        return unflatten_like(out["state"], template, where), out["meta"]

    def restore_newest(self, check: Callable[[dict], None], template: Callable[[dict], Any]) -> tuple[Any, dict]:
        """The newest checkpoint that reads back whole. ``check(meta)`` raises when a checkpoint belongs to
        another run (no fall back then); ``template(meta)`` builds the state structure to restore into.
        An unreadable checkpoint (cut short, corrupted) is skipped with a warning for the one before it."""
        errors = []
        for step in self.steps():
            try:
                meta = self.read_meta(step)
            except Exception as e:  # orbax raises many types for unreadable files
                errors.append((step, e))
                warnings.warn(f"checkpoint {step} in {self.directory} is unreadable ({type(e).__name__}: {e}); "
                              "falling back to the one before it", stacklevel=3)
                continue
            check(meta)
            try:
                out = self.restore(template(meta), step)
            except CheckpointMismatchError:
                raise
            except Exception as e:
                errors.append((step, e))
                warnings.warn(f"checkpoint {step} in {self.directory} is unreadable ({type(e).__name__}: {e}); "
                              "falling back to the one before it", stacklevel=3)
                continue
            self._set_aside([s for s, _ in errors])
            return out
        detail = "; ".join(f"step {s}: {type(e).__name__}: {e}" for s, e in errors)
        raise RuntimeError(f"no readable checkpoint in {self.directory} ({detail}); delete the folder to start "
                           "over, or pass resume_from=None")

    def _set_aside(self, steps: list[int]) -> None:
        """Rename unreadable checkpoints to ``unreadable-<step>`` (kept for inspection, ignored by orbax), so that
        the resumed run's new checkpoints are the latest again."""
        for step in steps:
            src = self.directory / str(step)
            if src.exists():
                dst = self.directory / f"unreadable-{step}"
                while dst.exists():
                    dst = dst.with_name(dst.name + "x")
                os.replace(src, dst)
        if steps:
            self.manager.reload()

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def _copies(path: Path) -> list[Path]:
    """Where a saved tree may be, newest first: the published copy, then the one an interrupted save set aside."""
    return [path, path.with_name(path.name + ".old")]


def _is_whole(copy: Path) -> bool:
    return (copy / "tree").is_dir() and (copy / "meta.json").is_file()


def save_tree(path: str | os.PathLike, tree: Any, meta: dict | None = None) -> Path:
    """Save a pytree (e.g. params + model state) to the folder ``path`` so that a complete copy exists at every
    instant: write ``path.saving`` and flush it, move the current copy to ``path.old``, rename the new one in,
    then delete ``path.old``."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".saving")
    old = path.with_name(path.name + ".old")
    main = jax.process_index() == 0  # several processes: all write their shards, process 0 moves the files
    if main and tmp.exists():  # a save cut short: never published, holds nothing we need
        shutil.rmtree(tmp)
    _sync("save_tree:clean")
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp / "tree", flatten_for_save(tree))
    ckpt.wait_until_finished()
    ckpt.close()
    if main:
        (tmp / "meta.json").write_text(json.dumps(meta or {}))
        fsync_tree(tmp)
        if path.exists():
            if old.exists():  # path is whole (only complete copies are renamed to it): old is redundant
                shutil.rmtree(old)
            os.replace(path, old)
        # else: old, if present, is the only complete copy (an earlier save died between the two renames): keep it
        os.replace(tmp, path)
        fsync_dir(path.parent)
        if old.exists():
            shutil.rmtree(old)
    _sync("save_tree:done")
    return path


def _sync(name: str) -> None:
    """A barrier across processes (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def saved_copy(path: str | os.PathLike) -> Path:
    """The newest complete copy of what ``save_tree`` wrote to ``path`` (``path`` or, after an interrupted save,
    ``path.old``)."""
    path = Path(path).absolute()
    for copy in _copies(path):
        if _is_whole(copy):
            return copy
    raise FileNotFoundError(f"no saved model at {path} (looked for {path.name}/ and {path.name}.old/ with tree/ and "
                            "meta.json): check the name, or save one first with learn.save(name)")


def read_saved_meta(copy: Path) -> dict:
    """``meta.json`` of one saved copy; an unreadable one is an error naming the file."""
    meta_file = Path(copy) / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta_file} is unreadable ({e}): the save was damaged; save the model again") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("with_opt", False), bool):
        raise ValueError(f"{meta_file} does not hold a learn.save record (got {str(meta)[:80]!r}); "
                         "save the model again")
    return meta


def load_tree(path: str | os.PathLike, template: Any) -> tuple[Any, dict]:
    """Load what ``save_tree`` wrote, into the structure of ``template``; ``path`` may be a copy from
    ``saved_copy``. Returns the tree and that copy's ``meta.json``."""
    copy = saved_copy(path) if not _is_whole(Path(path).absolute()) else Path(path).absolute()
    meta = read_saved_meta(copy)
    ckpt = ocp.StandardCheckpointer()
    try:
        stored = ckpt.metadata(copy / "tree")
        tree = getattr(stored, "item_metadata", stored)
        tree = getattr(tree, "tree", tree)
        check_shapes([tree[k].shape for k in sorted(tree)], template, str(copy))
        flat = ckpt.restore(copy / "tree", _abstract(flatten_for_save(template)))
    finally:
        ckpt.close()
    return unflatten_like(flat, template, str(copy)), meta
