"""Loaders: reproducible shuffles, padding with zero weights, drop_last, prefetch."""

import numpy as np
import pytest

from learner_jax import DataLoader, prefetch
from learner_jax.metrics import F1Score, mae, mse, rmse


def test_shuffle_reproducible_per_epoch_and_seed():
    x = np.arange(100)
    dl = DataLoader(x, x, bs=10, shuffle=True, seed=7)
    e0 = np.concatenate([b[0] for b in dl.batches(0)])
    assert sorted(e0) == list(range(100)) and not np.array_equal(e0, np.arange(100))
    np.testing.assert_array_equal(e0, np.concatenate([b[0] for b in DataLoader(x, x, bs=10, shuffle=True,
                                                                                 seed=7).batches(0)]))
    e1 = np.concatenate([b[0] for b in dl.batches(1)])
    assert not np.array_equal(e0, e1)
    resumed = np.concatenate([b[0] for b in dl.batches(1, start=4)])
    np.testing.assert_array_equal(resumed, e1[40:])


def test_padding_and_drop_last():
    x = {"a": np.arange(25), "b": np.arange(25) * 2.0}
    y = np.arange(25)
    dl = DataLoader(x, y, bs=10)
    batches = list(dl.batches(0))
    assert len(dl) == 3 and len(batches) == 3
    bx, by, bw = batches[-1]
    assert bx["a"].shape == (10,) and by.shape == (10,)
    np.testing.assert_array_equal(bw, [1] * 5 + [0] * 5)
    np.testing.assert_array_equal(by[:5], [20, 21, 22, 23, 24])
    train = DataLoader(x, y, bs=10, shuffle=True)
    assert len(train) == 2 and all(b[2].sum() == 10 for b in train.batches(0))
    with pytest.raises(ValueError, match="rows"):
        DataLoader(np.arange(3), np.arange(4))
    with pytest.raises(ValueError, match="positive"):
        DataLoader(np.arange(3), np.arange(3), bs=0)


def test_one_batch_and_prefetch_propagates_errors():
    dl = DataLoader(np.arange(8), np.arange(8), bs=4)
    assert dl.one_batch()[0].tolist() == [0, 1, 2, 3]
    assert list(prefetch(iter([[1], [2], [3]]), size=2)) == [[1], [2], [3]]

    def broken():
        yield 1
        raise RuntimeError("bad shard 2")

    with pytest.raises(RuntimeError, match="bad shard 2"):
        list(prefetch(broken()))


def test_regression_metrics_and_f1_exact_over_padding():
    import jax.numpy as jnp

    p = jnp.array([1.0, 2.0, 4.0, 100.0])
    y = jnp.array([1.5, 2.0, 3.0, 0.0])
    w = jnp.array([1.0, 1.0, 1.0, 0.0])  # the last row is padding
    st = {k: float(v) for k, v in mse.stats(p, y, w, 0, 0).items()}
    assert mse.value(st) == pytest.approx((0.25 + 0 + 1) / 3)
    assert rmse.value(st) == pytest.approx(np.sqrt((0.25 + 1) / 3))
    st = {k: float(v) for k, v in mae.stats(p, y, w, 0, 0).items()}
    assert mae.value(st) == pytest.approx(1.5 / 3)
    f1 = F1Score()
    logits = jnp.array([[0, 1], [0, 1], [1, 0], [1, 0], [0, 1.0]])
    yy = jnp.array([1, 0, 1, 0, 1])
    ww = jnp.array([1, 1, 1, 1, 0.0])
    st = {k: float(v) for k, v in f1.stats(logits, yy, ww, 0, 0).items()}
    assert f1.value(st) == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
