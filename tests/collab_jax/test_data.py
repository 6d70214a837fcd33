"""CollabDataLoaders: categorify from the training split, random and column splits, test loaders, bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

from collab_jax.data import NA, CollabDataLoaders, categorize, make_classes, random_split


def ratings_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rs = np.random.default_rng(seed)
    pairs = rs.choice(30 * 20, size=n, replace=False)
    return pd.DataFrame({"userId": pairs // 20 + 1, "movieId": pairs % 20 + 100,
                         "rating": rs.integers(1, 6, n).astype(float), "timestamp": np.arange(n)})


def test_defaults_take_first_three_columns_and_classes_from_training_split():
    df = ratings_frame()
    dls = CollabDataLoaders.from_df(df, seed=42, bs=16)
    assert (dls.user_name, dls.item_name, dls.rating_name) == ("userId", "movieId", "rating")
    train_idx, valid_idx = random_split(len(df), 0.2, 42)
    assert len(valid_idx) == int(0.2 * len(df)) and len(dls.valid.y) == len(valid_idx)
    train_users = sorted(df.userId.iloc[train_idx].unique())
    assert dls.classes["userId"] == [NA, *train_users]
    x, y, w = dls.one_batch()
    assert x.shape == (16, 2) and x.dtype == np.int32 and y.dtype == np.float32 and w.shape == (16,)
    assert x.min() >= 1  # every training row has a known user and item
    assert dls.n_users == len(train_users) + 1


def test_split_is_reproducible_and_seed_dependent():
    a = random_split(100, 0.2, 1)
    assert all(np.array_equal(u, v) for u, v in zip(a, random_split(100, 0.2, 1)))
    assert not np.array_equal(a[1], random_split(100, 0.2, 2)[1])
    assert sorted(np.concatenate(a)) == list(range(100))


def test_validation_only_ids_map_to_na():
    df = pd.DataFrame({"u": [1, 1, 2, 2, 3], "i": ["a", "b", "a", "b", "c"], "r": [1.0, 2, 3, 4, 5],
                       "is_valid": [False, False, False, False, True]})
    dls = CollabDataLoaders.from_df(df, valid_col="is_valid", bs=2)
    assert dls.classes == {"u": [NA, 1, 2], "i": [NA, "a", "b"]}
    assert dls.valid.x.tolist() == [[0, 0]]


def test_named_columns_and_string_ids():
    df = ratings_frame()[["timestamp", "rating", "movieId", "userId"]]
    df = df.assign(movieId="m" + df.movieId.astype(str))
    dls = CollabDataLoaders.from_df(df, user_name="userId", item_name="movieId", rating_name="rating", seed=0, bs=8)
    assert dls.classes["movieId"][1].startswith("m")
    shown = dls.show_batch(max_n=3, show=False)
    assert list(shown.columns) == ["userId", "movieId", "rating"] and len(shown) == 3
    raw = df.set_index(["userId", "movieId"]).rating
    for u, i, r in shown.itertuples(index=False):
        assert raw[(u, i)] == r


def test_test_dl_keeps_order_and_marks_unseen(recwarn):
    df = ratings_frame()
    dls = CollabDataLoaders.from_df(df, seed=0, bs=16)
    new = pd.DataFrame({"userId": [df.userId.iloc[0], 9999], "movieId": [df.movieId.iloc[0], df.movieId.iloc[0]]})
    with pytest.warns(UserWarning, match="unseen"):
        dl = dls.test_dl(new)
    x, y, w = next(iter(dl.batches(0)))
    assert x[1, 0] == 0 and x[0, 0] > 0 and w[:2].tolist() == [1, 1] and y[:2].tolist() == [0, 0]
    assert dls.unseen(new) == {"userId": 1, "movieId": 0}


def test_from_csv(tmp_path):
    f = tmp_path / "ratings.csv"
    ratings_frame().to_csv(f, index=False)
    assert CollabDataLoaders.from_csv(f, seed=0, bs=16).user_name == "userId"
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        CollabDataLoaders.from_csv(tmp_path / "missing.csv")


def test_categorize_missing_and_unknown_to_zero():
    classes = make_classes(pd.Series([3, 1, 2, np.nan]))
    assert classes == [NA, 1, 2, 3]
    assert categorize(pd.Series([1.0, np.nan, 7.0, 3.0]), classes).tolist() == [1, 0, 0, 3]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw, match", [
    ({"rating_name": "stars"}, "rating_name='stars' is not a column"),
    ({"user_name": "user"}, "user_name='user' is not a column"),
    ({"user_name": "movieId"}, "must differ"),
])
def test_misnamed_columns(kw, match):
    with pytest.raises(ValueError, match=match):
        CollabDataLoaders.from_df(ratings_frame(), **kw)


def test_too_few_columns():
    with pytest.raises(ValueError, match="rating column defaults to column 2"):
        CollabDataLoaders.from_df(pd.DataFrame({"u": [1], "i": [2]}))


def test_not_a_frame_and_empty_frame():
    with pytest.raises(TypeError, match="DataFrame"):
        CollabDataLoaders.from_df([[1, 2, 3.0]])
    with pytest.raises(ValueError, match="empty"):
        CollabDataLoaders.from_df(ratings_frame().iloc[:0])


def test_non_numeric_rating_names_row_and_value():
    df = ratings_frame()
    df["rating"] = df["rating"].astype(object)
    df.loc[7, "rating"] = "five"
    with pytest.raises(ValueError, match=r"'rating' must be numeric.*row 7 holds 'five'"):
        CollabDataLoaders.from_df(df)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_rating(bad):
    df = ratings_frame()
    df.loc[5, "rating"] = bad
    with pytest.raises(ValueError, match=r"'rating' has 1 NaN or infinite value\(s\).*row 5"):
        CollabDataLoaders.from_df(df)


def test_duplicate_pairs_warn_and_are_kept():
    df = ratings_frame(50)
    df = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    with pytest.warns(UserWarning, match=r"1 duplicate \(userId, movieId\) pair"):
        dls = CollabDataLoaders.from_df(df, valid_pct=0.0, bs=8)
    assert len(dls.train.y) == 51


def test_missing_ids_warn():
    df = ratings_frame(50)
    df["userId"] = df["userId"].astype(float)
    df.loc[2, "userId"] = np.nan
    with pytest.warns(UserWarning, match="'userId' has 1 missing id"):
        CollabDataLoaders.from_df(df, bs=8)


def test_clean_input_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CollabDataLoaders.from_df(ratings_frame(), bs=16)


@pytest.mark.parametrize("pct", [-0.1, 1.0])
def test_bad_valid_pct(pct):
    with pytest.raises(ValueError, match="valid_pct"):
        CollabDataLoaders.from_df(ratings_frame(), valid_pct=pct)


def test_bad_valid_col():
    df = ratings_frame().assign(split=["train", "valid"] * 200)
    with pytest.raises(ValueError, match="must hold booleans"):
        CollabDataLoaders.from_df(df, valid_col="split")
    with pytest.raises(ValueError, match="valid_col='nope' is not a column"):
        CollabDataLoaders.from_df(df, valid_col="nope")


def test_mixed_id_types_refused():
    df = pd.DataFrame({"u": [1, "a", 2], "i": [1, 2, 3], "r": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="ids in column 'u' mix types"):
        CollabDataLoaders.from_df(df, valid_pct=0.0, bs=1)
