"""The LSTM recurrence of one AWD-LSTM layer, as a ``lax.scan`` with a hand-written backward pass.

Why a custom VJP: autodiff of a scan that multiplies by ``W_hh`` at every step accumulates ``dW_hh`` step by
step, reading and writing the whole (h, 4h) gradient buffer T times. The backward scan here only propagates
``dh``/``dc`` and emits the gate gradients; ``dW_hh`` is then one large matmul over all time steps at once
(``H_prev^T @ dZ``), which is where a CPU spends its FLOPs best. The input projection ``x @ W_ih`` is hoisted out
of the loop (one big matmul for all time steps), so each step does a single fused 4-gate matmul; in
:func:`lstm_layer` its gradient is hand-written too, with the bias gradient folded into the ``dW_ih`` matmul (a
column of ones) instead of a separate reduction over all (time, batch) rows.

Gate order inside the 4h axis is PyTorch's (input, forget, cell, output), so fastai weights load by transposing.
Everything is time-major: ``xg`` is (T, B, 4h).

``dtype`` (static; None is float32) is the matmul input dtype of mixed precision (``learn.to_bf16()``): every
matmul of the forward and backward passes, the recurrent ones included, reads bfloat16 and accumulates in
float32; the gates, the cell state and all gradients handed back stay float32.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from learner_jax.precision import einsum, matmul, matmul_t, rows_t


def _gate_affine(n4: int, dtype) -> tuple[jax.Array, jax.Array]:
    """Per-column (scale, shift) with ``sigmoid(z) = tanh(z/2)/2 + 1/2`` on the i, f, o blocks and ``tanh(z)`` on g."""
    h = n4 // 4
    half, one, zero = jnp.full((h,), 0.5, dtype), jnp.ones((h,), dtype), jnp.zeros((h,), dtype)
    return jnp.concatenate([half, half, one, half]), jnp.concatenate([half, half, zero, half])


def _activate(z: jax.Array) -> jax.Array:
    """All four gate activations (B, 4h) in one elementwise pass of a single ``tanh``: the i, f, o sigmoids are
    ``tanh(z/2)/2 + 1/2``. One fused loop writing the (B, 4h) array the backward pass keeps, instead of three
    sigmoids and a tanh over slices and a concatenation (measured ~0.4 ms less per step at bs 64, h 1152)."""
    scale, shift = _gate_affine(z.shape[-1], z.dtype)
    return jnp.tanh(z * scale) * scale + shift


def _cell(z: jax.Array, c: jax.Array) -> tuple[jax.Array, ...]:
    """Gate activations (B, 4h) and the new cell/hidden state from pre-activations ``z`` (B, 4h)."""
    gates = _activate(z)
    h = z.shape[-1] // 4
    i, f, g, o = gates[:, :h], gates[:, h:2 * h], gates[:, 2 * h:3 * h], gates[:, 3 * h:]
    c_new = f * c + i * g
    tc = jnp.tanh(c_new)
    return gates, c_new, o * tc


def _recurrent_weight(w: jax.Array, dtype) -> jax.Array:
    """A step weight ``w`` (forward ``W_hh``, backward ``W_hh^T``) as :func:`_step_matmul` reads it for ``a @ w``:
    itself in float32; in bfloat16 its transpose, rounded once outside the loop (``W_hh^T``'s is ``W_hh`` itself,
    no copy)."""
    return w if dtype is None else w.T.astype(dtype)


def _step_matmul(a: jax.Array, w: jax.Array, dtype) -> jax.Array:
    """The per-step product of the recurrence: ``a @ w`` in float32; in bfloat16 ``a @ w.T`` with ``w`` read
    row-wise (both operands contract their last axis), accumulated in float32. At the step's small batch
    (32-64 rows) XLA:CPU runs that form 1.3-1.4x faster than ``a @ w`` in bf16 (64 x 1152 @ 1152 x 4608: 456-465
    against 332-338 GFLOP/s, forward and backward; 64 x 512 @ 512 x 2048: 357-459 against 291-312); float32
    shows no such difference (experiments/results/compile.md)."""
    return a @ w if dtype is None else matmul_t(a, w, dtype)


def _forward(xg, w_hh, h0, c0, unroll, dtype=None):
    w = _recurrent_weight(w_hh, dtype)

    def step(carry, z_in):
        h, c = carry
        gates, c_new, h_new = _cell(z_in + _step_matmul(h, w, dtype), c)
        return (h_new, c_new), (h_new, c_new, gates)

    (h_t, c_t), (hs, cs, gates) = jax.lax.scan(step, (h0, c0), xg, unroll=unroll)
    return hs, cs, gates, h_t, c_t


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def lstm_scan(xg: jax.Array, w_hh: jax.Array, h0: jax.Array, c0: jax.Array, unroll: int = 1, dtype=None):
    """Run the recurrence: ``xg`` (T, B, 4h) pre-computed input projections (biases included), ``w_hh`` (h, 4h).

    Returns ``(hs, (h_T, c_T))`` with ``hs`` (T, B, h).
    """
    w = _recurrent_weight(w_hh, dtype)

    def step(carry, z_in):
        h, c = carry
        _, c_new, h_new = _cell(z_in + _step_matmul(h, w, dtype), c)
        return (h_new, c_new), h_new

    (h_t, c_t), hs = jax.lax.scan(step, (h0, c0), xg, unroll=unroll)
    return hs, (h_t, c_t)


def _lstm_fwd(xg, w_hh, h0, c0, unroll, dtype=None):
    hs, cs, gates, h_t, c_t = _forward(xg, w_hh, h0, c0, unroll, dtype)
    return (hs, (h_t, c_t)), (w_hh, h0, c0, hs, cs, gates)


def _as_bits(x: jax.Array) -> jax.Array:
    """A 16-bit float array as its uint16 bit pattern, for stacking in a scan. XLA:CPU upcasts a bfloat16
    ``dynamic-update-slice`` to float32 and back around the whole stacked buffer, so every step of the backward scan
    rewrote all of it (T x B x 4h; 0.8 ms a step at the LM's 72 x 64 x 2560, O(T^2) per layer); integers are
    updated in place."""
    return jax.lax.bitcast_convert_type(x, jnp.uint16) if x.dtype.itemsize == 2 else x


def _from_bits(x: jax.Array, dtype) -> jax.Array:
    return jax.lax.bitcast_convert_type(x, dtype) if x.dtype == jnp.uint16 else x


def _lstm_bwd(unroll, dtype, res, cts):
    """Gradients ``(dz per step, dW_hh, dh0, dc0)``; the stacked ``dz`` is in the compute dtype (it only feeds
    matmuls), the rest float32."""
    w_hh, h0, c0, hs, cs, gates = res
    d_hs, (d_ht, d_ct) = cts
    c_prev = jnp.concatenate([c0[None], cs[:-1]], axis=0)
    w_t = _recurrent_weight(w_hh.T, dtype)

    def step(carry, inp):
        dh_next, dc_next = carry
        dh_out, gate, c_new, c_old = inp
        i, f, g, o = jnp.split(gate, 4, axis=-1)
        tc = jnp.tanh(c_new)
        dh = dh_out + dh_next
        dc = dc_next + dh * o * (1.0 - tc * tc)
        dz = jnp.concatenate([dc * g * i * (1.0 - i), dc * c_old * f * (1.0 - f),
                              dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)], axis=-1)
        dz = dz if dtype is None else dz.astype(dtype)
        return (_step_matmul(dz, w_t, dtype), dc * f), _as_bits(dz)

    (dh0, dc0), dzs = jax.lax.scan(step, (d_ht, d_ct), (d_hs, gates, cs, c_prev), reverse=True, unroll=unroll)
    dzs = _from_bits(dzs, dtype)
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    if dtype is None:
        d_whh = einsum("tbh,tbg->hg", h_prev, dzs, dtype)
    else:
        d_whh = matmul(rows_t(h_prev, dtype), dzs.reshape(-1, dzs.shape[-1]), dtype)
    return dzs, d_whh, dh0, dc0


def _scan_bwd(unroll, dtype, res, cts):
    dzs, d_whh, dh0, dc0 = _lstm_bwd(unroll, dtype, res, cts)
    return dzs.astype(jnp.float32), d_whh, dh0, dc0


lstm_scan.defvjp(_lstm_fwd, _scan_bwd)


def lstm_scan_reference(xg, w_hh, h0, c0, unroll: int = 1, dtype=None):
    """The same recurrence differentiated by JAX itself (for tests of the hand-written backward pass)."""
    hs, _, _, h_t, c_t = _forward(xg, w_hh, h0, c0, unroll, dtype)
    return hs, (h_t, c_t)


@partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def lstm_layer(x: jax.Array, w_ih: jax.Array, bias: jax.Array, w_hh: jax.Array, h0: jax.Array, c0: jax.Array,
               unroll: int = 1, dtype=None):
    """A whole LSTM layer: ``x`` (T, B, n_in), ``w_ih`` (n_in, 4h), ``bias`` (4h), ``w_hh`` (h, 4h) ->
    ``(hs, (h_T, c_T))``. Same numbers as ``lstm_scan(x @ w_ih + bias, w_hh, h0, c0)``."""
    return lstm_scan(einsum("tbi,ig->tbg", x, w_ih, dtype) + bias, w_hh, h0, c0, unroll, dtype)


def _layer_fwd(x, w_ih, bias, w_hh, h0, c0, unroll, dtype=None):
    x = x if dtype is None else x.astype(dtype)  # kept for dW_ih in the compute dtype: half the memory
    xg = einsum("tbi,ig->tbg", x, w_ih, dtype) + bias
    (hs, carry), res = _lstm_fwd(xg, w_hh, h0, c0, unroll, dtype)
    return (hs, carry), (_as_bits(x), w_ih, res)  # bits: the classifier's chunk scan stacks this residual


def _layer_bwd(unroll, dtype, res, cts):
    x, w_ih, scan_res = res
    x = _from_bits(x, dtype)
    dzs, d_whh, dh0, dc0 = _lstm_bwd(unroll, dtype, scan_res, cts)
    t, b, n_in = x.shape
    dz = dzs.reshape(t * b, -1)
    if dtype is None:
        xa = jnp.concatenate([x.reshape(t * b, n_in), jnp.ones((t * b, 1), x.dtype)], axis=1)
        dwb = matmul(xa.T, dz, dtype)  # (n_in + 1, 4h): dW_ih and, in the last row, the bias gradient
    else:
        xa_t = jnp.concatenate([rows_t(x, dtype), jnp.ones((1, t * b), dtype)], axis=0)
        dwb = matmul(xa_t, dz, dtype)
    dx = matmul_t(dz, w_ih, dtype).reshape(t, b, n_in)
    return dx, dwb[:-1], dwb[-1], d_whh, dh0, dc0


lstm_layer.defvjp(_layer_fwd, _layer_bwd)
