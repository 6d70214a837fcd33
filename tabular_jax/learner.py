"""``TabularLearner`` and fastai's ``tabular_learner`` factory.

Training is the engine's; this adds what is tabular: ``predict(row)``, ``show_batch`` and permutation feature
importance. The factory makes the learner with ``device_epoch=True``: the training table lives on the device
and each epoch is one jitted ``lax.scan`` (fastai iterates batches in Python). One layer group, as fastai.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from flax import nnx

from learner_jax.figures import show_table
from learner_jax.learner import Learner
from learner_jax.model_init import build_compiled
from learner_jax.sharding import data_mesh
from tabular_jax.data import TabularDataLoaders
from tabular_jax.interpret import permutation_importance
from tabular_jax.models import TabularModel, get_emb_sz, tabular_config
from tabular_jax.targets import CategoryBlock, MultiCategoryBlock


def _as_frame(row: Any) -> pd.DataFrame:
    """One row (Series, dict or one-row frame) as a one-row frame."""
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"predict takes one row, got a frame of {len(row)} rows (use get_preds(test_dl))")
        return row
    if isinstance(row, pd.Series):
        return row.to_frame().T
    if isinstance(row, Mapping):
        return pd.DataFrame([dict(row)])
    raise TypeError(f"predict takes a pandas Series, a dict or a one-row DataFrame, got {type(row).__name__}")


class TabularLearner(Learner):
    """``Learner`` for tabular data."""

    dls: TabularDataLoaders

    def predict(self, row: Any) -> tuple[pd.DataFrame, Any, np.ndarray]:
        """fastai's ``predict``: (decoded row with the prediction in the target column, class index or
        predicted values, probabilities or predictions)."""
        dl = self.dls.test_dl(_as_frame(row), with_labels=False)
        inp, preds, _, dec = self.get_preds(dl=dl, with_input=True, with_decoded=True)
        block = self.dls.y_block
        full = self.dls.to.decode(*inp, index=_as_frame(row).index)
        decoded = block.decode(dec if isinstance(block, CategoryBlock) else preds)
        if isinstance(block, MultiCategoryBlock) or len(self.dls.y_names) == 1:
            full[self.dls.y_names[0] if len(self.dls.y_names) == 1 else "labels"] = list(decoded)
        else:
            for j, n in enumerate(self.dls.y_names):
                full[n] = np.asarray(decoded)[:, j]
        index = int(dec[0]) if isinstance(block, CategoryBlock) else np.asarray(dec[0])
        return full, index, np.asarray(preds[0])

    def show_results(self, dl: Any = None, max_n: int = 10, show: bool = True) -> pd.DataFrame:
        """Decoded rows of ``dl`` (default validation) with the target and the prediction (``<y>_pred``)."""
        dl = self.dls.valid if dl is None else dl
        inp, preds, targs, dec = self.get_preds(dl=dl, with_input=True, with_decoded=True)
        keep = slice(0, max_n)
        df = self.dls.to.decode(inp[0][keep], inp[1][keep])
        block = self.dls.y_block
        name = self.dls.y_names[0] if len(self.dls.y_names) == 1 else "labels"
        if getattr(dl, "has_labels", True):
            df[name] = list(block.decode(targs[keep]))
        df[f"{name}_pred"] = list(block.decode((dec if isinstance(block, CategoryBlock) else preds)[keep]))
        return show_table(df, show)

    def show_batch(self, dl: Any = None, max_n: int = 10, show: bool = True) -> pd.DataFrame:
        return self.dls.show_batch(dl=dl, max_n=max_n, show=show)

    def feature_importance(self, dl: Any = None, n_repeats: int = 3, seed: int = 0) -> pd.DataFrame:
        """Permutation importance on ``dl`` (default the validation set); see ``interpret.permutation_importance``."""
        return permutation_importance(self, dl=dl, n_repeats=n_repeats, seed=seed)


# fastai v1 passed model options to the factory; v2 (and we) take them in ``config=tabular_config(...)``
_V1_NAMES = {"emb_drop": "embed_p", "ps": "ps", "embed_p": "embed_p", "use_bn": "use_bn", "bn_final": "bn_final",
             "bn_cont": "bn_cont", "lin_first": "lin_first"}


def _refuse_model_kwargs(kwargs: Mapping[str, Any]) -> None:
    """A model option given straight to ``tabular_learner`` (fastai v1 style) names where it goes instead."""
    for name in kwargs:
        if name in _V1_NAMES:
            v2 = _V1_NAMES[name]
            raise TypeError(f"tabular_learner got {name}=, a model option: pass config=tabular_config({v2}=...) "
                            f"(fastai v2; v1's {name}= went to the factory)")


def tabular_learner(dls: TabularDataLoaders, layers: Sequence[int] | None = None,
                    emb_szs: Mapping[str, int] | None = None, config: Mapping[str, Any] | None = None,
                    n_out: int | None = None, y_range: tuple[float, float] | None = None,
                    loss_func: Any = None, metrics: Any = None, seed: int = 0, **kwargs: Any) -> TabularLearner:
    """fastai's ``tabular_learner``: a ``TabularModel`` sized from ``dls`` (``layers`` default [200, 100]),
    the target block's loss, and whole epochs on device. Other keyword arguments go to ``Learner``
    (``shard_tables=True`` splits the embedding tables by rows over the devices, rows rounded up to fit)."""
    if not isinstance(dls, TabularDataLoaders):
        raise TypeError(f"tabular_learner needs TabularDataLoaders, got {type(dls).__name__}")
    _refuse_model_kwargs(kwargs)
    config = dict(tabular_config(**(config or {})))
    layers = [200, 100] if layers is None else list(layers)
    n_out = dls.c if n_out is None else int(n_out)
    if not n_out:
        raise ValueError("n_out could not be inferred from the data: pass n_out")
    if y_range is None:
        y_range = config.pop("y_range", None)
    else:
        config.pop("y_range", None)
    sizes = get_emb_sz(dls, emb_szs)
    emb = sizes
    if kwargs.get("shard_tables"):  # rows rounded up to split evenly over the devices (never looked up)
        n_dev = (kwargs.get("mesh") or data_mesh()).devices.size
        emb = [(-(-n // n_dev) * n_dev, k) for n, k in sizes]
    model = build_compiled(lambda: TabularModel(emb, len(dls.cont_names), n_out, layers, y_range=y_range,
                                                **config, rngs=nnx.Rngs(params=seed)))
    kwargs.setdefault("device_epoch", True)
    kwargs.setdefault("path", getattr(dls, "path", "."))  # fastai: the learner's path defaults to the loaders'
    learn = TabularLearner(dls, model, loss_func=loss_func or dls.loss_func, metrics=metrics, seed=seed, **kwargs)
    learn._export_args = {"layers": layers, "emb_szs": {n: w for n, (_, w) in zip(dls.cat_names, sizes)},
                          "config": config, "n_out": n_out, "y_range": None if y_range is None else list(y_range)}
    return learn
