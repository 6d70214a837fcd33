"""Procs: fitted on training rows only, replayed on other frames, applied in fastai v2's order."""

import warnings

import numpy as np
import pandas as pd
import pytest

from tabular_jax.procs import Categorify, Columns, FillMissing, FillStrategy, Normalize, make_procs


def test_fillmissing_median_flag_and_train_only_statistics():
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0, 10.0], "z": [1.0, 2.0, 3.0, 4.0]})
    fm = FillMissing()
    cols = fm.setup(train, Columns((), ("x", "z"), ()))
    assert cols.cat_names == ("x_na",)  # only the column with NaNs in training gets a flag
    assert fm.na_dict == {"x": 3.0}
    out = fm.encode(pd.DataFrame({"x": [np.nan, 5.0], "z": [7.0, 8.0]}))
    assert out["x"].tolist() == [3.0, 5.0] and out["x_na"].tolist() == [True, False]
    assert "z_na" not in out


@pytest.mark.parametrize("strategy,expected", [(FillStrategy.mode, 2.0), ("mode", 2.0), ("constant", 7.0),
                                               (FillStrategy.constant, 7.0)])
def test_fillmissing_strategies(strategy, expected):
    train = pd.DataFrame({"x": [2.0, 2.0, 5.0, np.nan]})
    fm = FillMissing(fill_strategy=strategy, fill_vals={"x": 7.0})
    fm.setup(train, Columns((), ("x",), ()))
    assert fm.encode(train)["x"].iloc[3] == expected


def test_fillmissing_add_col_false():
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0]})
    fm = FillMissing(add_col=False)
    assert fm.setup(train, Columns((), ("x",), ())).cat_names == ()
    assert "x_na" not in fm.encode(train)


def test_fillmissing_nan_at_inference_in_clean_column_is_filled_with_warning():
    """fastai #2911: fastai raises; we fill with the training median and warn naming column and count."""
    train = pd.DataFrame({"x": [1.0, 2.0, 30.0]})
    fm = FillMissing()
    fm.setup(train, Columns((), ("x",), ()))
    with pytest.warns(UserWarning, match=r"'x' has 2 NaN value\(s\).*median 2"):
        out = fm.encode(pd.DataFrame({"x": [np.nan, 5.0, np.nan]}))
    assert out["x"].tolist() == [2.0, 5.0, 2.0]


def test_fillmissing_unknown_strategy():
    with pytest.raises(ValueError, match="unknown fill_strategy 'mean'"):
        FillMissing(fill_strategy="mean")


def test_categorify_na_unseen_and_sorted_classes():
    train = pd.DataFrame({"c": ["b", "a", None, "b"]})
    cat = Categorify()
    cat.setup(train, Columns(("c",), (), ()))
    assert cat["c"] == ["#na#", "a", "b"]
    out = cat.encode(pd.DataFrame({"c": ["a", "b", "zzz", None, np.nan]}))
    assert out["c"].tolist() == [1, 2, 0, 0, 0]
    assert cat.decode(out)["c"].tolist() == ["a", "b", "#na#", "#na#", "#na#"]


def test_categorify_recodes_categoricals_with_other_categories():
    """autogluon#5830: a categorical column whose categories differ at inference must map by value."""
    train = pd.DataFrame({"c": ["x", "y", "z"]})
    cat = Categorify()
    cat.setup(train, Columns(("c",), (), ()))
    test = pd.DataFrame({"c": pd.Categorical(["z", "x", "new"], categories=["new", "z", "x"])})
    assert cat.encode(test)["c"].tolist() == [3, 1, 0]


def test_categorify_keeps_category_order_of_a_categorical_training_column():
    train = pd.DataFrame({"size": pd.Categorical(["M", "S"], categories=["S", "M", "L"], ordered=True)})
    cat = Categorify()
    cat.setup(train, Columns(("size",), (), ()))
    assert cat["size"] == ["#na#", "S", "M", "L"]


def test_categorify_mixed_types_error_names_column():
    cat = Categorify()
    with pytest.raises(TypeError, match="'c' mixes value types"):
        cat.setup(pd.DataFrame({"c": ["a", 1, 2.5]}), Columns(("c",), (), ()))


def test_categorify_all_missing_warns():
    cat = Categorify()
    with pytest.warns(UserWarning, match="'c' is all missing"):
        cat.setup(pd.DataFrame({"c": [None, None]}), Columns(("c",), (), ()))
    assert cat["c"] == ["#na#"]


def test_normalize_uses_training_statistics_ddof0():
    train = pd.DataFrame({"x": np.array([1.0, 2.0, 3.0, 6.0], np.float32)})
    norm = Normalize()
    norm.setup(train, Columns((), ("x",), ()))
    assert norm.means["x"] == pytest.approx(3.0)
    assert norm.stds["x"] == pytest.approx(np.std([1, 2, 3, 6]) + 1e-7)
    out = norm.encode(pd.DataFrame({"x": [3.0, 100.0]}))
    assert out["x"].dtype == np.float32
    np.testing.assert_allclose(out["x"], [0.0, 97.0 / norm.stds["x"]], rtol=1e-5)
    np.testing.assert_allclose(norm.decode(out)["x"], [3.0, 100.0], rtol=1e-5)


def test_make_procs_sorts_into_fastai_v2_order_and_instantiates_classes():
    procs = make_procs([Normalize, Categorify(), FillMissing])
    assert [type(p) for p in procs] == [FillMissing, Categorify, Normalize]
    with pytest.raises(ValueError, match="Categorify more than once"):
        make_procs([Categorify, Categorify])
    with pytest.raises(TypeError, match="TabularProc"):
        make_procs([len])


def test_encode_does_not_modify_its_input():
    df = pd.DataFrame({"x": [1.0, np.nan]})
    fm = FillMissing()
    fm.setup(df, Columns((), ("x",), ()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fm.encode(df)
    assert np.isnan(df["x"].iloc[1]) and "x_na" not in df


def test_categorify_warns_when_values_have_another_type_than_training_classes():
    cat = Categorify()
    cat.setup(pd.DataFrame({"code": [3, 5, 7]}), Columns(("code",), (), ()))
    assert cat.encode(pd.DataFrame({"code": [5.0, 9]}))["code"].tolist() == [2, 0]  # 5.0 is the class 5
    with pytest.warns(UserWarning, match="'code': 2 value\\(s\\) of type str match no training class"):
        out = cat.encode(pd.DataFrame({"code": ["3", "5"]}))
    assert out["code"].tolist() == [0, 0]


def test_make_procs_copies_instances():
    fm = FillMissing(fill_strategy="mode")
    a, b = make_procs([fm])[0], make_procs([fm])[0]
    a.setup(pd.DataFrame({"x": [1.0, np.nan]}), Columns((), ("x",), ()))
    assert a is not fm and b.na_dict == {} and fm.na_dict == {}
