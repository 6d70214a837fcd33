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
