"""collab_learner end to end on generated low-rank ratings: loss falls, factors recover the truth, predictions
for raw ids (seen and unseen), bias/weight, top-N, EmbeddingNN and the hybrid."""

import numpy as np
import pandas as pd
import pytest

from collab_jax import (
    CollabDataLoaders,
    EmbeddingDotBias,
    EmbeddingNN,
    HybridDotBias,
    MetaEncoder,
    collab_learner,
    low_rank_ratings,
    subspace_r2,
)

SYN = low_rank_ratings(200, 150, rank=3, density=0.3, noise=0.2, seed=0)


@pytest.fixture(scope="module")
def dls():
    return CollabDataLoaders.from_df(SYN.ratings[["user", "item", "rating"]], seed=0, bs=64)


@pytest.fixture(scope="module")
def learn(dls):
    learn = collab_learner(dls, n_factors=8, y_range=(0.5, 5.5), progress=False)
    learn.before = learn.validate()[0]
    learn.fit_one_cycle(6, 1e-2, wd=0.05)
    return learn


def test_defaults_are_fastais(dls):
    learn = collab_learner(dls, progress=False)
    assert isinstance(learn.model, EmbeddingDotBias) and learn.model.u_weight.embedding.shape == (dls.n_users, 50)
    assert learn.model.y_range is None and learn.wd == 0.01 and learn.device_epoch
    decay = dict(zip(learn.param_paths, learn.decay))
    assert decay[("u_bias", "embedding")]  # fastai decays the bias *embeddings* (nn.Embedding has no .bias)


def test_loss_falls_and_factors_recover_low_rank_truth(learn, dls):
    losses = learn.recorder.losses
    assert losses[-1] < 0.5 * losses[5]
    valid = learn.validate()[0]
    assert valid < 0.3 * learn.before and valid < 2.5 * SYN.noise**2
    users = [u for u in range(1, 201) if u in dls.classes["user"]]
    items = [i for i in range(1, 151) if i in dls.classes["item"]]
    assert subspace_r2(learn.weight(users, is_item=False), SYN.user_factors[np.array(users) - 1]) > 0.9
    assert subspace_r2(learn.weight(items), SYN.item_factors[np.array(items) - 1]) > 0.9
    noise = np.random.default_rng(0).normal(size=(len(items), 8))
    assert subspace_r2(noise, SYN.item_factors[np.array(items) - 1]) < 0.2


def test_predictions_respect_y_range_and_match_get_preds(learn, dls):
    df = SYN.ratings.iloc[:300]
    p = learn.predict(df)
    assert p.shape == (300,) and p.min() >= 0.5 and p.max() <= 5.5
    preds, targs = learn.get_preds(dl=dls.test_dl(df))
    np.testing.assert_allclose(preds, p)
    np.testing.assert_allclose(targs, df.rating.to_numpy())
    assert learn.predict((int(df.user.iloc[0]), int(df.item.iloc[0])))[0] == pytest.approx(p[0], abs=1e-6)


def test_unseen_user_gets_the_item_side_prediction(learn):
    item = 5
    with pytest.warns(UserWarning, match=r"unseen in training map to #na# \(index 0\): \{'user': 1\}"):
        p_new = learn.predict((10_000, item))[0]
    na = learn.params["u_weight"]["embedding"][0]
    assert np.abs(na).max() < 0.05  # the #na# row is never trained, only decayed
    i_idx = learn.dls.classes["item"].index(item)
    b = learn.params["i_bias"]["embedding"][i_idx, 0] + learn.params["u_bias"]["embedding"][0, 0]
    assert p_new == pytest.approx(5.0 / (1 + np.exp(-b)) + 0.5, abs=0.05)


def test_bias_weight_and_unknown_ids(learn):
    assert learn.bias([1, 2, 3]).shape == (3,) and learn.weight([1, 2], is_item=False).shape == (2, 8)
    with pytest.raises(KeyError, match=r"item\(s\) \[99999\] not in the training data"):
        learn.bias([1, 99999])


def test_recommend_excludes_rated_items(learn, dls):
    user = 7
    rated = set(dls.decode(dls.train.x[dls.train.x[:, 0] == dls.classes["user"].index(user)])["item"])
    top = learn.recommend(user, n=10)
    assert len(top) == 10 and not rated & set(top["item"])
    assert np.all(np.diff(top["prediction"].to_numpy()) <= 0)
    allp = learn.predict(pd.DataFrame({"user": user, "item": [i for i in dls.classes["item"][1:] if i not in rated]}))
    assert top["prediction"].iloc[0] == pytest.approx(allp.max(), abs=1e-6)
    assert 3 not in set(learn.recommend(user, n=200, exclude=[3])["item"])


def test_y_range_that_cuts_off_ratings_warns(dls):
    with pytest.warns(UserWarning, match=r"span \[1, 5\] but y_range=\(0, 4\)"):
        collab_learner(dls, n_factors=2, y_range=(0, 4), progress=False)
    with pytest.raises(ValueError, match="low < high"):
        collab_learner(dls, y_range=(5, 0), progress=False)


def test_embedding_nn_learner(dls):
    learn = collab_learner(dls, use_nn=True, emb_szs={"user": 6}, layers=[16], y_range=(0.5, 5.5),
                           config={"ps": [0.1]}, progress=False)
    assert isinstance(learn.model, EmbeddingNN)
    assert learn.model.embeds[0].embedding.shape == (dls.n_users, 6)
    decay = dict(zip(learn.param_paths, learn.decay))
    assert not decay[("layers", 0, "bn", "scale")] and not decay[("layers", 1, "lin", "bias")]
    before = learn.validate()[0]
    learn.fit_one_cycle(2, 1e-2)
    assert learn.validate()[0] < 0.7 * before
    assert learn.weight([1, 2]).shape == (2, learn.model.embeds[1].embedding.shape[1])
    with pytest.raises(ValueError, match="no user/item biases"):
        learn.bias([1])
    with pytest.raises(ValueError, match="not the user/item columns"):
        collab_learner(dls, use_nn=True, emb_szs={"users": 6})


def test_hybrid_learner_uses_metadata_for_cold_users():
    # user metadata = the sign of the first true factor: informative for users never seen in training
    r = SYN.ratings[["user", "item", "rating"]]
    users = pd.DataFrame({"user": np.arange(1, 201), "group": np.where(SYN.user_factors[:, 0] > 0, "a", "b")})
    meta = MetaEncoder.from_df(users, "user", cat_names=["group"])
    cold = r.user > 170
    dls = CollabDataLoaders.from_df(r.assign(is_valid=cold), valid_col="is_valid", bs=64, user_meta=meta)
    assert dls.valid.x.ids[:, 0].max() == 0  # every validation user is a newcomer
    hybrid = collab_learner(dls, n_factors=8, y_range=(0.5, 5.5), progress=False)
    assert isinstance(hybrid.model, HybridDotBias)
    dot = collab_learner(dls, n_factors=8, y_range=(0.5, 5.5), use_meta=False, progress=False)
    for learn in (hybrid, dot):
        learn.fit_one_cycle(4, 1e-2, wd=0.05)
    assert hybrid.validate()[0] < 0.85 * dot.validate()[0]
    with pytest.raises(ValueError, match="use_meta=True needs loaders"):
        collab_learner(CollabDataLoaders.from_df(r, bs=64), use_meta=True)
