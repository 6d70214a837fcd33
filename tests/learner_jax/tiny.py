"""A tiny model and data shared by the engine tests."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from learner_jax import CrossEntropyLossFlat, DataLoader, DataLoaders, Learner, ModelOutput, accuracy


class MLP(nnx.Module):
    """Linear -> BatchNorm -> ReLU -> Dropout -> Linear: two layer groups (l1+bn, l2)."""

    def __init__(self, rngs: nnx.Rngs, n_in: int = 5, n_hidden: int = 16, n_out: int = 2, p: float = 0.1):
        self.l1 = nnx.Linear(n_in, n_hidden, use_bias=False, rngs=rngs)  # no bias before BN (as LinBnDrop)
        self.bn = nnx.BatchNorm(n_hidden, rngs=rngs)
        self.drop = nnx.Dropout(p)
        self.l2 = nnx.Linear(n_hidden, n_out, rngs=rngs)

    def __call__(self, x, *, train, rngs):
        h = jax.nn.relu(self.bn(self.l1(x), use_running_average=not train))
        return self.l2(self.drop(h, deterministic=not train, rngs=rngs))


class CarryModel(nnx.Module):
    """A stateful toy: adds a running sum carried across batches; aux loss is a constant."""

    def __init__(self, rngs: nnx.Rngs, aux: float = 0.0):
        self.l = nnx.Linear(5, 2, rngs=rngs)
        self.aux = aux

    def __call__(self, x, carry, *, train, rngs):
        carry = carry + x.mean(axis=1, keepdims=True)
        return ModelOutput(self.l(x) + 0.0 * carry, carry, jax.numpy.float32(self.aux))


def splitter(path: tuple) -> int:
    return 1 if path[0] == "l2" else 0


def toy_data(n: int = 640, seed: int = 0):
    rs = np.random.default_rng(seed)
    x = rs.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    return x, y


def toy_dls(bs: int = 32, n: int = 640, seed: int = 0) -> DataLoaders:
    x, y = toy_data(n, seed)
    cut = int(n * 0.8)
    return DataLoaders(DataLoader(x[:cut], y[:cut], bs=bs, shuffle=True, seed=seed),
                       DataLoader(x[cut:], y[cut:], bs=bs))


def toy_learner(seed: int = 0, bs: int = 32, **kw) -> Learner:
    kw.setdefault("metrics", [accuracy])
    kw.setdefault("progress", False)
    return Learner(toy_dls(bs), MLP(nnx.Rngs(seed)), CrossEntropyLossFlat(), splitter=splitter, seed=seed, **kw)
