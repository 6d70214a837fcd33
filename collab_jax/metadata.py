"""User and item metadata as float feature vectors, the input that lets the hybrid model predict for newcomers.

A ``MetaEncoder`` is fitted on a metadata table (one row per user or per item, keyed by the raw id): categorical
columns become one-hot blocks, continuous columns are standardised (missing -> 0, the mean), flag columns
(0/1, e.g. MovieLens genres) are kept as they are. Any id the table does not know gets the all-zero vector, so
the model falls back to its id embeddings alone. Fitting reads only metadata, never ratings, so encoding the
metadata of users held out from training leaks nothing about their ratings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd


class HybridInput(NamedTuple):
    """Model input with metadata: ids int32 (B, 2) [user, item]; user (B, du) and item (B, di) float32 features."""

    ids: Any
    user: Any
    item: Any


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so error messages show ``1``, not ``np.int64(1)``."""
    return value.item() if isinstance(value, np.generic) else value


def _check_columns(df: pd.DataFrame, key: str, names: Sequence[str], what: str) -> None:
    for name in (key, *names):
        if name not in df.columns:
            raise ValueError(f"{what} column {name!r} is not in the metadata frame; its columns are {list(df.columns)}")


@dataclass(frozen=True)
class MetaEncoder:
    """A fitted metadata table: raw id -> float32 feature vector (see the module docstring)."""

    key: str
    ids: pd.Index
    table: np.ndarray  # (n_ids + 1, n_features); the last row is the all-zero "unknown id" vector
    columns: tuple[str, ...]

    @classmethod
    def from_df(cls, df: pd.DataFrame, key: str, cat_names: Sequence[str] = (), cont_names: Sequence[str] = (),
                flag_names: Sequence[str] = ()) -> MetaEncoder:
        """Fit on ``df`` (one row per id in column ``key``): one-hot ``cat_names``, standardised ``cont_names``,
        0/1 ``flag_names``."""
        _check_columns(df, key, [*cat_names, *cont_names, *flag_names], "metadata")
        if df[key].duplicated().any():
            dup = plain(df[key][df[key].duplicated()].iloc[0])
            raise ValueError(f"metadata key {key!r} must be unique per row; {dup!r} appears more than once")
        blocks, columns = [], []
        for name in cat_names:
            col = df[name]
            levels = sorted(pd.unique(col.dropna()), key=str)
            onehot = (col.to_numpy()[:, None] == np.asarray(levels, dtype=object)[None, :]).astype(np.float32)
            blocks.append(onehot)
            columns += [f"{name}={v}" for v in levels]
        for name in cont_names:
            col = pd.to_numeric(df[name], errors="coerce")
            bad = df[name].notna() & col.isna()
            if bad.any():
                first = plain(df[name][bad].iloc[0])
                raise ValueError(f"continuous metadata column {name!r} holds non-numeric {first!r}")
            v = col.to_numpy(np.float64)
            mean, std = np.nanmean(v), np.nanstd(v)
            z = (v - mean) / (std if std > 0 else 1.0)
            blocks.append(np.nan_to_num(z, nan=0.0)[:, None].astype(np.float32))
            columns.append(name)
        for name in flag_names:
            v = pd.to_numeric(df[name], errors="coerce").to_numpy(np.float64)
            if not np.isin(v[~np.isnan(v)], (0, 1)).all():
                raise ValueError(f"flag metadata column {name!r} must hold only 0/1 values")
            blocks.append(np.nan_to_num(v, nan=0.0)[:, None].astype(np.float32))
            columns.append(name)
        feats = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(df), 0), np.float32)
        table = np.concatenate([feats, np.zeros((1, feats.shape[1]), np.float32)], axis=0)
        return cls(key=key, ids=pd.Index(df[key].to_numpy()), table=table, columns=tuple(columns))

    @property
    def n_features(self) -> int:
        return self.table.shape[1]

    def known(self, ids: Sequence[Any] | pd.Series) -> np.ndarray:
        """Whether each raw id has a metadata row."""
        return self.ids.get_indexer(pd.Index(ids)) >= 0

    def features(self, ids: Sequence[Any] | pd.Series) -> np.ndarray:
        """float32 (n, n_features): each raw id's features; zeros for ids the table does not have."""
        rows = self.ids.get_indexer(pd.Index(ids))
        return self.table[np.where(rows >= 0, rows, len(self.table) - 1)]
