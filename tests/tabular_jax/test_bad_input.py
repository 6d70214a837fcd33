"""Issue item 6: every bad input gets a clear error (or documented handling) naming the problem."""

import numpy as np
import pandas as pd
import pytest

from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders

PROCS = [FillMissing, Categorify, Normalize]


def dls_of(df, **kw):
    args = dict(procs=PROCS, cat_names=["color"], cont_names=["x"], y_names="label", seed=0)
    return TabularDataLoaders.from_df(df, **(args | kw))


def test_missing_column_names_with_suggestion(toy):
    with pytest.raises(KeyError, match=r"\['colour'\] not in the frame.*did you mean 'color'"):
        dls_of(toy, cat_names=["colour"])
    with pytest.raises(KeyError, match="lbl"):
        dls_of(toy, y_names="lbl")


def test_duplicated_names_in_arguments(toy):
    with pytest.raises(ValueError, match="'x' is listed twice \\(in cat_names and cont_names\\)"):
        dls_of(toy, cat_names=["color", "x"])
    with pytest.raises(ValueError, match="'color' is listed twice \\(in cat_names\\)"):
        dls_of(toy, cat_names=["color", "color"])


def test_duplicated_column_names_in_frame(toy):
    df = pd.concat([toy[["color", "x", "label"]], toy[["x"]]], axis=1)
    with pytest.raises(ValueError, match=r"several columns named \['x'\]"):
        dls_of(df)


def test_string_in_continuous_column_names_column_value_and_row(toy):
    df = toy.copy()
    df["x"] = df["x"].astype(object)
    df.loc[37, "x"] = "n/a?"
    with pytest.raises(TypeError, match=r"continuous column 'x' has non-numeric values \(1 rows\), e.g. 'n/a\?' "
                                        r"at index 37"):
        dls_of(df)


def test_string_in_continuous_column_of_test_frame(toy):
    dls = dls_of(toy)
    test = toy.iloc[:5].astype({"x": object})
    test.loc[test.index[2], "x"] = "abc"
    with pytest.raises(TypeError, match="'x'.*'abc' at index 2"):
        dls.test_dl(test)


def test_all_nan_continuous_column(toy):
    with pytest.raises(ValueError, match="continuous column 'x' is all NaN in the training split"):
        dls_of(toy.assign(x=np.nan))


def test_all_nan_continuous_column_without_fillmissing_is_caught(toy):
    with pytest.raises(ValueError, match=r"\['x'\] still have NaN after the procs: add FillMissing"):
        dls_of(toy, procs=[Categorify, Normalize])


def test_all_nan_categorical_column_is_a_documented_warning(toy):
    with pytest.warns(UserWarning, match="'color' is all missing in the training split"):
        dls = dls_of(toy.assign(color=None))
    assert dls.classes["color"] == ["#na#"] and (dls.train.x[0][:, 0] == 0).all()


def test_nan_labels_in_target(toy):
    df = toy.copy()
    df.loc[[3, 8], "label"] = np.nan
    with pytest.raises(ValueError, match=r"target column 'label' has 2 missing value\(s\) in the training rows "
                                        r"\(e.g. index \[3, 8\]\)"):
        dls_of(df, valid_idx=[0, 1])
    with pytest.raises(ValueError, match="missing value.*validation rows"):
        dls_of(df, valid_idx=[3, 8, 9])


def test_nan_regression_target(toy):
    df = toy.copy()
    df.loc[4, "target"] = np.nan
    with pytest.raises(ValueError, match="'target' has 1 missing value"):
        dls_of(df, y_names="target", valid_idx=[0])


def test_unseen_labels_in_validation(toy):
    """fastai2#534: v2 turned these into NaN targets and an IndexError later."""
    df = toy.copy()
    df.loc[[0, 1], "label"] = "maybe"
    with pytest.raises(ValueError, match=r"2 validation row\(s\) with labels not in the training classes: "
                                        r"\['maybe'\].*vocab="):
        dls_of(df, valid_idx=[0, 1, 2])
    from tabular_jax import CategoryBlock
    dls = dls_of(df, valid_idx=[0, 1, 2], y_block=CategoryBlock(vocab=["maybe", "no", "yes"]))
    assert dls.to.valid.y[:2].tolist() == [0, 0]


def test_single_class_target(toy):
    with pytest.raises(ValueError, match="at least two classes"):
        dls_of(toy.assign(label="yes"))


def test_empty_frame(toy):
    with pytest.raises(ValueError, match=r"the frame is empty \(0 rows\)"):
        dls_of(toy.iloc[:0])


def test_empty_training_split(toy):
    with pytest.raises(ValueError, match="training split is empty"):
        dls_of(toy.iloc[:3], valid_idx=[0, 1, 2])


def test_test_frame_lacking_a_training_column(toy):
    dls = dls_of(toy)
    with pytest.raises(KeyError, match=r"the test frame lacks training column\(s\) \['x'\]"):
        dls.test_dl(toy.drop(columns=["x"]))
    with pytest.raises(KeyError, match="lacks target column"):
        dls.test_dl(toy.drop(columns=["label"]), with_labels=True)


def test_test_frame_with_nan_or_unseen_target(toy):
    dls = dls_of(toy)
    test = toy.iloc[:4].copy()
    test.loc[test.index[1], "label"] = np.nan
    with pytest.raises(ValueError, match="missing value.*test rows"):
        dls.test_dl(test)
    assert not dls.test_dl(test, with_labels=False).has_labels  # the documented way to predict unlabelled rows


def test_infinite_continuous_value(toy):
    with pytest.raises(ValueError, match="'x' has infinite values"):
        dls_of(toy.assign(x=np.where(np.arange(len(toy)) == 5, np.inf, 0.0)))


def test_categorical_columns_need_categorify(toy):
    with pytest.raises(ValueError, match="need Categorify"):
        dls_of(toy, procs=[FillMissing, Normalize])


def test_no_target_or_no_inputs(toy):
    with pytest.raises(ValueError, match="y_names is required"):
        dls_of(toy, y_names=None)
    with pytest.raises(ValueError, match="no input columns"):
        dls_of(toy, cat_names=[], cont_names=[])


def test_not_a_frame():
    with pytest.raises(TypeError, match="pandas DataFrame"):
        TabularDataLoaders.from_df([[1, 2]], y_names="a")


def test_date_column_as_continuous(toy):
    with pytest.raises(TypeError, match="'x' holds dates"):
        dls_of(toy.assign(x=pd.Timestamp("2020-01-01")))
