"""Pictures and tables: where they go (inline in a notebook, else PNG under learn.path/plots, never over an earlier
one, path printed), the fastai spellings, classification interpretation, the collab PCA map, show_* tables and
reprs. Tiny models; pictures are checked as written files (their looks were checked by eye when made)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collab_jax import CollabDataLoaders, collab_learner, low_rank_ratings, plot_item_pca
from learner_jax import ClassificationInterpretation, figures
from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, tabular_learner
from tests.learner_jax.test_export import TINY, _table
from tests.ulmfit_jax.test_text_data import sample_df
from ulmfit_jax import AWD_LSTM, TextDataLoaders, text_classifier_learner


@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    path = tmp_path_factory.mktemp("tab")
    dls = TabularDataLoaders.from_df(_table(400), path=path, procs=[Categorify, FillMissing, Normalize],
                                     cat_names=["a", "b"], cont_names=["c", "d"], y_names="y", seed=0, bs=32)
    learn = tabular_learner(dls, layers=[16], metrics=accuracy, progress=False)
    learn.fit_one_cycle(2, 1e-2)
    return learn


def test_plots_go_under_learn_path_without_overwriting(tab, capsys):
    first, second = tab.recorder.plot_loss(), tab.recorder.plot_losses()
    assert first == tab.path / "plots" / "loss.png" and second == tab.path / "plots" / "loss-1.png"
    assert first.stat().st_size > 1000 and second.stat().st_size > 1000
    assert f"loss plot saved to {first}" in capsys.readouterr().out
    assert tab.recorder.plot_sched(fname="my_sched.png") == tab.path / "plots" / "my_sched.png"
    assert tab.recorder.plot_sched(fname="my_sched.png") == tab.path / "plots" / "my_sched.png"  # named: replaced


def test_notebook_shows_inline_and_saves_only_when_asked(tab, monkeypatch):
    shown = []
    monkeypatch.setattr(figures, "inline_backend", lambda: True)
    monkeypatch.setattr(figures, "display_inline", lambda fig: shown.append(fig))
    before = sorted((tab.path / "plots").glob("*"))
    assert tab.recorder.plot_loss() is None and len(shown) == 1
    assert sorted((tab.path / "plots").glob("*")) == before  # nothing written
    out = tab.recorder.plot_loss(fname="asked.png")
    assert out == tab.path / "plots" / "asked.png" and out.exists() and len(shown) == 2


def test_lr_find_plots_with_suggestion_and_spelling(tab):
    res = tab.lr_find(num_it=20)
    assert res.valley > 0 and (tab.path / "plots" / "lr_find.png").exists()
    assert tab.recorder.plot(suggestions={"valley": res.valley}) == tab.path / "plots" / "lr_find-1.png"


def test_tabular_interpretation(tab):
    interp = ClassificationInterpretation.from_learner(tab)
    cm = interp.confusion_matrix()
    assert cm.shape == (2, 2) and cm.sum() == len(interp.targs) == tab.dls.valid.n
    assert interp.vocab == ["hi", "lo"]
    assert sum(c for _, _, c in interp.most_confused()) == cm.sum() - np.trace(cm)
    losses, idx = interp.top_losses(5)
    assert np.all(np.diff(losses) <= 0) and losses[0] == interp.losses.max()
    table = interp.plot_top_losses(5, show=False)
    assert list(table.columns[:2]) == ["a", "b"] and {"target", "predicted", "probability", "loss"} <= set(table)
    np.testing.assert_allclose(table["loss"], np.round(losses, 4))
    assert interp.plot_confusion_matrix(normalize=True) == tab.path / "plots" / "confusion_matrix.png"


def test_tables_printed_outside_ipython_only(tab, capsys, monkeypatch):
    df = tab.show_batch(max_n=3)
    assert isinstance(df, pd.DataFrame) and len(df) == 3 and "a" in capsys.readouterr().out
    monkeypatch.setattr(figures, "in_ipython", lambda: True)
    assert len(tab.show_results(max_n=4)) == 4 and capsys.readouterr().out == ""  # the cell displays the return


def test_reprs_are_short(tab):
    for obj in (tab, tab.dls, tab.dls.train):
        text = repr(obj)
        assert " at 0x" not in text and len(text) < 400, text
    assert "TabularModel" in repr(tab) and "accuracy" in repr(tab)


def test_text_interpretation_and_show_results(tmp_path):
    df = sample_df(80)
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8, seq_len=10)
    learn = text_classifier_learner(dls, AWD_LSTM, config=TINY, seq_len=10, pretrained=False, progress=False,
                                    path=tmp_path)
    res = learn.show_results(max_n=3, show=False)
    assert list(res.columns) == ["text", "category", "category_pred", "probability"]
    assert set(res.category) <= {"negative", "positive"} and "xxmaj" not in res.text[0]  # readable text
    top = ClassificationInterpretation.from_learner(learn).plot_top_losses(4, show=False)
    assert len(top) == 4 and all(isinstance(t, str) and len(t) > 5 for t in top.text)
    assert " at 0x" not in repr(learn)


def test_collab_spellings_pca_map_and_results(tmp_path):
    ratings = low_rank_ratings(60, 40, seed=0).ratings[["user", "item", "rating"]]
    dls = CollabDataLoaders.from_df(ratings, seed=0, bs=64, path=tmp_path)
    learn = collab_learner(dls, n_factors=6, y_range=(0, 5.5), progress=False)
    items = sorted(ratings.item.unique())[:20]
    np.testing.assert_array_equal(learn.model.bias(items, is_item=True), learn.bias(items))
    w = learn.model.weight(items, is_item=True)
    assert w.shape == (20, 6) and w.pca(3).shape == (20, 3)
    assert learn.model.i_bias.embedding.shape == (dls.n_items, 1) and learn.model.classes == dls.classes
    with pytest.raises(KeyError, match="not in the training data"):
        learn.model.bias([123456])
    out = plot_item_pca(learn, items, n_show=10, titles={i: f"film {i}" for i in items})
    assert out == tmp_path / "plots" / "item_pca.png" and out.stat().st_size > 1000
    res = learn.show_results(max_n=5, show=False)
    assert list(res.columns) == ["user", "item", "rating", "rating_pred"] and len(res) == 5
    text = repr(dls)
    assert "60 users x" in text and len(text) < 300
