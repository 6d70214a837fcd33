"""Tokenization with fastai's rules: one text (``tokenize1``), many in parallel (``tokenize_texts``), or a stream.

``Tokenizer`` = fastai's ``TokenizeWithRules``: the rules rewrite the string, a base tokenizer splits it into words,
post rules rewrite each token. The base tokenizer is our pure-Python port of spaCy's English tokenizer
(``WordTokenizer``, identical output to spaCy on IMDB), or spaCy itself (``tok='spacy'``), or SentencePiece.

Parallelism: a pool of worker processes (``fork`` where the platform has it, as fastai) each holding one
tokenizer; texts go out in chunks and come back in order, with a bounded number of chunks in flight so that a
stream of any length is tokenized in bounded memory. Workers can also return token ids over a worker-local
vocabulary (``iter_token_ids``), which is much cheaper to send back than strings and is what corpus building uses.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing as mp
import os
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any

import numpy as np

from ulmfit_jax.text_rules import DEFAULT_POST_RULES, DEFAULT_RULES, Rule, apply_rules, rules_key
from ulmfit_jax.word_tokenizer import TABLES_PATH, SpacyTokenizer, WordTokenizer

TOKENIZER_VERSION = "1"  # bump when tokenization output changes: part of every corpus cache key


def default_workers() -> int:
    """CPUs this process may use (fastai's ``defaults.cpus``, capped at 16)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        n = os.cpu_count() or 1
    return max(1, min(16, n))


class Tokenizer:
    """fastai's ``TokenizeWithRules``: ``rules`` on the string, the base tokenizer ``tok``, ``post_rules`` per token.

    ``tok``: None (``WordTokenizer``, the spaCy port), ``'spacy'`` (spaCy itself), or any object called as
    ``tok(texts) -> iterable of token lists`` (fastai's protocol), e.g. ``SentencePieceTokenizer``.
    """

    def __init__(self, tok: Any = None, rules: Sequence[Rule] | None = None,
                 post_rules: Sequence[Rule] | None = None):
        self.rules = tuple(DEFAULT_RULES if rules is None else rules)
        self.post_rules = tuple(DEFAULT_POST_RULES if post_rules is None else post_rules)
        self._post_in_tok = tok is None or tok == "spacy"
        if tok is None:
            tok = WordTokenizer(post_rules=self.post_rules)
        elif tok == "spacy":
            tok = SpacyTokenizer(post_rules=self.post_rules)
        elif isinstance(tok, str):
            raise ValueError(f"unknown base tokenizer {tok!r}: pass None, 'spacy' or a tokenizer object")
        self.tok = tok

    def __call__(self, texts: Iterable[str]) -> Iterator[list[str]]:
        """Token lists of ``texts``, in order."""
        rules = self.rules
        out = self.tok(apply_rules(str(t), rules) for t in texts)
        if self._post_in_tok or not self.post_rules:
            yield from (toks if type(toks) is list else list(toks) for toks in out)
            return
        for toks in out:
            for rule in self.post_rules:
                toks = [rule(t) for t in toks]
            yield list(toks)

    def tokenize1(self, text: str) -> list[str]:
        """Tokens of one text (fastai's ``tokenize1``)."""
        return next(self([text]))

    def setup(self, texts: Sequence[str]) -> None:
        """Train the base tokenizer if it needs it (SentencePiece) on the rule-processed ``texts``."""
        if hasattr(self.tok, "setup"):
            self.tok.setup([apply_rules(str(t), self.rules) for t in texts])

    @property
    def key(self) -> str:
        """Identifies the tokenization output (rules, base tokenizer and its tables): part of cache keys."""
        h = hashlib.sha256()
        h.update(f"v{TOKENIZER_VERSION}|{rules_key(self.rules)}|{rules_key(self.post_rules)}|".encode())
        h.update(f"{type(self.tok).__module__}.{type(self.tok).__qualname__}|".encode())
        h.update(",".join(getattr(self.tok, "special_toks", ())).encode())
        if isinstance(self.tok, WordTokenizer):
            h.update(TABLES_PATH.read_bytes())
        elif hasattr(self.tok, "model_key"):
            h.update(self.tok.model_key().encode())
        elif isinstance(self.tok, SpacyTokenizer):
            import spacy
            h.update(spacy.about.__version__.encode())
        return h.hexdigest()[:16]


def tokenize1(text: str, tok: Any = None, rules: Sequence[Rule] | None = None) -> list[str]:
    """Tokens of one text, exactly as fastai's ``tokenize1(text, WordTokenizer())`` (``xxbos`` first)."""
    return Tokenizer(tok, rules).tokenize1(text)


# ---- worker processes --------------------------------------------------------------------------------------
# Each worker process holds one tokenizer and, for id output, its own token -> local id table; both live only
# in the worker (set by the pool initializer), never in the parent.
_worker: dict[str, Any] = {}


class _IdTable(dict):
    """token -> id, a new token getting the next id (so look-ups run as ``map(table.__getitem__, tokens)``)."""

    def __missing__(self, key: str) -> int:
        v = self[key] = len(self)
        return v


def _init_worker(tokenizer: Tokenizer, in_pool: bool = True) -> None:
    if in_pool and isinstance(tokenizer.tok, WordTokenizer):
        # our tokenizer only builds lists, tuples and dicts without reference cycles, which reference counting
        # frees; the cycle collector would keep re-scanning the growing token cache (about 10% of the time)
        gc.disable()
    _worker["tok"] = tokenizer
    _worker["ids"] = _IdTable()
    _worker["source"] = f"{os.getpid()}-{uuid.uuid4().hex}"


def _tokens_task(texts: list[str]) -> list[list[str]]:
    return list(_worker["tok"](texts))


def _ids_task(texts: list[str]) -> tuple[str, list[str], np.ndarray, np.ndarray]:
    """Tokens of ``texts`` as worker-local ids: (worker, tokens new to this worker, ids, per-text lengths)."""
    table: _IdTable = _worker["ids"]
    start = len(table)
    toks = list(_worker["tok"](texts))
    lengths = np.fromiter(map(len, toks), np.int64, count=len(toks))
    ids = np.fromiter(map(table.__getitem__, chain.from_iterable(toks)), np.int32, count=int(lengths.sum()))
    new = list(islice(table, start, None))  # dicts keep insertion order: the tokens this task added
    return _worker["source"], new, ids, lengths


def _chunks(texts: Iterable[str], size: int, max_chars: int = 1_000_000) -> Iterator[list[str]]:
    """Lists of up to ``size`` texts and about ``max_chars`` characters (long documents travel alone)."""
    chunk: list[str] = []
    chars = 0
    for t in texts:
        chunk.append(t)
        chars += len(t)
        if len(chunk) >= size or chars >= max_chars:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _pool_map(fn: Callable, chunks: Iterable[list[str]], tokenizer: Tokenizer, n_workers: int,
              in_flight: int | None = None, start_method: str | None = None) -> Iterator[Any]:
    """``fn`` over ``chunks`` in a process pool, results in order, at most ``in_flight`` chunks pending."""
    if start_method is None:
        start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(start_method)
    in_flight = in_flight or 2 * n_workers
    with warnings.catch_warnings():
        # JAX warns on any fork once it has started its runtime threads. Our workers run only Python and NumPy
        # (tokenizing), never JAX, so no lock a JAX thread might hold is ever needed in them; fork is what
        # fastai uses too, and it spares scripts the ``if __name__ == "__main__"`` guard that spawn requires.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        pool = ctx.Pool(n_workers, initializer=_init_worker, initargs=(tokenizer,))
    with pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(fn, (chunk,)))
            if len(pending) >= in_flight:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _chunk_size(n: int | None, n_workers: int) -> int:
    if n is None:
        return 500
    return int(min(2000, max(16, -(-n // (4 * n_workers)))))


def _resolve(tokenizer: Tokenizer | None, n_workers: int | None, n: int | None) -> tuple[Tokenizer, int]:
    tokenizer = Tokenizer() if tokenizer is None else tokenizer
    n_workers = default_workers() if n_workers is None else int(n_workers)
    if n is not None and n < 64:  # not worth starting processes
        n_workers = 0
    return tokenizer, n_workers


def iter_tokenize(texts: Iterable[str], n_workers: int | None = None, tokenizer: Tokenizer | None = None,
                  chunk_size: int | None = None, start_method: str | None = None) -> Iterator[list[str]]:
    """Token lists of a stream of texts, in order, tokenized by ``n_workers`` processes in bounded memory."""
    n = len(texts) if isinstance(texts, Sequence) else None
    tokenizer, n_workers = _resolve(tokenizer, n_workers, n)
    if n_workers <= 1:
        yield from tokenizer(texts)
        return
    size = chunk_size or _chunk_size(n, n_workers)
    for res in _pool_map(_tokens_task, _chunks(texts, size), tokenizer, n_workers, start_method=start_method):
        yield from res


def tokenize_texts(texts: Iterable[str], n_workers: int | None = None, rules: Sequence[Rule] | None = None,
                   tok: Any = None) -> list[list[str]]:
    """Token lists of ``texts`` with fastai's rules (``xxbos`` first), each exactly fastai's ``tokenize1``."""
    tokenizer = Tokenizer(tok, rules)
    return list(iter_tokenize(texts, n_workers=n_workers, tokenizer=tokenizer))


class TokenIds:
    """Merges worker-local token ids into one corpus-wide table, numbered by first appearance in the corpus."""

    def __init__(self) -> None:
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        self._maps: dict[Any, np.ndarray] = {}

    def add(self, source: Any, new_tokens: list[str], local_ids: np.ndarray) -> np.ndarray:
        """Global ids for ``local_ids`` of worker ``source``, which has just added ``new_tokens``."""
        stoi, itos = self.stoi, self.itos
        glob = np.empty(len(new_tokens), np.int32)
        for i, t in enumerate(new_tokens):
            j = stoi.get(t)
            if j is None:
                j = stoi[t] = len(itos)
                itos.append(t)
            glob[i] = j
        old = self._maps.get(source, np.empty(0, np.int32))
        self._maps[source] = mapping = np.concatenate([old, glob])
        return mapping[local_ids]


def iter_token_ids(texts: Iterable[str], table: TokenIds, n_workers: int | None = None,
                   tokenizer: Tokenizer | None = None, chunk_size: int | None = None,
                   start_method: str | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, lengths) per chunk of a stream of texts: ids int32 in ``table``'s numbering, lengths per text."""
    n = len(texts) if isinstance(texts, Sequence) else None
    tokenizer, n_workers = _resolve(tokenizer, n_workers, n)
    size = chunk_size or _chunk_size(n, max(1, n_workers))
    if n_workers <= 1:
        _init_worker(tokenizer, in_pool=False)  # the same task code in this process (its table is per call)
        try:
            for chunk in _chunks(texts, size):
                src, new, ids, lengths = _ids_task(chunk)
                yield table.add(src, new, ids), lengths
        finally:
            _worker.clear()
        return
    for src, new, ids, lengths in _pool_map(_ids_task, _chunks(texts, size), tokenizer, n_workers,
                                            start_method=start_method):
        yield table.add(src, new, ids), lengths
