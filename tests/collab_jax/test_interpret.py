"""The lesson's interpretation helpers: PCA as fastai computes it, most-rated items, bias ranking."""

import numpy as np
import pandas as pd
import pytest

from collab_jax.interpret import bias_ranking, factor_components, most_rated, pca


def test_pca_is_fastais_up_to_sign():
    x = np.random.default_rng(0).normal(size=(40, 6)) * np.array([5, 3, 2, 1, 0.5, 0.1])
    xc = x - x.mean(0)
    u, _, _ = np.linalg.svd(xc.T)  # fastai: U, S, V = torch.svd(x.t()); x @ U[:, :k] (after centring)
    want = xc @ u[:, :3]
    got = pca(x, 3)
    np.testing.assert_allclose(np.abs(got), np.abs(want), atol=1e-9)
    var = got.var(0)
    assert var[0] > var[1] > var[2]
    np.testing.assert_allclose(got.T @ got, np.diag(np.diag(got.T @ got)), atol=1e-8)
    with pytest.raises(ValueError, match="k=7"):
        pca(x, 7)


def test_most_rated():
    r = pd.DataFrame({"title": ["a", "b", "b", "c", "c", "c"], "rating": [1.0] * 6})
    assert most_rated(r, "title", 2).tolist() == ["c", "b"]
    with pytest.raises(ValueError, match="'movie'"):
        most_rated(r, "movie")


class _Fake:
    class dls:
        item_name = "title"

    def bias(self, items, is_item=True):
        return np.array([{"a": 0.5, "b": -1.0, "c": 0.1}[i] for i in items])

    def weight(self, items, is_item=True):
        return np.random.default_rng(0).normal(size=(len(items), 4))


def test_bias_ranking_and_components():
    ranked = bias_ranking(_Fake(), ["a", "b", "c"])
    assert ranked.title.tolist() == ["b", "c", "a"]
    comps = factor_components(_Fake(), ["a", "b", "c", "d", "e"], k=3)
    assert list(comps.columns) == ["title", "pc0", "pc1", "pc2"] and len(comps) == 5
