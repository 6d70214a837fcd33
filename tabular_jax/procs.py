"""Tabular preprocessing steps (fastai's ``TabularProc``s): fitted on the training split only, then replayed
unchanged on validation, test and single-row prediction frames.

Each proc has ``setup(train, cols) -> cols`` (learn statistics from the training frame; return the column lists
after this step, e.g. FillMissing adds ``<col>_na``), ``encode(df) -> df`` and ``decode(df) -> df``. They never
modify the frame they are given. As in fastai v2 the pipeline runs in ``order`` (FillMissing 0, Categorify 1,
Normalize 99) whatever the order of the list.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

NA_CLASS = "#na#"


@dataclass(frozen=True)
class Columns:
    """The roles of a table's columns; procs return a new one when they add columns."""

    cat_names: tuple[str, ...] = ()
    cont_names: tuple[str, ...] = ()
    y_names: tuple[str, ...] = ()


class TabularProc:
    """Base class: a step fitted on the training frame and replayed on any later frame."""

    order: int = 50

    def setup(self, train: pd.DataFrame, cols: Columns) -> Columns:
        raise NotImplementedError

    def encode(self, df: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def decode(self, df: pd.DataFrame) -> pd.DataFrame:
        return df

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ------------------------------------------------------------------------------------------------ FillMissing
class FillStrategy:
    """fastai's fill strategies: each maps a training column (and a constant) to its fill value."""

    @staticmethod
    def median(col: pd.Series, fill: Any) -> float:
        return col.median()

    @staticmethod
    def constant(col: pd.Series, fill: Any) -> Any:
        return fill

    @staticmethod
    def mode(col: pd.Series, fill: Any) -> Any:
        return col.dropna().value_counts().idxmax()


_STRATEGIES: dict[str, Callable[[pd.Series, Any], Any]] = {
    "median": FillStrategy.median, "constant": FillStrategy.constant, "mode": FillStrategy.mode,
    "common": FillStrategy.mode,
}


def _strategy(fill_strategy: str | Callable[[pd.Series, Any], Any]) -> Callable[[pd.Series, Any], Any]:
    if callable(fill_strategy):
        return fill_strategy
    if fill_strategy not in _STRATEGIES:
        raise ValueError(f"unknown fill_strategy {fill_strategy!r}: use one of {sorted(_STRATEGIES)} "
                         "or a function (col, fill) -> value")
    return _STRATEGIES[fill_strategy]


class FillMissing(TabularProc):
    """Fill NaNs in continuous columns (median by default) and flag them in a ``<col>_na`` categorical column.

    Only columns with NaNs in the training split get a filler and a flag (fastai). Unlike fastai (#2911), a NaN
    at inference in a column that was complete in training does not raise: it is filled with the training
    median and a warning names the column and the row count (no flag column: the model was built without it).
    """

    order = 0

    def __init__(self, fill_strategy: str | Callable[[pd.Series, Any], Any] = FillStrategy.median,
                 add_col: bool = True, fill_vals: dict[str, Any] | None = None):
        self.fill_strategy = _strategy(fill_strategy)
        self.add_col, self.fill_vals = bool(add_col), dict(fill_vals or {})
        self.na_dict: dict[str, Any] = {}
        self.medians: dict[str, float] = {}
        self.cont_names: tuple[str, ...] = ()

    def setup(self, train: pd.DataFrame, cols: Columns) -> Columns:
        self.cont_names = cols.cont_names
        self.na_dict, self.medians = {}, {}
        for n in cols.cont_names:
            col = train[n]
            if col.isna().all():
                raise ValueError(f"continuous column {n!r} is all NaN in the training split: there is nothing "
                                 "to learn a fill value (or a model input) from; drop it from cont_names")
            self.medians[n] = float(col.median())
            if col.isna().any():
                val = self.fill_strategy(col, self.fill_vals.get(n, 0))
                if val is None or (isinstance(val, float) and np.isnan(val)):
                    raise ValueError(f"fill value for continuous column {n!r} is NaN; pass fill_vals={{{n!r}: ...}}")
                self.na_dict[n] = val
        flags = tuple(f"{n}_na" for n in self.na_dict if self.add_col and f"{n}_na" not in cols.cat_names)
        return replace(cols, cat_names=cols.cat_names + flags)

    def encode(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for n in self.cont_names:
            missing = df[n].isna()
            if n in self.na_dict:
                df[n] = df[n].fillna(self.na_dict[n])
                if self.add_col:
                    df[f"{n}_na"] = missing.to_numpy()
            elif missing.any():  # deliberate difference from fastai (#2911): fill, warn, don't raise
                warnings.warn(f"continuous column {n!r} has {int(missing.sum())} NaN value(s) but had none in the "
                              f"training split: filled with the training median {self.medians[n]:g}",
                              stacklevel=3)
                df[n] = df[n].fillna(self.medians[n])
        return df

    def __repr__(self) -> str:
        return f"FillMissing(fill_strategy={self.fill_strategy.__name__}, add_col={self.add_col})"


# ------------------------------------------------------------------------------------------------ Categorify
def _sorted_classes(col: pd.Series, name: str) -> list[Any]:
    """Sorted distinct non-missing values of a training column (its categories, in order, if categorical)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return list(col.cat.categories)
    values = [v for v in pd.unique(col.to_numpy(dtype=object)) if not pd.isna(v)]
    try:
        return sorted(values)
    except TypeError as e:
        types = sorted({type(v).__name__ for v in values})
        raise TypeError(f"categorical column {name!r} mixes value types ({', '.join(types)}): cast it to one "
                        "type, e.g. df[col] = df[col].astype(str)") from e


def encode_classes(col: pd.Series, classes: Sequence[Any]) -> np.ndarray:
    """Codes of ``col`` in ``classes`` (index 0 = ``#na#``): missing and unseen values get 0.

    Values are matched, never pandas category codes, so a column that arrives as a categorical with other
    categories (or another order) than in training still maps correctly (fastai uses the codes: autogluon#5830).
    """
    values = (col.astype(object) if isinstance(col.dtype, pd.CategoricalDtype) else col).to_numpy(dtype=object)
    codes = pd.Index(list(classes[1:]), dtype=object).get_indexer(values)
    unseen = (codes < 0) & ~pd.isna(values)
    if unseen.any() and len(classes) > 1:
        got, want = _kinds(values[unseen]), _kinds(classes[1:])
        if not got & want:  # e.g. '3' read from a csv against training ints: every value silently becomes #na#
            warnings.warn(f"categorical column {col.name!r}: {int(unseen.sum())} value(s) of type "
                          f"{'/'.join(sorted(got))} match no training class (training classes are "
                          f"{'/'.join(sorted(want))}); they map to '#na#'", stacklevel=4)
    return (codes + 1).astype(np.int32)


def _kinds(values: Sequence[Any]) -> set[str]:
    """Type families of values, numbers as one family (5.0 matches the class 5)."""
    return {"number" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else type(v).__name__
            for v in values}


class Categorify(TabularProc):
    """Map categorical columns to integers: ``#na#`` is 0, training classes (sorted) are 1.., unseen -> 0."""

    order = 1

    def __init__(self):
        self.classes: dict[str, list[Any]] = {}

    def setup(self, train: pd.DataFrame, cols: Columns) -> Columns:
        self.classes = {}
        for n in cols.cat_names:
            self.classes[n] = [NA_CLASS, *_sorted_classes(train[n], n)]
            if len(self.classes[n]) == 1:
                warnings.warn(f"categorical column {n!r} is all missing in the training split: it becomes a "
                              "constant input (only '#na#') and carries no information", stacklevel=3)
        return cols

    def encode(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for n, classes in self.classes.items():
            df[n] = encode_classes(df[n], classes)
        return df

    def decode(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for n, classes in self.classes.items():
            if n in df:
                df[n] = np.asarray(classes, dtype=object)[np.asarray(df[n], dtype=np.int64)]
        return df

    def __getitem__(self, name: str) -> list[Any]:
        return self.classes[name]


# ------------------------------------------------------------------------------------------------ Normalize
class Normalize(TabularProc):
    """Standardise continuous columns with the training mean and std (fastai v2: ddof=0, std + 1e-7)."""

    order = 99

    def __init__(self):
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}

    def setup(self, train: pd.DataFrame, cols: Columns) -> Columns:
        conts = train[list(cols.cont_names)].astype(np.float64)
        self.means = {n: float(conts[n].mean()) for n in cols.cont_names}
        self.stds = {n: float(conts[n].std(ddof=0)) + 1e-7 for n in cols.cont_names}
        return cols

    def encode(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for n in self.means:
            df[n] = ((df[n].astype(np.float64) - self.means[n]) / self.stds[n]).astype(np.float32)
        return df

    def decode(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for n in self.means:
            if n in df:
                df[n] = df[n].astype(np.float64) * self.stds[n] + self.means[n]
        return df

    def __repr__(self) -> str:
        return "Normalize()"


def make_procs(procs: Sequence[TabularProc | type[TabularProc]] | None) -> list[TabularProc]:
    """Instantiate classes (fastai accepts ``[FillMissing, Categorify]``) and sort into fastai v2's order.

    Instances are copied: fitting one table's procs never changes another table's that was given the same list.
    """
    out = []
    for p in procs or []:
        proc = p() if isinstance(p, type) else copy.deepcopy(p)
        if not isinstance(proc, TabularProc):
            raise TypeError(f"procs must be TabularProc classes or instances, got {p!r}")
        out.append(proc)
    names = [type(p).__name__ for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"procs lists {', '.join(dup)} more than once")
    return sorted(out, key=lambda p: p.order)  # stable: equal orders keep the list order
