"""``learn.export()`` / ``load_learner()``: a trained learner as one file an inference service can load.

The file is a zip of ``meta.json`` (format, application, model and learner settings, preprocessing state) and
``weights.npz`` (every parameter and model-state array, plus the application's extra arrays such as metadata
tables). Nothing in it is code: JSON and ``.npy`` arrays read with ``allow_pickle=False``, and the
application that rebuilds the learner is looked up in a fixed table (``APPLICATIONS``), never named by the file.
fastai pickles its learner instead (``export.pkl``), which runs code on load.

Applications provide two functions in the module named by ``APPLICATIONS``:
``export_meta(learn) -> (meta: dict, extra_arrays: dict[str, np.ndarray])`` and
``from_export(meta, extra_arrays, path, mesh) -> Learner`` (a learner with fresh weights of the same shapes,
no training data); this module fills in the weights.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT = "lesson4-jax-learner"
VERSION = 1
DEFAULT_NAME = "export.zip"
# application name -> module with export_meta/from_export; a file can only choose among these
APPLICATIONS = {"tabular": "tabular_jax.export", "collab": "collab_jax.export", "text": "ulmfit_jax.export"}


def _application_of(learn: Any) -> str:
    for name, module in APPLICATIONS.items():
        if type(learn).__module__.split(".")[0] == module.split(".")[0]:
            return name
    raise TypeError(f"{type(learn).__name__} cannot be exported: export works for learners made by "
                    "tabular_learner, collab_learner, language_model_learner and text_classifier_learner")


def _state_tree(learn: Any) -> dict:
    return {"params": learn.state.params, "model_state": learn.state.model_state}


def _flat(tree: Any) -> tuple[list[str], list[Any]]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [jax.tree_util.keystr(p) for p, _ in leaves], [v for _, v in leaves]


def _to_numpy(a: Any) -> np.ndarray:
    """A host copy; bfloat16 (not an .npy dtype) widens to float32, restored to the model's dtype on load."""
    a = np.asarray(jax.device_get(a))
    return a.astype(np.float32) if a.dtype.name == "bfloat16" else a


def export_learner(learn: Any, fname: str | os.PathLike = DEFAULT_NAME) -> Path:
    """Write ``learn`` to ``fname`` (relative names under ``learn.path``) atomically; return the path."""
    app = _application_of(learn)
    meta, extra = importlib.import_module(APPLICATIONS[app]).export_meta(learn)
    names, leaves = _flat(_state_tree(learn))
    arrays = {f"w{i}": _to_numpy(v) for i, v in enumerate(leaves)}
    bad = sorted(set(extra) & set(arrays))
    if bad:
        raise ValueError(f"extra array names {bad} clash with weight names")
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    meta = {"format": FORMAT, "version": VERSION, "application": app, "weights": names,
            "extra": sorted(extra), **meta}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = Path(fname) if Path(fname).is_absolute() else Path(learn.path) / fname
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("meta.json", json.dumps(meta, indent=1, allow_nan=True))
            z.writestr("weights.npz", buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_export(fname: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of an exported file, checked to be ours (no code is run, no pickle is read)."""
    path = Path(fname)
    if not path.is_file():
        raise FileNotFoundError(f"no exported learner at {path} (write one with learn.export())")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a file written by learn.export() (a zip of meta.json and weights.npz); "
                         "fastai's export.pkl pickles cannot be loaded: they would run code")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if not {"meta.json", "weights.npz"} <= names:
            raise ValueError(f"{path} lacks meta.json/weights.npz: not written by learn.export()")
        meta = json.loads(z.read("meta.json"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}")
        if meta.get("version", 0) > VERSION:
            raise ValueError(f"{path} was written by a newer version (format {meta['version']} > {VERSION}): "
                             "upgrade lesson4-jax")
        if meta.get("application") not in APPLICATIONS:
            raise ValueError(f"{path} names an unknown application {meta.get('application')!r}; "
                             f"known: {sorted(APPLICATIONS)}")
        try:
            with np.load(io.BytesIO(z.read("weights.npz")), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: weights.npz is damaged ({e}); export the learner again") from e
    return meta, arrays


def cpu_mesh():
    """A one-device mesh on the host CPU (inference services often have no accelerator)."""
    from learner_jax.sharding import data_mesh

    return data_mesh(jax.devices("cpu")[:1])


def load_learner(fname: str | os.PathLike, cpu: bool = True) -> Any:
    """fastai's ``load_learner``: the learner ``learn.export()`` wrote, ready to ``predict`` and to run
    ``get_preds(dl=learn.dls.test_dl(...))`` without the training data; on the CPU unless ``cpu=False``."""
    from learner_jax.sharding import data_mesh, replicate

    meta, arrays = read_export(fname)
    module = importlib.import_module(APPLICATIONS[meta["application"]])
    extra = {k: arrays[k] for k in meta["extra"]}
    mesh = cpu_mesh() if cpu else data_mesh()
    learn = module.from_export(meta, extra, Path(fname).parent, mesh)
    names, leaves = _flat(_state_tree(learn))
    if names != meta["weights"]:
        missing = sorted(set(meta["weights"]) ^ set(names))[:5]
        raise ValueError(f"{fname}: the rebuilt model's weights do not match the file's (differ at {missing}); "
                         "was it written by another version of the model code?")
    new = []
    for i, (name, leaf) in enumerate(zip(names, leaves)):
        a = arrays[f"w{i}"]
        if tuple(a.shape) != tuple(leaf.shape):
            raise ValueError(f"{fname}: weight {name} has shape {a.shape}, the model expects {tuple(leaf.shape)}")
        new.append(a.astype(leaf.dtype))
    tree = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(_state_tree(learn)), new)
    learn.state = learn.state.replace(params=replicate(tree["params"], learn.mesh),
                                      model_state=replicate(tree["model_state"], learn.mesh))
    return learn


# ------------------------------------------------------------------------------------------ JSON helpers
def plain(value: Any, what: str) -> Any:
    """A value JSON keeps exactly (None, bool, int, float, str; NumPy scalars unwrapped); else a clear error."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot export {what}: value {value!r} of type {type(value).__name__} is not a string, "
                    "number or bool; convert that column to str (or numbers) before training")


def plain_list(values: Any, what: str) -> list:
    return [plain(v, what) for v in values]


def metric_names(learn: Any) -> list[str]:
    return [m.name for m in learn.metrics]


def learner_settings(learn: Any) -> dict:
    """The learner's own settings worth keeping (fastai's exported learner keeps them too)."""
    return {"lr": float(learn.lr), "wd": float(learn.wd), "moms": [float(m) for m in learn.moms],
            "seed": int(learn.seed), "metrics": metric_names(learn), "model_dir": str(learn.model_dir)}


def restore_metrics(names: list[str], known: dict[str, Any]) -> list[Any]:
    """Metrics by name from ``known`` (the application's standard ones); others are dropped with a warning."""
    import warnings

    out, lost = [], []
    for n in names:
        (out.append(known[n]) if n in known else lost.append(n))
    if lost:
        warnings.warn(f"metrics {lost} are not standard ones and were not restored; pass them to the learner "
                      "(learn.metrics = [...]) to validate with them", stacklevel=3)
    return out


__all__ = ["DEFAULT_NAME", "export_learner", "load_learner", "read_export"]
