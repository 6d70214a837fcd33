"""Export of collaborative-filtering learners (``learner_jax.export``): the user/item id maps, column names and
metadata encoders, rebuilt into ``CollabDataLoaders`` without ratings, so ``predict`` and ``test_dl`` work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collab_jax.data import CollabDataLoaders
from collab_jax.metadata import HybridInput, MetaEncoder
from learner_jax.data import DataLoader
from learner_jax.export import learner_settings, plain_list, restore_metrics
from learner_jax.metrics import mae, mse, rmse

METRICS = {m.name: m for m in (mae, mse, rmse)}


def _meta_state(enc: MetaEncoder | None, name: str, extra: dict[str, np.ndarray]) -> dict | None:
    if enc is None:
        return None
    extra[f"{name}_table"] = np.asarray(enc.table, np.float32)
    return {"key": enc.key, "ids": plain_list(enc.ids, f"the {name} metadata ids"), "columns": list(enc.columns)}


def _meta_from_state(s: dict | None, name: str, extra: dict[str, np.ndarray]) -> MetaEncoder | None:
    if s is None:
        return None
    return MetaEncoder(key=s["key"], ids=pd.Index(s["ids"]), table=extra[f"{name}_table"], columns=tuple(s["columns"]))


def export_meta(learn: Any) -> tuple[dict, dict[str, np.ndarray]]:
    args = getattr(learn, "_export_args", None)
    if args is None:
        raise TypeError("this CollabLearner was not made by collab_learner: export needs the model's settings")
    dls, extra = learn.dls, {}
    data = {"classes": {n: plain_list(c[1:], f"the ids of column {n!r}") for n, c in dls.classes.items()},
            "user_name": dls.user_name, "item_name": dls.item_name, "rating_name": dls.rating_name,
            "rating_range": list(dls.rating_range), "bs": dls.train.bs, "val_bs": dls.valid.bs,
            "user_meta": _meta_state(dls.user_meta, "user_meta", extra),
            "item_meta": _meta_state(dls.item_meta, "item_meta", extra)}
    return {"data": data, "model": args, "learner": learner_settings(learn)}, extra


def _empty_loader(dls: CollabDataLoaders, bs: int) -> DataLoader:
    ids = np.zeros((0, 2), np.int32)
    x: Any = ids
    if dls.user_meta is not None or dls.item_meta is not None:
        du = dls.user_meta.n_features if dls.user_meta is not None else 0
        di = dls.item_meta.n_features if dls.item_meta is not None else 0
        x = HybridInput(ids, np.zeros((0, du), np.float32), np.zeros((0, di), np.float32))
    return DataLoader(x, np.zeros(0, np.float32), bs=bs)


def from_export(meta: dict, extra: dict[str, np.ndarray], path: Path, mesh: Any) -> Any:
    from collab_jax.data import NA
    from collab_jax.learner import collab_learner

    d, m, ls = meta["data"], meta["model"], meta["learner"]
    dls = CollabDataLoaders(train=None, valid=None, classes={n: [NA, *c] for n, c in d["classes"].items()},  # type: ignore[arg-type]
                            user_name=d["user_name"], item_name=d["item_name"], rating_name=d["rating_name"],
                            rating_range=tuple(d["rating_range"]),
                            user_meta=_meta_from_state(d["user_meta"], "user_meta", extra),
                            item_meta=_meta_from_state(d["item_meta"], "item_meta", extra), path=str(path))
    dls.train, dls.valid = _empty_loader(dls, d["bs"]), _empty_loader(dls, d["val_bs"])
    y_range = None if m["y_range"] is None else tuple(m["y_range"])
    return collab_learner(dls, n_factors=m["n_factors"], use_nn=m["use_nn"], emb_szs=m["emb_szs"],
                          layers=m["layers"], config=m["config"] or None, y_range=y_range, use_meta=m["use_meta"],
                          metrics=restore_metrics(ls["metrics"], METRICS), seed=ls["seed"], lr=ls["lr"], wd=ls["wd"],
                          moms=ls["moms"], path=path, model_dir=ls["model_dir"], mesh=mesh)
