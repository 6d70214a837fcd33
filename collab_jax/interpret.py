"""The lesson's interpretation of a trained collaborative-filtering model: item biases, principal components of
the item factors, and top-N recommendations for a user.

Functions take the learner (anything with ``dls``, ``bias``, ``weight`` and ``get_preds``) so that notebooks,
tests and scripts share them; ``CollabLearner`` exposes ``recommend`` as a method too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def pca(x: np.ndarray, k: int = 2) -> np.ndarray:
    """fastai's ``Tensor.pca``: centre the rows, project them on the top ``k`` principal directions."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or k > min(x.shape):
        raise ValueError(f"pca needs a 2-D array with at least k={k} rows and columns, got shape {x.shape}")
    xc = x - x.mean(0)
    u, _, _ = np.linalg.svd(xc.T, full_matrices=False)
    # SVD's sign is arbitrary; make the largest-magnitude loading of each direction positive so runs compare
    signs = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    return xc @ (u[:, :k] * signs[:k])


class Factors(np.ndarray):
    """Learned factors: a NumPy array with fastai's tensor patch ``.pca(k)`` (``learn.model.weight(it).pca(3)``)."""

    def __new__(cls, x: Any) -> Factors:
        return np.asarray(x).view(cls)

    def pca(self, k: int = 2) -> np.ndarray:
        """The rows projected on their top ``k`` principal directions (``pca``)."""
        return pca(np.asarray(self), k)


def most_rated(ratings: pd.DataFrame, item_name: str, n: int = 1000) -> np.ndarray:
    """The lesson's ``top_movies``: the ``n`` items with the most ratings, most rated first."""
    if item_name not in ratings.columns:
        raise ValueError(f"item column {item_name!r} is not in ratings; its columns are {list(ratings.columns)}")
    return ratings.groupby(item_name).size().sort_values(ascending=False, kind="stable").index.values[:n]


def bias_ranking(learn: Any, items: Sequence[Any]) -> pd.DataFrame:
    """Items sorted by learned bias, lowest first: the lesson's "movies people rate low whoever they are"."""
    b = learn.bias(items, is_item=True)
    df = pd.DataFrame({learn.dls.item_name: list(items), "bias": b})
    return df.sort_values("bias", kind="stable").reset_index(drop=True)


def factor_components(learn: Any, items: Sequence[Any], k: int = 3) -> pd.DataFrame:
    """The lesson's PCA of the item factors: one column per component (``pc0``...), one row per item."""
    comps = pca(learn.weight(items, is_item=True), k)
    df = pd.DataFrame(comps, columns=[f"pc{i}" for i in range(k)])
    df.insert(0, learn.dls.item_name, list(items))
    return df


def rated_items(learn: Any, user: Any) -> set[Any]:
    """Raw item ids a user rated in the training split."""
    dls = learn.dls
    x, _, _ = dls.train.arrays
    ids = np.asarray(getattr(x, "ids", x))
    u = dls.classes[dls.user_name].index(user) if user in dls.classes[dls.user_name] else 0
    items = np.asarray(dls.classes[dls.item_name], dtype=object)
    return set(items[ids[ids[:, 0] == u, 1]]) if u else set()


def recommend(learn: Any, user: Any, n: int = 10, exclude_rated: bool = True,
              exclude: Sequence[Any] = ()) -> pd.DataFrame:
    """Top ``n`` items by predicted rating for a raw user id, without the items they rated in training
    (``exclude_rated``) or listed in ``exclude``. An unseen user gets the same ranking any newcomer gets (the
    dot model's: by item bias; the hybrid's: from their metadata, when ``dls.user_meta`` knows them)."""
    dls = learn.dls
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    skip = set(exclude) | (rated_items(learn, user) if exclude_rated else set())
    candidates = [i for i in dls.classes[dls.item_name][1:] if i not in skip]
    if not candidates:
        return pd.DataFrame({dls.item_name: [], "prediction": []})
    df = pd.DataFrame({dls.user_name: [user] * len(candidates), dls.item_name: candidates})
    preds = learn.predict(df, warn_unseen=False)
    order = np.argsort(-preds, kind="stable")[:n]
    return pd.DataFrame({dls.item_name: np.asarray(candidates, dtype=object)[order], "prediction": preds[order]})
