"""Export of tabular learners (``learner_jax.export``): the fitted procs, column roles and target block as JSON,
rebuilt into a ``TabularPandas`` that holds no rows, so ``predict`` and ``test_dl`` work without the training data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from learner_jax.export import learner_settings, plain, plain_list, restore_metrics
from learner_jax.metrics import accuracy, error_rate, mae, mse, rmse
from tabular_jax.procs import Categorify, Columns, FillMissing, Normalize, TabularProc
from tabular_jax.table import Processed, TabularPandas
from tabular_jax.targets import CategoryBlock, MultiCategoryBlock, RegressionBlock

METRICS = {m.name: m for m in (accuracy, error_rate, mae, mse, rmse)}


def proc_state(proc: TabularProc) -> dict:
    """A fitted proc as JSON; only fastai's three procs are known (their state is data, not code)."""
    if isinstance(proc, FillMissing):
        return {"type": "FillMissing", "add_col": proc.add_col, "cont_names": list(proc.cont_names),
                "na_dict": {k: plain(v, f"FillMissing's fill value for {k!r}") for k, v in proc.na_dict.items()},
                "medians": {k: float(v) for k, v in proc.medians.items()}}
    if isinstance(proc, Categorify):
        return {"type": "Categorify",
                "classes": {n: plain_list(c, f"the classes of categorical column {n!r}")
                            for n, c in proc.classes.items()}}
    if isinstance(proc, Normalize):
        return {"type": "Normalize", "means": proc.means, "stds": proc.stds}
    raise TypeError(f"cannot export the proc {proc!r}: export knows FillMissing, Categorify and Normalize")


def proc_from_state(s: dict) -> TabularProc:
    if s["type"] == "FillMissing":
        p = FillMissing(add_col=s["add_col"])
        p.cont_names, p.na_dict, p.medians = tuple(s["cont_names"]), dict(s["na_dict"]), dict(s["medians"])
    elif s["type"] == "Categorify":
        p = Categorify()
        p.classes = {n: list(c) for n, c in s["classes"].items()}
    elif s["type"] == "Normalize":
        p = Normalize()
        p.means, p.stds = dict(s["means"]), dict(s["stds"])
    else:
        raise ValueError(f"unknown proc {s['type']!r} in the exported file")
    return p


def block_state(block: Any) -> dict:
    if isinstance(block, CategoryBlock):
        return {"type": "category", "y_names": list(block.y_names),
                "vocab": plain_list(block.vocab, "the target classes")}
    if isinstance(block, RegressionBlock):
        return {"type": "regression", "y_names": list(block.y_names)}
    if isinstance(block, MultiCategoryBlock):
        return {"type": "multicategory", "y_names": list(block.y_names), "encoded": block.encoded,
                "label_delim": block.label_delim, "vocab": plain_list(block.vocab, "the target labels")}
    raise TypeError(f"cannot export the target block {block!r}")


def block_from_state(s: dict) -> Any:
    if s["type"] == "category":
        block = CategoryBlock(vocab=s["vocab"])
    elif s["type"] == "regression":
        block = RegressionBlock()
    elif s["type"] == "multicategory":
        block = MultiCategoryBlock(encoded=s["encoded"], vocab=s["vocab"], label_delim=s["label_delim"])
    else:
        raise ValueError(f"unknown target block {s['type']!r} in the exported file")
    block.y_names = tuple(s["y_names"])
    return block


def table_state(to: TabularPandas) -> dict:
    return {"input_names": [list(n) for n in to.input_names], "int_conts": list(to.int_conts),
            "cols": {"cat_names": to.cat_names, "cont_names": to.cont_names, "y_names": to.y_names},
            "procs": [proc_state(p) for p in to.procs], "y_block": block_state(to.y_block)}


def _empty(to: TabularPandas) -> Processed:
    n_cat, n_cont, c = len(to.cat_names), len(to.cont_names), to.c
    y = (np.zeros(0, np.int32) if isinstance(to.y_block, CategoryBlock) else
         np.zeros((0,) if c == 1 and isinstance(to.y_block, RegressionBlock) else (0, c), np.float32))
    return Processed(pd.DataFrame(), np.zeros((0, n_cat), np.int32), np.zeros((0, n_cont), np.float32), y)


def table_from_state(s: dict) -> TabularPandas:
    """A ``TabularPandas`` with the fitted steps and no rows (``process``/``decode`` work as after fitting)."""
    to = TabularPandas.__new__(TabularPandas)
    to.input_names = tuple(tuple(n) for n in s["input_names"])
    to.int_conts = tuple(s["int_conts"])
    to.procs = [proc_from_state(p) for p in s["procs"]]
    to.y_block = block_from_state(s["y_block"])
    to.cols = Columns(*(tuple(s["cols"][k]) for k in ("cat_names", "cont_names", "y_names")))
    to.train = to.valid = _empty(to)
    return to


def export_meta(learn: Any) -> tuple[dict, dict[str, np.ndarray]]:
    args = getattr(learn, "_export_args", None)
    if args is None:
        raise TypeError("this TabularLearner was not made by tabular_learner: export needs the model's settings")
    dls = learn.dls
    return {"table": table_state(dls.to), "model": args, "learner": learner_settings(learn),
            "data": {"bs": dls.bs, "val_bs": dls.val_bs}}, {}


def from_export(meta: dict, extra: dict[str, np.ndarray], path: Path, mesh: Any) -> Any:
    from tabular_jax.data import TabularDataLoaders
    from tabular_jax.learner import tabular_learner

    dls = TabularDataLoaders(table_from_state(meta["table"]), bs=meta["data"]["bs"], val_bs=meta["data"]["val_bs"],
                             shuffle=False)
    dls.path = path
    m, ls = meta["model"], meta["learner"]
    y_range = None if m["y_range"] is None else tuple(m["y_range"])
    return tabular_learner(dls, layers=m["layers"], emb_szs=m["emb_szs"], config=m["config"], n_out=m["n_out"],
                           y_range=y_range, metrics=restore_metrics(ls["metrics"], METRICS), seed=ls["seed"],
                           lr=ls["lr"], wd=ls["wd"], moms=ls["moms"], path=path, model_dir=ls["model_dir"],
                           mesh=mesh)
