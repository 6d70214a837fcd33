"""Cold start: held-out splits (users or items never seen in training) and the baselines a metadata model must beat.

The lesson notes that a dot model knows nothing about a newcomer; the hybrid model (``HybridDotBias``, built by
``collab_learner`` on loaders with metadata) predicts from metadata instead. ``cold_start_eval`` trains the
plain dot model and the hybrid on the same cold split and reports RMSE on the held-out entities next to
the global mean and the damped item-mean (bias-only) baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from collab_jax.data import CollabDataLoaders, ratings_columns
from collab_jax.learner import collab_learner
from collab_jax.metadata import MetaEncoder


def holdout_entities(ratings: pd.DataFrame, column: str, frac: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean mask of rows whose ``column`` value (a user or an item) is in a random ``frac`` of the distinct
    values: every rating of a held-out entity goes to validation, so none is seen in training."""
    if column not in ratings.columns:
        raise ValueError(f"column {column!r} is not in ratings; its columns are {list(ratings.columns)}")
    if not 0 < frac < 1:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    ids = np.sort(pd.unique(ratings[column].dropna()))
    held = np.random.default_rng(seed).permutation(len(ids))[: max(1, int(round(frac * len(ids))))]
    return ratings[column].isin(ids[held]).to_numpy()


@dataclass(frozen=True)
class BiasBaseline:
    """``mean + b_item (+ b_user when known)``, each a damped mean of residuals (Koren's baseline predictor):
    b_i = sum(r - mean) / (n_i + reg), then b_u from what b_i leaves. Unknown ids get 0 offsets."""

    mean: float
    item_bias: pd.Series
    user_bias: pd.Series

    @classmethod
    def fit(cls, ratings: pd.DataFrame, user_name: str, item_name: str, rating_name: str,
            reg_item: float = 25.0, reg_user: float = 10.0) -> BiasBaseline:
        r = ratings[rating_name].astype(np.float64)
        mean = float(r.mean())
        res = r - mean
        g = res.groupby(ratings[item_name])
        item_bias = g.sum() / (g.count() + reg_item)
        res_u = res - ratings[item_name].map(item_bias).to_numpy()
        gu = res_u.groupby(ratings[user_name])
        user_bias = gu.sum() / (gu.count() + reg_user)
        return cls(mean, item_bias, user_bias)

    def predict(self, df: pd.DataFrame, user_name: str, item_name: str, use_user: bool = True) -> np.ndarray:
        pred = self.mean + df[item_name].map(self.item_bias).fillna(0.0).to_numpy()
        if use_user:
            pred = pred + df[user_name].map(self.user_bias).fillna(0.0).to_numpy()
        return pred


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - np.asarray(y, np.float64)) ** 2)))


def cold_start_eval(ratings: pd.DataFrame, user_meta: MetaEncoder | None, item_meta: MetaEncoder | None,
                    holdout: str = "user", frac: float = 0.2, seed: int = 0, n_factors: int = 50,
                    epochs: int = 5, lr: float = 5e-3, wd: float = 0.1, y_range: tuple[float, float] = (0, 5.5),
                    bs: int = 64, id_drop: float = 0.0, progress: bool = False) -> dict[str, float]:
    """RMSE on the ratings of held-out users (``holdout='user'``) or items (``'item'``), none seen in training:
    global mean, damped bias baseline, ``EmbeddingDotBias`` and the hybrid, all fitted on the same rows."""
    user_name, item_name, rating_name = ratings_columns(ratings)
    column = {"user": user_name, "item": item_name}.get(holdout)
    if column is None:
        raise ValueError(f"holdout must be 'user' or 'item', got {holdout!r}")
    mask = holdout_entities(ratings, column, frac, seed)
    df = ratings[[user_name, item_name, rating_name]].assign(is_valid=mask)
    train, test = df[~mask], df[mask]
    y = test[rating_name].to_numpy(np.float64)
    base = BiasBaseline.fit(train, user_name, item_name, rating_name)
    out = {"n_train": float(len(train)), "n_cold": float(len(test)),
           "global_mean": rmse(np.full(len(test), train[rating_name].mean()), y),
           "bias_baseline": rmse(base.predict(test, user_name, item_name), y)}
    dls = CollabDataLoaders.from_df(df, valid_col="is_valid", seed=seed, bs=bs, user_meta=user_meta,
                                    item_meta=item_meta)
    for name, use_meta in (("dot", False), ("hybrid", True)):
        learn = collab_learner(dls, n_factors=n_factors, y_range=y_range, use_meta=use_meta, seed=seed,
                               progress=progress, config={"id_drop": id_drop} if use_meta else None)
        learn.fit_one_cycle(epochs, lr, wd=wd)
        preds, targs = learn.get_preds()
        out[name] = rmse(preds, targs)
    return out
