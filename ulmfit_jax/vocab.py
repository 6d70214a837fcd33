"""Vocabularies as fastai v2 builds them (``make_vocab``) and numericalization to int32 arrays.

A vocabulary is a plain ``list[str]`` (index -> token, fastai's ``itos``): special tokens first in v2's order
(``xxunk``=0, ``xxpad``=1, ``xxbos``=2, ...), then tokens by decreasing count (ties in order of first appearance),
then ``xxfake`` padding. We reproduce v2's padding quirk on purpose: it appends ``8 - len % 8`` fakes, so a
length that is already a multiple of 8 gets 8 more, and ``max_vocab=60000`` gives 60008 entries; with it, our
vocabulary has exactly the size (and so the embedding shapes) fastai's would. ``xxfake`` is never a lookup
target: unknown words, and ``xxfake`` itself, map to ``xxunk`` (0).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ulmfit_jax.text_rules import FAKE, SPECIAL_TOKENS, UNK


def make_vocab(count: Mapping[str, int], min_freq: int = 3, max_vocab: int = 60000,
               special_toks: Sequence[str] | None = None) -> list[str]:
    """fastai's ``make_vocab``: tokens seen at least ``min_freq`` times, the most common first, padded to 8."""
    if min_freq < 1:
        raise ValueError(f"min_freq must be at least 1, got {min_freq}")
    if max_vocab < 1:
        raise ValueError(f"max_vocab must be positive, got {max_vocab}")
    special_toks = list(SPECIAL_TOKENS if special_toks is None else special_toks)
    items = count.most_common(max_vocab) if isinstance(count, Counter) else \
        sorted(count.items(), key=lambda kv: kv[1], reverse=True)[:max_vocab]  # stable: ties keep their order
    vocab = [o for o, c in items if c >= min_freq]
    specials = set(special_toks)
    vocab = special_toks + [o for o in vocab if o not in specials]
    vocab = vocab[:max_vocab]
    return vocab + [FAKE] * (8 - len(vocab) % 8)


def make_vocab_from_counts(itos: Sequence[str], counts: np.ndarray, min_freq: int = 3, max_vocab: int = 60000,
                           special_toks: Sequence[str] | None = None) -> list[str]:
    """``make_vocab`` over count arrays (``counts[i]`` is the count of ``itos[i]``; ids in first-appearance order)."""
    counts = np.asarray(counts)
    if len(counts) != len(itos):
        raise ValueError(f"{len(itos)} tokens but {len(counts)} counts")
    order = np.argsort(-counts, kind="stable")[:max_vocab]
    order = order[counts[order] >= min_freq]
    return make_vocab(_Ordered((itos[i], int(counts[i])) for i in order), min_freq, max_vocab, special_toks)


class _Ordered(dict):
    """Counts already in vocabulary order (so ``make_vocab`` keeps it)."""

    def __init__(self, items: Iterable[tuple[str, int]]):
        super().__init__(items)


def token_to_id(vocab: Sequence[str]) -> dict[str, int]:
    """token -> index for numericalizing, without ``xxfake`` (fastai's ``o2i``); look up with ``.get(t, 0)``."""
    check_vocab(vocab)
    return {t: i for i, t in enumerate(vocab) if t != FAKE}


def numericalize(tokens: Iterable[str], vocab: Sequence[str] | Mapping[str, int]) -> np.ndarray:
    """int32 ids of ``tokens`` (unknown tokens -> 0, ``xxunk``)."""
    o2i = vocab if isinstance(vocab, Mapping) else token_to_id(vocab)
    get = o2i.get
    return np.fromiter((get(t, 0) for t in tokens), np.int32)


def remap_ids(itos: Sequence[str], vocab: Sequence[str]) -> np.ndarray:
    """Table taking ids over ``itos`` (a corpus's own token table) to ids in ``vocab``: ``table[corpus_ids]``."""
    o2i = token_to_id(vocab)
    return np.fromiter((o2i.get(t, 0) for t in itos), np.int32, count=len(itos))


def decode(ids: Iterable[int], vocab: Sequence[str], pad_idx: int | None = 1) -> list[str]:
    """Tokens of ``ids`` (padding dropped when ``pad_idx`` is given)."""
    return [vocab[i] for i in np.asarray(ids).tolist() if pad_idx is None or i != pad_idx]


def check_vocab(vocab: Sequence[str], n_tokens: int | None = None) -> None:
    """Refuse a vocabulary that is not fastai-shaped, or (with ``n_tokens``) not the size a model expects."""
    if isinstance(vocab, (str, bytes)) or not all(isinstance(t, str) for t in vocab[:16]):
        raise TypeError("a vocabulary is a list of token strings (fastai's itos), "
                        f"got {type(vocab).__name__} starting {list(vocab[:3])!r}")
    if len(vocab) == 0 or vocab[0] != UNK:
        raise ValueError(f"vocabulary must start with {UNK!r} (index 0), got {list(vocab[:3])!r}")
    if n_tokens is not None and len(vocab) != n_tokens:
        raise ValueError(f"vocabulary has {len(vocab)} tokens but the model's embedding has {n_tokens} rows: "
                         "use the vocabulary the model was trained with (dls_lm.vocab), or load weights "
                         "through the vocab remapping (match_embeds)")


def save_vocab(path: str | os.PathLike, vocab: Sequence[str]) -> None:
    """Write a vocabulary as a JSON list (atomically)."""
    check_vocab(vocab)
    _write_json(path, list(vocab))


def load_vocab(path: str | os.PathLike) -> list[str]:
    """Read a vocabulary written by ``save_vocab`` (or any JSON list of tokens)."""
    try:
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a JSON vocabulary (truncated or damaged: {e}); write it again with "
                         "save_vocab") from e
    if not isinstance(vocab, list):
        raise ValueError(f"{path}: expected a JSON list of tokens, got {type(vocab).__name__}")
    check_vocab(vocab)
    return vocab


def _write_json(path: str | os.PathLike, obj: object) -> None:
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
