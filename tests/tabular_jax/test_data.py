"""TabularDataLoaders: splits, arrays, test_dl, decoding, target kinds."""

import numpy as np
import pandas as pd
import pytest

from tabular_jax import (
    Categorify,
    CategoryBlock,
    FillMissing,
    MultiCategoryBlock,
    Normalize,
    RegressionBlock,
    TabularDataLoaders,
)
from tabular_jax.data import index_splitter, random_splitter

PROCS = [FillMissing, Categorify, Normalize]


def lesson_dls(df, **kw):
    args = dict(procs=PROCS, cat_names=["color", "shape"], cont_names=["x", "noise", "age"], y_names="label")
    return TabularDataLoaders.from_df(df, **(args | kw))


def test_from_df_arrays_and_names(toy):
    dls = lesson_dls(toy, valid_idx=list(range(100, 200)), bs=32, val_bs=32)
    assert dls.cat_names == ["color", "shape", "x_na"] and dls.cont_names == ["x", "noise", "age"]
    assert dls.c == 2 and dls.vocab == ["no", "yes"]
    assert dls.classes["color"] == ["#na#", "blue", "green", "red"]
    (x_cat, x_cont), y, w = dls.train.arrays
    assert x_cat.shape == (412, 3) and x_cat.dtype == np.int32
    assert x_cont.shape == (412, 3) and x_cont.dtype == np.float32
    assert y.dtype == np.int32 and w.shape == (412,)
    assert len(dls.train) == 412 // 32 and len(dls.valid) == -(-100 // 32)  # train drops its last partial batch
    # normalisation statistics come from the training rows only
    np.testing.assert_allclose(x_cont.mean(0), 0.0, atol=1e-5)
    assert lesson_dls(toy, valid_idx=[1], bs=32).valid.bs == 1024  # our default val_bs (fastai: bs)


def test_valid_idx_are_positions_and_validation_is_exactly_those_rows(toy):
    dls = lesson_dls(toy, valid_idx=[5, 7, 9])
    assert dls.to.valid.frame.index.tolist() == [5, 7, 9]
    assert len(dls.to.train) == len(toy) - 3


def test_random_split_reproducible_and_independent_of_global_state(toy):
    np.random.seed(1)  # noqa: NPY002 (checking that the legacy global state is left alone)
    a = random_splitter(len(toy), 0.2, seed=42)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    np.random.seed(2)  # noqa: NPY002
    b = random_splitter(len(toy), 0.2, seed=42)
    np.random.seed(1)  # noqa: NPY002
    random_splitter(len(toy), 0.2, seed=42)
    assert (np.random.get_state()[1] == state).all()  # noqa: NPY002
    assert (a[1] == b[1]).all() and len(a[1]) == int(0.2 * len(toy))
    assert set(a[0]) | set(a[1]) == set(range(len(toy))) and not set(a[0]) & set(a[1])
    dls = lesson_dls(toy, seed=None)
    assert isinstance(dls.seed, int)  # a drawn seed is kept so the split can be reproduced


def test_index_splitter_refuses_out_of_range():
    with pytest.raises(IndexError, match="outside the frame's 10 rows"):
        index_splitter(10, [3, 10])


def test_cont_names_default_is_remaining_columns_in_frame_order(toy):
    df = toy[["color", "x", "noise", "label"]]
    dls = TabularDataLoaders.from_df(df, procs=PROCS, cat_names="color", y_names="label", seed=0)
    assert dls.cont_names == ["x", "noise"]


def test_from_csv_skips_initial_space(tmp_path, toy):
    path = tmp_path / "t.csv"
    toy.to_csv(path, index=False, sep=",")
    path.write_text(path.read_text().replace(",", ", "))
    dls = TabularDataLoaders.from_csv(path, procs=PROCS, cat_names=["color"], cont_names=["x"], y_names="label",
                                      seed=0)
    assert dls.classes["color"] == ["#na#", "blue", "green", "red"] and dls.vocab == ["no", "yes"]
    with pytest.raises(FileNotFoundError, match="no such csv"):
        TabularDataLoaders.from_csv(tmp_path / "missing.csv", y_names="label")


def test_test_dl_replays_procs_with_and_without_labels(toy):
    dls = lesson_dls(toy, valid_idx=list(range(100)))
    dl = dls.test_dl(toy.iloc[:10])
    assert dl.has_labels and (dl.y == dls.to.valid.y[:10]).all()
    assert (dl.x[0] == dls.to.valid.x_cat[:10]).all()
    np.testing.assert_array_equal(dl.x[1], dls.to.valid.x_cont[:10])
    unlabelled = dls.test_dl(toy.drop(columns=["label"]).iloc[:10])
    assert not unlabelled.has_labels and (unlabelled.y == 0).all()
    assert not dls.test_dl(toy.iloc[:10], with_labels=False).has_labels


def test_show_batch_decodes_values(toy, capsys):
    dls = lesson_dls(toy, valid_idx=list(range(100)), bs=16)
    df = dls.show_batch(dl=dls.valid, max_n=5)
    src = toy.iloc[:5]
    assert df["color"].tolist() == src["color"].tolist()
    assert df["label"].tolist() == src["label"].tolist()
    assert df["age"].tolist() == src["age"].tolist()  # integer column decodes to the same integers
    np.testing.assert_allclose(df["noise"], src["noise"], rtol=1e-4, atol=1e-5)
    assert "color" in capsys.readouterr().out


def test_regression_inferred_from_numeric_target(toy):
    dls = lesson_dls(toy, y_names="target", seed=0)
    assert isinstance(dls.y_block, RegressionBlock) and dls.c == 1
    assert dls.train.y.dtype == np.float32 and dls.train.y.ndim == 1
    assert type(dls.loss_func).__name__ == "MSELossFlat"


def test_integer_target_is_regression_unless_category_block(toy):
    df = toy.assign(klass=np.arange(len(toy)) % 3)
    assert isinstance(lesson_dls(df, y_names="klass", seed=0).y_block, RegressionBlock)  # fastai's rule
    dls = lesson_dls(df, y_names="klass", seed=0, y_block=CategoryBlock)
    assert dls.c == 3 and dls.vocab == [0, 1, 2]


def test_multiclass_and_multilabel(toy):
    dls = lesson_dls(toy, y_names="color", cat_names=["shape"], seed=0)
    assert dls.vocab == ["blue", "green", "red"]
    df = toy.assign(is_red=(toy.color == "red").astype(int), is_big=toy.age > 50)
    dls = lesson_dls(df, cat_names=["shape"], y_names=["is_red", "is_big"], y_block=MultiCategoryBlock(encoded=True),
                     seed=0)
    assert dls.c == 2 and dls.train.y.shape[1] == 2 and dls.train.y.dtype == np.float32
    df2 = toy.assign(tags=[("a b" if r else "b") for r in toy.color == "red"])
    dls2 = lesson_dls(df2, cat_names=["shape"], y_names="tags", y_block=MultiCategoryBlock(), seed=0)
    assert dls2.vocab == ["a", "b"]
    assert set(map(tuple, dls2.to.train.y.tolist())) == {(1.0, 1.0), (0.0, 1.0)}
    assert type(dls2.loss_func).__name__ == "BCEWithLogitsLossFlat"
    batch = dls2.decode_batch(dls2.valid.one_batch(), max_n=3)
    assert all(set(t) <= {"a", "b"} for t in batch["tags"])


def test_continuous_object_column_of_numbers_is_accepted(toy):
    df = toy.assign(noise=toy["noise"].map(lambda v: f"{v:.3f}"))
    dls = lesson_dls(df, seed=0)
    assert dls.to.train.x_cont.dtype == np.float32


def test_test_dl_categorical_dtype_with_other_categories(toy):
    dls = lesson_dls(toy, seed=0)
    test = toy.iloc[:4].copy()
    test["color"] = pd.Categorical(test["color"], categories=["red", "purple", "green", "blue"])
    codes = dls.test_dl(test).x[0][:, 0]
    expected = [dls.classes["color"].index(c) for c in toy["color"].iloc[:4]]
    assert codes.tolist() == expected


def test_no_validation_rows_and_no_continuous_columns(toy):
    dls = lesson_dls(toy, valid_pct=0.0, seed=0)
    assert len(dls.to.valid) == 0 and len(dls.valid) == 0 and len(dls.to.train) == len(toy)
    dls = lesson_dls(toy, cont_names=[], seed=0)
    assert dls.to.train.x_cont.shape == (len(dls.to.train), 0)
    assert list(dls.show_batch(max_n=2, show=False).columns) == ["color", "shape", "label"]
