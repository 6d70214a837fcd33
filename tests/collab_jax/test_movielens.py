"""MovieLens readers on tiny files written in the original layouts, and on the real ML-100k when present."""

import numpy as np
import pandas as pd
import pytest

from collab_jax import movielens as ml


@pytest.fixture
def ml100k(tmp_path):
    d = tmp_path / "ml-100k"
    d.mkdir()
    rows = [(1, 1, 5, 881250949), (1, 2, 3, 881250950), (2, 1, 4, 881250951), (2, 3, 1, 881250952)]
    (d / "u.data").write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    (d / "u1.base").write_text("".join("\t".join(map(str, r)) + "\n" for r in rows[:3]))
    (d / "u1.test").write_text("\t".join(map(str, rows[3])) + "\n")
    genres = ["0"] * 19
    items = [f"1|Toy Story (1995)|01-Jan-1995||http://x|{'|'.join(['0', '0', '0', '1'] + genres[4:])}",
             f"2|Misérables, Les (1995)|01-Jan-1995||http://y|{'|'.join(genres)}",
             f"3|Some Film (1972)|unknown||http://z|{'|'.join(['0'] * 8 + ['1'] + genres[9:])}"]
    (d / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (d / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return d


def test_original_files(ml100k):
    r = ml.read_ml100k_ratings(ml100k)
    assert list(r.columns) == ["user", "item", "rating", "timestamp"] and len(r) == 4 and r.rating.dtype == np.float32
    items = ml.read_ml100k_items(ml100k)
    assert items.title[1] == "Misérables, Les (1995)"  # latin-1
    assert items.year.tolist() == [1995, 1995, 1972]  # the unknown date falls back to the title's year
    assert items.Animation.tolist() == [1, 0, 0] and items.Drama.tolist() == [0, 0, 1]
    users = ml.read_ml100k_users(ml100k)
    assert users.zip.tolist() == ["85711", "94043"] and users.occupation[0] == "technician"
    base, test = ml.read_ml100k_split(ml100k, "u1")
    assert len(base) == 3 and len(test) == 1
    merged = ml.ml100k_ratings_with_titles(ml100k)
    assert merged.title.tolist()[:2] == ["Toy Story (1995)", "Misérables, Les (1995)"]


def test_metadata_encoders(ml100k):
    um = ml.ml100k_user_meta(ml.read_ml100k_users(ml100k))
    im = ml.ml100k_item_meta(ml.read_ml100k_items(ml100k))
    assert "gender=F" in um.columns and "occupation=other" in um.columns and "age" in um.columns
    assert "Drama" in im.columns and "decade=1970" in im.columns
    assert im.features([3])[0, im.columns.index("Drama")] == 1
    by_title = ml.ml100k_item_meta(ml.read_ml100k_items(ml100k), key="title")
    assert by_title.known(["Toy Story (1995)"]).all()


def test_missing_and_malformed_files(ml100k, tmp_path):
    with pytest.raises(FileNotFoundError, match="u.user does not exist"):
        ml.read_ml100k_users(tmp_path)
    with pytest.raises(ValueError, match="unknown ML-100k split 'u9'"):
        ml.read_ml100k_split(ml100k, "u9")
    (ml100k / "u.data").write_text("1,1,5,0\n")
    with pytest.raises(ValueError, match="not a tab-separated user, item, rating, timestamp file"):
        ml.read_ml100k_ratings(ml100k)


def test_ratings_and_movies_csv(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.5,0\n2,10,3.0,1\n")
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n10,"GoldenEye (1995)",Action|Adventure\n'
                                         "11,Unknown,(no genres listed)\n")
    assert ml.read_ratings_csv(tmp_path / "ratings.csv").rating.tolist() == [4.5, 3.0]
    movies = ml.read_movies_csv(tmp_path / "movies.csv")
    assert movies.year.iloc[0] == 1995 and np.isnan(movies.year.iloc[1]) and movies.Action.tolist() == [1, 0]
    (tmp_path / "bad.csv").write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match=r"lacks MovieLens column\(s\) \['userId', 'movieId', 'rating'\]"):
        ml.read_ratings_csv(tmp_path / "bad.csv")


def test_find_local_copy(ml100k, tmp_path, monkeypatch):
    monkeypatch.delenv(ml.DATA_ENV, raising=False)
    assert ml.find_ml100k(tmp_path) == ml100k and ml.find_ml100k(ml100k) == ml100k
    assert ml.find_ml100k(tmp_path / "nowhere") is None
    monkeypatch.setenv(ml.DATA_ENV, str(tmp_path))
    assert ml.ml100k_path() == ml100k
    monkeypatch.setenv(ml.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="download=False"):
        ml.ml100k_path(download=False)


def test_download_goes_through_the_engine_registry(tmp_path, monkeypatch):
    import learner_jax.download as dl

    calls = []

    def fake_untar(url, **kw):
        calls.append((url, kw))
        raise dl.DownloadError("offline")

    monkeypatch.delenv(ml.DATA_ENV, raising=False)
    monkeypatch.setattr(dl, "untar_data", fake_untar)
    with pytest.raises(FileNotFoundError, match="downloading it failed: offline"):
        ml.ml100k_path(tmp_path, timeout=3)
    assert calls == [(dl.URLs.ML_100k, {"timeout": 3})]
    assert dl.URLs.ML_100k == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"


def test_ml_sample_through_the_registry(tmp_path, monkeypatch):
    import learner_jax.download as dl

    (tmp_path / "movie_lens_sample").mkdir()
    (tmp_path / "movie_lens_sample" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n73,1097,4.0,0\n")
    seen = []
    monkeypatch.setattr(dl, "untar_data", lambda url, **kw: seen.append(url) or tmp_path / "movie_lens_sample")
    assert ml.ml_sample_ratings().userId.tolist() == [73] and seen == [dl.URLs.ML_SAMPLE]


@pytest.mark.realdata
def test_real_ml100k(shared_data):
    path = shared_data("movielens", "ml-100k")
    r = ml.read_ml100k_ratings(path)
    assert len(r) == 100_000 and r.user.nunique() == 943 and r.item.nunique() == 1682
    assert r.rating.value_counts().sort_index().tolist() == [6110, 11370, 27145, 34174, 21201]
    items, users = ml.read_ml100k_items(path), ml.read_ml100k_users(path)
    assert len(items) == 1682 and len(users) == 943 and items.title[0] == "Toy Story (1995)"
    base, test = ml.read_ml100k_split(path, "u1")
    assert len(base) == 80_000 and len(test) == 20_000
    both = pd.concat([base, test]).sort_values(["user", "item"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(both, r.sort_values(["user", "item"]).reset_index(drop=True))
    ua_test = ml.read_ml100k_split(path, "ua")[1]
    assert (ua_test.groupby("user").size() == 10).all()
