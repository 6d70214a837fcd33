"""Collaborative-filtering data: a ratings frame becomes int32 ``(B, 2)`` [user, item] pairs and float ratings.

As fastai's ``CollabDataLoaders``: user and item ids are categorified (index 0 = ``#na#``, the rest sorted), the
rows are split at random (``valid_pct``, ``seed``) and the training loader is shuffled and drops its last partial
batch. Deliberate difference (fastai_facts §0.2): classes come from the training split only, for numeric and
string ids alike, so every id absent from training (validation-only, test-time, NaN) maps to 0 (``#na#``).

Bad input is refused with a message naming the column and value: missing or misnamed columns, an empty frame,
non-numeric, NaN or infinite ratings. Duplicate (user, item) pairs and missing ids are accepted with a
warning (fastai accepts them silently): each duplicate stays a separate example, a missing id becomes ``#na#``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collab_jax.metadata import HybridInput, MetaEncoder, plain
from learner_jax.data import DataLoader, DataLoaders, take_rows
from learner_jax.figures import show_table

NA = "#na#"


def ratings_columns(ratings: pd.DataFrame, user_name: str | None = None, item_name: str | None = None,
                    rating_name: str | None = None) -> tuple[str, str, str]:
    """The user, item and rating column names: the first three columns unless named (fastai's defaults)."""
    if not isinstance(ratings, pd.DataFrame):
        raise TypeError(f"ratings must be a pandas DataFrame, got {type(ratings).__name__}")
    cols = list(ratings.columns)
    names = []
    for i, (what, name) in enumerate((("user", user_name), ("item", item_name), ("rating", rating_name))):
        if name is None:
            if len(cols) <= i:
                raise ValueError(f"ratings has {len(cols)} column(s) {cols}: the {what} column defaults to column "
                                 f"{i}; pass {what}_name= or give user, item and rating columns")
            name = cols[i]
        elif name not in ratings.columns:
            raise ValueError(f"{what}_name={name!r} is not a column of ratings; its columns are {cols}")
        names.append(name)
    if len(set(names)) < 3:
        raise ValueError(f"user, item and rating columns must differ, got {names}")
    return names[0], names[1], names[2]


def check_ratings(ratings: pd.DataFrame, user_name: str, item_name: str, rating_name: str) -> np.ndarray:
    """The ratings as float32 after refusing what would silently train on garbage (see the module docstring)."""
    if len(ratings) == 0:
        raise ValueError("ratings is empty: no rows to train on")
    col = ratings[rating_name]
    if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
        num = pd.to_numeric(col, errors="coerce")
        bad = col[num.isna() & col.notna()]
        first = f"; row {plain(bad.index[0])!r} holds {plain(bad.iloc[0])!r}" if len(bad) else ""
        raise ValueError(f"rating column {rating_name!r} must be numeric, it has dtype {col.dtype}{first}")
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)  # float32 would make them inf
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"rating column {rating_name!r} has {int(bad.sum())} NaN or infinite value(s) (counting "
                         f"values beyond float32's +-3.4e38, which become infinite); the first is at row "
                         f"{plain(ratings.index[i])!r} ({values[i]}): drop, fill or rescale them first")
    for name in (user_name, item_name):
        n_missing = int(ratings[name].isna().sum())
        if n_missing:
            warnings.warn(f"{name!r} has {n_missing} missing id(s); they map to {NA} (index 0)", stacklevel=3)
    dup = ratings.duplicated([user_name, item_name], keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        pair = (plain(ratings[user_name].iloc[i]), plain(ratings[item_name].iloc[i]))
        warnings.warn(f"{int(dup.sum())} duplicate ({user_name}, {item_name}) pair(s) in ratings, e.g. {pair!r} "
                      f"at row {plain(ratings.index[i])!r}: each stays a separate example (as in fastai); aggregate "
                      f"them first (e.g. ratings.groupby([{user_name!r}, {item_name!r}]).mean()) if that is "
                      "not intended", stacklevel=3)
    return values.astype(np.float32)


def make_classes(values: pd.Series) -> list[Any]:
    """``['#na#', *sorted unique non-missing values]``: fastai's ``CategoryMap(add_na=True)``."""
    uniq = pd.unique(values.dropna())
    try:
        uniq = sorted(uniq)
    except TypeError as e:
        raise ValueError(f"ids in column {values.name!r} mix types that cannot be sorted ({e}); "
                         "convert them to one type (e.g. .astype(str))") from None
    return [NA, *uniq]


def categorize(values: pd.Series | Sequence[Any], classes: list[Any]) -> np.ndarray:
    """int32 index of each value in ``classes``; 0 (``#na#``) for missing values and values not in classes."""
    idx = pd.Index(classes[1:]).get_indexer(pd.Index(values))
    return (idx + 1).astype(np.int32)


def random_split(n: int, valid_pct: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """fastai's ``RandomSplitter``: permute, the first ``int(valid_pct * n)`` rows are validation.

    Ours draws from its own ``np.random.default_rng(seed)`` and never reseeds anything global (fastai reseeds
    torch); the same seed therefore gives a different split from fastai's, identical across our runs."""
    if not 0 <= valid_pct < 1:
        raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(valid_pct * n)
    return np.sort(perm[cut:]), np.sort(perm[:cut])


def _valid_mask(ratings: pd.DataFrame, valid_col: str) -> np.ndarray:
    if valid_col not in ratings.columns:
        raise ValueError(f"valid_col={valid_col!r} is not a column of ratings; its columns are {list(ratings.columns)}")
    col = ratings[valid_col]
    if not pd.api.types.is_bool_dtype(col) and not set(pd.unique(col)) <= {0, 1}:
        raise ValueError(f"valid_col {valid_col!r} must hold booleans (True = validation row), got {col.dtype}")
    return col.to_numpy().astype(bool)


@dataclass(repr=False)
class CollabDataLoaders(DataLoaders):
    """Training and validation loaders of ``(x, rating, w)`` with x int32 ``(B, 2)`` = [user index, item index].

    With user or item metadata (``user_meta``/``item_meta`` in ``from_df``), x is a ``HybridInput`` carrying the
    rows' metadata features as well, for the hybrid cold-start model.
    """

    classes: dict[str, list[Any]] = field(default_factory=dict)
    user_name: str = "user"
    item_name: str = "item"
    rating_name: str = "rating"
    rating_range: tuple[float, float] = (float("nan"), float("nan"))
    user_meta: MetaEncoder | None = None
    item_meta: MetaEncoder | None = None
    path: str = "."

    @classmethod
    def from_df(cls, ratings: pd.DataFrame, valid_pct: float = 0.2, user_name: str | None = None,
                item_name: str | None = None, rating_name: str | None = None, seed: int | None = None,
                path: str = ".", bs: int = 64, val_bs: int | None = None, valid_col: str | None = None,
                user_meta: MetaEncoder | None = None, item_meta: MetaEncoder | None = None) -> CollabDataLoaders:
        """Loaders from a ratings frame (user, item, rating = the first three columns unless named).

        ``seed=None`` draws a fresh random split each call, as fastai; pass a seed for a reproducible one (it
        also seeds the training loader's shuffling, which is 0 otherwise).

        Beyond fastai: ``valid_col`` (a boolean column, True = validation) replaces the random split, for official
        splits; ``val_bs`` (default ``max(bs, 1024)``: the validation batch size changes no number, only speed);
        ``user_meta``/``item_meta`` add metadata features for the hybrid model (``collab_jax.metadata``).
        """
        user_name, item_name, rating_name = ratings_columns(ratings, user_name, item_name, rating_name)
        y = check_ratings(ratings, user_name, item_name, rating_name)
        if valid_col is None:
            train_idx, valid_idx = random_split(len(ratings), valid_pct, seed)
        else:
            mask = _valid_mask(ratings, valid_col)
            train_idx, valid_idx = np.flatnonzero(~mask), np.flatnonzero(mask)
        if len(train_idx) == 0:
            raise ValueError("the training split is empty: lower valid_pct or mark fewer rows in valid_col")
        train = ratings.iloc[train_idx]
        classes = {user_name: make_classes(train[user_name]), item_name: make_classes(train[item_name])}
        dls = cls(train=None, valid=None, classes=classes, user_name=user_name, item_name=item_name,  # type: ignore[arg-type]
                  rating_name=rating_name, rating_range=(float(y[train_idx].min()), float(y[train_idx].max())),
                  user_meta=user_meta, item_meta=item_meta, path=str(path))
        x = dls.encode(ratings)
        dls.train = DataLoader(take_rows(x, train_idx), y[train_idx], bs=bs, shuffle=True,
                               drop_last=len(train_idx) >= bs,  # fewer rows than bs: one padded batch
                               seed=0 if seed is None else seed)
        dls.valid = DataLoader(take_rows(x, valid_idx), y[valid_idx], bs=val_bs or max(bs, 1024), shuffle=False)
        return dls

    @classmethod
    def from_csv(cls, csv: str | os.PathLike, **kwargs: Any) -> CollabDataLoaders:
        """``from_df(pd.read_csv(csv), **kwargs)``."""
        if not os.path.exists(csv):
            raise FileNotFoundError(f"ratings file {os.fspath(csv)!r} does not exist")
        try:
            ratings = pd.read_csv(csv)
        except UnicodeDecodeError as e:
            raise ValueError(f"ratings file {os.fspath(csv)!r} is not UTF-8 text ({e}): re-save it as UTF-8, or "
                             "read it with pd.read_csv(..., encoding=...) and call from_df") from e
        return cls.from_df(ratings, **kwargs)

    @property
    def n_users(self) -> int:
        return len(self.classes[self.user_name])

    @property
    def n_items(self) -> int:
        return len(self.classes[self.item_name])

    @property
    def bs(self) -> int:
        return self.train.bs

    def encode(self, df: pd.DataFrame) -> np.ndarray | HybridInput:
        """Model input for raw (user, item) ids in ``df``; ids unseen in training map to 0 (``#na#``)."""
        for what, name in (("user", self.user_name), ("item", self.item_name)):
            if name not in df.columns:
                raise ValueError(f"{what} column {name!r} (the one these loaders were built with) is not in the "
                                 f"frame; its columns are {list(df.columns)}")
        ids = np.stack([categorize(df[self.user_name], self.classes[self.user_name]),
                        categorize(df[self.item_name], self.classes[self.item_name])], axis=1)
        if self.user_meta is None and self.item_meta is None:
            return ids
        n = len(df)
        user = (self.user_meta.features(df[self.user_name]) if self.user_meta is not None
                else np.zeros((n, 0), np.float32))
        item = (self.item_meta.features(df[self.item_name]) if self.item_meta is not None
                else np.zeros((n, 0), np.float32))
        return HybridInput(ids, user, item)

    def unseen(self, df: pd.DataFrame) -> dict[str, int]:
        """How many rows of ``df`` have a user (item) id the model never trained on (non-missing, not in classes)."""
        out = {}
        for name in (self.user_name, self.item_name):
            col = df[name]
            out[name] = int(((categorize(col, self.classes[name]) == 0) & col.notna().to_numpy()).sum())
        return out

    def test_dl(self, df: pd.DataFrame, bs: int | None = None, warn_unseen: bool = True) -> DataLoader:
        """A loader over raw (user, item) ids, in order (``learn.get_preds(dl=dls.test_dl(df))``).

        Targets are the rating column when ``df`` has one, else zeros. Ids unseen in training map to ``#na#``
        (index 0); see ``CollabLearner.predict`` for what the model then predicts. A warning counts them.
        """
        if len(df) == 0:
            raise ValueError("test_dl got an empty frame")
        x = self.encode(df)
        if warn_unseen:
            unseen = {k: v for k, v in self.unseen(df).items() if v}
            if unseen:
                warnings.warn(f"ids unseen in training map to {NA} (index 0): {unseen} row(s)", stacklevel=2)
        if self.rating_name in df.columns:
            y = check_ratings(df, self.user_name, self.item_name, self.rating_name)
        else:
            y = np.zeros(len(df), np.float32)
        return DataLoader(x, y, bs=bs or self.valid.bs, shuffle=False, drop_last=False)

    def decode(self, x: np.ndarray | HybridInput, y: np.ndarray | None = None) -> pd.DataFrame:
        """Raw ids (and ratings) of encoded rows, as a DataFrame with the original column names."""
        ids = x.ids if isinstance(x, HybridInput) else np.asarray(x)
        users = np.asarray(self.classes[self.user_name], dtype=object)[ids[:, 0]]
        items = np.asarray(self.classes[self.item_name], dtype=object)[ids[:, 1]]
        out = pd.DataFrame({self.user_name: users, self.item_name: items})
        if y is not None:
            out[self.rating_name] = np.asarray(y)
        return out

    def show_batch(self, max_n: int = 10, show: bool = True) -> pd.DataFrame:
        """The first ``max_n`` rows of the first training batch, decoded to raw ids (fastai's ``show_batch``),
        returned (a notebook displays it) and printed outside IPython when ``show``."""
        x, y, w = next(iter(self.train.batches(0)))
        n = min(max_n, int((np.asarray(w) > 0).sum()))
        ids = x.ids if isinstance(x, HybridInput) else x
        return show_table(self.decode(np.asarray(ids)[:n], np.asarray(y)[:n]), show)

    def decode_inputs(self, x: np.ndarray | HybridInput) -> pd.DataFrame:
        """Encoded rows as their raw user and item ids (for result tables)."""
        return self.decode(x)

    def __repr__(self) -> str:
        n_train, n_valid = (getattr(dl, "n", "?") for dl in (self.train, self.valid))
        meta = " + metadata" if self.user_meta is not None or self.item_meta is not None else ""
        return (f"CollabDataLoaders({self.n_users - 1} {self.user_name}s x {self.n_items - 1} {self.item_name}s"
                f" -> {self.rating_name} in [{self.rating_range[0]:g}, {self.rating_range[1]:g}]{meta}; "
                f"{n_train} train / {n_valid} valid ratings, bs={self.train.bs})")
