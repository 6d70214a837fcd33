"""Model shapes, fastai's init, y_range bounds, EmbeddingNN structure and the hybrid's fallback."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from collab_jax.metadata import HybridInput
from collab_jax.models import EmbeddingDotBias, EmbeddingNN, HybridDotBias, emb_sz_rule, trunc_normal_init

IDS = jnp.array([[1, 2], [3, 0], [0, 4], [2, 2]], jnp.int32)


def test_dot_shapes_and_init():
    m = EmbeddingDotBias(5, 10, 7, rngs=nnx.Rngs(0))
    assert m.u_weight.embedding.shape == (10, 5) and m.i_bias.embedding.shape == (7, 1)
    assert m(IDS).shape == (4,)
    w = np.asarray(EmbeddingDotBias(50, 2000, 2000, rngs=nnx.Rngs(1)).u_weight.embedding[...])
    assert abs(w.std() - 0.01) < 0.0015 and np.abs(w).max() < 0.02  # fmod(2) keeps values inside 2 sigma


def test_trunc_normal_is_fmod_not_clamp():
    x = np.asarray(trunc_normal_init(1.0)(jax.random.key(0), (200_000,)))
    assert np.abs(x).max() < 2 and np.mean(np.abs(x) > 1.99) < 3e-3  # clamping would pile 4.6% at +-2


def test_dot_matches_formula():
    m = EmbeddingDotBias(3, 5, 6, rngs=nnx.Rngs(0))
    u, i = np.asarray(m.u_weight.embedding[...]), np.asarray(m.i_weight.embedding[...])
    bu, bi = np.asarray(m.u_bias.embedding[...])[:, 0], np.asarray(m.i_bias.embedding[...])[:, 0]
    ids = np.asarray(IDS)
    want = (u[ids[:, 0]] * i[ids[:, 1]]).sum(1) + bu[ids[:, 0]] + bi[ids[:, 1]]
    np.testing.assert_allclose(np.asarray(m(IDS)), want, rtol=1e-5, atol=1e-7)
    m.y_range = (0.0, 5.5)
    np.testing.assert_allclose(np.asarray(m(IDS)), 5.5 / (1 + np.exp(-want)), rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda r: EmbeddingDotBias(4, 10, 10, y_range=(1.0, 5.0), rngs=r),
    lambda r: EmbeddingNN([(10, 4), (10, 3)], [8], y_range=(1.0, 5.0), rngs=r),
])
def test_y_range_bounds_hold_for_extreme_weights(make):
    m = make(nnx.Rngs(0))
    _, params, rest = nnx.split(m, nnx.Param, ...)
    big = jax.tree_util.tree_map(lambda p: p * 1e4, params)
    m = nnx.merge(nnx.graphdef(m), big, rest)
    ids = jnp.asarray(np.random.default_rng(0).integers(0, 10, (256, 2)), jnp.int32)
    out = np.asarray(m(ids, train=False))
    assert out.min() >= 1.0 and out.max() <= 5.0 and out.max() - out.min() > 3.0


def test_embedding_nn_structure_and_modes():
    m = EmbeddingNN([(10, 4), (12, 6)], [16, 8], ps=[0.5, 0.0], embed_p=0.1, rngs=nnx.Rngs(0))
    assert m.embeds[1].embedding.shape == (12, 6)
    first, last = m.layers[0], m.layers[-1]
    assert first.lin.kernel.shape == (10, 16) and first.lin.bias is None and first.bn is not None
    assert first.drop is not None and m.layers[1].drop is None
    assert last.bn is None and last.lin.bias is not None and last.lin.kernel.shape == (8, 1)
    np.testing.assert_allclose(np.asarray(first.bn.bias[...]), 1e-3)
    rngs = nnx.Rngs(dropout=0)
    assert m(IDS, train=True, rngs=rngs).shape == (4,)
    e1, e2 = m(IDS, train=False), m(IDS, train=False)
    np.testing.assert_array_equal(np.asarray(e1), np.asarray(e2))


def test_emb_sz_rule_matches_fastai():
    assert [emb_sz_rule(n) for n in (2, 944, 1651, 1654, 10_000_000)] == [2, 74, 101, 102, 600]


def test_embedding_nn_checks():
    with pytest.raises(ValueError, match="two embedding sizes"):
        EmbeddingNN([(10, 4)], [8], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="ps has 1"):
        EmbeddingNN([(10, 4), (10, 4)], [8, 8], ps=[0.1], rngs=nnx.Rngs(0))


def test_hybrid_with_zero_features_is_the_dot_model():
    h = HybridDotBias(4, 10, 10, 3, 2, y_range=(0, 5.5), rngs=nnx.Rngs(0))
    d = EmbeddingDotBias(4, 10, 10, y_range=(0, 5.5), rngs=nnx.Rngs(0))
    for name in ("u_weight", "i_weight", "u_bias", "i_bias"):
        getattr(d, name).embedding[...] = getattr(h, name).embedding[...]
    x = HybridInput(IDS, jnp.zeros((4, 3)), jnp.zeros((4, 2)))
    np.testing.assert_allclose(np.asarray(h(x)), np.asarray(d(IDS)), rtol=1e-6)
    assert d(x).shape == (4,)  # the plain models read HybridInput.ids


def test_hybrid_cold_rows_use_metadata_and_id_drop_only_in_training():
    h = HybridDotBias(4, 10, 10, 3, 2, id_drop=0.5, rngs=nnx.Rngs(0))
    h.u_meta_b[...] = jnp.array([1.0, 0.0, 0.0])
    cold = HybridInput(jnp.zeros((2, 2), jnp.int32), jnp.array([[1.0, 0, 0], [0, 0, 0]]), jnp.zeros((2, 2)))
    out = np.asarray(h(cold))
    assert out[0] - out[1] == pytest.approx(1.0, abs=1e-3)
    x = HybridInput(IDS, jnp.zeros((4, 3)), jnp.zeros((4, 2)))
    np.testing.assert_array_equal(np.asarray(h(x, train=False)), np.asarray(h(x, train=False)))
    a = np.asarray(h(x, train=True, rngs=nnx.Rngs(dropout=0)))
    b = np.asarray(h(x, train=True, rngs=nnx.Rngs(dropout=1)))
    assert not np.allclose(a, b)
    with pytest.raises(TypeError, match="HybridInput"):
        h(IDS)
    with pytest.raises(ValueError, match="id_drop"):
        HybridDotBias(4, 10, 10, 3, 2, id_drop=1.0, rngs=nnx.Rngs(0))


def test_l2_adds_per_occurrence_penalty_in_training_only():
    m = EmbeddingDotBias(3, 5, 6, y_range=(0, 5.5), l2=0.5, rngs=nnx.Rngs(0))
    out = m(IDS, train=True)
    ids = np.asarray(IDS)
    rows = [np.asarray(t.embedding[...])[ids[:, c]] for t, c in
            ((m.u_weight, 0), (m.i_weight, 1), (m.u_bias, 0), (m.i_bias, 1))]
    want = 0.5 * np.mean(sum((r**2).sum(1) for r in rows))
    assert float(out.aux_loss) == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(np.asarray(out.preds), np.asarray(m(IDS, train=False)))
    assert not hasattr(EmbeddingDotBias(3, 5, 6, rngs=nnx.Rngs(0))(IDS, train=True), "aux_loss")
