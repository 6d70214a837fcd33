"""The corpus cache is replaced only once the new copy is in place: a failed publish leaves the old one readable."""

from __future__ import annotations

import os

import pytest

from ulmfit_jax import corpus as corpus_mod
from ulmfit_jax.corpus import Corpus, build_corpus

TEXTS = ["the cat sat", "on the mat", "a dog"]


def test_failed_publish_keeps_the_old_cache(tmp_path, monkeypatch):
    out = tmp_path / "corpus"
    old = build_corpus(TEXTS, n_workers=0, out=out)
    real_replace = os.replace

    def replace(src, dst):
        if ".tmp-" in str(src):  # the new folder's rename into place fails (disk full, killed, ...)
            raise OSError("simulated failure")
        return real_replace(src, dst)

    monkeypatch.setattr(corpus_mod.os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        build_corpus(TEXTS + ["more text"], n_workers=0, out=out)
    monkeypatch.undo()
    again = Corpus.load(out)
    assert again.n_docs == old.n_docs == 3 and again.itos == old.itos
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # nothing left beside it
    assert build_corpus(TEXTS + ["more text"], n_workers=0, out=out).n_docs == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_damaged_cache_meta_is_named_and_rebuilt(tmp_path):
    from ulmfit_jax.corpus import cached_corpus, corpus_key

    key = corpus_key("tok", "texts")
    built = []

    def build(folder):
        built.append(folder)
        return build_corpus(TEXTS, n_workers=0, out=folder, meta={"key": key})

    folder = cached_corpus(key, build, tmp_path, "x").meta and tmp_path / f"x-{key}"
    (folder / "meta.json").write_text("{garbage")
    with pytest.raises(ValueError, match=r"meta.json is unreadable.*delete the folder"):
        Corpus.load(folder)
    with pytest.warns(UserWarning, match="is unreadable.*building it again"):
        assert cached_corpus(key, build, tmp_path, "x").n_docs == 3
    assert len(built) == 2 and Corpus.load(folder).n_docs == 3
