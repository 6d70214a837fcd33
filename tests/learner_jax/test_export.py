"""export -> load_learner -> predict equality for every application (tiny models), and refusals of files that are
not ours. The exported file is a zip of JSON and .npy arrays: nothing in it can run code."""

from __future__ import annotations

import json
import zipfile

import jax
import numpy as np
import pandas as pd
import pytest

from collab_jax import CollabDataLoaders, MetaEncoder, collab_learner, low_rank_ratings
from learner_jax import load_learner
from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, tabular_learner
from tests.ulmfit_jax.test_text_data import sample_df
from ulmfit_jax import AWD_LSTM, TextDataLoaders, language_model_learner, text_classifier_learner

TINY = dict(emb_sz=16, n_hid=32, n_layers=2)


def _perturb(learn, seed=1):
    """Weights (and BatchNorm statistics) unlike a fresh model's, without compiling a training step: a file whose
    weights were not restored would then predict differently."""
    rng = np.random.default_rng(seed)

    def move(a, scale):
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.floating):
            return a
        return (a * rng.uniform(0.5, 1.5, a.shape) + scale * rng.normal(size=a.shape)).astype(a.dtype)

    learn.state = learn.state.replace(params=jax.tree_util.tree_map(lambda a: move(a, 0.1), learn.state.params),
                                      model_state=jax.tree_util.tree_map(lambda a: move(a, 0.0),
                                                                         learn.state.model_state))


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.choice(["x", "y", "z"], n), "b": rng.integers(0, 5, n), "c": rng.normal(size=n),
                       "d": rng.normal(size=n)})
    df.loc[::7, "c"] = np.nan
    df["y"] = np.where(df.d + (df.a == "x") > 0.3, "hi", "lo")
    df["r"] = (df.d * 2 + 1).astype(np.float32)
    return df


@pytest.mark.parametrize("target", ["y", "r"])
def test_tabular_roundtrip(tmp_path, target):
    df = _table()
    dls = TabularDataLoaders.from_df(df, path=tmp_path, procs=[Categorify, FillMissing, Normalize],
                                     cat_names=["a", "b"], cont_names=["c", "d"], y_names=target, seed=0, bs=32)
    learn = tabular_learner(dls, layers=[16, 8], metrics=accuracy if target == "y" else None, progress=False,
                            config={"ps": [0.1, 0.1]})
    _perturb(learn)
    path = learn.export()
    assert path == tmp_path / "export.zip"
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["meta.json", "weights.npz"]
        assert json.loads(z.read("meta.json"))["application"] == "tabular"
    new = load_learner(path)
    assert type(new) is type(learn) and new.dls.cat_names == learn.dls.cat_names
    test = df.drop(columns=["y", "r"]).iloc[:40]
    before = learn.get_preds(dl=learn.dls.test_dl(test))[0]
    after = new.get_preds(dl=new.dls.test_dl(test))[0]
    np.testing.assert_array_equal(before, after)
    row_a, row_b = learn.predict(df.iloc[3]), new.predict(df.iloc[3])
    pd.testing.assert_frame_equal(row_a[0], row_b[0])
    np.testing.assert_array_equal(row_a[2], row_b[2])
    if target == "y":  # labelled new rows validate with the restored metric
        assert new.validate(new.dls.test_dl(df.iloc[:60])) == learn.validate(learn.dls.test_dl(df.iloc[:60]))


@pytest.mark.parametrize("kind", ["dot", "nn", "hybrid"])
def test_collab_roundtrip(tmp_path, kind):
    ratings = low_rank_ratings(60, 40, seed=0).ratings[["user", "item", "rating"]]
    meta = None
    if kind == "hybrid":
        users = ratings.user.unique()
        meta = MetaEncoder.from_df(pd.DataFrame({"user": users, "age": np.arange(len(users))}), "user",
                                   cont_names=["age"])
    dls = CollabDataLoaders.from_df(ratings, seed=0, bs=64, path=tmp_path, user_meta=meta)
    kw = dict(use_nn=True, layers=[10]) if kind == "nn" else dict(n_factors=8)
    learn = collab_learner(dls, y_range=(0, 5.5), progress=False, **kw)
    _perturb(learn)
    new = load_learner(learn.export("model.zip"))
    test = ratings.iloc[:100].drop(columns="rating")
    np.testing.assert_array_equal(learn.get_preds(dl=learn.dls.test_dl(test))[0],
                                  new.get_preds(dl=new.dls.test_dl(test))[0])
    pair = (ratings.user.iloc[0], ratings.item.iloc[0])
    np.testing.assert_array_equal(learn.predict(pair), new.predict(pair))
    assert new.dls.classes == learn.dls.classes


@pytest.fixture(scope="module")
def text_learners(tmp_path_factory):
    path = tmp_path_factory.mktemp("text")
    df = sample_df(120)
    lm_dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, bs=4, seq_len=10, min_freq=1)
    lm = language_model_learner(lm_dls, AWD_LSTM, config=TINY, pretrained=False, progress=False, path=path)
    _perturb(lm)
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8, seq_len=10,
                                  text_vocab=lm_dls.vocab)
    clas = text_classifier_learner(dls, AWD_LSTM, config=TINY, seq_len=10, pretrained=False, progress=False,
                                   path=path)
    _perturb(clas)
    return df, lm, clas


def test_text_classifier_roundtrip(text_learners):
    df, _, clas = text_learners
    new = load_learner(clas.export())
    assert new.classes == ["negative", "positive"] and new.dls.vocab == clas.dls.vocab
    texts = df.text.tolist()[:20] + ["A text with UNSEEN words!!!"]
    np.testing.assert_array_equal(clas.get_preds(dl=clas.dls.test_dl(texts))[0],
                                  new.get_preds(dl=new.dls.test_dl(texts))[0])
    a, b = clas.predict(texts[-1]), new.predict(texts[-1])
    assert a[:2] == b[:2]
    np.testing.assert_array_equal(a[2], b[2])


def test_language_model_roundtrip(text_learners):
    df, lm, _ = text_learners
    new = load_learner(lm.export("lm.zip"))
    assert new.predict("This movie", 6, seed=3) == lm.predict("This movie", 6, seed=3)
    assert list(lm.show_results(max_n=2, show=False).columns) == ["text", "text_", "text_pred"]
    dl_a, dl_b = lm.dls.test_dl(df.text.tolist()[:12], bs=4), new.dls.test_dl(df.text.tolist()[:12], bs=4)
    np.testing.assert_array_equal(lm.get_preds(dl=dl_a)[0], new.get_preds(dl=dl_b)[0])


def test_sentencepiece_tokenizer_travels(tmp_path):
    df = sample_df(80)
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8, seq_len=10,
                                  tok_tfm="sentencepiece", min_freq=1)
    clas = text_classifier_learner(dls, AWD_LSTM, config=TINY, seq_len=10, pretrained=False, progress=False,
                                   path=tmp_path)
    _perturb(clas)
    new = load_learner(clas.export())
    text = "Subword pieces of an unseen word: flabbergasted"
    np.testing.assert_array_equal(dls.numericalize_texts([text])[0], new.dls.numericalize_texts([text])[0])
    np.testing.assert_array_equal(clas.predict(text)[2], new.predict(text)[2])


def test_refuses_files_that_are_not_exports(tmp_path):
    pkl = tmp_path / "export.pkl"
    pkl.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(ValueError, match="pickles cannot be loaded"):
        load_learner(pkl)
    with pytest.raises(FileNotFoundError, match="learn.export"):
        load_learner(tmp_path / "missing.zip")
    bad = tmp_path / "other.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("meta.json", json.dumps({"format": "lesson4-jax-learner", "version": 1, "application": "os"}))
        z.writestr("weights.npz", b"")
    with pytest.raises(ValueError, match="unknown application 'os'"):
        load_learner(bad)


def test_custom_rules_and_plain_learners_refuse_to_export(text_learners, tmp_path):
    from tests.learner_jax.tiny import toy_learner

    _, _, clas = text_learners
    clas.dls.tokenizer.rules = (*clas.dls.tokenizer.rules, lambda t: t.upper())
    try:
        with pytest.raises(TypeError, match="custom function would have to travel as code"):
            clas.export(tmp_path / "x.zip")
    finally:
        clas.dls.tokenizer.rules = clas.dls.tokenizer.rules[:-1]
    assert not (tmp_path / "x.zip").exists()
    learn = toy_learner()
    with pytest.raises(TypeError, match="cannot be exported"):
        learn.export(tmp_path / "y.zip")
