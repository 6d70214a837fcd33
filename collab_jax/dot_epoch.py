"""The dot model's training epoch with a row-sparse, exact AdamW: the lesson's fit without dense table passes.

fastai's Adam touches every row of every embedding table at every step (moments decay, weights move, weight
decay shrinks), even though a batch of 64 ratings has gradients for at most 64 users and 64 items. The generic
engine step (``learner_jax.steps``) does the same through optax: per table a zeroed dense gradient, then
separate passes for the first moment, the second moment and the weights. On a CPU those passes over the tables
are most of the step (measured: ~110 us of a ~140 us step on ML-100k; this path: ~80 us), so this module keeps the *same
arithmetic* with one dense pass per table and step:

* the moments are stored scaled, ``m = s_m * M`` and ``v = s_v * V`` with scalars shared by all tables: the
  decay of every row is one scalar multiply (``s_m *= beta1``), and only the batch's rows are written
  (``M[rows] += (1-beta1) g / s_m``, ``V[rows] += (1-beta2) g^2 / s_v`` with each row's gradient summed over
  its duplicates first);
* the weights then take fastai's update, ``p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps)``, in a single
  fused pass reading ``p, M, V``;
* every ``renorm_period(n_batches)`` steps (and at the epoch's end) the scales are folded back into ``M`` and
  ``V``, so they never underflow (this path is used only while every beta1 of the fit is >= ``MIN_MOM``),
  and the state the epoch returns is optax's own ``ScaleByAdamState`` (``mu``, ``nu``, ``count``):
  switching between this path and the generic one (lr_find, per-batch loops, checkpoints) is free.

Results equal the generic step up to float rounding (tested over several epochs, renormalisations included).
Used by ``CollabLearner`` for ``EmbeddingDotBias`` on one device without gradient clipping or norm logging;
anything else takes the generic engine epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from collab_jax.metadata import HybridInput
from collab_jax.models import dot_bias_predict
from learner_jax.metrics import weighted_sum
from learner_jax.optim import hypers_at
from learner_jax.shuffle import feistel_permutation
from learner_jax.steps import Permute, StepSpec, TrainState, shuffled_batches

MAX_PERIOD = 100  # steps between renormalisations at most: MIN_MOM**100 ~ 8e-31 stays a normal float32
MIN_MOM = 0.5


def renorm_period(n_batches: int) -> int:
    """Steps between renormalisations: the largest divisor of ``n_batches`` up to ``MAX_PERIOD`` (one scan over
    equal chunks compiles ~35% faster than chunks plus a remainder), or 64 when no divisor is at least 16."""
    best = max(d for d in range(1, min(MAX_PERIOD, n_batches) + 1) if n_batches % d == 0)
    return best if best >= 16 or best == n_batches else 64


TABLES = ("u_weight", "i_weight", "u_bias", "i_bias")  # id column 0 (users) for u_*, 1 (items) for i_*


def table_leaves(params) -> list[str]:
    """The dot model's table names in the order of its flattened parameters (optax's leaf order)."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    names = [getattr(p[0], "key", None) for p in paths]
    if sorted(names) != sorted(TABLES) or any(len(p) != 2 for p in paths):
        raise ValueError(f"not EmbeddingDotBias parameters: {names}")
    return names


def distinct_rows(ids: jax.Array, order: jax.Array) -> tuple[jax.Array, jax.Array]:
    """How to sum a batch's row gradients per distinct id, given ``order = argsort(ids)``: ``(segment, uniq)``
    where ``g[order]`` summed by ``segment`` gives one gradient per distinct id, stored at ``uniq``
    (slots past the last distinct id hold an out-of-range index, so scatters with ``mode='drop'`` skip them).
    Adam's second moment needs the square of each row's *summed* gradient, as the dense gradient fastai's
    Adam sees."""
    s = ids[order]
    seg = jnp.cumsum(jnp.concatenate([jnp.ones(1, jnp.int32), (s[1:] != s[:-1]).astype(jnp.int32)])) - 1
    uniq = jnp.full(ids.shape, jnp.iinfo(jnp.int32).max, jnp.int32).at[seg].set(s)
    return seg, uniq


def _is_adam(path, _value) -> bool:
    return getattr(path[-1], "tuple_name", None) == "ScaleByAdamState"


def make_dot_train_epoch(spec: StepSpec, names: Sequence[str], y_range: tuple[float, float] | None, l2: float,
                         bs: int, n_batches: int, renorm_every: int | None = None,
                         permute: Permute = feistel_permutation, compute_dtype=None) -> Callable:
    """``train_epoch(state, arrays, rng, epoch_key) -> (state, per-step metrics)``, the engine's epoch contract
    (same shuffle, same recorded loss/lr/mom), for ``EmbeddingDotBias`` parameters named ``names`` in leaf
    order, all trainable; ``compute_dtype``: the model's matmul input dtype (mixed precision)."""
    if len(spec.trainable) != len(names) or spec.clip is not None or spec.log_norms:
        raise ValueError("the row-sparse epoch needs every table trainable, no clipping and no norm logging")
    renorm_every = renorm_period(n_batches) if renorm_every is None else renorm_every
    col = [0 if n.startswith("u_") else 1 for n in names]
    position = [list(names).index(n) for n in TABLES]  # where u_weight, i_weight, u_bias, i_bias sit
    labels, decay = list(spec.labels), [float(d) for d in spec.decay_mask]
    b2, eps = spec.b2, spec.eps

    def loss_fn(rows, y, w):
        u, i, bu, bi = (rows[j] for j in position)
        preds = dot_bias_predict(u, i, bu[:, 0], bi[:, 0], y_range, compute_dtype)
        loss_sum, n = weighted_sum(spec.loss_func(preds, y), w)
        loss = loss_sum / jnp.maximum(n, 1.0)
        aux = l2 * jnp.mean(sum(jnp.sum(jnp.square(r), axis=1) for r in rows)) if l2 else 0.0
        return loss + aux, loss

    def train_epoch(state: TrainState, arrays, rng: jax.Array, epoch_key: jax.Array):
        x, y, w = arrays
        x = x.ids if isinstance(x, HybridInput) else x  # the dot model reads only the (user, item) ids

        def step(carry, batch):
            idx, sort_orders = batch[0], batch[1:]
            n_step, tables, m_raw, v_raw, s_m, s_v, count = carry
            xb, yb, wb = (jnp.take(a, idx, axis=0) for a in (x, y, w))
            hyp = hypers_at(state.sched, n_step)
            ids = [xb[:, c] for c in col]
            grads, loss = jax.grad(loss_fn, has_aux=True)([t[i] for t, i in zip(tables, ids)], yb, wb)
            mom, count = hyp.mom, count + 1
            s_m, s_v = s_m * mom, s_v * b2
            t = count.astype(jnp.float32)
            m_hat_scale, v_hat_scale = s_m / (1 - mom**t), s_v / (1 - b2**t)
            new = ([], [], [])
            dedup = [distinct_rows(xb[:, c], o) for c, o in zip((0, 1), sort_orders)]  # weights and biases share
            for j, (p, m, v, g) in enumerate(zip(tables, m_raw, v_raw, grads)):
                seg, uniq = dedup[col[j]]
                g_sum = jax.ops.segment_sum(g[sort_orders[col[j]]], seg, num_segments=g.shape[0])  # per row
                m = m.at[uniq].add(g_sum * ((1 - mom) / s_m), mode="drop")
                v = v.at[uniq].add(jnp.square(g_sum) * ((1 - b2) / s_v), mode="drop")
                lr = hyp.lr[labels[j]]
                p = p * (1 - lr * hyp.wd * decay[j]) - (lr * m_hat_scale) * m / (jnp.sqrt(v * v_hat_scale) + eps)
                for out, a in zip(new, (p, m, v)):
                    out.append(a)
            metrics = {"loss": loss, "lr": hyp.lr, "mom": hyp.mom}
            return (n_step + 1, *new, s_m, s_v, count), metrics

        def chunk(carry, idx):
            carry, metrics = jax.lax.scan(step, carry, idx)
            n_step, tables, m_raw, v_raw, s_m, s_v, count = carry
            one = jnp.ones_like(s_m)  # fold the scales back in: optax's own moments again
            return (n_step, tables, [m * s_m for m in m_raw], [v * s_v for v in v_raw], one, one, count), metrics

        perm = shuffled_batches(epoch_key, x.shape[0], bs, n_batches, permute)
        # each batch's users and items in id order, for all batches at once: one batched sort per epoch costs a
        # fraction of 2 x n_batches small sorts inside the scan (measured: 40 ms of a 110 ms epoch)
        ids_all = jnp.take(x, perm, axis=0)
        batches = (perm, jnp.argsort(ids_all[..., 0], axis=1), jnp.argsort(ids_all[..., 1], axis=1))
        tables, treedef = jax.tree_util.tree_flatten(state.params)
        adam = optax.tree_utils.tree_get(state.opt_state, "ScaleByAdamState")
        if adam is None:
            raise ValueError("the optimizer state holds no ScaleByAdamState")
        one = jnp.float32(1.0)
        carry = (state.step, tables, list(adam.mu), list(adam.nu), one, one, adam.count)
        q, r = divmod(n_batches, renorm_every)
        parts = []
        if q:
            carry, m = jax.lax.scan(chunk, carry, jax.tree_util.tree_map(
                lambda a: a[: q * renorm_every].reshape(q, renorm_every, bs), batches))
            parts.append(jax.tree_util.tree_map(lambda a: a.reshape(q * renorm_every, *a.shape[2:]), m))
        if r:
            carry, m = chunk(carry, jax.tree_util.tree_map(lambda a: a[q * renorm_every:], batches))
            parts.append(m)
        metrics = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
        n_step, tables, m_raw, v_raw, _, _, count = carry
        opt_state = optax.tree_utils.tree_set(state.opt_state, _is_adam, count=count, mu=type(adam.mu)(m_raw),
                                              nu=type(adam.nu)(v_raw))
        params = jax.tree_util.tree_unflatten(treedef, tables)
        return state.replace(step=n_step, params=params, opt_state=opt_state), metrics

    return train_epoch
