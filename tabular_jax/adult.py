"""UCI Adult (Census Income) loaders: the original UCI files and fastai's ``adult_sample/adult.csv`` layout.

The UCI files ship with the package (``tabular_jax/datasets``, CC BY 4.0, see ATTRIBUTION.md), so the lesson runs
offline; a data folder with the same files (or fastai's ``adult.csv``) takes precedence when given.
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path

import pandas as pd

UCI_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
               "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
               "income"]
UCI_LABELS = ("<=50K", ">50K")
# fastai's adult_sample names the target `salary` with values `<50k` / `>=50k`.
SAMPLE_LABELS = {"<=50K": "<50k", ">50K": ">=50k"}
CAT_NAMES = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
             "native-country"]
CONT_NAMES = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
# The lesson's feature set (6 categorical + 3 continuous columns).
LESSON_CAT_NAMES = ["workclass", "education", "marital-status", "occupation", "relationship", "race"]
LESSON_CONT_NAMES = ["age", "fnlwgt", "education-num"]


def _read_text(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def parse_uci_adult(text: str, source: str = "<text>") -> pd.DataFrame:
    """Parse UCI ``adult.data``/``adult.test`` text: drops adult.test's ``|1x3 Cross validator`` line and blank
    lines, strips the test labels' trailing ``.``, reads ``?`` as missing."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("|")]
    if not lines:
        raise ValueError(f"{source}: no data rows")
    n_fields = [ln.count(",") + 1 for ln in lines]
    bad = [i for i, k in enumerate(n_fields) if k != len(UCI_COLUMNS)]
    if bad:
        raise ValueError(f"{source}: row {bad[0] + 1} has {n_fields[bad[0]]} fields, expected {len(UCI_COLUMNS)} "
                         f"({len(bad)} bad rows): {lines[bad[0]][:80]!r}")
    df = pd.read_csv(io.StringIO("\n".join(lines)), header=None, names=UCI_COLUMNS, skipinitialspace=True,
                     na_values=["?"], keep_default_na=False)
    df["income"] = df["income"].str.rstrip(".")
    wrong = ~df["income"].isin(UCI_LABELS)
    if wrong.any():
        raise ValueError(f"{source}: unexpected income label {df['income'][wrong].iloc[0]!r} on row "
                         f"{int(wrong.to_numpy().argmax()) + 1}; expected {list(UCI_LABELS)}")
    return df


def read_uci_adult(path: str | Path) -> pd.DataFrame:
    """One UCI Adult file (plain or gzip-compressed) as a frame with ``UCI_COLUMNS``; ``attrs['source']`` = path."""
    df = parse_uci_adult(_read_text(Path(path)), str(path))
    df.attrs["source"] = str(path)
    return df


def _bundled(name: str) -> pd.DataFrame:
    ref = resources.files("tabular_jax.datasets").joinpath(f"{name}.csv.gz")
    df = parse_uci_adult(gzip.decompress(ref.read_bytes()).decode("utf-8"), f"bundled {name}")
    df.attrs["source"] = f"bundled copy of UCI {name} (tabular_jax/datasets, CC BY 4.0)"
    return df


def _find(data_dir: str | Path | None, *names: str) -> Path | None:
    """The first of ``data_dir/<name>`` and ``data_dir/adult/<name>`` that exists."""
    if data_dir is None:
        return None
    root = Path(data_dir)
    for name in names:
        for cand in (root / name, root / "adult" / name):
            if cand.exists():
                return cand
    return None


def uci_adult(data_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The official (train, test) split: ``adult.data`` and ``adult.test`` from ``data_dir`` (or ``data_dir/adult``)
    when present, else the bundled copies."""
    train_path, test_path = _find(data_dir, "adult.data"), _find(data_dir, "adult.test")
    train = read_uci_adult(train_path) if train_path else _bundled("adult.data")
    test = read_uci_adult(test_path) if test_path else _bundled("adult.test")
    return train, test


def to_adult_sample(df: pd.DataFrame) -> pd.DataFrame:
    """A UCI frame in fastai's ``adult_sample`` layout: target ``salary`` with values ``>=50k`` / ``<50k``.

    (fastai's own adult.csv also blanks some values at random; we keep UCI's real missing values only.)
    """
    out = df.rename(columns={"income": "salary"})
    out["salary"] = out["salary"].map(SAMPLE_LABELS)
    out.attrs = dict(df.attrs)
    return out


def read_adult_sample(csv: str | Path) -> pd.DataFrame:
    """fastai's ``adult_sample/adult.csv`` (header row, leading spaces skipped as ``from_csv`` does)."""
    path = Path(csv)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    df = pd.read_csv(path, skipinitialspace=True)
    df.attrs["source"] = str(path)
    expected = [c if c != "income" else "salary" for c in UCI_COLUMNS]
    absent = [c for c in expected if c not in df.columns]
    if absent:
        raise ValueError(f"{path}: not fastai's adult.csv layout, missing columns {absent}")
    return df


def adult_sample(data_dir: str | Path | None = None) -> pd.DataFrame:
    """The lesson's frame: fastai's ``adult.csv`` if found under ``data_dir`` (or ``data_dir/adult_sample``),
    else UCI ``adult.data`` (from ``data_dir`` or the bundled copy) in the same layout."""
    csv = _find(data_dir, "adult.csv", "adult_sample/adult.csv")
    if csv is not None:
        return read_adult_sample(csv)
    path = _find(data_dir, "adult.data")
    return to_adult_sample(read_uci_adult(path) if path else _bundled("adult.data"))
