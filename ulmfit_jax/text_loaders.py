"""Text loaders with fastai v2's sampling, on the engine's batch protocol ``(x, y, w)`` with static shapes.

Both read documents straight from a corpus's id array (memory-mapped or not) through an optional id -> id table
(``remap``, corpus ids to vocabulary ids), so no numericalized copy of the corpus is ever made.

``LMDataLoader`` (fastai's ``LMDataLoader``): the documents, reshuffled every epoch when ``shuffle``, form one
stream, cut into ``bs`` contiguous rows of ``bl = (n_tokens - 1) // bs`` tokens (the tail that does not fill a
row is dropped, as fastai does); batch ``b`` row ``r`` is ``stream[r*bl + b*seq_len : +seq_len]`` and its target
the same shifted by one, so row ``r`` of batch ``b+1`` continues row ``r`` of batch ``b`` (the LSTM state carries
over). fastai ends with a shorter batch of ``bl % seq_len`` tokens; we drop it so every batch is
``(bs, seq_len)`` and nothing recompiles: at most ``seq_len - 1`` tokens per row (< 0.1% of IMDB) are not used
in an epoch, and since documents are reshuffled each epoch, not the same ones. ``backwards`` reverses each
document before streaming (v2). ``w`` is all ones.
Devices and hosts: ``bs`` is the global number of streams. The engine splits a batch by rows, so each of N
devices carries ``bs/N`` whole contiguous streams (rows ``d*bs/N ...``) together with their LSTM state, and the
set of streams is the same for any device or host count: 1, 8 or 256 devices train on exactly the same batches
(fastai's distributed LM instead cuts the stream per process, fastai#1933). In a multi-process run the learner
sets ``rows`` to this process's block, and the loader then reads only those streams' tokens.

``SortedDL`` (fastai's ``SortedDL`` + ``pad_input_chunk``): training batches are sortish (a random permutation
with the longest document first, chunks of ``bs*50`` sorted by decreasing length, the middle batches shuffled,
the last partial batch dropped); otherwise documents are sorted by decreasing length, or kept in their order
(``sort=False``, for predictions that must line up with the input); rows of a batch are always in decreasing
length when sorted, as fastai's encoder expects. Rows are padded v2's way:
whole ``seq_len`` chunks of ``pad_idx`` at the front, the remainder at the end, so every text starts on a
``seq_len`` boundary. Deliberate difference: the padded width is the batch's longest document rounded up to a
bucket (``bucket_len``: multiples of ``seq_len`` with at most two sizes per doubling) instead of the exact
maximum, so that a whole IMDB epoch compiles about a dozen shapes instead of hundreds; training batches of
documents cut to ``max_len`` all get one width (``one_width``, the bucket of the longest cut document), so the
training step compiles once. Each row is first laid
out exactly as fastai lays it out for the batch's longest document (``L``), then the bucket's extra width
goes in front as whole pad chunks (and ``L`` rounded up to ``seq_len`` at the end): every row keeps fastai's
chunk boundaries relative to its batch, the encoder skips the padding-only chunks, and the last ``max_len``
window holds the same chunks (``max_len`` a multiple of ``seq_len``, as the default 72*20). (Padding each row
to the bucket on its own would misalign rows of different lengths by up to a chunk and make the encoder run
one more chunk than fastai for most batches: measured +22% time at a median batch.) A short last batch is
filled with weight-0 copies of its last row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from learner_jax.data import Batch, epoch_rng


def _docs(offsets: np.ndarray, docs: np.ndarray | None) -> np.ndarray:
    n = len(offsets) - 1
    docs = np.arange(n, dtype=np.int64) if docs is None else np.asarray(docs, np.int64)
    if docs.ndim != 1:
        raise ValueError("docs must be a 1-d array of document indices")
    if len(docs) and (docs.min() < 0 or docs.max() >= n):
        raise ValueError(f"document index out of range: the corpus has {n} documents")
    return docs


class LMDataLoader:
    """Language-model batches: ``x`` int32 (bs, seq_len), ``y`` = ``x`` shifted by one token, ``w`` ones."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, docs: np.ndarray | None = None,
                 remap: np.ndarray | None = None, bs: int = 64, seq_len: int = 72, shuffle: bool = False,
                 seed: int = 0, backwards: bool = False):
        if bs <= 0 or seq_len <= 0:
            raise ValueError(f"bs and seq_len must be positive, got bs={bs}, seq_len={seq_len}")
        self.ids, self.offsets = ids, np.asarray(offsets, np.int64)
        self.docs = _docs(self.offsets, docs)
        self.remap = None if remap is None else np.asarray(remap, np.int32)
        self.bs, self.seq_len, self.shuffle, self.seed = int(bs), int(seq_len), bool(shuffle), int(seed)
        self.backwards = bool(backwards)
        self.rows = slice(0, self.bs)  # which of the bs streams batches() yields (a process's block; default all)
        self.lens = self.offsets[self.docs + 1] - self.offsets[self.docs]
        total = int(self.lens.sum())
        self.bl = (total - 1) // self.bs if total > 0 else 0  # tokens per row (fastai's "batch length")
        self.n_batches = self.bl // self.seq_len
        if self.n_batches == 0:
            raise ValueError(f"{total} tokens are too few for one batch of bs={self.bs} rows of "
                             f"seq_len={self.seq_len}+1 tokens: lower bs or seq_len")

    @property
    def n_tokens(self) -> int:
        return int(self.lens.sum())

    def __len__(self) -> int:
        return self.n_batches

    def doc_order(self, epoch: int) -> np.ndarray:
        """Positions (into ``docs``) of the documents in this epoch's stream."""
        if self.shuffle:
            return epoch_rng(self.seed, epoch).permutation(len(self.docs))
        return np.arange(len(self.docs))

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        order = self.doc_order(epoch)
        lens = self.lens[order]
        starts = self.offsets[self.docs[order]]
        cum = np.concatenate([[0], np.cumsum(lens)])
        rows = (np.arange(self.bs, dtype=np.int64)[self.rows] * self.bl)[:, None]
        cols = np.arange(self.seq_len + 1, dtype=np.int64)[None, :]
        w = np.ones(len(rows), np.float32)
        for b in range(start, self.n_batches):
            pos = rows + b * self.seq_len + cols  # (bs, seq_len + 1) positions in the stream
            d = np.searchsorted(cum, pos, side="right") - 1
            within = pos - cum[d]
            if self.backwards:
                within = lens[d] - 1 - within
            toks = np.asarray(self.ids[starts[d] + within], np.int32)
            if self.remap is not None:
                toks = self.remap[toks]
            yield toks[:, :-1], toks[:, 1:], w

    def __iter__(self) -> Iterator[Batch]:
        return self.batches(0)

    def one_batch(self) -> Batch:
        return next(self.batches(0))


def bucket_len(n: int, seq_len: int) -> int:
    """Padded width for a longest document of ``n`` tokens: ``seq_len`` times 1, 2, 3, 4, 6, 8, 12, 16, 24..."""
    chunks = max(1, -(-int(n) // seq_len))
    size = 1
    while size < chunks:
        # after 1, 2: alternate x1.5 (from a power of two) and x4/3 (back to the next power of two)
        size = size + 1 if size < 2 else size * 3 // 2 if size & (size - 1) == 0 else size * 4 // 3
    return size * seq_len


def pad_chunk_layout(length: int, width: int, seq_len: int, pad_first: bool = True) -> tuple[int, int]:
    """(pad before, pad after) of a text of ``length`` padded to ``width`` the way fastai's ``pad_chunk`` does."""
    pad = width - length
    whole = (pad // seq_len) * seq_len
    return (whole, pad - whole) if pad_first else (0, pad)


def batch_layout(lengths: np.ndarray, width: int, seq_len: int) -> np.ndarray:
    """Start column of each row's text in a batch of ``width`` columns (a multiple of ``seq_len`` at least the
    longest length rounded up to it): fastai's ``pad_input_chunk`` layout for the longest length, shifted right by
    whole pad chunks to fill ``width``."""
    lengths = np.asarray(lengths, np.int64)
    longest = int(lengths.max())
    shift = width - (-(-longest // seq_len)) * seq_len
    if shift < 0 or shift % seq_len:
        raise ValueError(f"width {width} is not a multiple of seq_len {seq_len} covering length {longest}")
    return shift + ((longest - lengths) // seq_len) * seq_len


def sortish_order(lens: np.ndarray, bs: int, rng: np.random.Generator) -> np.ndarray:
    """fastai's ``SortedDL.shuffle_fn``: longest first, then chunks of ``bs*50`` sorted by length, batches shuffled."""
    n = len(lens)
    idxs = rng.permutation(n)
    if n == 0:
        return idxs
    i_max = int(np.flatnonzero(idxs == int(np.argmax(lens)))[0])
    idxs[0], idxs[i_max] = idxs[i_max], idxs[0]
    sz = bs * 50
    chunks = [idxs[i:i + sz] for i in range(0, n, sz)]
    # a stable sort by decreasing length, as Python's sorted(..., reverse=True)
    sort_idx = np.concatenate([c[np.argsort(-lens[c], kind="stable")] for c in chunks])
    batches = [sort_idx[i:i + bs] for i in range(0, n, bs)]
    if len(batches) <= 2:
        return np.concatenate(batches)
    middle = rng.permutation(np.stack(batches[1:-1])).reshape(-1)
    return np.concatenate([batches[0], middle, batches[-1]])


class SortedDL:
    """Classifier batches: ``x`` int32 (bs, width) padded v2-style, ``y`` (bs,) labels, ``w`` (bs,) row weights."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, docs: np.ndarray | None, labels: np.ndarray,
                 remap: np.ndarray | None = None, bs: int = 64, seq_len: int = 72, shuffle: bool = False,
                 drop_last: bool | None = None, seed: int = 0, pad_idx: int = 1, backwards: bool = False,
                 sort: bool = True, max_len: int | None = None, buckets: bool = True,
                 one_width: bool | None = None):
        if bs <= 0 or seq_len <= 0:
            raise ValueError(f"bs and seq_len must be positive, got bs={bs}, seq_len={seq_len}")
        self.ids, self.offsets = ids, np.asarray(offsets, np.int64)
        self.docs = _docs(self.offsets, docs)
        self.labels = np.asarray(labels)
        if len(self.labels) != len(self.docs):
            raise ValueError(f"{len(self.docs)} documents but {len(self.labels)} labels")
        self.remap = None if remap is None else np.asarray(remap, np.int32)
        self.bs, self.seq_len, self.shuffle, self.seed = int(bs), int(seq_len), bool(shuffle), int(seed)
        self.drop_last = self.shuffle if drop_last is None else bool(drop_last)
        self.pad_idx, self.backwards, self.sort = int(pad_idx), bool(backwards), bool(sort)
        self.max_len, self.buckets = max_len, bool(buckets)
        lens = self.offsets[self.docs + 1] - self.offsets[self.docs]
        self.lens = lens if max_len is None else np.minimum(lens, int(max_len))
        # Default: training batches of max_len-cut documents share one width. The 200-label few-label classifier
        # (widths 216, 288, 432 otherwise) compiled one training step instead of three: its first epoch in a
        # cold process 97 -> 50 s, later epochs the same (42.6 vs 42.2 s for two), because the encoder skips
        # whole pad chunks at run time. Evaluation stays bucketed: its 2,000-review pass at one width ran
        # 28.4 -> 32.7 s warm (experiments/bench/clas_stage_seconds.py, ulmfit_speed.md).
        if one_width and not self.buckets:
            raise ValueError("one_width=True needs buckets=True (rows are laid out for the batch's longest "
                             "document, then shifted by whole pad chunks to the common width)")
        auto = self.shuffle and max_len is not None and self.buckets
        self.one_width = auto if one_width is None else bool(one_width)
        self._width = bucket_len(int(self.lens.max()) if len(self.lens) else 1, self.seq_len)
        if self.drop_last and len(self.docs) < self.bs:
            raise ValueError(f"only {len(self.docs)} documents for batch size {self.bs} with drop_last=True: "
                             "lower bs")

    def __len__(self) -> int:
        n = len(self.docs)
        return n // self.bs if self.drop_last else -(-n // self.bs)

    def order(self, epoch: int = 0) -> np.ndarray:
        """Positions (into ``docs``) in this epoch's batch order."""
        if self.shuffle:
            return sortish_order(self.lens, self.bs, epoch_rng(self.seed, epoch))
        if self.sort:
            return np.argsort(-self.lens, kind="stable")
        return np.arange(len(self.docs))

    def width(self, longest: int) -> int:
        """Padded width of a batch whose longest (cut) document has ``longest`` tokens."""
        if self.one_width:
            return self._width
        return bucket_len(longest, self.seq_len) if self.buckets else max(1, int(longest))

    def _doc_ids(self, k: int) -> np.ndarray:
        """Token ids of document ``k`` as the model sees them: remapped, reversed if backwards, truncated."""
        d = self.docs[k]
        a, b = int(self.offsets[d]), int(self.offsets[d + 1])
        if self.max_len is not None and b - a > self.max_len:
            # keep what the model's last max_len positions see: fastai's classifier pools over those
            a, b = (a, a + int(self.max_len)) if self.backwards else (b - int(self.max_len), b)
        toks = np.asarray(self.ids[a:b], np.int32)
        if self.remap is not None:
            toks = self.remap[toks]
        return toks[::-1] if self.backwards else toks

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        order = self.order(epoch)
        for b in range(start, len(self)):
            idx = order[b * self.bs:(b + 1) * self.bs]
            w = np.ones(self.bs, np.float32)
            if len(idx) < self.bs:  # short last batch: weight-0 copies of its last (shortest) row
                w[len(idx):] = 0
                idx = np.concatenate([idx, np.full(self.bs - len(idx), idx[-1])])
            lens = self.lens[idx]  # each row's length after the max_len cut, as _doc_ids returns it
            width = self.width(int(lens.max()))
            starts = (batch_layout(lens, width, self.seq_len) if self.buckets
                      else [pad_chunk_layout(n, width, self.seq_len)[0] for n in lens])
            x = np.full((self.bs, width), self.pad_idx, np.int32)
            for r, (k, front, n) in enumerate(zip(idx.tolist(), starts, lens.tolist())):
                x[r, front:front + n] = self._doc_ids(k)
            yield x, self.labels[idx], w

    def __iter__(self) -> Iterator[Batch]:
        return self.batches(0)

    def one_batch(self) -> Batch:
        return next(self.batches(0))

    def item_order(self, epoch: int = 0) -> np.ndarray:
        """Document positions in the order predictions come out (to put them back in input order)."""
        order = self.order(epoch)
        return order[:len(self) * self.bs] if self.drop_last else order


def lengths_of(offsets: np.ndarray, docs: Sequence[int] | None = None) -> np.ndarray:
    offsets = np.asarray(offsets, np.int64)
    docs = _docs(offsets, None if docs is None else np.asarray(docs))
    return offsets[docs + 1] - offsets[docs]
