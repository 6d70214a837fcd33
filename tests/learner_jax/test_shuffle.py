"""The sort-free on-device shuffle is a reproducible, well-spread permutation; the recorder's batch path."""

import jax
import numpy as np
import pytest

from learner_jax.recorder import Recorder
from learner_jax.shuffle import feistel_permutation


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 64, 1000, 80_000])
def test_is_a_permutation(n):
    p = np.asarray(feistel_permutation(jax.random.key(0), n))
    assert p.dtype == np.int32 and sorted(p.tolist()) == list(range(n))


def test_reproducible_and_keyed():
    a = np.asarray(feistel_permutation(jax.random.key(1), 5000))
    b = np.asarray(jax.jit(feistel_permutation, static_argnums=1)(jax.random.key(1), 5000))
    c = np.asarray(feistel_permutation(jax.random.key(2), 5000))
    assert np.array_equal(a, b) and np.mean(a == c) < 0.01
    assert abs(np.corrcoef(np.arange(5000), a)[0, 1]) < 0.05  # no trace of the original order


def test_positions_spread_uniformly():
    """Where element 0 lands over many keys: uniform over the 10 deciles (chi-square, 9 dof, p ~ 0.001)."""
    n, keys = 1000, 2000
    perms = jax.jit(jax.vmap(lambda k: feistel_permutation(k, n)))(jax.random.split(jax.random.key(0), keys))
    pos = np.argmax(np.asarray(perms) == 0, axis=1)
    counts = np.bincount(pos * 10 // n, minlength=10)
    chi2 = float(np.sum((counts - keys / 10) ** 2 / (keys / 10)))
    assert chi2 < 27.9, counts


def test_recorder_add_steps_equals_add_step():
    rs = np.random.default_rng(0)
    losses, moms = rs.random(50), rs.random(50)
    lrs = np.stack([rs.random(50), rs.random(50)], 1)
    lrs[:20, 1] = lrs[:20, 0]  # some steps with one lr for both groups
    a, b = Recorder(), Recorder()
    a.reset([]), b.reset([])
    for i in range(50):
        a.add_step(losses[i], lrs[i], moms[i])
    b.add_steps(losses, lrs, moms)
    assert a.lrs == b.lrs and a.moms == b.moms
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)
