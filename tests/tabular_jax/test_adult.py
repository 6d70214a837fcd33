"""Adult loaders: UCI quirks (junk first line, trailing '.', '?'), fastai's layout, the bundled copy."""

import gzip

import numpy as np
import pytest

from tabular_jax.adult import (
    UCI_COLUMNS,
    adult_sample,
    parse_uci_adult,
    read_adult_sample,
    read_uci_adult,
    to_adult_sample,
    uci_adult,
)

TEST_TEXT = """|1x3 Cross validator
25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, 0, 40, United-States, <=50K.
38, ?, 89814, HS-grad, 9, Married-civ-spouse, ?, Husband, White, Male, 0, 0, 50, ?, >50K.

"""


def test_parse_uci_test_file_quirks():
    df = parse_uci_adult(TEST_TEXT)
    assert list(df.columns) == UCI_COLUMNS and len(df) == 2
    assert df["income"].tolist() == ["<=50K", ">50K"]
    assert df["workclass"].iloc[0] == "Private"  # leading space skipped
    assert df[["workclass", "occupation", "native-country"]].iloc[1].isna().all()
    assert df["age"].dtype == np.int64


def test_parse_errors_name_the_source_and_row():
    with pytest.raises(ValueError, match=r"f.data: row 2 has 3 fields, expected 15"):
        parse_uci_adult(TEST_TEXT.splitlines()[1] + "\n1, 2, 3\n", "f.data")
    with pytest.raises(ValueError, match="unexpected income label 'rich'"):
        parse_uci_adult(TEST_TEXT.replace(">50K.", "rich"), "f.test")
    with pytest.raises(ValueError, match="no data rows"):
        parse_uci_adult("|1x3 Cross validator\n\n")


def test_read_gzip_and_plain(tmp_path):
    (tmp_path / "a.test").write_text(TEST_TEXT)
    (tmp_path / "a.test.gz").write_bytes(gzip.compress(TEST_TEXT.encode()))
    assert read_uci_adult(tmp_path / "a.test").equals(read_uci_adult(tmp_path / "a.test.gz"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_uci_adult(tmp_path / "nope")


def test_bundled_official_split():
    train, test = uci_adult()
    assert train.shape == (32561, 15) and test.shape == (16281, 15)
    assert train["income"].value_counts().to_dict() == {"<=50K": 24720, ">50K": 7841}
    assert test["income"].value_counts().to_dict() == {"<=50K": 12435, ">50K": 3846}
    assert train.isna().sum()[["workclass", "occupation", "native-country"]].tolist() == [1836, 1843, 583]


def test_adult_sample_layout_and_round_trip(tmp_path):
    df = to_adult_sample(parse_uci_adult(TEST_TEXT))
    assert df["salary"].tolist() == ["<50k", ">=50k"] and "income" not in df
    df.to_csv(tmp_path / "adult.csv", index=False)
    back = read_adult_sample(tmp_path / "adult.csv")
    assert back["salary"].tolist() == ["<50k", ">=50k"]
    assert adult_sample(tmp_path)["salary"].tolist() == ["<50k", ">=50k"]  # fastai's csv takes precedence
    with pytest.raises(ValueError, match="missing columns"):
        (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
        read_adult_sample(tmp_path / "bad.csv")


def test_adult_sample_falls_back_to_bundled(tmp_path):
    df = adult_sample(tmp_path)
    assert len(df) == 32561 and set(df["salary"]) == {"<50k", ">=50k"}


def test_bundled_copy_equals_shared_files(shared_data):
    folder = shared_data("adult")
    bundled_train, bundled_test = uci_adult()
    assert read_uci_adult(folder / "adult.data").equals(bundled_train)
    assert read_uci_adult(folder / "adult.test").equals(bundled_test)
