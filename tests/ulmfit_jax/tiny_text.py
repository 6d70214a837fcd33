"""Tiny synthetic text DataLoaders for learner tests (engine batch protocol), independent of the text pipeline."""

from __future__ import annotations

import numpy as np

from learner_jax.data import DataLoader, DataLoaders

SPECIALS = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]


def tiny_vocab(n_words: int = 37) -> list[str]:
    """fastai-shaped vocabulary: special tokens, ``w0..``, then ``xxfake`` padding to a multiple of 8."""
    vocab = SPECIALS + [f"w{i}" for i in range(n_words)]
    vocab += [f"xxfake{i}" if i else "xxfake" for i in range((-len(vocab)) % 8)]
    return vocab


class LMStream:
    """fastai's LM batching: ``bs`` contiguous streams cut into ``seq_len`` windows, targets shifted by one."""

    def __init__(self, tokens: np.ndarray, bs: int, seq_len: int):
        n = (len(tokens) - 1) // bs
        self.x = tokens[: n * bs].reshape(bs, n).astype(np.int32)
        self.y = tokens[1: n * bs + 1].reshape(bs, n).astype(np.int32)
        self.bs, self.seq_len = bs, seq_len

    def __len__(self) -> int:
        return self.x.shape[1] // self.seq_len

    def batches(self, epoch: int = 0, start: int = 0):
        for i in range(start, len(self)):
            s = slice(i * self.seq_len, (i + 1) * self.seq_len)
            yield self.x[:, s], self.y[:, s], np.ones(self.bs, np.float32)


def lm_tokens(n: int, vocab: list[str], seed: int = 0) -> np.ndarray:
    """A learnable stream: mostly w_i -> w_{i+1} (cyclic), 10% random jumps."""
    first, n_words = 9, sum(t.startswith("w") for t in vocab)
    rng = np.random.default_rng(seed)
    toks = [2]
    for _ in range(n - 1):
        nxt = first + (toks[-1] - first + 1) % n_words if rng.random() > 0.1 else rng.integers(first, first + n_words)
        toks.append(int(nxt))
    return np.asarray(toks, np.int32)


def lm_dls(vocab: list[str], bs: int = 8, seq_len: int = 20, n: int = 16000) -> DataLoaders:
    toks = lm_tokens(n, vocab)
    cut = int(n * 0.8)
    dls = DataLoaders(LMStream(toks[:cut], bs, seq_len), LMStream(toks[cut:], bs, seq_len))
    dls.vocab = vocab
    return dls


def pad_chunk(doc: np.ndarray, length: int, seq_len: int, pad: int = 1) -> np.ndarray:
    """fastai's pad_input_chunk layout: whole pad chunks in front, the remainder at the end."""
    n_pad = length - len(doc)
    return np.concatenate([np.full(n_pad // seq_len * seq_len, pad), doc, np.full(n_pad % seq_len, pad)])


def clas_dls(vocab: list[str], n: int = 192, bs: int = 16, seq_len: int = 8, length: int = 30,
             regression: bool = False, backwards: bool = False, seed: int = 0) -> DataLoaders:
    """Documents in the LM's "language" (runs w_i -> w_{i+1}) labelled 1, or random words labelled 0, so a
    pretrained LM encoder helps; for regression the target is the share of in-order steps."""
    rng = np.random.default_rng(seed)
    first, n_words = 9, sum(t.startswith("w") for t in vocab)
    docs, ys = [], []
    for _ in range(n):
        size = int(rng.integers(4, length))
        ordered = rng.random() < 0.5
        start = rng.integers(0, n_words)
        doc = (first + (start + np.arange(size)) % n_words if ordered
               else rng.integers(first, first + n_words, size))
        steps = np.mean((np.diff(doc) - 1) % n_words == 0)
        ys.append(float(steps) if regression else int(ordered))
        doc = np.concatenate([[2], doc])
        docs.append(doc[::-1] if backwards else doc)
    x = np.stack([pad_chunk(d, length, seq_len) for d in docs]).astype(np.int32)
    y = np.asarray(ys, np.float32 if regression else np.int32)
    cut = int(n * 0.75)
    dls = DataLoaders(DataLoader(x[:cut], y[:cut], bs=bs, shuffle=True, seed=seed),
                      DataLoader(x[cut:], y[cut:], bs=bs))
    dls.vocab = vocab
    if not regression:
        dls.classes = ["random", "ordered"]
    return dls
