"""AWD-LSTM models: the hand-written LSTM backward pass, fastai's dropouts, parity with fastai, the classifier."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from learner_jax.steps import apply_model
from ulmfit_jax.lstm import lstm_scan, lstm_scan_reference
from ulmfit_jax.models import (
    AWD_LSTM,
    WeightDropLSTM,
    awd_lstm_clas_config,
    awd_lstm_lm_config,
    clas_splitter,
    dropout_mask,
    get_language_model,
    get_text_classifier,
    lm_splitter,
    locked_dropout,
    masked_concat_pool,
)
from ulmfit_jax.weights import from_fastai_state_dict

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "awd_lstm_parity.npz"
TINY = dict(emb_sz=16, n_hid=32)


@pytest.fixture(scope="module")
def parity():
    return np.load(FIXTURE)


def _sd(f, prefix):
    return {k[len(prefix):]: f[k] for k in f.files if k.startswith(prefix)}


@pytest.mark.parametrize("unroll", [1, 3])
def test_lstm_custom_backward_matches_autodiff(unroll):
    k = jax.random.split(jax.random.key(0), 4)
    t, b, h = 7, 3, 5
    xg = jax.random.normal(k[0], (t, b, 4 * h))
    w = jax.random.normal(k[1], (h, 4 * h)) * 0.3
    h0, c0 = jax.random.normal(k[2], (b, h)), jax.random.normal(k[3], (b, h))
    weights = jnp.sin(jnp.arange(t * b * h, dtype=jnp.float32)).reshape(t, b, h)

    def loss(fn):
        def f(xg, w, h0, c0):
            hs, (hT, cT) = fn(xg, w, h0, c0, unroll)
            return jnp.sum(hs * weights) + jnp.sum(hT * 2.3) + jnp.sum(cT ** 2)
        return f

    ours = jax.jit(jax.grad(loss(lstm_scan), argnums=(0, 1, 2, 3)))(xg, w, h0, c0)
    ref = jax.jit(jax.grad(loss(lstm_scan_reference), argnums=(0, 1, 2, 3)))(xg, w, h0, c0)
    for a, r in zip(ours, ref):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lstm_scan(xg, w, h0, c0, unroll)[0], lstm_scan_reference(xg, w, h0, c0)[0],
                               atol=1e-6)


def test_lm_logits_match_fastai(parity):
    """Same weights, dropout off: fastai's AWD_LSTM + LinearDecoder logits, hidden state carried across batches."""
    model = get_language_model(AWD_LSTM, 50, dict(TINY))
    from_fastai_state_dict(model, _sd(parity, "lm/"))
    out1 = model(jnp.asarray(parity["lm_x1"]), None)
    out2 = model(jnp.asarray(parity["lm_x2"]), out1.carry)
    np.testing.assert_allclose(out1.preds, parity["lm_logits1"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out2.preds, parity["lm_logits2"], atol=1e-4, rtol=0)
    assert float(out1.aux_loss) == 0.0


def test_classifier_logits_match_fastai(parity):
    """Chunked encoder over a pad_input_chunk batch longer than max_len, concat pooling, BatchNorm head."""
    model = get_text_classifier(AWD_LSTM, 50, 3, seq_len=5, max_len=15, lin_ftrs=[8], config=dict(TINY))
    from_fastai_state_dict(model, _sd(parity, "clas/"))
    out = model(jnp.asarray(parity["clas_x"]))
    np.testing.assert_allclose(out.preds, parity["clas_logits"], atol=1e-4, rtol=0)
    assert out.carry is None


def test_classifier_rows_are_independent_of_order(parity):
    """fastai needs length-sorted batches (real_bs); our masking gives each row the same result in any order."""
    model = get_text_classifier(AWD_LSTM, 50, 3, seq_len=5, max_len=15, lin_ftrs=[8], config=dict(TINY))
    from_fastai_state_dict(model, _sd(parity, "clas/"))
    x = parity["clas_x"]
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(model(jnp.asarray(x[perm])).preds, parity["clas_logits"][perm], atol=1e-5)


def test_lm_shapes_carry_and_aux_loss():
    model = get_language_model(AWD_LSTM, 50, dict(TINY))
    x = jnp.asarray(np.random.default_rng(0).integers(0, 50, (4, 9)), jnp.int32)
    train = jax.jit(lambda x, seed: model(x, None, train=True, rngs=nnx.Rngs(dropout=jax.random.key(seed))))
    out = train(x, 1)
    assert out.preds.shape == (4, 9, 50)
    assert [tuple(h.shape) for h, _ in out.carry] == [(4, 32), (4, 32), (4, 16)]
    assert float(out.aux_loss) > 0  # AR + TAR in training
    np.testing.assert_array_equal(out.preds, train(x, 1).preds)  # randomness only from the key
    assert not np.allclose(out.preds, train(x, 2).preds)
    ev = jax.jit(lambda x: model(x, None))
    np.testing.assert_array_equal(ev(x).preds, ev(x).preds)
    assert float(ev(x).aux_loss) == 0.0


def test_embedding_dropout_drops_whole_words():
    enc = AWD_LSTM(30, 8, 12, 2, embed_p=0.5, rngs=nnx.Rngs(params=0))
    tokens = jnp.asarray(np.tile(np.arange(2, 30), 4).reshape(4, -1).T, jnp.int32)  # every word 4 times
    masks = enc.sample_masks(jax.random.key(3), 4)
    ratio = np.asarray(enc.embed(tokens, masks.emb[tokens]) / enc.embed(tokens))
    for w in range(2, 30):  # 0 (dropped) or 2 (kept, 1/(1-p)) for every occurrence of a word
        r = ratio[np.asarray(tokens) == w]
        assert np.allclose(r, 0.0) or np.allclose(r, 2.0)
    assert 0 < np.mean(ratio == 0) < 1


def test_locked_dropout_mask_is_shared_over_time():
    x = jnp.ones((6, 3, 5))  # (T, B, F)
    y = np.asarray(locked_dropout(x, 0.5, jax.random.key(0)))
    assert np.all(y == y[:1])  # same mask at every time step
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert locked_dropout(x, 0.5, None) is x


def test_weight_drop_masks_the_raw_weights_once_per_forward():
    layer = WeightDropLSTM(4, 6, weight_p=0.5, rngs=nnx.Rngs(params=0))
    x = jax.random.normal(jax.random.key(1), (5, 2, 4))
    carry = (jnp.zeros((2, 6)), jnp.zeros((2, 6)))
    mask = dropout_mask(jax.random.key(7), (6, 24), 0.5)
    hs, _ = layer(x, carry, mask)
    xg = jnp.einsum("tbi,ig->tbg", x, layer.weight_ih[...]) + layer.bias_ih[...] + layer.bias_hh[...]
    expect, _ = lstm_scan_reference(xg, layer.weight_hh_raw[...] * mask, *carry)
    np.testing.assert_allclose(hs, expect, atol=1e-6)
    assert not np.allclose(hs, layer(x, carry)[0])
    enc = AWD_LSTM(30, 4, 6, 3, weight_p=0.5, rngs=nnx.Rngs(params=0))
    masks = enc.sample_masks(jax.random.key(0), 2)
    assert [m.shape for m in masks.w_hh] == [(6, 24), (6, 24), (4, 16)]
    assert set(np.unique(np.asarray(masks.w_hh[0]))) == {0.0, 2.0}


@pytest.mark.parametrize("all_pad_first_chunk", [False, True])
def test_classifier_training_scan_equals_fastais_chunk_loop(all_pad_first_chunk):
    """With dropout on, the chunk scan (prefix forward-only, all-pad chunks skipped) equals fastai's
    chunk-by-chunk loop with the same masks."""
    model = get_text_classifier(AWD_LSTM, 40, 2, seq_len=4, max_len=8, config=dict(TINY))
    enc = model.encoder
    rng = np.random.default_rng(0)
    x = rng.integers(2, 40, (3, 18)).astype(np.int32)
    x[1, :8] = 1  # a shorter document: two whole pad chunks in front
    x[2, :12], x[2, -1] = 1, 1
    if all_pad_first_chunk:  # every row starts with a whole pad chunk: the scan skips it
        x[:, :4] = 1
    key = jax.random.key(5)
    out, mask = jax.jit(lambda t, k: enc(t, k))(jnp.asarray(x), key)
    run_chunk = jax.jit(lambda c, ch, m: enc._chunk(c, ch, m))
    k_chunks, k_w = jax.random.split(key)
    masks = jax.vmap(lambda k: enc.module.sample_masks(k, 3, weights=False))(jax.random.split(k_chunks, 5))
    masks = masks._replace(w_hh=enc.module.sample_masks(k_w, 3).w_hh)
    carry, outs = enc.module.init_carry(3), []
    for c in range(5):  # fastai's loop: chunk after chunk, hidden state carried
        chunk = jnp.asarray(np.pad(x, ((0, 0), (0, 2)), constant_values=1)[:, 4 * c:4 * c + 4].T)
        chunk_masks = masks._replace(**{f: jax.tree.map(lambda a, c=c: a[c], getattr(masks, f))
                                        for f in ("emb", "inp", "hid")})
        carry, o = run_chunk(carry, chunk, chunk_masks)
        outs.append(o)
    expect = jnp.concatenate(outs[3:])[:6]  # chunks 3, 4 are kept (18 - 12 <= 8), 6 real positions
    np.testing.assert_allclose(out, expect, atol=1e-5)
    assert mask.shape == (3, 6)


def test_masked_concat_pool_last_max_mean():
    out = jnp.asarray(np.arange(2 * 4 * 1, dtype=np.float32).reshape(2, 4, 1))  # (B, T, F)
    mask = jnp.asarray([[True, False, False, True], [False, False, False, False]])
    pooled = np.asarray(masked_concat_pool(out.transpose(1, 0, 2), mask))
    np.testing.assert_allclose(pooled[0], [2.0, 2.0, 1.5])  # last real token is at t=2, not the pad at t=3
    np.testing.assert_allclose(pooled[1], [7.0, 7.0, 5.5])


def test_classifier_keeps_only_the_last_max_len_tokens_for_pooling():
    model = get_text_classifier(AWD_LSTM, 40, 2, seq_len=4, max_len=8, config=dict(TINY))
    x = np.random.default_rng(0).integers(2, 40, (2, 21)).astype(np.int32)
    out, mask = model.encoder(jnp.asarray(x))
    # chunks start at 0, 4, ..., 20; fastai keeps chunk i when 21 - i <= 8: i = 16, 20
    assert out.shape == (5, 2, 16) and mask.shape == (2, 5)
    g, p, rest = nnx.split(model, nnx.Param, ...)
    emb_grad = jax.grad(lambda pp: nnx.merge(g, pp, rest).encoder(jnp.asarray(x))[0].sum())(p)
    rows = np.abs(np.asarray(nnx.to_pure_dict(emb_grad)["encoder"]["module"]["embedding"])).sum(1)
    early_only = set(x[:, :16].ravel()) - set(x[:, 16:].ravel())
    assert early_only and all(rows[t] == 0 for t in early_only)  # no gradient reaches dropped chunks


def test_bucketed_batches_give_fastais_exact_width_results():
    """The loader's bucket widths (extra pad chunks in front) change nothing: every row's logits equal those of
    fastai's exact-width pad_input_chunk batch, for texts shorter and longer than max_len, mixed in a batch."""
    from ulmfit_jax.text_loaders import SortedDL

    model = get_text_classifier(AWD_LSTM, 40, 3, seq_len=4, max_len=12, lin_ftrs=[8], config=dict(TINY))
    rng = np.random.default_rng(0)
    lens = np.array([23, 22, 19, 18, 9, 7, 6, 5, 30, 13, 11, 2])
    ids = rng.integers(2, 40, int(lens.sum())).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    kw = dict(bs=4, seq_len=4)
    for (xb, yb, _), (xe, ye, _) in zip(SortedDL(ids, offsets, None, np.arange(12), **kw).batches(0),
                                        SortedDL(ids, offsets, None, np.arange(12), buckets=False, **kw).batches(0)):
        np.testing.assert_array_equal(yb, ye)
        assert xb.shape[1] >= xe.shape[1]
        np.testing.assert_allclose(model(jnp.asarray(xb)).preds, model(jnp.asarray(xe)).preds, atol=1e-5, rtol=0)
    # training loaders of max_len-cut documents pad every batch to one width: the same logits again
    no_drop = get_text_classifier(AWD_LSTM, 40, 3, seq_len=4, max_len=12, lin_ftrs=[8], config=dict(TINY),
                                  drop_mult=0.0)
    cut = dict(max_len=12, shuffle=True, seed=3, **kw)
    for (xo, yo, _), (xe, ye, _) in zip(SortedDL(ids, offsets, None, np.arange(12), **cut).batches(0),
                                        SortedDL(ids, offsets, None, np.arange(12), buckets=False, **cut).batches(0)):
        np.testing.assert_array_equal(yo, ye)
        assert xo.shape[1] == 12
        np.testing.assert_allclose(model(jnp.asarray(xo)).preds, model(jnp.asarray(xe)).preds, atol=1e-5, rtol=0)
        # and AR/TAR in training (dropout off) run over fastai's exact width, not the padded one
        wide, exact = (no_drop(jnp.asarray(b), train=True, rngs=nnx.Rngs(dropout=0)) for b in (xo, xe))
        assert float(exact.aux_loss) > 0
        np.testing.assert_allclose(float(wide.aux_loss), float(exact.aux_loss), rtol=1e-5)


def test_regression_head_y_range():
    model = get_text_classifier(AWD_LSTM, 40, 1, seq_len=4, config=dict(TINY), y_range=(0.0, 5.0))
    preds = np.asarray(model(jnp.asarray(np.full((3, 10), 7, np.int32))).preds)
    assert preds.shape == (3, 1) and np.all((preds > 0) & (preds < 5))


def test_configs_drop_mult_and_bad_input():
    assert awd_lstm_lm_config["n_hid"] == 1152 and awd_lstm_clas_config["output_p"] == 0.4
    lm = get_language_model(AWD_LSTM, 50, dict(TINY), drop_mult=0.3)
    assert lm.decoder.output_p == pytest.approx(0.03) and lm.encoder.input_p == pytest.approx(0.075)
    assert lm.encoder.rnns[0].weight_p == pytest.approx(0.06) and lm.encoder.embed_p == pytest.approx(0.006)
    clas = get_text_classifier(AWD_LSTM, 50, 2, config=dict(TINY), drop_mult=0.5)
    assert clas.head.layers[0].p == pytest.approx(0.2) and clas.head.layers[1].p == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown AWD_LSTM config keys"):
        get_language_model(AWD_LSTM, 50, dict(emb_size=3))
    with pytest.raises(ValueError, match="bidir"):
        get_language_model(AWD_LSTM, 50, dict(TINY, bidir=True))
    with pytest.raises(ValueError, match="only AWD_LSTM"):
        get_language_model(object, 50)
    with pytest.raises(ValueError, match="dropout values"):
        get_text_classifier(AWD_LSTM, 50, 2, config=dict(TINY), lin_ftrs=[10, 5], ps=[0.1])


def test_layer_groups_follow_fastai():
    split = lm_splitter(3)
    assert split(("encoder", "rnns", 0, "weight_ih")) == 0 and split(("encoder", "rnns", 2, "bias_hh")) == 2
    assert split(("encoder", "embedding")) == 3 and split(("decoder", "bias")) == 3
    split = clas_splitter(3)
    assert split(("encoder", "module", "embedding")) == 0
    assert split(("encoder", "module", "rnns", 1, "weight_hh_raw")) == 2
    assert split(("head", "layers", 0, "bn", "scale")) == 4


def test_lstm_layer_gradient_includes_input_projection_and_bias():
    from ulmfit_jax.lstm import lstm_layer

    k = jax.random.split(jax.random.key(1), 6)
    t, b, n_in, h = 6, 3, 4, 5
    args = (jax.random.normal(k[0], (t, b, n_in)), jax.random.normal(k[1], (n_in, 4 * h)) * 0.4,
            jax.random.normal(k[2], (4 * h,)), jax.random.normal(k[3], (h, 4 * h)) * 0.3,
            jax.random.normal(k[4], (b, h)), jax.random.normal(k[5], (b, h)))
    weights = jnp.cos(jnp.arange(t * b * h, dtype=jnp.float32)).reshape(t, b, h)

    def loss(fn):
        return lambda *a: (lambda o: jnp.sum(o[0] * weights) + jnp.sum(o[1][1] ** 2))(fn(*a))

    def ref(x, w_ih, bias, w_hh, h0, c0):
        return lstm_scan_reference(jnp.einsum("tbi,ig->tbg", x, w_ih) + bias, w_hh, h0, c0)

    ours = jax.jit(jax.grad(loss(lambda *a: lstm_layer(*a, 2)), argnums=tuple(range(6))))(*args)
    expect = jax.jit(jax.grad(loss(ref), argnums=tuple(range(6))))(*args)
    for a, r in zip(ours, expect):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


def test_lstm_layer_bf16_gradients_track_float32():
    """In bf16 the weight gradients are products of explicitly transposed copies (XLA's native bf16 dot); every
    gradient stays within bf16 rounding of the float32 autodiff one (relative error of the whole array)."""
    from ulmfit_jax.lstm import lstm_layer

    k = jax.random.split(jax.random.key(3), 7)
    t, b, n_in, h = 8, 4, 12, 16
    args = (jax.random.normal(k[0], (t, b, n_in)), jax.random.normal(k[1], (n_in, 4 * h)) * 0.3,
            jax.random.normal(k[2], (4 * h,)) * 0.1, jax.random.normal(k[3], (h, 4 * h)) * 0.2,
            jax.random.normal(k[4], (b, h)), jax.random.normal(k[5], (b, h)))
    weights = jax.random.normal(k[6], (t, b, h))

    def loss(dtype):
        return lambda *a: (lambda o: jnp.sum(o[0] * weights) + jnp.sum(o[1][1] ** 2))(lstm_layer(*a, 2, dtype))

    bf16 = jax.jit(jax.grad(loss(jnp.bfloat16), argnums=tuple(range(6))))(*args)
    fp32 = jax.jit(jax.grad(loss(None), argnums=tuple(range(6))))(*args)
    for a, r in zip(bf16, fp32):
        assert a.dtype == jnp.float32 and a.shape == r.shape
        assert float(jnp.linalg.norm(a - r) / jnp.linalg.norm(r)) < 2e-2


def test_lm_head_gradients_match_autodiff():
    import optax

    from learner_jax.losses import CrossEntropyLossFlat
    from ulmfit_jax.lm_head import LMCrossEntropyLossFlat, vocab_projection

    k = jax.random.split(jax.random.key(2), 4)
    x, w = jax.random.normal(k[0], (10, 6)), jax.random.normal(k[1], (13, 6))
    bias, y = jax.random.normal(k[2], (13,)), jax.random.randint(k[3], (10,), 0, 13)
    rows = jnp.arange(10, dtype=jnp.float32)

    def ours(x, w, bias):
        return jnp.sum(LMCrossEntropyLossFlat()(vocab_projection(x, w, bias), y) * rows)

    def plain(x, w, bias):
        return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(x @ w.T + bias, y) * rows)

    np.testing.assert_allclose(ours(x, w, bias), plain(x, w, bias), rtol=1e-6)
    for a, r in zip(jax.grad(ours, argnums=(0, 1, 2))(x, w, bias), jax.grad(plain, argnums=(0, 1, 2))(x, w, bias)):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)
    logits = x @ w.T
    np.testing.assert_allclose(LMCrossEntropyLossFlat()(logits, y), CrossEntropyLossFlat()(logits, y), rtol=1e-6)


def test_lm_accuracy_equals_argmax_accuracy():
    from learner_jax.metrics import accuracy
    from ulmfit_jax.lm_head import lm_accuracy

    k = jax.random.split(jax.random.key(3), 2)
    preds = jax.random.normal(k[0], (3, 7, 11))
    y = jax.random.randint(k[1], (3, 7), 0, 11).at[0, :3].set(jnp.argmax(preds[0, :3], -1))
    w = jnp.asarray([1.0, 1.0, 0.0])
    ours, ref = lm_accuracy.stats(preds, y, w, 0.0, 0.0), accuracy.stats(preds, y, w, 0.0, 0.0)
    assert lm_accuracy.value(ours) == pytest.approx(accuracy.value(ref)) and lm_accuracy.value(ours) > 0


def test_vocab_projection_row_blocks_equal_one_matmul():
    from ulmfit_jax.lm_head import vocab_projection

    k = jax.random.split(jax.random.key(4), 3)
    x, w, b = jax.random.normal(k[0], (1024, 8)), jax.random.normal(k[1], (40, 8)), jax.random.normal(k[2], (40,))
    np.testing.assert_allclose(jax.jit(vocab_projection)(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda x, w, b: jnp.sum(jnp.sin(vocab_projection(x, w, b))), argnums=(0, 1, 2))(x, w, b)
    r = jax.grad(lambda x, w, b: jnp.sum(jnp.sin(x @ w.T + b)), argnums=(0, 1, 2))(x, w, b)
    for a, e in zip(g, r):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)


def test_frozen_groups_skip_only_gradients_nobody_needs():
    """Told the learner's frozen groups (embedding, rnn 0..2, head), the classifier's backward (one program for
    every stage) leaves the frozen layers at zero gradient and every other gradient as full autodiff."""
    model = get_text_classifier(AWD_LSTM, 40, 2, seq_len=4, config=dict(TINY), drop_mult=0.5)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)
    x = jnp.asarray(np.random.default_rng(1).integers(2, 40, (3, 11)).astype(np.int32))

    def loss(p, fr):
        out, _ = apply_model(graphdef, p, rest, x, None, jax.random.key(3), True, False, fr)
        return out.preds.sum() + out.aux_loss

    full = dict(jax.tree_util.tree_leaves_with_path(jax.jit(jax.grad(loss))(params, None)))
    gated = jax.jit(jax.grad(loss))
    split = clas_splitter(3)
    for n_frozen in (4, 3, 2, 0):
        grads = gated(params, jnp.asarray(np.arange(5) < n_frozen, jnp.float32))
        for path, g in jax.tree_util.tree_leaves_with_path(grads):
            # freeze_to keeps a suffix of groups trainable: a frozen group never has a trainable one below it
            if split(tuple(getattr(k, "key", getattr(k, "idx", None)) for k in path)) >= n_frozen:
                np.testing.assert_allclose(g, full[path], rtol=1e-4, atol=1e-5, err_msg=f"{n_frozen} {path}")
            else:
                assert not np.any(np.asarray(g)), (n_frozen, path)
    assert gated._cache_size() == 1
