"""Tokenized corpora stored as arrays: build once (streaming, in parallel), memory-map on every later run.

A ``Corpus`` is every document's token ids in one int32 array plus document offsets, over the corpus's own token
table (``itos``: every distinct token, in order of first appearance). Vocabularies are made later, from counts on
whichever split is the training set, and applied through a small id -> id table, so one tokenized corpus serves
the language model and the classifier alike.

On disk (a folder, written atomically): ``ids.i32`` (raw little-endian int32, memory-mapped when read),
``offsets.npy`` (int64), ``itos.json``, ``names.json`` (one name per document, e.g. file paths) and ``meta.json``
(format, counts, and the cache ``key``: a hash of the tokenizer, its rules and the source files). No pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learner_jax.checkpoint import fsync_tree
from learner_jax.progress import step_bar
from ulmfit_jax.tokenize import TokenIds, Tokenizer, iter_token_ids

FORMAT = 1
CACHE_ENV = "ULMFIT_JAX_CACHE"


def default_cache_dir() -> Path:
    """Where tokenized corpora are kept: ``$ULMFIT_JAX_CACHE`` or ``~/.cache/ulmfit_jax/corpora``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "ulmfit_jax" / "corpora"


@dataclass
class Corpus:
    """Token ids of documents: ``ids[offsets[i]:offsets[i+1]]`` is document ``i``, over the token table ``itos``."""

    ids: np.ndarray
    offsets: np.ndarray
    itos: list[str]
    names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, np.int64)
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or self.offsets[0] != 0:
            raise ValueError("offsets must be a 1-d array starting at 0")
        if self.offsets[-1] != len(self.ids):
            raise ValueError(f"offsets end at {self.offsets[-1]} but there are {len(self.ids)} token ids")
        if self.names is not None and len(self.names) != self.n_docs:
            raise ValueError(f"{len(self.names)} names for {self.n_docs} documents")

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc(self, i: int) -> np.ndarray:
        return np.asarray(self.ids[self.offsets[i]:self.offsets[i + 1]])

    def tokens(self, i: int) -> list[str]:
        return [self.itos[j] for j in self.doc(i).tolist()]

    def counts(self, docs: np.ndarray | None = None, block: int = 1 << 24) -> np.ndarray:
        """How often each token of ``itos`` occurs in ``docs`` (all documents by default), in bounded memory."""
        n = len(self.itos)
        if docs is None:
            out = np.zeros(n, np.int64)
            for s in range(0, self.n_tokens, block):
                out += np.bincount(self.ids[s:s + block], minlength=n)
            return out
        docs = np.asarray(docs, np.int64)
        if len(docs) > self.n_docs // 2:  # most documents: count all, subtract the others
            keep = np.zeros(self.n_docs, bool)
            keep[docs] = True
            return self.counts() - self.counts(np.flatnonzero(~keep))
        out = np.zeros(n, np.int64)
        for i in docs.tolist():
            out += np.bincount(self.ids[self.offsets[i]:self.offsets[i + 1]], minlength=n)
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the corpus into the folder ``path`` (atomically: built beside it, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            np.asarray(self.ids, "<i4").tofile(tmp / "ids.i32")
            self._write_rest(tmp)
            _publish(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    def _write_rest(self, folder: Path) -> None:
        np.save(folder / "offsets.npy", self.offsets)
        (folder / "itos.json").write_text(json.dumps(self.itos, ensure_ascii=False), encoding="utf-8")
        if self.names is not None:
            (folder / "names.json").write_text(json.dumps(self.names, ensure_ascii=False), encoding="utf-8")
        meta = dict(self.meta, format=FORMAT, n_docs=self.n_docs, n_tokens=self.n_tokens, n_itos=len(self.itos))
        (folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = True) -> Corpus:
        """Read a saved corpus; the token ids are memory-mapped (read-only) unless ``mmap=False``."""
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"no corpus at {path} (meta.json missing)")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{meta_file} is unreadable ({e}): delete the folder {path} to rebuild it") from e
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            meta = meta if isinstance(meta, dict) else {}
            raise ValueError(f"corpus at {path} has format {meta.get('format')}, this code reads {FORMAT}")
        n = int(meta["n_tokens"])
        if n == 0:
            ids = np.zeros(0, np.int32)
        elif mmap:
            ids = np.memmap(path / "ids.i32", dtype="<i4", mode="r", shape=(n,))
        else:
            ids = np.fromfile(path / "ids.i32", dtype="<i4", count=n)
        itos = json.loads((path / "itos.json").read_text(encoding="utf-8"))
        names_file = path / "names.json"
        names = json.loads(names_file.read_text(encoding="utf-8")) if names_file.exists() else None
        return cls(ids, np.load(path / "offsets.npy"), itos, names, meta)


def _publish(tmp: Path, path: Path) -> None:
    """Flush a finished folder and rename it into place. A current copy is moved aside first and deleted only
    once the new one is in place (put back if the rename fails); if another process got there first, keep theirs."""
    fsync_tree(tmp)
    aside = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}" if path.exists() else None
    if aside is not None:
        os.replace(path, aside)
    try:
        os.replace(tmp, path)
    except OSError:
        if not (path / "meta.json").exists():
            if aside is not None and not path.exists():
                os.replace(aside, path)
            raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def build_corpus(texts: Iterable[str], tokenizer: Tokenizer | None = None, n_workers: int | None = None,
                 names: Sequence[str] | None = None, out: str | os.PathLike | None = None,
                 meta: dict | None = None) -> Corpus:
    """Tokenize ``texts`` (a sequence or a stream) into a ``Corpus``, in memory or, with ``out``, straight to disk.

    Streaming: texts are consumed as the workers need them and ids are appended to the file as they come back,
    so memory stays bounded by the token table, whatever the corpus size. ``names`` is read after the stream is
    exhausted, so it may be a list that the text generator fills as it goes.
    """
    tokenizer = Tokenizer() if tokenizer is None else tokenizer
    table = TokenIds()
    # a bar (terminals and notebooks only) once tokenizing takes more than a few seconds
    bar = step_bar(len(texts) if isinstance(texts, Sized) else None, desc="tokenizing", unit="docs", delay=3)
    lengths: list[np.ndarray] = []
    meta = dict(meta or {}, tokenizer=tokenizer.key)
    if out is None:
        parts = []
        for ids, lens in iter_token_ids(texts, table, n_workers=n_workers, tokenizer=tokenizer):
            parts.append(ids)
            lengths.append(lens)
            bar.update(len(lens))
        bar.close()
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths) if lengths else [])]).astype(np.int64)
        return Corpus(ids, offsets, table.itos, None if names is None else list(names), meta)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        with open(tmp / "ids.i32", "wb") as f:
            for ids, lens in iter_token_ids(texts, table, n_workers=n_workers, tokenizer=tokenizer):
                np.asarray(ids, "<i4").tofile(f)
                lengths.append(lens)
                bar.update(len(lens))
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths) if lengths else [])]).astype(np.int64)
        n = int(offsets[-1])
        ids_view = np.memmap(tmp / "ids.i32", dtype="<i4", mode="r", shape=(n,)) if n else np.zeros(0, np.int32)
        corpus = Corpus(ids_view, offsets, table.itos, None if names is None else list(names), meta)
        corpus._write_rest(tmp)
        del ids_view, corpus
        _publish(tmp, out)
    finally:
        bar.close()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Corpus.load(out)


def corpus_key(*parts: str) -> str:
    """Cache key of a corpus from its ingredients (tokenizer key, files key, options)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def cached_corpus(key: str, build: Callable[[Path], Corpus], cache_dir: str | os.PathLike | None,
                  name: str = "corpus") -> Corpus:
    """The corpus stored under ``cache_dir/<name>-<key>``, built (and stored) by ``build(folder)`` if absent."""
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{name}-{key}"
    if (folder / "meta.json").exists():
        try:
            corpus = Corpus.load(folder)
        except (ValueError, OSError) as e:  # a damaged cache is rebuilt (then replaced), never trusted
            warnings.warn(f"corpus cache {folder} is unreadable ({e}); building it again", stacklevel=2)
        else:
            if corpus.meta.get("key") == key:
                return corpus
    return build(folder)


def texts_key(texts: Iterable[str]) -> str:
    """Fingerprint of in-memory texts (for caching corpora made from data frames)."""
    h = hashlib.sha256()
    for t in texts:
        b = str(t).encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:16]
