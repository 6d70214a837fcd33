"""MovieLens 100k through TensorFlow Datasets (``movielens/100k-ratings``), behind the ``tfds`` extra.

Read with ``tfds.data_source`` (random access over array_record files, no TensorFlow in the process), so TF
never shares memory or threads with JAX. tfds downloads and prepares the dataset on first use when it may;
offline, point ``data_dir`` at a prepared copy. Returns the same flat frame layout as ``collab_jax.movielens``
(user, item, rating, timestamp) plus the metadata columns tfds carries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from collab_jax.metadata import MetaEncoder

TFDS_NAME = "movielens/100k-ratings"
# tfds feature -> our column
COLUMNS = {"user_id": "user", "movie_id": "item", "user_rating": "rating", "timestamp": "timestamp",
           "movie_title": "title", "movie_genres": "genres", "raw_user_age": "age", "user_gender": "gender",
           "user_occupation_text": "occupation", "user_zip_code": "zip"}


def _tfds() -> Any:
    try:
        import tensorflow_datasets as tfds
        import tensorflow_datasets.structured.movielens  # registers the builder without TF
    except ImportError as e:
        raise ImportError("collab_jax.tfds needs tensorflow-datasets: pip install 'lesson4-jax[tfds]'") from e
    return tfds


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def load_tfds_movielens(split: str = "train", data_dir: str | None = None, download: bool = True) -> pd.DataFrame:
    """All records of ``movielens/100k-ratings`` as a DataFrame: user, item (string ids as tfds stores them),
    rating (float32), timestamp, title, genres (tuple of genre labels), age, gender ("M"/"F"), occupation, zip."""
    tfds = _tfds()
    source = tfds.data_source(TFDS_NAME, split=split, data_dir=data_dir, download=download)
    n = len(source)
    if n == 0:
        raise ValueError(f"{TFDS_NAME} split {split!r} has no records")
    records = (source[i] for i in range(n))  # tfds' mock source lacks a working __getitems__
    cols: dict[str, list] = {ours: [] for ours in COLUMNS.values()}
    for rec in records:
        for theirs, ours in COLUMNS.items():
            v = rec[theirs]
            if ours in ("user", "item", "title", "occupation", "zip"):
                v = _text(v)
            elif ours == "genres":
                v = tuple(int(g) for g in np.atleast_1d(v))
            elif ours == "gender":
                v = "M" if bool(v) else "F"  # tfds stores user_gender as a bool, True = male
            else:
                v = np.asarray(v).item()
            cols[ours].append(v)
    df = pd.DataFrame(cols)
    return df.astype({"rating": np.float32, "timestamp": np.int64, "age": np.float32})


def tfds_metadata(df: pd.DataFrame) -> tuple[MetaEncoder, MetaEncoder]:
    """User (age, gender, occupation) and item (genre flags) metadata encoders from ``load_tfds_movielens``'s frame."""
    users = df.drop_duplicates("user")[["user", "age", "gender", "occupation"]]
    items = df.drop_duplicates("item")[["item", "genres"]].reset_index(drop=True)
    labels = sorted({g for gs in items.genres for g in gs})
    flags = pd.DataFrame({f"genre_{g}": [int(g in gs) for gs in items.genres] for g in labels})
    items = pd.concat([items[["item"]], flags], axis=1)
    return (MetaEncoder.from_df(users, "user", cat_names=["gender", "occupation"], cont_names=["age"]),
            MetaEncoder.from_df(items, "item", flag_names=list(flags.columns)))
