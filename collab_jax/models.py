"""Collaborative-filtering models (Flax NNX), fastai's two plus the hybrid metadata model.

All follow the engine's convention ``model(x, *, train, rngs)``: x is int32 ``(B, 2)`` [user, item] (or a
``HybridInput`` whose ``ids`` are that array) and the output is float32 ``(B,)`` (fastai's ``EmbeddingNN``
returns ``(B, 1)``; a flat prediction serves ``MSELossFlat`` the same and reads better in ``get_preds``).

Initialisation is fastai's: embeddings ``normal().fmod(2) * 0.01`` (fastai_facts §0.11: tails folded back, not
clamped), Linear layers PyTorch's ``U(+-1/sqrt(fan_in))`` for kernel and bias, BatchNorm scale 1, bias 1e-3,
momentum 0.1 (Flax: 0.9), eps 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import nnx

from collab_jax.data import NA, categorize
from collab_jax.interpret import Factors
from collab_jax.metadata import HybridInput
from learner_jax.model_io import ModelOutput


def trunc_normal_init(std: float = 0.01) -> Callable:
    """fastai's ``trunc_normal_``: ``normal().fmod(2) * std`` (values beyond 2 sigma wrap back inside)."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jnp.fmod(jax.random.normal(key, shape, dtype), 2.0) * std

    return init


def torch_linear_init(fan_in: int) -> Callable:
    """PyTorch's default ``nn.Linear`` init for kernels and biases: uniform in +-1/sqrt(fan_in)."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        bound = 1.0 / max(fan_in, 1) ** 0.5
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def sigmoid_range(x: jax.Array, low: float, high: float) -> jax.Array:
    """Sigmoid squeezed into ``(low, high)``."""
    return jax.nn.sigmoid(x) * (high - low) + low


def dot_bias_predict(u: jax.Array, i: jax.Array, u_bias: jax.Array, i_bias: jax.Array,
                     y_range: tuple[float, float] | None, dtype=None) -> jax.Array:
    """The dot model's rating from looked-up rows: ``sum(u * i) + u_bias + i_bias``, squeezed into ``y_range``;
    ``dtype`` (mixed precision): the factors rounded to it, the products summed in float32."""
    res = (jnp.sum(u * i, axis=1) if dtype is None else
           jnp.einsum("bf,bf->b", u.astype(dtype), i.astype(dtype), preferred_element_type=jnp.float32))
    res = res + u_bias + i_bias
    return res if y_range is None else sigmoid_range(res, *y_range)


def emb_sz_rule(n_cat: int) -> int:
    """fastai's embedding size rule of thumb: ``min(600, round(1.6 * n_cat**0.56))``."""
    return min(600, round(1.6 * n_cat**0.56))


def _ids(x: jax.Array | HybridInput) -> jax.Array:
    return x.ids if isinstance(x, HybridInput) else x


def _embed(n: int, k: int, rngs: nnx.Rngs) -> nnx.Embed:
    return nnx.Embed(n, k, embedding_init=trunc_normal_init(0.01), rngs=rngs)


def _with_l2(res: jax.Array, l2: float, train: bool, *rows: jax.Array) -> jax.Array | ModelOutput:
    """Predictions, plus (training only) ``l2`` times the batch's mean squared norm of the looked-up rows.

    Beyond fastai: classic matrix-factorisation regularisation, per occurrence, so frequent users and items
    are regularised more often; decoupled weight decay instead shrinks every row at every step."""
    if not (train and l2):
        return res
    penalty = sum(jnp.sum(jnp.square(r.reshape(r.shape[0], -1)), axis=1) for r in rows)
    return ModelOutput(res, aux_loss=l2 * jnp.mean(penalty))


class RawIdLookup:
    """fastai v2's ``model.bias(arr, is_item)`` and ``model.weight(arr, is_item)`` over raw user/item ids.

    They need ``classes`` ({user column: ids, item column: ids}, index 0 = ``#na#``), which ``CollabLearner.model``
    sets, as fastai's ``EmbeddingDotBias.from_classes`` does. Factors come back as ``Factors`` (``.pca(k)``)."""

    classes: dict | None = None

    def _table(self, kind: str, is_item: bool) -> jax.Array:
        return getattr(self, f"{'i' if is_item else 'u'}_{kind}").embedding[...]

    def _get_idx(self, arr: Sequence[Any], is_item: bool = True) -> np.ndarray:
        if not self.classes:
            raise ValueError("this model has no id classes: read it as learn.model from a collab_learner")
        user_name, item_name = list(self.classes)[:2]
        name = item_name if is_item else user_name
        idx = categorize(pd.Series(list(arr), dtype=object), self.classes[name])
        unknown = [a for a, i in zip(arr, idx) if i == 0]
        if unknown:
            raise KeyError(f"{'item' if is_item else 'user'}(s) {unknown[:5]} not in the training data (they map "
                           f"to {NA}); an id present in the original data may have been split into validation only")
        return idx

    def bias(self, arr: Sequence[Any], is_item: bool = True) -> np.ndarray:
        """The learned bias of each raw item (or user, ``is_item=False``) id in ``arr``."""
        return np.asarray(self._table("bias", is_item))[self._get_idx(arr, is_item), 0]

    def weight(self, arr: Sequence[Any], is_item: bool = True) -> Factors:
        """The learned factors ``(len(arr), n_factors)`` of each raw item (or user) id, with ``.pca(k)``."""
        return Factors(np.asarray(self._table("weight", is_item))[self._get_idx(arr, is_item)])


class EmbeddingDotBias(RawIdLookup, nnx.Module):
    """fastai's dot model: ``sum(u * i) + u_bias + i_bias``, through ``sigmoid_range`` when ``y_range`` is set.
    ``l2`` (ours, default off) adds per-occurrence L2 on the batch's factors and biases to the training loss."""

    compute_dtype = None  # the dot's input dtype (learner_jax.precision); None: float32

    def __init__(self, n_factors: int, n_users: int, n_items: int, y_range: tuple[float, float] | None = None,
                 l2: float = 0.0, *, rngs: nnx.Rngs):
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))
        self.l2 = float(l2)
        self.u_weight = _embed(n_users, n_factors, rngs)
        self.i_weight = _embed(n_items, n_factors, rngs)
        self.u_bias = _embed(n_users, 1, rngs)
        self.i_bias = _embed(n_items, 1, rngs)

    def __call__(self, x: jax.Array | HybridInput, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        ids = _ids(x)
        users, items = ids[:, 0], ids[:, 1]
        u, i, bu, bi = self.u_weight(users), self.i_weight(items), self.u_bias(users), self.i_bias(items)
        res = dot_bias_predict(u, i, bu[:, 0], bi[:, 0], self.y_range, self.compute_dtype)
        return _with_l2(res, self.l2, train, u, i, bu, bi)


class LinBnDrop(nnx.Module):
    """fastai's ``LinBnDrop(lin_first=True)``: Linear (no bias when followed by BN) -> act -> BatchNorm -> Dropout."""

    def __init__(self, n_in: int, n_out: int, bn: bool = True, p: float = 0.0, act: Callable | None = None,
                 *, rngs: nnx.Rngs):
        self.lin = nnx.Linear(n_in, n_out, use_bias=not bn, kernel_init=torch_linear_init(n_in),
                              bias_init=torch_linear_init(n_in), rngs=rngs)
        self.act = act
        self.bn = (nnx.BatchNorm(n_out, momentum=0.9, epsilon=1e-5, bias_init=nnx.initializers.constant(1e-3),
                                 rngs=rngs) if bn else None)
        self.drop = nnx.Dropout(p) if p else None

    def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
        x = self.lin(x)
        if self.act is not None:
            x = self.act(x)
        if self.bn is not None:
            x = self.bn(x, use_running_average=not train)
        if self.drop is not None:
            x = self.drop(x, deterministic=not train, rngs=rngs)
        return x


class EmbeddingNN(RawIdLookup, nnx.Module):
    """fastai's ``EmbeddingNN``: a ``TabularModel`` with no continuous inputs and one output, over the user and
    item embeddings concatenated (sizes ``emb_szs`` = [(n_users, du), (n_items, di)])."""

    def __init__(self, emb_szs: Sequence[tuple[int, int]], layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                 act_cls: Callable = jax.nn.relu, *, rngs: nnx.Rngs):
        if len(emb_szs) != 2:
            raise ValueError(f"EmbeddingNN takes two embedding sizes (user, item), got {list(emb_szs)}")
        layers = list(layers)
        ps = [0.0] * len(layers) if ps is None else ([ps] * len(layers) if isinstance(ps, (int, float)) else list(ps))
        if len(ps) != len(layers):
            raise ValueError(f"ps has {len(ps)} dropout probabilities for {len(layers)} layers")
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))
        self.embeds = nnx.List([_embed(n, k, rngs) for n, k in emb_szs])
        self.emb_drop = nnx.Dropout(embed_p) if embed_p else None
        sizes = [sum(k for _, k in emb_szs), *layers, 1]
        n = len(sizes) - 1
        self.layers = nnx.List([
            LinBnDrop(sizes[i], sizes[i + 1], bn=use_bn and (i != n - 1 or bn_final), p=p,
                      act=act_cls if i != n - 1 else None, rngs=rngs)
            for i, p in enumerate([*ps, 0.0])])

    def _table(self, kind: str, is_item: bool) -> jax.Array:
        if kind == "bias":
            raise ValueError("EmbeddingNN has no user/item biases; use the dot model (use_nn=False)")
        return self.embeds[1 if is_item else 0].embedding[...]

    def __call__(self, x: jax.Array | HybridInput, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        ids = _ids(x)
        h = jnp.concatenate([e(ids[:, i]) for i, e in enumerate(self.embeds)], axis=1)
        if self.emb_drop is not None:
            h = self.emb_drop(h, deterministic=not train, rngs=rngs)
        for layer in self.layers:
            h = layer(h, train=train, rngs=rngs)
        h = h[:, 0]
        return h if self.y_range is None else sigmoid_range(h, *self.y_range)


class HybridDotBias(RawIdLookup, nnx.Module):
    """``EmbeddingDotBias`` whose user and item vectors and biases also get a learned projection of metadata:

        u = u_weight[user] + user_feats @ u_meta      b_u = u_bias[user] + user_feats @ u_meta_b
        i = i_weight[item] + item_feats @ i_meta      b_i = i_bias[item] + item_feats @ i_meta_b

    A user or item absent from training has an untrained (about zero) id row, so its prediction comes from its
    metadata: the cold-start fallback the lesson says a plain dot model cannot give. Metadata projections start
    at fastai's embedding init, so at step 0 the model is the dot model. ``id_drop`` (training only) hides a
    row's user id, and independently its item id, with that probability (a pair: separate user and item
    probabilities), so the metadata path must learn to predict alone, as it will have to for newcomers
    (DropoutNet's idea; 0 disables it).
    """

    def __init__(self, n_factors: int, n_users: int, n_items: int, n_user_feats: int, n_item_feats: int,
                 y_range: tuple[float, float] | None = None, id_drop: float | tuple[float, float] = 0.0,
                 l2: float = 0.0, *, rngs: nnx.Rngs):
        drops = tuple(id_drop) if isinstance(id_drop, (tuple, list)) else (id_drop, id_drop)
        if len(drops) != 2 or not all(0 <= p < 1 for p in drops):
            raise ValueError(f"id_drop must be in [0, 1) (or a (user, item) pair of such), got {id_drop}")
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))
        self.id_drop, self.l2 = (float(drops[0]), float(drops[1])), float(l2)
        self.u_weight = _embed(n_users, n_factors, rngs)
        self.i_weight = _embed(n_items, n_factors, rngs)
        self.u_bias = _embed(n_users, 1, rngs)
        self.i_bias = _embed(n_items, 1, rngs)
        init = trunc_normal_init(0.01)
        self.u_meta = nnx.Param(init(rngs.params(), (n_user_feats, n_factors)))
        self.i_meta = nnx.Param(init(rngs.params(), (n_item_feats, n_factors)))
        self.u_meta_b = nnx.Param(init(rngs.params(), (n_user_feats,)))
        self.i_meta_b = nnx.Param(init(rngs.params(), (n_item_feats,)))

    def __call__(self, x: HybridInput, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        if not isinstance(x, HybridInput):
            raise TypeError("HybridDotBias needs a HybridInput (ids, user features, item features): build the "
                            "loaders with CollabDataLoaders.from_df(..., user_meta=..., item_meta=...)")
        users, items = x.ids[:, 0], x.ids[:, 1]
        keep_u = keep_i = jnp.ones(users.shape, jnp.float32)
        if train and max(self.id_drop) > 0:
            ku, ki = jax.random.split(rngs.dropout())
            keep_u = jax.random.bernoulli(ku, 1 - self.id_drop[0], users.shape).astype(jnp.float32)
            keep_i = jax.random.bernoulli(ki, 1 - self.id_drop[1], items.shape).astype(jnp.float32)
        uw, iw, ub, ib = self.u_weight(users), self.i_weight(items), self.u_bias(users), self.i_bias(items)
        u = uw * keep_u[:, None] + x.user @ self.u_meta[...]
        i = iw * keep_i[:, None] + x.item @ self.i_meta[...]
        b = ub[:, 0] * keep_u + ib[:, 0] * keep_i + x.user @ self.u_meta_b[...] + x.item @ self.i_meta_b[...]
        res = jnp.sum(u * i, axis=1) + b
        res = res if self.y_range is None else sigmoid_range(res, *self.y_range)
        return _with_l2(res, self.l2, train, uw, iw, ub, ib)
