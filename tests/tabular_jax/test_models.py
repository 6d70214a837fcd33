"""TabularModel: fastai's embedding sizes, init, block layout (v2c default, v2a option), modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tabular_jax.models import TabularModel, emb_sz_rule, tabular_config, trunc_normal_init


def batch(n=8, n_cat=2, n_cont=3, seed=0):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.integers(0, 4, (n, n_cat)), jnp.int32),
            jnp.asarray(rng.normal(size=(n, n_cont)), jnp.float32))


@pytest.mark.parametrize("n_cat,size", [(3, 3), (10, 6), (17, 8), (100, 21), (10**6, 600)])
def test_emb_sz_rule(n_cat, size):
    assert emb_sz_rule(n_cat) == size


def test_trunc_normal_folds_tails_like_fmod():
    w = np.asarray(trunc_normal_init(0.01)(jax.random.key(0), (20000,)))
    z = np.asarray(jax.random.normal(jax.random.key(0), (20000,)))
    np.testing.assert_allclose(w, np.fmod(z, 2.0) * 0.01, rtol=1e-6)
    assert np.abs(w).max() < 0.02 and 0.008 < w.std() < 0.01


def test_v2c_block_layout_and_output_shape():
    m = TabularModel([(4, 3), (5, 3)], 3, 2, [16, 8], rngs=nnx.Rngs(0))
    first, last = m.layers[0], m.layers[-1]
    assert first.lin_first and first.lin.bias is None and first.bn.num_features == 16
    assert first.bn.bias[...][0] == pytest.approx(1e-3)  # fastai's BatchNorm bias init
    assert last.bn is None and last.lin.bias is not None and not last.act
    assert m.bn_cont.bias[...][0] == 0.0  # the continuous BatchNorm is a plain BatchNorm1d
    bound = 1 / np.sqrt(3 + 3 + 3)
    assert np.abs(np.asarray(first.lin.kernel[...])).max() <= bound
    out = m(batch(), train=False)
    assert out.shape == (8, 2)


def test_v2a_variant_normalises_inputs_of_each_block():
    m = TabularModel([(4, 3)], 3, 1, [16], lin_first=False, rngs=nnx.Rngs(0))
    assert m.layers[0].bn.num_features == 6  # BatchNorm over the block's input
    assert m((batch(n_cat=1)), train=False).shape == (8, 1)


def test_y_range_bounds_outputs():
    m = TabularModel([(4, 3)], 3, 1, [8], y_range=(-1.0, 2.0), rngs=nnx.Rngs(0))
    x_cat, x_cont = batch(n=64, n_cat=1)
    out = np.asarray(m((x_cat, x_cont * 1000), train=False))
    assert (out >= -1.0).all() and (out <= 2.0).all()


def test_dropout_only_in_training_and_keyed_by_rngs():
    m = TabularModel([(4, 3), (5, 3)], 3, 2, [16, 8], ps=[0.5, 0.5], embed_p=0.5, rngs=nnx.Rngs(0))
    x = batch()
    m.eval()
    e1, e2 = m(x, train=False), m(x, train=False)
    np.testing.assert_array_equal(e1, e2)
    t1 = m(x, train=True, rngs=nnx.Rngs(dropout=1))
    t2 = m(x, train=True, rngs=nnx.Rngs(dropout=1))
    t3 = m(x, train=True, rngs=nnx.Rngs(dropout=2))
    np.testing.assert_allclose(t1, t2, rtol=1e-6)
    assert not np.allclose(t1, t3)


def test_batchnorm_statistics_update_only_in_training():
    m = TabularModel([(4, 3)], 3, 2, [8], rngs=nnx.Rngs(0))
    x = batch(n_cat=1)
    before = np.asarray(m.bn_cont.mean[...]).copy()
    m(x, train=False)
    np.testing.assert_array_equal(m.bn_cont.mean[...], before)
    m(x, train=True, rngs=nnx.Rngs(dropout=0))
    assert not np.allclose(m.bn_cont.mean[...], before)


def test_only_categorical_or_only_continuous_inputs():
    only_cat = TabularModel([(4, 3)], 0, 2, [8], rngs=nnx.Rngs(0))
    assert only_cat((batch(n_cat=1)[0], jnp.zeros((8, 0))), train=False).shape == (8, 2)
    only_cont = TabularModel([], 3, 2, [8], rngs=nnx.Rngs(0))
    assert only_cont((jnp.zeros((8, 0), jnp.int32), batch()[1]), train=False).shape == (8, 2)


def test_ps_length_and_config_checks():
    with pytest.raises(ValueError, match="ps has 1 dropout values for 2 layers"):
        TabularModel([(4, 3)], 3, 2, [8, 4], ps=[0.1], rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="unknown argument"):
        tabular_config(dropout=0.1)
    assert tabular_config(ps=0.1, embed_p=0.04) == {"ps": 0.1, "embed_p": 0.04}
