"""Target blocks (fastai's ``y_block``): how the dependent columns become the array ``y``, which loss fits them
and how predictions decode back to labels.

With ``y_block=None`` the kind is inferred as in fastai: numeric targets mean regression (even integer class
codes), anything else single-label classification. Multi-label takes ``MultiCategoryBlock``.
Bad targets are refused with the column, the count and sample rows (fastai2#534 turned them into NaN and a
late ``IndexError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from learner_jax.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat


def _sample_rows(df: pd.DataFrame, mask: np.ndarray, k: int = 3) -> list[Any]:
    return list(df.index[np.asarray(mask)][:k])


def _check_no_nan(df: pd.DataFrame, name: str, split: str) -> None:
    missing = df[name].isna().to_numpy()
    if missing.any():
        raise ValueError(f"target column {name!r} has {int(missing.sum())} missing value(s) in the {split} rows "
                         f"(e.g. index {_sample_rows(df, missing)}): drop those rows or fill the target")


def _check_present(df: pd.DataFrame, names: Sequence[str]) -> None:
    absent = [n for n in names if n not in df.columns]
    if absent:
        raise KeyError(f"target column(s) {absent} not in the frame")


class CategoryBlock:
    """Single-label classification: classes from the training split (sorted) unless ``vocab`` is given."""

    def __init__(self, vocab: Sequence[Any] | None = None):
        self.vocab: list[Any] | None = None if vocab is None else list(vocab)
        self.y_names: tuple[str, ...] = ()

    def setup(self, train: pd.DataFrame, y_names: Sequence[str]) -> None:
        if len(y_names) != 1:
            raise ValueError(f"CategoryBlock takes one target column, got {list(y_names)} "
                             "(several label columns: use MultiCategoryBlock)")
        self.y_names = tuple(y_names)
        _check_present(train, self.y_names)
        _check_no_nan(train, self.y_names[0], "training")
        if self.vocab is None:
            col = train[self.y_names[0]]
            values = list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else list(col.unique())
            try:
                self.vocab = sorted(values)
            except TypeError as e:
                raise TypeError(f"target column {self.y_names[0]!r} mixes value types: cast it to one type") from e
        if len(self.vocab) < 2:
            raise ValueError(f"target column {self.y_names[0]!r} has only {self.vocab} in the training rows: "
                             "classification needs at least two classes")

    @property
    def c(self) -> int:
        return len(self.vocab)

    def encode(self, df: pd.DataFrame, split: str = "given") -> np.ndarray:
        name = self.y_names[0]
        _check_no_nan(df, name, split)
        col = df[name]
        values = (col.astype(object) if isinstance(col.dtype, pd.CategoricalDtype) else col).to_numpy(dtype=object)
        codes = pd.Index(self.vocab, dtype=object).get_indexer(values)
        unseen = codes < 0
        if unseen.any():
            labels = sorted({str(v) for v in values[unseen]})
            raise ValueError(f"target column {name!r} has {int(unseen.sum())} {split} row(s) with labels not in "
                             f"the training classes: {labels[:10]} (e.g. index {_sample_rows(df, unseen)}); pass "
                             "y_block=CategoryBlock(vocab=[...all classes...]) or move those rows into training")
        return codes.astype(np.int32)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self.vocab, dtype=object)[np.asarray(codes, dtype=np.int64)]

    def loss_func(self) -> Any:
        return CrossEntropyLossFlat()


class RegressionBlock:
    """Regression on one or more numeric columns; ``y`` is float32 ``(N,)`` for one target, else ``(N, k)``."""

    def __init__(self):
        self.y_names: tuple[str, ...] = ()

    def setup(self, train: pd.DataFrame, y_names: Sequence[str]) -> None:
        self.y_names = tuple(y_names)
        _check_present(train, self.y_names)
        self.encode(train, "training")

    @property
    def c(self) -> int:
        return len(self.y_names)

    def encode(self, df: pd.DataFrame, split: str = "given") -> np.ndarray:
        for n in self.y_names:
            _check_no_nan(df, n, split)
            if not pd.api.types.is_numeric_dtype(df[n].dtype):
                raise TypeError(f"regression target column {n!r} is not numeric (dtype {df[n].dtype})")
        y64 = df[list(self.y_names)].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(y64) | (np.abs(y64) > np.finfo(np.float32).max)
        if bad.any():
            r, c = (int(v[0]) for v in np.nonzero(bad))
            raise ValueError(f"regression target column {self.y_names[c]!r} has {int(bad.sum())} infinite value(s) "
                             f"or value(s) beyond float32's range (+-3.4e38) in the {split} rows, e.g. "
                             f"{y64[r, c]} at index {df.index[r:r + 1].tolist()[0]!r}: drop or rescale them")
        y = y64.astype(np.float32)
        return y[:, 0] if y.shape[1] == 1 else y

    def decode(self, preds: np.ndarray) -> np.ndarray:
        """Predictions as values: ``(N,)`` for one target (the model's ``(N, 1)`` flattened), else ``(N, k)``."""
        preds = np.asarray(preds)
        return preds.reshape(len(preds)) if len(self.y_names) == 1 else preds

    def loss_func(self) -> Any:
        return MSELossFlat()


class MultiCategoryBlock:
    """Multi-label classification.

    ``encoded=True`` (fastai's tabular usage): ``y_names`` are one 0/1 (or bool) column per label.
    ``encoded=False``: a single column of label lists, or of strings split on ``label_delim``.
    ``y`` is float32 ``(N, n_labels)``; predictions decode to the labels whose probability exceeds 0.5.
    """

    def __init__(self, encoded: bool = False, vocab: Sequence[Any] | None = None, label_delim: str = " "):
        self.encoded, self.label_delim = bool(encoded), label_delim
        self.vocab: list[Any] | None = None if vocab is None else list(vocab)
        self.y_names: tuple[str, ...] = ()

    def _labels(self, df: pd.DataFrame, split: str) -> list[list[Any]]:
        name = self.y_names[0]
        _check_no_nan(df, name, split)
        return [list(v) if isinstance(v, (list, tuple, set, np.ndarray)) else
                [t for t in str(v).split(self.label_delim) if t] for v in df[name]]

    def setup(self, train: pd.DataFrame, y_names: Sequence[str]) -> None:
        self.y_names = tuple(y_names)
        _check_present(train, self.y_names)
        if self.encoded:
            self.vocab = list(self.y_names) if self.vocab is None else self.vocab
            if len(self.vocab) != len(self.y_names):
                raise ValueError(f"vocab has {len(self.vocab)} labels for {len(self.y_names)} encoded columns")
        else:
            if len(self.y_names) != 1:
                raise ValueError("MultiCategoryBlock(encoded=False) takes one column of label lists; "
                                 "for one 0/1 column per label pass encoded=True")
            if self.vocab is None:
                self.vocab = sorted({t for labels in self._labels(train, "training") for t in labels})
        self.encode(train, "training")

    @property
    def c(self) -> int:
        return len(self.vocab)

    def encode(self, df: pd.DataFrame, split: str = "given") -> np.ndarray:
        if self.encoded:
            for n in self.y_names:
                _check_no_nan(df, n, split)
                bad = ~df[n].isin([0, 1, True, False]).to_numpy()
                if bad.any():
                    raise ValueError(f"encoded label column {n!r} must hold 0/1 values; found "
                                     f"{df[n][bad].iloc[0]!r} at index {_sample_rows(df, bad, 1)}")
            return df[list(self.y_names)].to_numpy(dtype=np.float32)
        index = {t: i for i, t in enumerate(self.vocab)}
        y = np.zeros((len(df), len(self.vocab)), np.float32)
        for r, labels in enumerate(self._labels(df, split)):
            unknown = [t for t in labels if t not in index]
            if unknown:
                raise ValueError(f"target column {self.y_names[0]!r} has labels not in the training vocab "
                                 f"{unknown[:5]} at index {df.index[r:r + 1].tolist()[0]!r}; pass vocab=[...] "
                                 "with every label")
            y[r, [index[t] for t in labels]] = 1.0
        return y

    def decode(self, probs: np.ndarray) -> np.ndarray:
        probs = np.atleast_2d(np.asarray(probs))
        out = np.empty(len(probs), dtype=object)
        out[:] = [[self.vocab[i] for i in np.flatnonzero(p > 0.5)] for p in probs]
        return out

    def loss_func(self) -> Any:
        return BCEWithLogitsLossFlat()


TargetBlock = CategoryBlock | RegressionBlock | MultiCategoryBlock


def infer_block(df: pd.DataFrame, y_names: Sequence[str]) -> TargetBlock:
    """fastai's rule: all target columns numeric (bool excluded) -> regression, otherwise classification."""
    numeric = all(pd.api.types.is_numeric_dtype(df[n].dtype) and not pd.api.types.is_bool_dtype(df[n].dtype)
                  for n in y_names)
    return RegressionBlock() if numeric else CategoryBlock()


def make_block(y_block: Any, df: pd.DataFrame, y_names: Sequence[str]) -> TargetBlock:
    """An instance from ``None`` (inferred), a block class, or a block instance."""
    if y_block is None:
        return infer_block(df, y_names)
    block = y_block() if isinstance(y_block, type) else y_block
    if not isinstance(block, (CategoryBlock, RegressionBlock, MultiCategoryBlock)):
        raise TypeError(f"y_block must be CategoryBlock, RegressionBlock or MultiCategoryBlock, got {y_block!r}")
    return block
