"""tabular_learner end to end on small synthetic tables: training on device, predict, get_preds, importance."""

import numpy as np
import pandas as pd
import pytest

from tabular_jax import (
    Categorify,
    FillMissing,
    MultiCategoryBlock,
    Normalize,
    TabularDataLoaders,
    accuracy,
    rmse,
    tabular_config,
    tabular_learner,
)

from .conftest import make_toy

PROCS = [FillMissing, Categorify, Normalize]
CATS, CONTS = ["color", "shape"], ["x", "noise", "age"]


@pytest.fixture(scope="module")
def trained():
    df = make_toy(1024, seed=1)
    dls = TabularDataLoaders.from_df(df, procs=PROCS, cat_names=CATS, cont_names=CONTS, y_names="label",
                                     valid_idx=list(range(800, 1024)), bs=64)
    learn = tabular_learner(dls, layers=[32, 16], metrics=accuracy, progress=False)
    before = learn.validate()
    learn.fit_one_cycle(4, 1e-2)
    return df, learn, before


def test_training_runs_whole_epochs_on_device_and_learns(trained):
    df, learn, before = trained
    after = learn.validate()
    assert learn.n_traces["epoch"] == 1 and learn.n_traces["train"] == 0  # one compiled scan, no per-batch step
    assert after[0] < before[0] and after[1] > 0.85
    assert len(learn.recorder.losses) == 4 * len(learn.dls.train)


def test_predict_returns_decoded_row_class_index_and_probabilities(trained):
    df, learn, _ = trained
    row = df.iloc[805]
    full, idx, probs = learn.predict(row)
    assert isinstance(full, pd.DataFrame) and len(full) == 1
    assert full["color"].iloc[0] == row["color"] and full["age"].iloc[0] == row["age"]
    assert full["label"].iloc[0] == learn.dls.vocab[idx]
    assert probs.shape == (2,) and probs.sum() == pytest.approx(1.0, abs=1e-5) and int(np.argmax(probs)) == idx
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(df.iloc[805:806]))
    np.testing.assert_allclose(preds[0], probs, rtol=1e-5)


def test_predict_accepts_dict_unseen_category_and_new_nan(trained):
    df, learn, _ = trained
    row = df.iloc[0].to_dict() | {"color": "purple", "x": np.nan}
    full, idx, probs = learn.predict(row)
    assert full["color"].iloc[0] == "#na#" and full["x_na"].iloc[0]
    with pytest.warns(UserWarning, match="'noise' has 1 NaN"):
        learn.predict(df.iloc[0].to_dict() | {"noise": np.nan})
    with pytest.raises(ValueError, match="one row"):
        learn.predict(df.iloc[:2])


def test_get_preds_on_test_dl_without_labels(trained):
    df, learn, _ = trained
    dl = learn.dls.test_dl(df.drop(columns=["label"]).iloc[:100])
    preds, targs, dec = learn.get_preds(dl=dl, with_decoded=True)
    assert preds.shape == (100, 2) and dec.shape == (100,)
    truth = (df["label"].iloc[:100] == "yes").to_numpy()
    assert (dec == truth).mean() > 0.8


def test_permutation_importance_ranks_informative_columns_first(trained):
    _, learn, _ = trained
    imp = learn.feature_importance(n_repeats=2, seed=0)
    assert set(imp["feature"]) == set(CATS + CONTS)
    assert set(imp["feature"][:2]) == {"color", "x"}
    assert imp.set_index("feature").loc["color", "accuracy"] < imp.attrs["baseline"]["accuracy"] - 0.1


def test_show_batch_and_show_results(trained):
    df, learn, _ = trained
    batch = learn.show_batch(max_n=3, show=False)
    assert len(batch) == 3 and set(batch["label"]) <= {"yes", "no"}
    res = learn.show_results(max_n=5, show=False)
    assert res["label"].tolist() == df["label"].iloc[800:805].tolist()
    assert res["color"].tolist() == df["color"].iloc[800:805].tolist()
    assert (res["label_pred"] == res["label"]).mean() >= 0.6


def test_regression_with_y_range():
    df = make_toy(1024, seed=2)
    dls = TabularDataLoaders.from_df(df, procs=PROCS, cat_names=CATS, cont_names=CONTS, y_names="target",
                                     seed=0, bs=64)
    lo, hi = float(df["target"].min()) - 1, float(df["target"].max()) + 1
    learn = tabular_learner(dls, layers=[32, 16], y_range=(lo, hi), metrics=rmse, progress=False)
    learn.fit_one_cycle(5, 1e-2)
    assert learn.validate()[1] < 0.5 * df["target"].std()
    full, pred, out = learn.predict(df.iloc[0])
    assert lo <= float(out[0]) <= hi and full["target"].iloc[0] == pytest.approx(float(out[0]))


def test_multilabel_learns():
    df = make_toy(1024, seed=3)
    df["is_red"] = (df["color"] == "red").astype(int)
    df["x_pos"] = (df["x"].fillna(0) > 0).astype(int)
    dls = TabularDataLoaders.from_df(df, procs=PROCS, cat_names=CATS, cont_names=CONTS,
                                     y_names=["is_red", "x_pos"], y_block=MultiCategoryBlock(encoded=True),
                                     seed=0, bs=64)
    learn = tabular_learner(dls, layers=[32], config=tabular_config(ps=0.0), progress=False)
    learn.fit_one_cycle(4, 1e-2)
    preds, targs = learn.get_preds()
    assert preds.shape == targs.shape == (len(dls.to.valid), 2)
    assert ((preds > 0.5) == (targs > 0.5)).mean() > 0.9
    full, dec, probs = learn.predict(df.iloc[0])
    assert isinstance(full["labels"].iloc[0], list)


def test_factory_checks():
    with pytest.raises(TypeError, match="TabularDataLoaders"):
        tabular_learner(object())
