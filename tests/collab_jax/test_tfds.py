"""The TFDS reader on tfds' own mock data (``tfds.testing.mock_data``): layout, dtypes, and a training-ready frame."""

import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from collab_jax import CollabDataLoaders  # noqa: E402
from collab_jax.tfds import load_tfds_movielens, tfds_metadata  # noqa: E402


def test_mock_movielens_to_loaders():
    with tfds.testing.mock_data(num_examples=60):
        df = load_tfds_movielens()
    assert list(df.columns[:4]) == ["user", "item", "rating", "timestamp"] and len(df) == 60
    assert df.rating.dtype == "float32" and isinstance(df.item[0], str) and set(df.gender) <= {"M", "F"}
    users, items = tfds_metadata(df)
    assert "age" in users.columns and any(c.startswith("genre_") for c in items.columns)
    dls = CollabDataLoaders.from_df(df, seed=0, bs=8, user_meta=users, item_meta=items)
    x, y, w = dls.one_batch()
    assert x.ids.shape == (8, 2) and x.user.shape == (8, users.n_features) and x.item.shape == (8, items.n_features)
