"""ULMFiT in mixed precision: from the same init, a bfloat16 LM and classifier (the lesson's gradual-unfreezing
chain) end within 1% of float32's validation loss; lr_find and predict work in bfloat16."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

from ulmfit_jax import AWD_LSTM, language_model_learner, text_classifier_learner
from ulmfit_jax.lstm import lstm_layer

from .tiny_text import clas_dls, lm_dls, tiny_vocab

TINY = dict(emb_sz=16, n_hid=32)


def _lm(tmp_path, bf16: bool):
    learn = language_model_learner(lm_dls(tiny_vocab()), AWD_LSTM, drop_mult=0.3, pretrained=False, config=TINY,
                                   path=tmp_path, progress=False, unroll=1)
    return learn.to_bf16() if bf16 else learn


def test_lm_bf16_matches_float32_and_generates(tmp_path):
    valid = {}
    for bf16 in (False, True):
        learn = _lm(tmp_path, bf16)
        learn.fit_one_cycle(2, 1e-2, moms=(0.8, 0.7))
        valid[bf16] = learn.validate()
    assert valid[True][0] == pytest.approx(valid[False][0], rel=0.01)
    assert learn.compute_dtype is jnp.bfloat16
    words = learn.predict("w1 w2 w3", 6, seed=0).split()
    assert words[:3] == ["w1", "w2", "w3"]
    learn.save_encoder("enc_bf16")  # float32 weights whatever the mode: loads into a float32 classifier
    clas = text_classifier_learner(clas_dls(tiny_vocab(), n=64), AWD_LSTM, seq_len=8, config=TINY, pretrained=False,
                                   path=tmp_path, progress=False, unroll=1)
    clas.load_encoder("enc_bf16")


def _chain(learn):
    learn.fit_one_cycle(1, 2e-2, moms=(0.8, 0.7))
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, slice(1e-2 / (2.6 ** 4), 1e-2), moms=(0.8, 0.7))
    learn.freeze_to(-3)
    learn.fit_one_cycle(1, slice(5e-3 / (2.6 ** 4), 5e-3), moms=(0.8, 0.7))
    learn.unfreeze()
    learn.fit_one_cycle(1, slice(1e-3 / (2.6 ** 4), 1e-3), moms=(0.8, 0.7))
    return learn.validate()


def test_classifier_gradual_unfreezing_lr_find_and_predict_in_bf16(tmp_path):
    valid = {}
    for bf16 in (False, True):
        learn = text_classifier_learner(clas_dls(tiny_vocab(), n=256), AWD_LSTM, drop_mult=0.5, seq_len=8,
                                        config=TINY, pretrained=False, path=tmp_path, progress=False, unroll=1)
        learn.freeze()
        if bf16:
            learn.to_bf16()
        valid[bf16] = _chain(learn)
    assert valid[True][0] == pytest.approx(valid[False][0], rel=0.01)
    suggestion = learn.lr_find(num_it=12, show_plot=False)
    assert suggestion.valley > 0
    label, idx, probs = learn.predict("w3 w4 w5 w6 w7 w8 w9 w10")
    assert probs.dtype.name == "float32" and probs.sum() == pytest.approx(1, abs=1e-5)


def _dots(hlo: str) -> list[tuple[str, str, int]]:
    """(lhs type, rhs type, FLOPs) of every dot in a compiled HLO text (fusion parameters and instructions)."""
    import re

    shapes = {n: (t, [int(d) for d in dims.split(",") if d])
              for n, t, dims in re.findall(r"%?([\w.\-]+)(?: = |: )(\w+)\[([\d,]*)\]", hlo)}
    out = []
    for dims, a, b, lc in re.findall(r"= \w+\[([\d,]*)\]\S* dot\(%([\w.\-]+), %([\w.\-]+)\), "
                                     r"lhs_contracting_dims=\{([\d,]*)\}", hlo):
        k = math.prod(shapes[a][1][int(i)] for i in lc.split(","))
        out.append((shapes[a][0], shapes[b][0], 2 * k * math.prod(int(d) for d in dims.split(",") if d)))
    return out


@pytest.mark.parametrize("kind", ["lm", "classifier"])
def test_bf16_train_step_runs_its_products_in_bf16(tmp_path, kind):
    """XLA:CPU compiles some spellings of a bf16 product to a float32 one (``a @ w.T.astype(bf16)``; a transposed
    weight gradient): the whole training step, backward included, must keep its dots in bfloat16. Only the
    classifier head's (Flax ``Linear``: ~1% of this tiny model's FLOPs, far less at real sizes) may stay float32."""
    if kind == "lm":
        learn = _lm(tmp_path, bf16=True)
    else:
        learn = text_classifier_learner(clas_dls(tiny_vocab(), n=64), AWD_LSTM, seq_len=8, config=TINY,
                                        pretrained=False, path=tmp_path, progress=False, unroll=1).to_bf16()
    learn.unfreeze()
    train = learn.dls.train
    batch = learn._shard(next(iter(train.batches(0))), train.bs)
    state = learn.state.replace(carry=learn._fresh_carry(train.bs)) if kind == "lm" else learn.state
    hlo = learn._jit("train").lower(state, batch, learn.rng).compile().as_text()
    dots = _dots(hlo)
    total = sum(f for *_, f in dots)
    in_f32 = sum(f for a, b, f in dots if (a, b) != ("bf16", "bf16"))
    assert len(dots) >= 10 and in_f32 <= (0 if kind == "lm" else 0.02) * total, (in_f32, total)
    assert _fusions_updating_through_a_convert(hlo) == []  # the classifier's chunk scan stacks bf16 residuals


def _fusions_updating_through_a_convert(hlo: str) -> list[str]:
    """Names of compiled computations whose ``dynamic-update-slice`` result is converted as a whole (the
    in-place update of a scan's stacked output turned into a pass over all of it)."""
    bad = []
    for comp in hlo.split("\n\n"):
        lines = comp.strip().splitlines()
        root = [ln for ln in lines if ln.lstrip().startswith("ROOT")]
        if root and "dynamic-update-slice(" in comp and " convert(" in root[0]:
            bad.append(lines[0].split(" ")[0])
    return bad


def test_lstm_bf16_backward_updates_its_stacked_gate_gradients_in_place():
    """The backward scan stacks bfloat16 gate gradients; XLA:CPU upcast a bfloat16 ``dynamic-update-slice`` to
    float32 and back around the whole (T, B, 4h) buffer at every step (O(T^2); 11% of an LM layer's fwd+bwd)."""
    k = jax.random.split(jax.random.key(0), 3)
    t, b, n_in, h = 12, 4, 8, 16
    x, w_ih, w_hh = (jax.random.normal(k[0], (t, b, n_in)), jax.random.normal(k[1], (n_in, 4 * h)) * 0.3,
                     jax.random.normal(k[2], (h, 4 * h)) * 0.3)
    bias, h0, c0 = jnp.zeros(4 * h), jnp.zeros((b, h)), jnp.zeros((b, h))
    grad = jax.jit(jax.grad(lambda *p: jnp.sum(lstm_layer(*p, h0, c0, 1, jnp.bfloat16)[0] ** 2), argnums=(0, 1, 3)))
    hlo = grad.lower(x, w_ih, bias, w_hh).compile().as_text()
    assert "dynamic-update-slice" in hlo
    assert _fusions_updating_through_a_convert(hlo) == []
