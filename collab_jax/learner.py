"""``collab_learner``: the fastai factory, returning a ``CollabLearner`` (the engine's Learner plus the lesson's
``predict``, ``bias``, ``weight`` and top-N recommendations over raw user and item ids).

Unseen ids: a user or item absent from the training split maps to index 0 (``#na#``). No training row ever has
index 0, so that embedding row keeps its near-zero initialisation (shrunk further by weight decay): the dot
model then predicts about ``sigmoid_range(bias of the known side)``, i.e. an item's (or user's) bias-only
rating; ``EmbeddingNN`` gives an equally uninformed guess; the hybrid model uses the newcomer's metadata.
``predict`` and ``test_dl`` warn with the count; ``bias``/``weight`` refuse unseen ids as fastai does.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd
from flax import nnx

from collab_jax.data import CollabDataLoaders
from collab_jax.dot_epoch import MIN_MOM, make_dot_train_epoch, table_leaves
from collab_jax.interpret import Factors, recommend
from collab_jax.models import EmbeddingDotBias, EmbeddingNN, HybridDotBias, emb_sz_rule
from learner_jax.learner import Learner
from learner_jax.losses import MSELossFlat
from learner_jax.model_init import build_compiled
from learner_jax.sharding import data_mesh, tables_fit
from learner_jax.shuffle import feistel_permutation
from learner_jax.steps import StepSpec


class CollabLearner(Learner):
    """A ``Learner`` over ``CollabDataLoaders`` that speaks raw user and item ids."""

    dls: CollabDataLoaders
    sparse_epoch: bool = True  # EmbeddingDotBias epochs use the row-sparse exact AdamW (collab_jax.dot_epoch)

    def _epoch_variant(self) -> tuple:
        """Whether this fit may take the row-sparse path: its moment scale needs every beta1 >= ``MIN_MOM``."""
        s = self.state.sched
        moms = np.asarray(jax.device_get((s.mom_start, s.mom_mid, s.mom_end)), np.float64)
        return (bool(np.all(moms >= MIN_MOM)),)

    def _make_train_epoch(self, spec: StepSpec, bs: int, n_batches: int, moms_ok: bool = True, **kwargs):
        """The dot model on one device trains with ``collab_jax.dot_epoch`` (same numbers, far fewer passes over
        the tables); anything else (EmbeddingNN, the hybrid, clipping, norm logging, several devices, beta1 below
        ``MIN_MOM``) takes the engine's epoch. Both shuffle with the sort-free ``feistel_permutation`` (a fifth
        of an epoch saved)."""
        model = self.model
        # with tables split over the mesh (``shard_tables``) it runs on all devices: each updates its own rows
        if (self.sparse_epoch and moms_ok and type(model) is EmbeddingDotBias and spec.clip is None
                and not spec.log_norms and (self.mesh.devices.size == 1 or self.table_shapes)
                and len(spec.trainable) == 4):
            return make_dot_train_epoch(spec, table_leaves(self.state.params), model.y_range, model.l2, bs,
                                        n_batches, permute=feistel_permutation, compute_dtype=model.compute_dtype)
        return super()._make_train_epoch(spec, bs, n_batches, permute=feistel_permutation)

    def _frame(self, data: pd.DataFrame | tuple | Sequence[tuple]) -> pd.DataFrame:
        if isinstance(data, pd.DataFrame):
            return data
        rows = [data] if isinstance(data, tuple) else list(data)
        if not rows or any(len(r) != 2 for r in rows):
            raise ValueError("predict takes a DataFrame with the user and item columns, a (user, item) pair, or a "
                             "list of such pairs")
        return pd.DataFrame(rows, columns=[self.dls.user_name, self.dls.item_name])

    def predict(self, data: pd.DataFrame | tuple | Sequence[tuple], warn_unseen: bool = True) -> np.ndarray:
        """Predicted ratings for raw (user, item) ids: a DataFrame with the loaders' user/item columns, one
        ``(user, item)`` pair, or a list of pairs. Unseen ids: see the module docstring (a warning counts them)."""
        df = self._frame(data)
        preds, _ = self.get_preds(dl=self.dls.test_dl(df, warn_unseen=warn_unseen))
        return np.asarray(preds, np.float32).reshape(len(df))

    @property
    def model(self) -> nnx.Module:
        """The module with the current weights and the id ``classes``, so fastai v2's ``learn.model.bias(items)``,
        ``learn.model.weight(items, is_item=False)`` and ``learn.model.i_bias`` work (``RawIdLookup``)."""
        m = super().model
        m.classes = self.dls.classes
        return m

    def bias(self, arr: Sequence[Any], is_item: bool = True) -> np.ndarray:
        """The learned bias of each raw item (or user, ``is_item=False``) id in ``arr`` (fastai's
        ``learn.model.bias``); for the hybrid model the id part only."""
        return self.model.bias(arr, is_item)

    def weight(self, arr: Sequence[Any], is_item: bool = True) -> Factors:
        """The learned factors ``(len(arr), n_factors)`` of each raw item (or user) id (fastai's
        ``learn.model.weight``; ``.pca(k)`` gives the lesson's components); the item embeddings for
        ``EmbeddingNN``."""
        return self.model.weight(arr, is_item)

    def show_results(self, ds_idx: int = 1, dl: Any = None, max_n: int = 10, show: bool = True) -> pd.DataFrame:
        """The first ``max_n`` rows of ``dl`` (default: loader ``ds_idx``, validation): user and item ids, the
        rating and the prediction (``<rating>_pred``)."""
        from learner_jax.figures import show_table

        dl = self.dls.loaders[ds_idx] if dl is None else dl
        inp, preds, targs = self.get_preds(dl=dl, with_input=True)
        n = min(max_n, len(targs))
        df = self.dls.decode(jax.tree_util.tree_map(lambda a: np.asarray(a)[:n], inp), np.asarray(targs)[:n])
        df[f"{self.dls.rating_name}_pred"] = np.asarray(preds, np.float32).reshape(len(targs))[:n]
        return show_table(df, show)

    def recommend(self, user: Any, n: int = 10, exclude_rated: bool = True,
                  exclude: Sequence[Any] = ()) -> pd.DataFrame:
        """The ``n`` items with the highest predicted rating for a raw user id, leaving out what the user rated
        in the training data (and ``exclude``): ``collab_jax.interpret.recommend``."""
        return recommend(self, user, n=n, exclude_rated=exclude_rated, exclude=exclude)


def get_emb_sz(dls: CollabDataLoaders, sz_dict: dict[str, int] | None = None) -> list[tuple[int, int]]:
    """[(n_users, size), (n_items, size)] by fastai's rule unless ``sz_dict`` names a size for the column."""
    sz_dict = sz_dict or {}
    unknown = set(sz_dict) - {dls.user_name, dls.item_name}
    if unknown:
        raise ValueError(f"emb_szs names {sorted(unknown)}, which are not the user/item columns "
                         f"{[dls.user_name, dls.item_name]}")
    return [(n, int(sz_dict.get(name, emb_sz_rule(n))))
            for name, n in ((dls.user_name, dls.n_users), (dls.item_name, dls.n_items))]


def _check_y_range(dls: CollabDataLoaders, y_range: tuple[float, float] | None) -> None:
    if y_range is None:
        return
    lo, hi = float(y_range[0]), float(y_range[1])
    if not lo < hi:
        raise ValueError(f"y_range must be (low, high) with low < high, got {y_range}")
    rmin, rmax = dls.rating_range
    if rmin < lo or rmax > hi:
        warnings.warn(f"training ratings span [{rmin:g}, {rmax:g}] but y_range=({lo:g}, {hi:g}): the sigmoid "
                      "output can never reach ratings outside y_range (fastai's lesson widens it, e.g. (0, 5.5) "
                      "for 1-5 stars)", stacklevel=3)


def collab_learner(dls: CollabDataLoaders, n_factors: int = 50, use_nn: bool = False,
                   emb_szs: dict[str, int] | None = None, layers: Sequence[int] | None = None,
                   config: dict | None = None, y_range: tuple[float, float] | None = None, loss_func=None,
                   use_meta: bool | None = None, seed: int = 0, device_epoch: bool = True,
                   shard_tables: bool | None = None, **kwargs: Any) -> CollabLearner:
    """fastai's ``collab_learner``: ``EmbeddingDotBias`` (default) or ``EmbeddingNN`` (``use_nn=True``, hidden
    ``layers`` default ``[n_factors]``, embedding sizes by fastai's rule or ``emb_szs``), MSE loss.

    ``config`` holds the model's other keyword arguments (``EmbeddingNN``: ``ps``, ``embed_p``, ``use_bn``...;
    the hybrid: ``id_drop``, ``l2``; the dot model: ``l2``). Beyond fastai: ``use_meta`` (default: whether
    ``dls`` carries metadata, unless ``use_nn``) builds the hybrid ``HybridDotBias``; ``seed`` sets
    initialisation, shuffling and dropout; ``device_epoch`` (default on) runs each training epoch as one jitted
    ``lax.scan``. ``shard_tables`` (True; default None: when they would not fit a device) splits the user and
    item tables by rows over the devices (``learner_jax.sharding``), their row counts rounded up to a multiple
    of the device count (the extra rows are never looked up; the others start as without them).
    Other keyword arguments (``wd``, ``lr``, ``metrics``, ``cbs``, ``mesh``...) go to ``Learner``.
    """
    if not isinstance(dls, CollabDataLoaders):
        raise TypeError(f"collab_learner needs CollabDataLoaders, got {type(dls).__name__}")
    _check_y_range(dls, y_range)
    if isinstance(n_factors, bool) or not isinstance(n_factors, (int, np.integer)) or n_factors < 1:
        raise ValueError(f"n_factors={n_factors!r}: the number of latent factors must be a whole number >= 1 "
                         "(fastai's default is 50)")
    if layers is not None and any(int(n) < 1 for n in layers):
        raise ValueError(f"layers={list(layers)!r}: every hidden layer needs at least one unit")
    has_meta = dls.user_meta is not None or dls.item_meta is not None
    use_meta = (has_meta and not use_nn) if use_meta is None else use_meta
    if use_meta and not has_meta:
        raise ValueError("use_meta=True needs loaders built with user_meta= and/or item_meta=")
    if use_meta and use_nn:
        raise ValueError("the hybrid metadata model is a dot model: pass use_nn=False with use_meta=True")
    mesh = kwargs.pop("mesh", None) or data_mesh()
    n_rows = dls.n_users + dls.n_items
    split = shard_tables or (shard_tables is None and not tables_fit(3 * 4 * n_rows * (n_factors + 1), mesh))
    pad = mesh.devices.size if split else 1
    model = build_compiled(lambda: _build_model(dls, n_factors, use_nn, use_meta, emb_szs, layers, config, y_range,
                                                nnx.Rngs(params=seed), pad))
    learn = CollabLearner(dls, model, loss_func if loss_func is not None else MSELossFlat(), seed=seed,
                          device_epoch=device_epoch, path=kwargs.pop("path", dls.path), mesh=mesh,
                          shard_tables=shard_tables, **kwargs)
    learn._export_args = {"n_factors": n_factors, "use_nn": bool(use_nn), "use_meta": bool(use_meta),
                          "emb_szs": emb_szs, "layers": None if layers is None else list(layers),
                          "config": dict(config or {}), "y_range": None if y_range is None else list(y_range)}
    return learn


def _build_model(dls: CollabDataLoaders, n_factors: int, use_nn: bool, use_meta: bool, emb_szs, layers, config,
                 y_range, rngs: nnx.Rngs, pad: int = 1) -> nnx.Module:
    """The model ``collab_learner`` asked for (traced once under ``nnx.jit``); table rows rounded up to a
    multiple of ``pad`` so that they split evenly over that many devices."""
    n_users, n_items = -(-dls.n_users // pad) * pad, -(-dls.n_items // pad) * pad
    if use_nn:
        config = dict(config or {})
        if y_range is not None:
            config["y_range"] = y_range
        emb = [(-(-n // pad) * pad, k) for n, k in get_emb_sz(dls, emb_szs)]
        model = EmbeddingNN(emb, list(layers) if layers is not None else [n_factors],
                            **config, rngs=rngs)
    elif use_meta:
        n_uf = dls.user_meta.n_features if dls.user_meta is not None else 0
        n_if = dls.item_meta.n_features if dls.item_meta is not None else 0
        model = HybridDotBias(n_factors, n_users, n_items, n_uf, n_if, y_range=y_range, **(config or {}),
                              rngs=rngs)
    else:
        model = EmbeddingDotBias(n_factors, n_users, n_items, y_range=y_range, **(config or {}), rngs=rngs)
    return model
