"""``TabularModel``: fastai's tabular network as a Flax NNX module.

Embeddings per categorical column -> concat -> embedding dropout; continuous columns -> BatchNorm; then
``LinBnDrop`` blocks. Default block is fastai v2c's ``lin_first=True``: Linear(no bias) -> ReLU -> BatchNorm ->
Dropout, the last block a plain Linear with bias (``lin_first=False`` gives v2a's BatchNorm -> Dropout -> Linear
-> ReLU). Initialisation follows fastai/PyTorch: embeddings ``normal().fmod(2) * 0.01``, Linear weights and
biases uniform in +-1/sqrt(fan_in), block BatchNorms with bias 1e-3 (fastai's ``BatchNorm``), the continuous
BatchNorm with bias 0 (a plain ``nn.BatchNorm1d``). BatchNorm momentum 0.9 is PyTorch's 0.1 written Flax's way;
Flax keeps the biased batch variance in the running average where PyTorch keeps the unbiased one (a factor
bs/(bs-1), 1.6% at bs 64, on the running variance only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


def emb_sz_rule(n_cat: int) -> int:
    """fastai's rule of thumb for an embedding width (``n_cat`` counts ``#na#``)."""
    return min(600, round(1.6 * n_cat**0.56))


def get_emb_sz(to: Any, sz_dict: Mapping[str, int] | None = None) -> list[tuple[int, int]]:
    """(n_classes, width) per categorical column of a ``TabularPandas`` or ``TabularDataLoaders``."""
    sz_dict = dict(sz_dict or {})
    unknown = sorted(set(sz_dict) - set(to.cat_names))
    if unknown:
        raise KeyError(f"emb_szs names {unknown}, which are not categorical columns {to.cat_names}")
    return [(len(to.classes[n]), int(sz_dict.get(n, emb_sz_rule(len(to.classes[n]))))) for n in to.cat_names]


def trunc_normal_init(std: float = 0.01) -> Any:
    """fastai's ``trunc_normal_``: ``normal().fmod(2) * std`` (tails past 2 sigma folded back, not clipped)."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return (jnp.fmod(jax.random.normal(key, shape, jnp.float32), 2.0) * std).astype(dtype)

    return init


def torch_linear_init(fan_in: int) -> Any:
    """PyTorch's default ``nn.Linear`` init for weights and biases: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / max(fan_in, 1) ** 0.5

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class LinBnDrop(nnx.Module):
    """fastai's ``LinBnDrop``: Linear (bias only without BatchNorm), activation, BatchNorm and Dropout."""

    def __init__(self, n_in: int, n_out: int, *, bn: bool = True, p: float = 0.0, act: bool = True,
                 lin_first: bool = True, rngs: nnx.Rngs):
        init = torch_linear_init(n_in)
        self.lin = nnx.Linear(n_in, n_out, use_bias=not bn, kernel_init=init, bias_init=init, rngs=rngs)
        self.bn = (nnx.BatchNorm(n_out if lin_first else n_in, momentum=0.9, epsilon=1e-5,
                                 bias_init=nnx.initializers.constant(1e-3), rngs=rngs) if bn else None)
        self.drop = nnx.Dropout(p) if p else None
        self.act, self.lin_first = act, lin_first

    def _norm_drop(self, x: jax.Array, train: bool, rngs: nnx.Rngs | None) -> jax.Array:
        if self.bn is not None:
            x = self.bn(x, use_running_average=not train)
        if self.drop is not None:
            x = self.drop(x, deterministic=not train, rngs=rngs)
        return x

    def _lin_act(self, x: jax.Array) -> jax.Array:
        x = self.lin(x)
        return jax.nn.relu(x) if self.act else x

    def __call__(self, x: jax.Array, *, train: bool, rngs: nnx.Rngs | None = None) -> jax.Array:
        if self.lin_first:
            return self._norm_drop(self._lin_act(x), train, rngs)
        return self._lin_act(self._norm_drop(x, train, rngs))


class TabularModel(nnx.Module):
    """fastai's ``TabularModel`` (v2c ``lin_first=True`` blocks by default); called as
    ``model((x_cat, x_cont), train=..., rngs=...)`` with ``x_cat`` int32 (B, n_cat), ``x_cont`` float32 (B, n_cont).
    """

    def __init__(self, emb_szs: Sequence[tuple[int, int]], n_cont: int, out_sz: int, layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                 bn_cont: bool = True, lin_first: bool = True, *, rngs: nnx.Rngs):
        layers = list(layers)
        ps = [0.0] * len(layers) if ps is None else ps
        ps = list(ps) if isinstance(ps, (list, tuple)) else [float(ps)] * len(layers)
        if len(ps) != len(layers):
            raise ValueError(f"ps has {len(ps)} dropout values for {len(layers)} layers")
        self.embeds = nnx.List([nnx.Embed(ni, nf, embedding_init=trunc_normal_init(0.01), rngs=rngs)
                                for ni, nf in emb_szs])
        self.emb_drop = nnx.Dropout(embed_p) if embed_p else None
        self.bn_cont = (nnx.BatchNorm(n_cont, momentum=0.9, epsilon=1e-5, rngs=rngs)
                        if bn_cont and n_cont else None)
        self.n_emb, self.n_cont = sum(nf for _, nf in emb_szs), int(n_cont)
        sizes = [self.n_emb + self.n_cont, *layers, int(out_sz)]
        n = len(sizes) - 1
        self.layers = nnx.List([
            LinBnDrop(sizes[i], sizes[i + 1], bn=use_bn and (i != n - 1 or bn_final), p=p, act=i != n - 1,
                      lin_first=lin_first, rngs=rngs)
            for i, p in enumerate([*ps, 0.0])])
        self.y_range = None if y_range is None else (float(y_range[0]), float(y_range[1]))

    def __call__(self, x: tuple[jax.Array, jax.Array], *, train: bool, rngs: nnx.Rngs | None = None) -> jax.Array:
        x_cat, x_cont = x
        parts = []
        if self.n_emb:
            emb = jnp.concatenate([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], axis=-1)
            if self.emb_drop is not None:
                emb = self.emb_drop(emb, deterministic=not train, rngs=rngs)
            parts.append(emb)
        if self.n_cont:
            xc = x_cont.astype(jnp.float32)
            parts.append(self.bn_cont(xc, use_running_average=not train) if self.bn_cont is not None else xc)
        h = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)
        for layer in self.layers:
            h = layer(h, train=train, rngs=rngs)
        if self.y_range is not None:
            lo, hi = self.y_range
            h = jax.nn.sigmoid(h) * (hi - lo) + lo
        return h


def tabular_config(**kwargs: Any) -> dict[str, Any]:
    """fastai's ``tabular_config``: keyword arguments for ``TabularModel`` (ps, embed_p, y_range, use_bn,
    bn_final, bn_cont, lin_first)."""
    allowed = {"ps", "embed_p", "y_range", "use_bn", "bn_final", "bn_cont", "lin_first"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"tabular_config got unknown argument(s) {unknown}; allowed: {sorted(allowed)}")
    return dict(kwargs)
