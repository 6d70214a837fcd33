"""Bad inputs and fastai traps in the applications (tabular, collab, text): each gives an error naming the thing
and what to do, or works where it can (tiny training sets). Rows of docs/bad_inputs.md name these tests."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from collab_jax import CollabDataLoaders, collab_learner
from learner_jax import accuracy, rmse
from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from tests.tabular_jax.conftest import make_toy
from tests.ulmfit_jax.test_text_data import sample_df
from ulmfit_jax import TextDataLoaders, language_model_learner, text_classifier_learner
from ulmfit_jax.text_rules import undo_rules
from ulmfit_jax.torch_pickle import CheckpointFormatError, load_checkpoint, load_pickle
from ulmfit_jax.vocab import load_vocab, save_vocab

PROCS = [FillMissing, Categorify, Normalize]


@pytest.fixture
def toy():
    return make_toy()
LATIN1 = "name,score\ncaf\xe9,1\nna\xefve,2\n".encode("latin-1")


def tab_dls(df, **kw):
    args = dict(procs=PROCS, cat_names=["color"], cont_names=["x"], y_names="label", seed=0)
    return TabularDataLoaders.from_df(df, **(args | kw))


# ---------------------------------------------------------------- tabular
@pytest.mark.parametrize("n_train", [1, 20])
def test_tabular_training_set_smaller_than_bs_trains(n_train):
    df = make_toy().iloc[:n_train + 4].reset_index(drop=True)  # regression: one row holds one class only
    dls = tab_dls(df, y_names="target", valid_idx=list(range(n_train, n_train + 4)), bs=64)
    learn = tabular_learner(dls, layers=[8], progress=False)  # on-device epochs by default
    learn.fit(1, 1e-2)
    assert int(learn.state.step) == 1 and np.isfinite(learn.recorder.values[-1][1])


@pytest.mark.parametrize("kw, v2", [({"emb_drop": 0.1}, "embed_p"), ({"ps": [0.1]}, "ps")])
def test_tabular_v1_model_kwargs_point_to_tabular_config(toy, kw, v2):
    with pytest.raises(TypeError, match=rf"config=tabular_config\({v2}="):
        tabular_learner(tab_dls(toy), **kw)


def test_accuracy_on_a_regression_is_refused(toy):
    dls = tab_dls(toy, y_names="target", y_block=None)
    with pytest.raises(ValueError, match=r"\['accuracy'\] are for classification.*MSELossFlat.*rmse"):
        tabular_learner(dls, metrics=accuracy)
    tabular_learner(dls, metrics=rmse, progress=False)


@pytest.mark.parametrize("bad", [np.inf, 1e39])
def test_tabular_regression_target_beyond_float32_is_refused(toy, bad):
    toy = toy.copy()
    toy.loc[5, "target"] = bad
    with pytest.raises(ValueError, match=r"regression target column 'target' .*float32's range.*index 5"):
        tab_dls(toy, y_names="target")


def test_tabular_non_utf8_csv_names_the_file(tmp_path):
    (tmp_path / "t.csv").write_bytes(LATIN1)
    with pytest.raises(ValueError, match=r"t.csv is not UTF-8 text.*encoding"):
        TabularDataLoaders.from_csv(tmp_path / "t.csv", y_names="score")


# ---------------------------------------------------------------- collab
def ratings(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": rng.integers(0, 8, n), "item": rng.integers(0, 6, n),
                         "rating": rng.integers(1, 6, n).astype(float)}).drop_duplicates(["user", "item"])


@pytest.mark.parametrize("n_factors", [0, -2, 2.5])
def test_collab_bad_n_factors_is_refused(n_factors):
    dls = CollabDataLoaders.from_df(ratings(), seed=0, bs=8)
    with pytest.raises(ValueError, match=rf"n_factors={n_factors}.*whole number >= 1"):
        collab_learner(dls, n_factors=n_factors)


def test_collab_rating_beyond_float32_is_refused():
    df = ratings()
    df.loc[df.index[2], "rating"] = 1e39
    with pytest.raises(ValueError, match=r"'rating' has 1 NaN or infinite value\(s\) \(counting values beyond float32"):
        CollabDataLoaders.from_df(df, seed=0)


def test_collab_training_set_smaller_than_bs_trains():
    dls = CollabDataLoaders.from_df(ratings(12), seed=0, bs=64)  # ~10 training rows
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5), progress=False)  # on-device epochs by default
    learn.fit(1, 1e-2)
    assert int(learn.state.step) == 1 and np.isfinite(learn.recorder.values[-1][1])


def test_collab_non_utf8_csv_names_the_file(tmp_path):
    (tmp_path / "r.csv").write_bytes(LATIN1)
    with pytest.raises(ValueError, match=r"r.csv' is not UTF-8 text"):
        CollabDataLoaders.from_csv(tmp_path / "r.csv")


# ---------------------------------------------------------------- text
def test_text_vocab_passed_as_class_list_points_to_text_vocab():
    df = sample_df()
    lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, bs=4, seq_len=10)
    with pytest.raises(ValueError, match=r"vocab= names the classes.*text_vocab=dls_lm.vocab"):
        TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", vocab=lm.vocab)
    with pytest.raises(ValueError, match=r"text_vocab=dls_lm.vocab"):  # fastai v2's classifier (vocab, classes)
        TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid",
                                vocab=[lm.vocab, ["negative", "positive"]])


def test_single_class_text_classifier_is_refused():
    df = sample_df()
    df["label"] = "positive"
    with pytest.raises(ValueError, match=r"training split has 1 class\(es\) \['positive'\].*at least two"):
        TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid")


def test_lm_and_classifier_loaders_swapped_are_refused():
    df = sample_df()
    lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, bs=4, seq_len=10)
    clas = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8)
    with pytest.raises(TypeError, match=r"text_classifier_learner got a language model's DataLoaders"):
        text_classifier_learner(lm, pretrained=False)
    with pytest.raises(TypeError, match=r"language_model_learner got a classifier's DataLoaders"):
        language_model_learner(clas, pretrained=False)


def test_text_non_utf8_csv_names_the_file_and_encoding_reads_it(tmp_path):
    df = sample_df()
    df.loc[0, "text"] = "caf\xe9 " + df.loc[0, "text"]
    df.to_csv(tmp_path / "texts.csv", index=False, encoding="latin-1")
    kw = dict(text_col="text", label_col="label", valid_col="is_valid", bs=8)
    with pytest.raises(ValueError, match=r"texts.csv is not UTF-8 text.*encoding='latin-1'"):
        TextDataLoaders.from_csv(tmp_path, "texts.csv", **kw)
    assert len(TextDataLoaders.from_csv(tmp_path, "texts.csv", encoding="latin-1", **kw).classes) == 2


def test_generated_text_never_shows_rule_tokens():
    assert undo_rules(["xxbos", "xxmaj", "xxmaj", "the", "xxup", "xxmaj", "cat", "xxmaj"]) == "The CAT"
    assert undo_rules(["xxup", "hi", "xxrep", "xxmaj", "!", "xxrep", "3", "a"]) == "HI! aaa"


def test_truncated_vocab_files_name_the_file(tmp_path):
    good = open("tests/fixtures/itos_tiny.pkl", "rb").read()
    (tmp_path / "itos.pkl").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointFormatError, match=r"itos.pkl: truncated or not a pickle"):
        load_pickle(tmp_path / "itos.pkl")
    save_vocab(tmp_path / "vocab.json", ["xxunk", "xxpad", "a", "b"])
    text = (tmp_path / "vocab.json").read_text()
    (tmp_path / "vocab.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"vocab.json: not a JSON vocabulary"):
        load_vocab(tmp_path / "vocab.json")


def test_malformed_persistent_id_names_the_file(tmp_path):
    class Marker:
        pass

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", "too short") if isinstance(obj, Marker) else None

    buf = io.BytesIO()
    Writer(buf, protocol=2).dump({"w": Marker()})
    with zipfile.ZipFile(tmp_path / "bad.pth", "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
    with pytest.raises(CheckpointFormatError, match=r"bad.pth.*malformed storage id"):
        load_checkpoint(tmp_path / "bad.pth")
