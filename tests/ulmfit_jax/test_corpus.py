"""Tokenized corpora: building (in memory, streamed to disk), memory-mapped loading, counts, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ulmfit_jax.corpus import Corpus, build_corpus, cached_corpus, corpus_key
from ulmfit_jax.text_files import iter_text_files, list_text_files
from ulmfit_jax.tokenize import tokenize_texts

TEXTS = ["Hello world.", "", "The world is BIG, hello!", "Third text here.", "hello " * 50]


def test_build_in_memory_matches_tokenize_texts():
    c = build_corpus(TEXTS, n_workers=0)
    assert c.n_docs == 5 and [c.tokens(i) for i in range(5)] == tokenize_texts(TEXTS, n_workers=0)
    assert c.ids.dtype == np.int32 and c.itos[:2] == ["xxbos", "xxmaj"]  # numbered by first appearance
    assert c.meta["tokenizer"]


def test_parallel_build_numbers_tokens_like_serial():
    texts = TEXTS * 40 + [f"Review {i} is about film {i % 7}." for i in range(300)]
    a, b = build_corpus(texts, n_workers=0), build_corpus(texts, n_workers=2)
    assert a.itos == b.itos
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.offsets, b.offsets)


def test_streamed_to_disk_and_memory_mapped(tmp_path):
    names = []

    def stream():
        for i, t in enumerate(TEXTS):
            names.append(f"doc{i}")
            yield t

    c = build_corpus(stream(), n_workers=0, names=names, out=tmp_path / "c", meta={"key": "k"})
    assert isinstance(c.ids, np.memmap) and c.names == [f"doc{i}" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "ids.i32", "itos.json", "meta.json", "names.json", "offsets.npy"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    d = Corpus.load(tmp_path / "c", mmap=False)
    assert d.meta["key"] == "k" and [d.tokens(i) for i in range(5)] == [c.tokens(i) for i in range(5)]
    json.loads((tmp_path / "c" / "meta.json").read_text())  # plain JSON, no pickle


def test_counts_on_subsets():
    c = build_corpus(TEXTS, n_workers=0)
    full = c.counts()
    assert full.sum() == c.n_tokens
    sub = c.counts(np.array([0, 2]))
    ref = np.bincount(np.concatenate([c.doc(0), c.doc(2)]), minlength=len(c.itos))
    np.testing.assert_array_equal(sub, ref)
    np.testing.assert_array_equal(c.counts(np.array([0, 1, 2, 4])), full - c.counts(np.array([3])))
    np.testing.assert_array_equal(c.counts(block=7), full)


def test_cached_corpus_builds_once(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        return build_corpus(TEXTS, n_workers=0, out=folder, meta={"key": key})

    key = corpus_key("tok", "files")
    a = cached_corpus(key, build, tmp_path, "x")
    b = cached_corpus(key, build, tmp_path, "x")
    assert len(calls) == 1 and a.itos == b.itos
    cached_corpus(corpus_key("tok2", "files"), build, tmp_path, "x")
    assert len(calls) == 2


def test_bad_corpora(tmp_path):
    with pytest.raises(ValueError, match="offsets end"):
        Corpus(np.zeros(3, np.int32), np.array([0, 2]), ["a"])
    with pytest.raises(FileNotFoundError, match="meta.json"):
        Corpus.load(tmp_path)


def test_text_files_filters(tmp_path):
    (tmp_path / "train" / "pos").mkdir(parents=True)
    (tmp_path / "train" / "pos" / "a.txt").write_text("x")
    (tmp_path / "train" / "urls_pos.txt").write_text("u")
    (tmp_path / "other.md").write_text("m")
    assert list_text_files(tmp_path) == ["train/pos/a.txt"]
    assert list_text_files(tmp_path, folders=["test"]) == []
    assert list(iter_text_files(tmp_path)) == [("train/pos/a.txt", "x")]
