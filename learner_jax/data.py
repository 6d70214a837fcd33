"""NumPy-iterator data loaders: the one batch protocol every application feeds the engine.

A batch is a tuple ``(x, y, w)``:
  * ``x`` -- a pytree of arrays with a leading batch axis (an int array of tokens, a ``(cats, conts)`` tuple...),
  * ``y`` -- the target array (leading batch axis),
  * ``w`` -- float32 ``(B,)`` row weights: 1 for real rows, 0 for padding rows.

Shapes stay static for ``jit``: a short last batch is padded to ``bs`` with ``w == 0`` rows, so metrics reduce
correctly and no new shape is compiled. Training loaders drop the last partial batch as fastai v2 does.

Any object with ``bs``, ``__len__`` and ``batches(epoch, start=0)`` is a loader (text loaders with their own
sampling implement the same protocol). ``batches`` must be a pure function of ``(seed, epoch)`` so that a
resumed run sees exactly the batches an uninterrupted one would.

Why hand-written rather than Grain: our datasets are in-memory arrays indexed by a permutation, so a batch is
one fancy-index per array. Measured with ``python -m experiments.bench.bench_loader`` (200k rows, bs 64, this
2-core CPU, grain 0.2.18): ours 72k batches/s, Grain ``MapDataset.shuffle().batch(batch_fn=...)`` 1.5k/s,
Grain per-record map + batch 1.1k/s -- Grain is ~50x slower here, because it walks records one by one in
Python. Its strengths (checkpointable iterators, worker processes for expensive per-record decoding,
out-of-core record files) do not apply: our iterators are checkpointable already (``batches(epoch, start)`` is a
pure function of the seed, stored in training checkpoints), and the per-batch work is too small for worker
processes to pay for their pickling. The loader protocol is small enough to wrap a Grain iterator when a
dataset does need record files.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import numpy as np

Batch = tuple[Any, np.ndarray, np.ndarray]


class Loader(Protocol):
    bs: int

    def __len__(self) -> int: ...

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]: ...


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The NumPy generator for one epoch's shuffle: independent of any global state and of other epochs."""
    return np.random.default_rng([int(seed), int(epoch)])


def _n_rows(x: Any) -> int:
    leaves = jax.tree_util.tree_leaves(x)
    if not leaves:
        raise ValueError("a loader needs at least one input array")
    n = len(leaves[0])
    for leaf in leaves:
        if len(leaf) != n:
            raise ValueError(f"input arrays disagree on the number of rows: {len(leaf)} vs {n}")
    return n


def take_rows(tree: Any, idx: np.ndarray) -> Any:
    """Index every array of a pytree along its first axis."""
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


class DataLoader:
    """Batches of in-memory arrays, shuffled reproducibly per epoch.

    ``x`` is a pytree of arrays and ``y`` an array, all with the same number of rows. ``shuffle`` defaults to
    False and ``drop_last`` to ``shuffle`` (fastai v2: the training loader drops its last partial batch).
    """

    def __init__(self, x: Any, y: np.ndarray, bs: int = 64, shuffle: bool = False,
                 drop_last: bool | None = None, seed: int = 0, w: np.ndarray | None = None):
        if bs <= 0:
            raise ValueError(f"bs must be positive, got {bs}")
        self.x, self.y = x, np.asarray(y)
        self.n = _n_rows(x)
        if len(self.y) != self.n:
            raise ValueError(f"x has {self.n} rows but y has {len(self.y)}")
        self.w = np.ones(self.n, np.float32) if w is None else np.asarray(w, np.float32)
        self.bs, self.shuffle, self.seed = int(bs), bool(shuffle), int(seed)
        self.drop_last = self.shuffle if drop_last is None else bool(drop_last)
        if self.drop_last and self.n < self.bs:
            raise ValueError(f"only {self.n} rows for batch size {self.bs} with drop_last=True: "
                             "lower bs or pass drop_last=False")

    def __len__(self) -> int:
        return self.n // self.bs if self.drop_last else -(-self.n // self.bs)

    def __repr__(self) -> str:
        return (f"DataLoader({self.n} rows, bs={self.bs}, {len(self)} batches"
                f"{', shuffled' if self.shuffle else ''}{', drop_last' if self.drop_last else ''})")

    def order(self, epoch: int) -> np.ndarray:
        """Row order of an epoch (a permutation when shuffling)."""
        if self.shuffle:
            return epoch_rng(self.seed, epoch).permutation(self.n)
        return np.arange(self.n)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        order = self.order(epoch)
        for b in range(start, len(self)):
            idx = order[b * self.bs:(b + 1) * self.bs]
            w = self.w[idx]
            if len(idx) < self.bs:  # pad the short last batch with weight-0 copies of row 0
                pad = self.bs - len(idx)
                idx = np.concatenate([idx, np.full(pad, idx[0] if len(idx) else 0)])
                w = np.concatenate([w, np.zeros(pad, np.float32)])
            yield take_rows(self.x, idx), self.y[idx], w

    def __iter__(self) -> Iterator[Batch]:
        return self.batches(0)

    def one_batch(self) -> Batch:
        return next(iter(self.batches(0)))

    def new(self, x: Any = None, y: np.ndarray | None = None, **kwargs) -> DataLoader:
        """A loader like this one over other arrays (fastai's ``dl.new``)."""
        kw = dict(bs=self.bs, shuffle=False, drop_last=False, seed=self.seed) | kwargs
        return DataLoader(self.x if x is None else x, self.y if y is None else y, **kw)

    @property
    def arrays(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """The whole dataset, for loaders the engine may run an epoch of on device (``lax.scan``)."""
        return self.x, self.y, self.w


@dataclass
class DataLoaders:
    """A training and a validation loader (and optionally more), as fastai's ``DataLoaders``."""

    train: Loader
    valid: Loader

    def __getitem__(self, i: int) -> Loader:
        return (self.train, self.valid)[i]

    @property
    def loaders(self) -> list[Loader]:
        return [self.train, self.valid]

    def one_batch(self) -> Batch:
        return next(iter(self.train.batches(0)))


def prefetch(it: Iterator[Any], size: int = 2, put: Callable[[Any], Any] | None = None) -> Iterator[Any]:
    """Run ``it`` (and ``put``, e.g. a device transfer) in a background thread, ``size`` items ahead."""
    if size <= 0:
        yield from (put(b) if put else b for b in it)
        return
    q: queue.Queue = queue.Queue(maxsize=size)
    sentinel = object()
    stop = threading.Event()

    def work():
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(put(item) if put else item)
        except BaseException as e:  # re-raised in the consumer thread
            q.put(e)
            return
        q.put(sentinel)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is sentinel:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # drain so the worker can finish
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(timeout=0.01)
