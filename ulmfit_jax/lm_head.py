"""The language model's output side at full vocabulary size: the decoder matmul and the cross-entropy, with
hand-written gradients so that the (tokens x vocab) arrays are touched as few times as possible.

At the lesson's config one batch has 4608 tokens and a 30k vocabulary: a 553 MB logits array, whose three
matmuls are a third of a training step's FLOPs. Autodiff of ``einsum`` plus optax's integer-label cross-entropy
(XLA CPU, jax 0.10) transposed the logits gradient twice, scattered the one-hot into it and reduced it again for
the bias gradient. Here:
  * :func:`vocab_projection` computes ``x @ W.T + b`` as one matmul over ``[x, 1]`` and ``[W, b]`` (in row
    blocks); its backward is ``dx = g @ W`` and ``[dW, db] = g.T @ [x, 1]`` (the bias gradient rides along as
    one more column);
  * :func:`cross_entropy` is ``logsumexp(logits) - logits[y]`` whose backward writes ``softmax - onehot`` in one
    fused pass (``where`` on an iota, no scatter);
  * :data:`lm_accuracy` (the LM learner's ``accuracy``) compares the target's logit with the row maximum instead of
    an argmax.
The numbers are those of the plain formulas (tests compare with autodiff). In mixed precision (``dtype``
bfloat16, static) the three matmuls read bfloat16 and accumulate in float32; logits, softmax and loss stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp

from learner_jax.losses import CrossEntropyLossFlat
from learner_jax.metrics import Metric, weighted_sum
from learner_jax.precision import matmul, matmul_t, rows_t


def _with_ones(x: jax.Array) -> jax.Array:
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


ROW_CHUNK = 512


def _rows(x: jax.Array, w: jax.Array, dtype=None) -> jax.Array:
    """``x @ w.T``. Float32: in blocks of 512 rows when they divide N, measured 5-10% faster on the 4608 x 30k
    logits (XLA CPU's single matmul of that shape runs well below the machine's matmul peak). bfloat16: one
    product (:func:`matmul_t`): inside ``lax.map``'s loop XLA:CPU ran the blocks upcast to float32."""
    n = x.shape[0]
    if dtype is not None:
        return matmul_t(x, w, dtype)
    if n > ROW_CHUNK and n % ROW_CHUNK == 0:
        blocks = x.reshape(n // ROW_CHUNK, ROW_CHUNK, x.shape[1])
        return jax.lax.map(lambda xc: matmul(xc, w.T, dtype), blocks).reshape(n, w.shape[0])
    return matmul(x, w.T, dtype)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def vocab_projection(x: jax.Array, weight: jax.Array, bias: jax.Array, dtype=None) -> jax.Array:
    """``x`` (N, E) @ ``weight`` (V, E).T + ``bias`` (V,) -> (N, V) float32; ``dtype``: the matmul input dtype."""
    return _rows(x, weight, dtype) + bias


def _proj_fwd(x, weight, bias, dtype=None):
    xa = _with_ones(x if dtype is None else x.astype(dtype))
    wb = jnp.concatenate([weight, bias[:, None]], axis=1)
    return _rows(xa, wb, dtype), (xa, weight if dtype is None else weight.astype(dtype))


def _proj_bwd(dtype, res, g):
    xa, weight = res
    g = g if dtype is None else g.astype(dtype)  # XLA fuses the rounding into the softmax-minus-onehot pass
    if dtype is None:
        dwb = matmul(g.T, xa, dtype)  # (V, E + 1)
    else:
        # the barrier keeps XLA from folding the transpose back into the product (which it then runs upcast)
        dwb = jax.lax.optimization_barrier(matmul(rows_t(xa, dtype), g, dtype)).T
    return matmul(g, weight, dtype), dwb[:, :-1], dwb[:, -1]


vocab_projection.defvjp(_proj_fwd, _proj_bwd)


@jax.custom_vjp
def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-row softmax cross-entropy of ``logits`` (..., V) against integer ``labels`` (...)."""
    lse = jax.nn.logsumexp(logits, axis=-1)
    return lse - jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]


def _ce_fwd(logits, labels):
    lse = jax.nn.logsumexp(logits, axis=-1)
    return lse - jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0], (logits, lse, labels)


def _ce_bwd(res, g):
    logits, lse, labels = res
    p = jnp.exp(logits - lse[..., None])
    onehot = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1) == labels[..., None]
    return g[..., None] * jnp.where(onehot, p - 1.0, p), None


cross_entropy.defvjp(_ce_fwd, _ce_bwd)


@dataclass(frozen=True)
class LMCrossEntropyLossFlat(CrossEntropyLossFlat):
    """The engine's ``CrossEntropyLossFlat`` (same values, activation and decoding) with the fused gradient of
    :func:`cross_entropy`; the language-model learner's loss."""

    def __call__(self, preds: jax.Array, y: jax.Array) -> jax.Array:
        return cross_entropy(preds.astype(jnp.float32), y.astype(jnp.int32))


def _token_accuracy_stats(preds: jax.Array, y: jax.Array, w: jax.Array, loss_sum, count) -> dict:
    """Sums for accuracy: a token is right when its target's logit is the largest (one max-reduction; XLA CPU's
    argmax, a (value, index) reduction, took ~25x longer over the 4608 x 30k logits). A tie counts as right
    where argmax would pick the first maximum; ties of float logits do not occur in practice."""
    target = jnp.take_along_axis(preds, y[..., None].astype(jnp.int32), axis=-1)[..., 0]
    s, n = weighted_sum((target >= preds.max(axis=-1)).astype(jnp.float32), w)
    return {"accuracy_sum": s, "accuracy_n": n}


lm_accuracy = Metric("accuracy", _token_accuracy_stats,
                     lambda st: float(st["accuracy_sum"] / max(st["accuracy_n"], 1e-12)))
