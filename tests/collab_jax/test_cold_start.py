"""Cold-start splits and baselines, and the cold-start evaluation on generated data with informative metadata."""

import numpy as np
import pandas as pd
import pytest

from collab_jax import BiasBaseline, MetaEncoder, cold_start_eval, holdout_entities, low_rank_ratings


def test_holdout_entities_takes_every_rating_of_the_held_out_users():
    r = pd.DataFrame({"user": np.repeat(np.arange(1, 11), 3), "item": np.tile([1, 2, 3], 10), "rating": 3.0})
    mask = holdout_entities(r, "user", frac=0.2, seed=1)
    held = set(r.user[mask])
    assert len(held) == 2 and not held & set(r.user[~mask]) and mask.sum() == 6
    assert np.array_equal(mask, holdout_entities(r, "user", frac=0.2, seed=1))
    with pytest.raises(ValueError, match="frac"):
        holdout_entities(r, "user", frac=1.0)
    with pytest.raises(ValueError, match="'movie'"):
        holdout_entities(r, "movie")


def test_bias_baseline_damped_means():
    r = pd.DataFrame({"u": [1, 1, 2, 2], "i": ["a", "b", "a", "b"], "r": [5.0, 3.0, 3.0, 1.0]})
    b = BiasBaseline.fit(r, "u", "i", "r", reg_item=0.0, reg_user=0.0)
    assert b.mean == 3.0 and b.item_bias["a"] == 1.0 and b.user_bias[1] == 1.0
    np.testing.assert_allclose(b.predict(r, "u", "i"), r.r)
    new = pd.DataFrame({"u": [9], "i": ["a"]})
    assert b.predict(new, "u", "i")[0] == 4.0  # unknown user: offset 0


def test_cold_start_eval_hybrid_beats_dot_and_mean():
    syn = low_rank_ratings(200, 120, rank=2, density=0.3, noise=0.2, seed=3)
    users = pd.DataFrame({"user": np.arange(1, 201), "f0": syn.user_factors[:, 0], "f1": syn.user_factors[:, 1]})
    meta = MetaEncoder.from_df(users, "user", cont_names=["f0", "f1"])
    out = cold_start_eval(syn.ratings[["user", "item", "rating"]], meta, None, frac=0.2, n_factors=4, epochs=4,
                          lr=1e-2, wd=0.05)
    assert out["n_cold"] > 0 and out["n_train"] > out["n_cold"]
    assert out["hybrid"] < out["bias_baseline"] < out["global_mean"]
    assert out["hybrid"] < 0.8 * out["dot"]
