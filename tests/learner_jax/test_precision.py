"""Mixed precision (``to_bf16``/``to_fp32``): bfloat16 matmul inputs with float32 accumulation on every learner;
float32 weights, optimizer state and BatchNorm statistics; quality next to float32 from the same init; one
compile per dtype; checkpoints shared by both modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from learner_jax.precision import (
    as_compute_dtype,
    bf16_is_native,
    compute_dtype_of,
    einsum,
    matmul,
    matmul_t,
    resolve_precision,
    set_compute_dtype,
)
from ulmfit_jax.lm_head import vocab_projection
from ulmfit_jax.lstm import lstm_layer, lstm_scan_reference

from .tiny import MLP, toy_learner


def _dtypes(tree) -> set:
    return {str(a.dtype) for a in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)}


def test_compute_dtype_names_and_refusals():
    assert as_compute_dtype("bf16") is jnp.bfloat16 and as_compute_dtype("float32") is None
    assert as_compute_dtype(jnp.float32) is None and as_compute_dtype(None) is None
    with pytest.raises(ValueError, match="float16"):
        as_compute_dtype(jnp.float16)
    with pytest.raises(ValueError, match="unknown compute dtype 'half'"):
        as_compute_dtype("half")


def test_bf16_is_native_reads_the_hardware():
    from types import SimpleNamespace

    cpu = jax.devices("cpu")[0]
    assert bf16_is_native(cpu, "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx2\n")
    assert bf16_is_native(cpu, "flags : fpu amx_tile amx_bf16\n")
    assert not bf16_is_native(cpu, "flags : fpu sse avx2 avx512f avx512_vnni\n")  # emulated there: float32 wins
    assert not bf16_is_native(cpu, "model name : avx512_bf16 in a name is not a flag\n")
    assert not bf16_is_native(cpu, "")
    assert bf16_is_native(SimpleNamespace(platform="tpu"))
    assert bf16_is_native(SimpleNamespace(platform="gpu", compute_capability="8.0"))
    assert not bf16_is_native(SimpleNamespace(platform="gpu", compute_capability="7.0"))  # V100: no bf16 units


def test_resolve_precision_names_and_auto():
    assert resolve_precision("float32") == resolve_precision("fp32") == "float32"
    assert resolve_precision("bf16") == resolve_precision("BFloat16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if bf16_is_native() else "float32")
    from types import SimpleNamespace

    assert resolve_precision("auto", SimpleNamespace(platform="tpu")) == "bf16"
    assert resolve_precision("auto", SimpleNamespace(platform="gpu", compute_capability="7.5")) == "float32"
    with pytest.raises(ValueError, match="'float16'.*auto"):
        resolve_precision("float16")


def test_matmul_rounds_inputs_and_accumulates_in_float32():
    a = jnp.full((1, 512), 1.0 + 2.0**-10, jnp.float32)  # not a bfloat16 number: rounds to 1.0
    b = jnp.ones((512, 1), jnp.float32)
    out = matmul(a, b, jnp.bfloat16)
    assert out.dtype == jnp.float32 and float(out[0, 0]) == 512.0  # rounded inputs, exact float32 sum
    assert float(matmul(a, b)[0, 0]) == pytest.approx(512 * (1 + 2.0**-10))
    assert einsum("ij,jk->ik", a, b, jnp.bfloat16).dtype == jnp.float32
    out_t = matmul_t(a, b.T, jnp.bfloat16)  # a @ (b.T).T, contracting both last axes
    assert out_t.dtype == jnp.float32 and float(out_t[0, 0]) == 512.0
    assert float(matmul_t(a, b.T)[0, 0]) == pytest.approx(512 * (1 + 2.0**-10))


def test_set_compute_dtype_marks_flax_layers_and_reads_back():
    model = MLP(nnx.Rngs(0))
    assert compute_dtype_of(model) is None
    set_compute_dtype(model, "bf16")
    assert model.l1.dtype is jnp.bfloat16 and model.l1.preferred_element_type is jnp.float32
    assert compute_dtype_of(model) is jnp.bfloat16
    y = model(jnp.ones((4, 5)), train=False, rngs=None)
    assert y.dtype == jnp.float32
    assert compute_dtype_of(set_compute_dtype(model, None)) is None


def _lstm_inputs(t=7, b=4, n_in=6, h=8):
    k = jax.random.split(jax.random.key(0), 4)
    return (jax.random.normal(k[0], (t, b, n_in)), jax.random.normal(k[1], (n_in, 4 * h)) * 0.3,
            jax.random.normal(k[2], (4 * h,)) * 0.1, jax.random.normal(k[3], (h, 4 * h)) * 0.3,
            jnp.zeros((b, h)), jnp.zeros((b, h)))


@pytest.mark.parametrize("hand_written", [True, False])
def test_lstm_layer_bf16_backward_matches_autodiff_and_float32(hand_written):
    x, w_ih, bias, w_hh, h0, c0 = _lstm_inputs()

    def loss(dtype):
        def f(x, w_ih, bias, w_hh):
            if hand_written:
                hs, (_, ct) = lstm_layer(x, w_ih, bias, w_hh, h0, c0, 1, dtype)
            else:
                hs, (_, ct) = lstm_scan_reference(einsum("tbi,ig->tbg", x, w_ih, dtype) + bias, w_hh, h0, c0, 1,
                                                  dtype)
            return jnp.sum(hs**2) + jnp.sum(ct)
        return jax.value_and_grad(f, argnums=(0, 1, 2, 3))(x, w_ih, bias, w_hh)

    v32, g32 = loss(None)
    v16, g16 = loss(jnp.bfloat16)
    assert float(v16) == pytest.approx(float(v32), rel=1e-2)
    for a, b in zip(g32, g16):
        assert b.dtype == jnp.float32
        assert float(jnp.abs(a - b).max()) < 2e-2 * float(jnp.abs(a).max())
    if hand_written:  # the hand-written bf16 backward against JAX's own differentiation of the bf16 forward
        ref = jax.grad(lambda *p: jnp.sum(lstm_scan_reference(einsum("tbi,ig->tbg", p[0], p[1], jnp.bfloat16)
                                                              + p[2], p[3], h0, c0, 1, jnp.bfloat16)[0] ** 2),
                       argnums=(0, 1, 2, 3))(x, w_ih, bias, w_hh)
        mine = jax.grad(lambda *p: jnp.sum(lstm_layer(*p, h0, c0, 1, jnp.bfloat16)[0] ** 2),
                        argnums=(0, 1, 2, 3))(x, w_ih, bias, w_hh)
        for a, b in zip(ref, mine):
            assert float(jnp.abs(a - b).max()) < 2e-2 * float(jnp.abs(a).max())


def test_vocab_projection_bf16_close_to_float32_with_float32_outputs():
    k = jax.random.split(jax.random.key(1), 3)
    x, w, b = jax.random.normal(k[0], (24, 16)), jax.random.normal(k[1], (40, 16)) * 0.1, jnp.zeros(40)

    def f(dtype):
        return jax.value_and_grad(lambda *p: jnp.sum(jnp.sin(vocab_projection(*p, dtype))), argnums=(0, 1, 2))(x, w, b)

    (v32, g32), (v16, g16) = f(None), f(jnp.bfloat16)
    assert float(v16) == pytest.approx(float(v32), rel=2e-2, abs=2e-2)
    for a, c in zip(g32, g16):
        assert c.dtype == jnp.float32 and float(jnp.abs(a - c).max()) < 2e-2 * float(jnp.abs(a).max()) + 1e-6


def test_learner_to_bf16_keeps_float32_state_compiles_once_per_dtype(tmp_path):
    learn = toy_learner(path=tmp_path)
    learn.fit_one_cycle(1, 1e-2)
    traces = dict(learn.n_traces)
    assert learn.to_bf16() is learn and learn.compute_dtype is jnp.bfloat16
    learn.fit_one_cycle(1, 1e-2)
    assert learn.n_traces["train"] == traces["train"] + 1  # one recompile for the new dtype
    learn.fit_one_cycle(1, 3e-3)  # a new learning rate: nothing recompiles
    assert learn.n_traces["train"] == traces["train"] + 1
    state = learn.state
    assert _dtypes(state.params) == {"float32"} and _dtypes(state.opt_state) == {"float32"}
    assert _dtypes(state.model_state) == {"float32"}  # BatchNorm statistics
    learn.save("bf16")
    learn.to_fp32()
    assert learn.compute_dtype is None
    learn.fit_one_cycle(1, 1e-2)
    assert learn.n_traces["train"] == traces["train"] + 1  # the float32 program is reused
    other = toy_learner(path=tmp_path).to_bf16()
    other.load("bf16")  # a checkpoint written in one mode loads in the other
    np.testing.assert_array_equal(np.asarray(other.params["l1"]["kernel"]),
                                  np.asarray(jax.device_get(state.params["l1"]["kernel"])))


def test_learner_bf16_quality_matches_float32_from_the_same_init():
    losses = {}
    for name in ("fp32", "bf16"):
        learn = toy_learner(seed=3)
        if name == "bf16":
            learn.to_bf16()
        learn.fit_one_cycle(3, 1e-2)
        losses[name] = learn.validate()
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=0.01)
