"""ULMFiT learners on tiny synthetic data: LM training and generation, pretrained loading and freezing,
encoder transfer, the lesson's gradual-unfreezing recipe, regression, the forward+backward ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optax
import pytest

from ulmfit_jax import AWD_LSTM, language_model_learner, text_classifier_learner
from ulmfit_jax.learner import bidir_preds
from ulmfit_jax.weights import WeightsMismatchError, load_vocab

from .tiny_text import clas_dls, lm_dls, tiny_vocab

FIX = Path(__file__).resolve().parents[1] / "fixtures"
TINY = dict(emb_sz=16, n_hid=32)


def _leaf(learn, *path):
    tree = learn.params
    for k in path:
        tree = tree[k]
    return np.asarray(tree).copy()


@pytest.fixture(scope="module")
def lm_learner(tmp_path_factory):
    """A tiny LM trained briefly (shared by the generation and encoder tests)."""
    vocab = tiny_vocab()
    learn = language_model_learner(lm_dls(vocab), AWD_LSTM, drop_mult=0.3, pretrained=False, config=TINY,
                                   path=tmp_path_factory.mktemp("lm"), progress=False, unroll=1)
    learn.fit_one_cycle(2, 1e-2, moms=(0.8, 0.7))
    return learn


def test_lm_learner_trains_with_fastai_defaults(lm_learner):
    learn = lm_learner
    assert learn.n_groups == 4 and learn.moms == (0.8, 0.7, 0.8)
    assert learn.recorder.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "perplexity", "time"]
    (l0, *_), (l1, v1, acc, ppl) = learn.recorder.values[0], learn.recorder.values[-1]
    assert l1 < l0 and acc > 0.3  # a learnable stream: far above chance (1/37)
    assert ppl == pytest.approx(np.exp(v1), rel=1e-5)


def test_predict_is_stateful_generation_with_fastai_rules(lm_learner):
    learn = lm_learner
    text = learn.predict("w1 w2 w3", 12, temperature=0.75)
    words = text.split()
    assert words[:3] == ["w1", "w2", "w3"] and len(words) <= 3 + 12
    assert learn.predict("w1 w2", 5, seed=3) == learn.predict("w1 w2", 5, seed=3)
    wild = learn.predict("w1", 60, temperature=20.0, no_unk=True, seed=0)  # nearly uniform sampling
    assert not any(w.startswith(("xxunk", "xxpad", "xxbos", "xxfake", "xxeos", "xxfld")) for w in wild.split())
    with pytest.warns(UserWarning, match="no item with probability"):
        learn.predict("w1", 2, min_p=0.999)
    with pytest.raises(ValueError, match="non-empty"):
        learn.predict("   ", 5)
    with pytest.raises(ValueError, match="n_words"):
        learn.predict("w1", 0)


def test_pretrained_fnames_load_match_vocab_and_freeze(tmp_path):
    vocab = load_vocab(FIX / "itos_tiny.pkl") + ["brand-new"] * 6
    dls = lm_dls(vocab)
    learn = language_model_learner(dls, AWD_LSTM, pretrained_fnames=(FIX / "awd_lstm_tiny.pth", FIX / "itos_tiny.pkl"),
                                   config=TINY, path=tmp_path, progress=False, unroll=1)
    assert learn.n_frozen == 3  # freeze(): only the embedding/decoder group trains
    f = np.load(FIX / "awd_lstm_parity.npz")
    np.testing.assert_array_equal(_leaf(learn, "encoder", "embedding")[:50], f["lm/0.encoder.weight"])
    trainable = {learn.param_paths[i] for i in learn.spec.trainable}
    assert trainable == {("encoder", "embedding"), ("decoder", "bias")}
    with pytest.raises(WeightsMismatchError, match=r"n_hid=24 \(the weights have 32\)"):
        language_model_learner(dls, AWD_LSTM, pretrained_fnames=(FIX / "awd_lstm_tiny.pth", FIX / "itos_tiny.pkl"),
                               config=dict(emb_sz=16, n_hid=24), path=tmp_path, progress=False)
    by_weights = language_model_learner(dls, AWD_LSTM, pretrained_fnames=(FIX / "awd_lstm_tiny.pth",
                                                                          FIX / "itos_tiny.pkl"),
                                        config=None, path=tmp_path, progress=False, unroll=1)  # sizes read off
    np.testing.assert_array_equal(_leaf(by_weights, "encoder", "embedding"), _leaf(learn, "encoder", "embedding"))
    with pytest.raises(FileNotFoundError):
        language_model_learner(dls, AWD_LSTM, pretrained_fnames=("nope", "nope"), config=TINY, path=tmp_path)


def test_lesson_recipe_encoder_transfer_and_gradual_unfreezing(lm_learner):
    vocab = tiny_vocab()
    lm_learner.save_encoder("fine_tuned_enc")
    learn = text_classifier_learner(clas_dls(vocab, n=256), AWD_LSTM, drop_mult=0.5, seq_len=8, config=TINY,
                                    pretrained=False, path=lm_learner.path, progress=False, unroll=1)
    assert learn.n_groups == 5
    learn.load_encoder("fine_tuned_enc")
    assert learn.n_frozen == 4
    np.testing.assert_array_equal(_leaf(learn, "encoder", "module", "embedding"),
                                  _leaf(lm_learner, "encoder", "embedding"))
    learn.fit_one_cycle(1, 2e-2, moms=(0.8, 0.7))
    # one program for every stage, and the frozen encoder's backward skipped: its Adam moments never moved
    mu = optax.tree_utils.tree_get(learn.state.opt_state, "mu")
    assert learn.spec.frozen_to_model and len(mu) == len(learn.groups)
    assert not any(np.any(np.asarray(m)) for m, g in zip(mu, learn.groups) if g < 4)
    assert all(np.any(np.asarray(m)) for m, g in zip(mu, learn.groups) if g == 4)
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, slice(1e-2 / (2.6 ** 4), 1e-2), moms=(0.8, 0.7))
    mu = optax.tree_utils.tree_get(learn.state.opt_state, "mu")
    assert [bool(np.any(np.asarray(m))) for m in mu] == [g >= 3 for g in learn.groups]
    learn.freeze_to(-3)
    learn.fit_one_cycle(1, slice(5e-3 / (2.6 ** 4), 5e-3), moms=(0.8, 0.7))
    learn.unfreeze()
    learn.fit_one_cycle(2, slice(1e-3 / (2.6 ** 4), 1e-3), moms=(0.8, 0.7))
    assert learn.validate()[1] > 0.9  # in-order runs of the LM's "language" vs random words
    label, idx, probs = learn.predict("w3 w4 w5 w6 w7 w8 w9 w10")
    assert (label, idx) == ("ordered", 1) and probs.shape == (2,) and probs.sum() == pytest.approx(1, abs=1e-5)

    other = text_classifier_learner(clas_dls(tiny_vocab(45)), AWD_LSTM, config=TINY, seq_len=8, pretrained=False,
                                    path=lm_learner.path, progress=False)
    with pytest.raises(WeightsMismatchError, match="vocabulary of 48 tokens but this model has 56"):
        other.load_encoder("fine_tuned_enc")


def test_regression_and_bidirectional_ensemble(tmp_path):
    vocab = tiny_vocab()
    reg = text_classifier_learner(clas_dls(vocab, regression=True), AWD_LSTM, config=TINY, seq_len=8,
                                  y_range=(0.0, 3.0), pretrained=False, path=tmp_path, progress=False, unroll=1)
    assert type(reg.loss_func).__name__ == "MSELossFlat" and reg.metrics == []
    preds, targs = reg.get_preds()
    assert preds.shape == (len(targs), 1) and np.all((preds > 0) & (preds < 3))

    fwd = text_classifier_learner(clas_dls(vocab), AWD_LSTM, config=TINY, seq_len=8, pretrained=False,
                                  path=tmp_path, progress=False)
    bwd = text_classifier_learner(clas_dls(vocab, backwards=True), AWD_LSTM, config=TINY, seq_len=8,
                                  pretrained=False, backwards=True, path=tmp_path, progress=False, unroll=1)
    probs, targs = bidir_preds(fwd, bwd)
    p_f, _ = fwd.get_preds()
    p_b, _ = bwd.get_preds()
    np.testing.assert_allclose(probs, (p_f + p_b) / 2, rtol=1e-6)
    assert probs.shape == (len(targs), 2)


def test_sampling_never_emits_banned_tokens_and_applies_min_p():
    import jax
    import jax.numpy as jnp

    from ulmfit_jax.generation import banned_tokens, sample_token

    vocab = tiny_vocab()
    banned = banned_tokens(vocab, no_unk=True)
    assert banned[[0, 1, 2, 3, 4]].all() and not banned[[5, 6, 7, 8, 9]].any() and banned[-1]  # xxfake
    logits = jnp.zeros(len(vocab)).at[jnp.asarray([0, 1, 2, len(vocab) - 1])].set(10.0)  # banned ones favoured
    draws = jax.vmap(lambda k: sample_token(logits, k, jnp.asarray(banned), jnp.float32(1.0), jnp.float32(0.0))[0])(
        jax.random.split(jax.random.key(0), 200))
    assert not np.asarray(banned)[np.asarray(draws)].any()
    peaked = jnp.zeros(len(vocab)).at[12].set(6.0)
    tok, ignored = sample_token(peaked, jax.random.key(1), jnp.asarray(banned), jnp.float32(1.0), jnp.float32(0.5))
    assert int(tok) == 12 and not bool(ignored)  # min_p keeps only the dominant word
