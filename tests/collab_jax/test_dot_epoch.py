"""The dot model's row-sparse AdamW epoch computes what the engine's dense optax epoch computes."""

import jax
import numpy as np
import pandas as pd
import pytest

from collab_jax.data import CollabDataLoaders
from collab_jax.dot_epoch import distinct_rows, make_dot_train_epoch, renorm_period, table_leaves
from collab_jax.learner import collab_learner
from learner_jax.shuffle import feistel_permutation
from learner_jax.steps import make_train_epoch


def _ratings(n=1500, n_users=12, n_items=15, seed=0):
    """Few users and items: most batches hold the same user or item several times (duplicate rows)."""
    rs = np.random.default_rng(seed)
    u, i = rs.integers(0, n_users, n), rs.integers(0, n_items, n)
    r = np.clip(np.round(3 + rs.normal(0, 1, n) + 0.3 * (u % 3) - 0.2 * (i % 4)), 1, 5)
    return pd.DataFrame({"user": u, "item": i, "rating": r.astype(np.float32)})


def _learner(sparse, **kw):
    dls = CollabDataLoaders.from_df(_ratings(), valid_pct=0.2, seed=1, bs=32)
    learn = collab_learner(dls, n_factors=6, y_range=(0, 5.5), progress=False, **kw)
    learn.sparse_epoch = sparse
    return learn


def _assert_same_tree(a, b, atol):
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=atol,
                                   err_msg=jax.tree_util.keystr(path))


def test_distinct_rows_sums_duplicates():
    ids = jax.numpy.asarray([5, 2, 5, 9, 2, 5], jax.numpy.int32)
    g = jax.numpy.arange(6.0)[:, None] * jax.numpy.ones((1, 3))
    order = jax.numpy.argsort(ids)
    seg, uniq = distinct_rows(ids, order)
    sums = jax.ops.segment_sum(g[order], seg, num_segments=6)
    got = {int(u): float(s[0]) for u, s in zip(uniq, sums) if u < 100}
    assert got == {2: 1 + 4, 5: 0 + 2 + 5, 9: 3}
    assert int(np.sum(np.asarray(uniq) < 100)) == 3  # the other slots point out of range (dropped)


def test_renorm_period():
    assert renorm_period(1250) == 50  # the largest divisor of 1250 up to 100
    assert renorm_period(96) == 96 and renorm_period(7) == 7  # a short epoch is one chunk
    assert renorm_period(1259) == 64  # a prime: chunks of 64 and a remainder
    assert renorm_period(300) == 100


@pytest.mark.parametrize("renorm_every", [4, 7])  # 7: chunks plus a remainder scan
def test_epoch_function_equals_the_engine_epoch(renorm_every):
    """Same permutation, same hyper-parameters: parameters, optax moments and per-step losses agree."""
    learn = _learner(True)
    learn.fit(1, 5e-2, wd=0.1)  # a state with non-zero moments; the schedule stays at lr 5e-2
    state, arrays = learn.state, jax.device_put(learn.dls.train.arrays)
    spec, bs, nb = learn.spec, learn.dls.train.bs, len(learn.dls.train)
    sparse = jax.jit(make_dot_train_epoch(spec, table_leaves(state.params), (0, 5.5), 0.0, bs, nb,
                                          renorm_every=renorm_every, permute=feistel_permutation))
    dense = jax.jit(make_train_epoch(spec, bs, nb, permute=feistel_permutation))
    key = jax.random.key(3)
    s1, m1 = sparse(state, arrays, learn.rng, key)
    s2, m2 = dense(state, arrays, learn.rng, key)
    assert int(s1.step) == int(s2.step) == int(state.step) + nb
    _assert_same_tree(s1.params, s2.params, atol=1e-6)
    _assert_same_tree(s1.opt_state, s2.opt_state, atol=1e-9)
    _assert_same_tree(m1, m2, atol=1e-6)
    assert float(np.max(np.abs(np.asarray(s1.params["u_weight"]["embedding"])
                              - np.asarray(state.params["u_weight"]["embedding"])))) > 1e-3  # it trained


def test_learner_fits_agree_and_the_sparse_path_is_used():
    a, b = _learner(True), _learner(False)
    for learn in (a, b):
        learn.fit_one_cycle(3, 1e-2, wd=0.1)
    assert any(k[0] == "epoch" and k[-1] is True for k in a._jits)  # the variant key says: sparse allowed
    _assert_same_tree(a.state.params, b.state.params, atol=1e-5)
    np.testing.assert_allclose(a.recorder.losses, b.recorder.losses, rtol=1e-4)
    np.testing.assert_allclose([v[1] for v in a.recorder.values], [v[1] for v in b.recorder.values], rtol=1e-4)
    # the sparse epoch hands optax's own state to the per-batch step (as lr_find and resumed fits use)
    for learn in (a, b):
        learn.device_epoch = False
        learn.fit(1, 1e-3)
    _assert_same_tree(a.state.opt_state, b.state.opt_state, atol=1e-8)
    _assert_same_tree(a.state.params, b.state.params, atol=1e-5)


def test_low_momentum_takes_the_generic_epoch():
    learn = _learner(True)
    learn.fit_one_cycle(1, 1e-2, moms=(0.4, 0.3, 0.4))
    assert learn._epoch_variant() == (False,)
    ref = _learner(False)
    ref.fit_one_cycle(1, 1e-2, moms=(0.4, 0.3, 0.4))
    _assert_same_tree(learn.state.params, ref.state.params, atol=0)  # literally the same program
