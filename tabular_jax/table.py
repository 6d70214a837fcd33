"""``TabularPandas``: a frame's columns checked, split, and turned into model arrays by fitted procs.

The training rows fit the procs and the target block; every other frame (validation, ``test_dl``, one row for
``predict``) is replayed through the same fitted steps. Model inputs are ``x = (x_cat int32 (N, n_cat),
x_cont float32 (N, n_cont))``, targets ``y`` from the target block. Problems in the input are reported with the
column and an example row rather than surfacing later as NaN losses or out-of-range indices.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabular_jax.procs import Categorify, Columns, TabularProc, make_procs
from tabular_jax.targets import TargetBlock, make_block


def listify(names: str | Sequence[str] | None, what: str) -> list[str]:
    """fastai accepts one name or a list; we also refuse anything that is not a column name."""
    if names is None:
        return []
    out = [names] if isinstance(names, str) else list(names)
    bad = [n for n in out if not isinstance(n, str)]
    if bad:
        raise TypeError(f"{what} must be column names (str), got {bad!r}")
    return out


def check_names(df: pd.DataFrame, cat_names: list[str], cont_names: list[str], y_names: list[str]) -> None:
    """Refuse an empty frame, duplicated or unknown column names, and a column given two roles."""
    if len(df) == 0:
        raise ValueError("the frame is empty (0 rows)")
    roles = [("cat_names", cat_names), ("cont_names", cont_names), ("y_names", y_names)]
    seen: dict[str, str] = {}
    for role, names in roles:
        for n in names:
            if n in seen:
                where = role if seen[n] == role else f"{seen[n]} and {role}"
                raise ValueError(f"column {n!r} is listed twice (in {where})")
            seen[n] = role
    absent = [n for n in seen if n not in df.columns]
    if absent:
        hints = {n: difflib.get_close_matches(n, [str(c) for c in df.columns], n=1) for n in absent}
        hint = "; ".join(f"{n!r} (did you mean {h[0]!r}?)" for n, h in hints.items() if h)
        raise KeyError(f"column(s) {absent} not in the frame" + (f": {hint}" if hint else "")
                       + f"; the frame has {list(df.columns)[:20]}")
    dup = sorted({str(c) for c in df.columns[df.columns.duplicated()] if c in seen})
    if dup:
        raise ValueError(f"the frame has several columns named {dup}: rename them so each name is unique")


def index_label(index: pd.Index, i: int) -> Any:
    """The label at position ``i`` as a plain Python value (for messages: 37, not np.int64(37))."""
    return index[i:i + 1].tolist()[0]


def to_continuous(col: pd.Series, name: str) -> pd.Series:
    """A continuous column as float32; a non-numeric value or an infinity is reported with its row."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype(np.float32)
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_timedelta64_dtype(col.dtype):
        raise TypeError(f"continuous column {name!r} holds dates/times ({col.dtype}): convert them to numbers "
                        "first (e.g. days since a reference date)")
    num = col if pd.api.types.is_numeric_dtype(col.dtype) else pd.to_numeric(col, errors="coerce")
    bad = num.isna().to_numpy() & col.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TypeError(f"continuous column {name!r} has non-numeric values ({int(bad.sum())} rows), e.g. "
                        f"{col.iloc[i]!r} at index {index_label(col.index, i)!r}: clean the column or list it "
                        "in cat_names")
    values = num.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(values)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise ValueError(f"continuous column {name!r} has infinite values ({int(inf.sum())} rows), e.g. at "
                         f"index {index_label(col.index, i)!r}")
    return pd.Series(values.astype(np.float32), index=col.index, name=col.name)


@dataclass
class Processed:
    """One frame after the procs: the encoded frame (for show/decode) and the model arrays."""

    frame: pd.DataFrame
    x_cat: np.ndarray
    x_cont: np.ndarray
    y: np.ndarray | None

    @property
    def xs(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_cat, self.x_cont

    def __len__(self) -> int:
        return len(self.frame)


class TabularPandas:
    """A frame with column roles, split into train/valid, with procs and target fitted on the training rows.

    ``splits`` = (train positions, valid positions); ``None`` puts every row in training.
    """

    def __init__(self, df: pd.DataFrame, procs: Sequence[Any] | None = None,
                 cat_names: str | Sequence[str] | None = None, cont_names: str | Sequence[str] | None = None,
                 y_names: str | Sequence[str] | None = None, y_block: Any = None,
                 splits: tuple[Sequence[int], Sequence[int]] | None = None):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        cat, cont, ys = (listify(cat_names, "cat_names"), listify(cont_names, "cont_names"),
                         listify(y_names, "y_names"))
        check_names(df, cat, cont, ys)
        if not ys:
            raise ValueError("y_names is required: name the target column(s)")
        if not cat and not cont:
            raise ValueError("no input columns: give cat_names and/or cont_names")
        self.input_names = (tuple(cat), tuple(cont))
        # integer continuous columns decode back to integers (normalising in float32 leaves e.g. 77515.995)
        self.int_conts = tuple(n for n in cont if pd.api.types.is_integer_dtype(df[n].dtype))
        self.procs: list[TabularProc] = make_procs(procs)
        if cat and not any(isinstance(p, Categorify) for p in self.procs):
            raise ValueError(f"cat_names {cat} need Categorify in procs to become embedding indices")
        train_idx, valid_idx = (np.arange(len(df)), np.arange(0)) if splits is None else splits
        train_idx, valid_idx = np.asarray(train_idx, np.int64), np.asarray(valid_idx, np.int64)
        if len(train_idx) == 0:
            raise ValueError("the training split is empty")
        train = self._inputs(df.iloc[train_idx], ys)
        self.y_block: TargetBlock = make_block(y_block, train, ys)
        self.y_block.setup(train, ys)
        cols = Columns(tuple(cat), tuple(cont), tuple(ys))
        for proc in self.procs:  # fit each step on the training rows as the previous steps left them
            cols = proc.setup(train, cols)
            train = proc.encode(train)
        self.cols = cols
        self.train = self._arrays(train, self.y_block.encode(train, "training"))
        self.valid = self.process(df.iloc[valid_idx], split="validation", labels=True)

    # -------------------------------------------------------------------------------- names and metadata
    @property
    def cat_names(self) -> list[str]:
        return list(self.cols.cat_names)

    @property
    def cont_names(self) -> list[str]:
        return list(self.cols.cont_names)

    @property
    def y_names(self) -> list[str]:
        return list(self.cols.y_names)

    @property
    def classes(self) -> dict[str, list[Any]]:
        """Categorify's classes per categorical column (index 0 is ``#na#``)."""
        return next((p.classes for p in self.procs if isinstance(p, Categorify)), {})

    @property
    def c(self) -> int:
        return self.y_block.c

    @property
    def vocab(self) -> list[Any] | None:
        return getattr(self.y_block, "vocab", None)

    # -------------------------------------------------------------------------------- processing
    def _inputs(self, df: pd.DataFrame, y_names: Sequence[str]) -> pd.DataFrame:
        """The used columns only, continuous ones as float32 (checked)."""
        cat, cont = self.input_names
        out = df[[*cat, *cont, *[n for n in y_names if n in df.columns]]].copy()
        for n in cont:
            out[n] = to_continuous(out[n], n)
        return out

    def _arrays(self, frame: pd.DataFrame, y: np.ndarray | None) -> Processed:
        x_cat = np.zeros((len(frame), len(self.cols.cat_names)), np.int32)
        for j, n in enumerate(self.cols.cat_names):
            if not pd.api.types.is_integer_dtype(frame[n].dtype):
                raise TypeError(f"categorical column {n!r} is not integer-coded after the procs "
                                f"(dtype {frame[n].dtype}): add Categorify to procs")
            x_cat[:, j] = frame[n].to_numpy()
        x_cont = frame[list(self.cols.cont_names)].to_numpy(dtype=np.float32).reshape(len(frame),
                                                                                  len(self.cols.cont_names))
        nan_cols = [n for j, n in enumerate(self.cols.cont_names) if np.isnan(x_cont[:, j]).any()]
        if nan_cols:
            raise ValueError(f"continuous column(s) {nan_cols} still have NaN after the procs: add FillMissing "
                             "to procs or fill them")
        return Processed(frame, x_cat, x_cont, y)

    def process(self, df: pd.DataFrame, split: str = "test", labels: bool | None = None) -> Processed:
        """Apply the fitted procs to a new frame; ``labels=None`` encodes targets only when all are present."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        cat, cont = self.input_names
        absent = [n for n in (*cat, *cont) if n not in df.columns]
        if absent:
            raise KeyError(f"the {split} frame lacks training column(s) {absent}")
        has_y = all(n in df.columns for n in self.cols.y_names)
        if labels and not has_y:
            raise KeyError(f"the {split} frame lacks target column(s) {self.y_names}")
        frame = self._inputs(df, self.cols.y_names if has_y else ())
        for proc in self.procs:
            frame = proc.encode(frame)
        y = self.y_block.encode(frame, split) if has_y and labels is not False else None
        return self._arrays(frame, y)

    def decode(self, x_cat: np.ndarray, x_cont: np.ndarray, index: Any = None) -> pd.DataFrame:
        """Model inputs back to readable values: class names and de-normalised numbers."""
        n_rows = len(x_cat)
        df = pd.DataFrame(np.asarray(x_cat).reshape(n_rows, len(self.cat_names)), columns=self.cat_names, index=index)
        for j, n in enumerate(self.cont_names):
            df[n] = np.asarray(x_cont, dtype=np.float32).reshape(n_rows, len(self.cont_names))[:, j]
        for proc in reversed(self.procs):
            df = proc.decode(df)
        for n in self.int_conts:
            if n in df and np.isfinite(df[n].to_numpy(dtype=np.float64)).all():
                df[n] = np.round(df[n].to_numpy(dtype=np.float64)).astype(np.int64)
        return df

    def decode_y(self, y: np.ndarray) -> np.ndarray:
        return self.y_block.decode(y)
