"""MovieLens readers: ML-100k in its original GroupLens files, and the ``ratings.csv`` layouts.

ML-100k (``u.data`` etc.) may not be redistributed, so nothing here bundles it: ``ml100k_path`` finds a local
copy (an explicit folder, then ``$LESSON4_DATA``) or downloads GroupLens' zip through the engine's registry.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from collab_jax.metadata import MetaEncoder

# u.genre's order; the 19 flag columns of u.item follow it.
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")
ML100K_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
RATING_COLUMNS = ("user", "item", "rating", "timestamp")
DATA_ENV = "LESSON4_DATA"


def _file(path: str | os.PathLike, name: str) -> Path:
    f = Path(path) / name
    if not f.is_file():
        raise FileNotFoundError(f"MovieLens file {f} does not exist: point at the ml-100k folder (with u.data, "
                                "u.item, u.user, u1.base...)")
    return f


def _read_tab_ratings(f: Path) -> pd.DataFrame:
    df = pd.read_csv(f, sep="\t", header=None, names=list(RATING_COLUMNS))
    if df.isna().any().any() or len(df.columns) != 4:
        raise ValueError(f"{f} is not a tab-separated user, item, rating, timestamp file")
    return df.astype({"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64})


def read_ml100k_ratings(path: str | os.PathLike) -> pd.DataFrame:
    """``u.data``: 100,000 rows of user, item, rating (float32), timestamp."""
    return _read_tab_ratings(_file(path, "u.data"))


def read_ml100k_split(path: str | os.PathLike, split: str = "u1") -> tuple[pd.DataFrame, pd.DataFrame]:
    """An official split (``<split>.base``, ``<split>.test``): ``u1``..``u5`` (80/20) or ``ua``/``ub`` (10 test
    ratings per user)."""
    if split not in ML100K_SPLITS:
        raise ValueError(f"unknown ML-100k split {split!r}; the official ones are {ML100K_SPLITS}")
    return _read_tab_ratings(_file(path, f"{split}.base")), _read_tab_ratings(_file(path, f"{split}.test"))


def release_year(dates: pd.Series, titles: pd.Series) -> pd.Series:
    """Year from ``u.item``'s release date (``01-Jan-1995``), else from a title's trailing ``(1995)``; else NaN."""
    year = pd.to_numeric(dates.astype("string").str[-4:], errors="coerce")
    from_title = pd.to_numeric(titles.astype("string").str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    return year.fillna(from_title).astype("float64")


def read_ml100k_items(path: str | os.PathLike) -> pd.DataFrame:
    """``u.item`` (latin-1, ``|``-separated): item, title, release_date, video_release_date, url, year and the
    19 genre flags."""
    f = _file(path, "u.item")
    names = ["item", "title", "release_date", "video_release_date", "url", *ML100K_GENRES]
    df = pd.read_csv(f, sep="|", header=None, names=names, encoding="latin-1")
    if df[list(ML100K_GENRES)].isna().any().any():
        raise ValueError(f"{f} does not have the 24 |-separated fields of u.item on every row")
    df.insert(5, "year", release_year(df["release_date"], df["title"]))
    return df


def read_ml100k_users(path: str | os.PathLike) -> pd.DataFrame:
    """``u.user``: user, age, gender, occupation, zip."""
    f = _file(path, "u.user")
    df = pd.read_csv(f, sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"],
                     dtype={"zip": str})
    if df[["user", "age", "gender", "occupation"]].isna().any().any():
        raise ValueError(f"{f} does not have the 5 |-separated fields of u.user on every row")
    return df


def ml100k_ratings_with_titles(path: str | os.PathLike) -> pd.DataFrame:
    """The lesson's ``rating_movie``: u.data merged with u.item titles (user, item, rating, timestamp, title)."""
    items = read_ml100k_items(path)[["item", "title"]]
    return read_ml100k_ratings(path).merge(items, on="item", how="left", validate="many_to_one")


def read_ratings_csv(csv: str | os.PathLike) -> pd.DataFrame:
    """A MovieLens ``ratings.csv`` (ml-latest-small, fastai's ``movie_lens_sample``): userId, movieId, rating,
    timestamp."""
    if not Path(csv).is_file():
        raise FileNotFoundError(f"ratings file {os.fspath(csv)!r} does not exist")
    df = pd.read_csv(csv)
    missing = [c for c in ("userId", "movieId", "rating") if c not in df.columns]
    if missing:
        raise ValueError(f"{csv} lacks MovieLens column(s) {missing}; it has {list(df.columns)}")
    return df


def read_movies_csv(csv: str | os.PathLike) -> pd.DataFrame:
    """A MovieLens ``movies.csv`` (movieId, title, genres ``A|B``), with ``year`` from the title and one 0/1
    column per genre."""
    if not Path(csv).is_file():
        raise FileNotFoundError(f"movies file {os.fspath(csv)!r} does not exist")
    df = pd.read_csv(csv)
    missing = [c for c in ("movieId", "title", "genres") if c not in df.columns]
    if missing:
        raise ValueError(f"{csv} lacks MovieLens column(s) {missing}; it has {list(df.columns)}")
    df["year"] = release_year(pd.Series([""] * len(df)), df["title"])
    flags = df["genres"].fillna("").str.get_dummies(sep="|").astype(np.int8)
    return pd.concat([df, flags], axis=1)


def find_ml100k(data_dir: str | os.PathLike | None = None) -> Path | None:
    """A local ML-100k folder: ``data_dir`` (the folder itself, or one holding ``ml-100k`` or
    ``movielens/ml-100k``), else the same under ``$LESSON4_DATA``; None when neither has it."""
    roots = [Path(p) for p in (data_dir, os.environ.get(DATA_ENV)) if p]
    for root in roots:
        for cand in (root, root / "ml-100k", root / "movielens" / "ml-100k"):
            if (cand / "u.data").is_file():
                return cand
    return None


def ml100k_path(data_dir: str | os.PathLike | None = None, download: bool = True, timeout: float = 20.0) -> Path:
    """A usable ML-100k folder: local (``find_ml100k``) or downloaded from GroupLens with the engine's
    ``untar_data`` (checksummed, cached). Raises ``FileNotFoundError`` saying what was tried when neither works."""
    local = find_ml100k(data_dir)
    if local is not None:
        return local
    tried = f"not found under {data_dir!r} or ${DATA_ENV}" if data_dir else f"not found under ${DATA_ENV}"
    if not download:
        raise FileNotFoundError(f"MovieLens 100k {tried} and download=False")
    try:
        from learner_jax.download import URLs, untar_data
    except ImportError as e:
        raise FileNotFoundError(f"MovieLens 100k {tried}, and the download registry is unavailable ({e})") from e
    try:
        path = Path(untar_data(URLs.ML_100k, timeout=timeout))
    except Exception as e:  # offline, refused checksum...: say what happened, the caller decides the fallback
        raise FileNotFoundError(f"MovieLens 100k {tried}, and downloading it failed: {e}") from e
    found = find_ml100k(path)
    if found is None:
        raise FileNotFoundError(f"the downloaded archive at {path} has no ml-100k/u.data")
    return found


def ml100k_user_meta(users: pd.DataFrame) -> MetaEncoder:
    """User features from ``u.user``: age (standardised and in fastai-style buckets), gender, occupation."""
    df = users.copy()
    df["age_group"] = pd.cut(df["age"], [0, 18, 25, 35, 45, 50, 56, 200], right=False).astype(str)
    return MetaEncoder.from_df(df, "user", cat_names=["gender", "occupation", "age_group"], cont_names=["age"])


def ml100k_item_meta(items: pd.DataFrame, key: str = "item") -> MetaEncoder:
    """Item features from ``u.item``: the 19 genre flags, release year (standardised) and decade.

    ``key`` is the id column the ratings use: ``item`` (u.data's ids) or ``title`` (the lesson's items; titles
    are not unique in u.item, so duplicated titles keep their first row)."""
    df = items.drop_duplicates(key) if key == "title" else items.copy()
    df["decade"] = (df["year"] // 10 * 10).astype("Int64").astype(str)
    return MetaEncoder.from_df(df, key, cat_names=["decade"], cont_names=["year"], flag_names=list(ML100K_GENRES))


def ml_sample_ratings(timeout: float = 20.0) -> pd.DataFrame:
    """fastai's ``movie_lens_sample`` (the lesson's ML_SAMPLE ``ratings.csv``), downloaded and checked through the
    engine's registry (``untar_data(URLs.ML_SAMPLE)``, cached after the first call)."""
    from learner_jax.download import URLs, untar_data

    path = Path(untar_data(URLs.ML_SAMPLE, timeout=timeout))
    csv = next(iter(sorted(path.rglob("ratings.csv"))), None)
    if csv is None:
        raise FileNotFoundError(f"the movie_lens_sample archive at {path} has no ratings.csv")
    return read_ratings_csv(csv)
