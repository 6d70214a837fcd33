"""Text preprocessing at scale: the full IMDB language-model data, and a streamed 100M-token corpus.

``imdb``: ``TextDataLoaders.from_folder(<aclImdb .tar.gz>, is_lm=True, valid_pct=0.1)`` from scratch (100,000
reviews: tokenize in ``--workers`` processes, count, build the vocabulary and the loaders), then one pass over
every training batch (numericalizing through the loader) and a second, cached construction. Wall time per phase
and peak memory (this process, and the largest worker) are reported.

``synthetic``: a corpus of ``--tokens`` tokens streamed from the shared general-English text (WikiText-103
valid/test, PTB, NLTK corpora), reshuffled and repeated as often as needed, tokenized straight to a memory-mapped
file, then read by the LM loader: memory stays bounded by the token table, not the corpus.

    python -m experiments.bench.scale_text imdb --data /work/shared/data/imdb/aclImdb_v1_text.tar.gz
    python -m experiments.bench.scale_text synthetic --tokens 100_000_000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ulmfit_jax.corpus import build_corpus
from ulmfit_jax.text_data import TextDataLoaders
from ulmfit_jax.text_loaders import LMDataLoader
from ulmfit_jax.tokenize import Tokenizer
from ulmfit_jax.vocab import make_vocab_from_counts, remap_ids

DATA = Path(os.environ.get("LESSON4_DATA", "/work/shared/data"))


def memory(phase: str) -> dict:
    """Memory after a phase: peak resident size so far (this process; the largest finished child, i.e. a
    tokenizer worker) and, on Linux, the current split into anonymous memory and memory-mapped file pages
    (the token file's pages count as resident once read, but are clean page cache the OS can drop)."""
    out = {f"{phase}_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           f"{phase}_worker_peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return out
    for line in status.splitlines():
        key, _, val = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[f"{phase}_{key}_mb"] = round(int(val.split()[0]) / 1024, 1)
    return out


def baseline() -> dict:
    """Resident memory before any work: the interpreter plus imports (the ulmfit_jax package imports JAX)."""
    return {"baseline_after_imports_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def run_imdb(path: str, workers: int, cache_dir: str) -> dict:
    res: dict = {"data": path, "workers": workers} | baseline()
    t0 = time.perf_counter()
    dls = TextDataLoaders.from_folder(path, is_lm=True, valid_pct=0.1, bs=64, seq_len=72, n_workers=workers,
                                      cache_dir=cache_dir)
    res["from_folder_s"] = round(time.perf_counter() - t0, 1)
    res |= {"n_docs": int(len(dls.train.docs) + len(dls.valid.docs)), "vocab": len(dls.vocab),
            "train_tokens": dls.train.n_tokens, "valid_tokens": dls.valid.n_tokens,
            "train_batches": len(dls.train), "valid_batches": len(dls.valid)}
    res |= memory("after_from_folder")
    t0 = time.perf_counter()
    n = 0
    for x, _y, _ in dls.train.batches(0):
        n += x.size
    res["one_epoch_of_batches_s"] = round(time.perf_counter() - t0, 1)
    res["tokens_per_epoch"] = n
    t0 = time.perf_counter()
    again = TextDataLoaders.from_folder(path, is_lm=True, valid_pct=0.1, n_workers=workers, cache_dir=cache_dir)
    res["from_folder_cached_s"] = round(time.perf_counter() - t0, 1)
    assert again.vocab == dls.vocab
    res |= memory("at_end")
    return res


def english_docs(seed: int) -> list[str]:
    """Documents of the shared general-English text: WikiText articles, PTB lines in groups, NLTK files."""
    docs: list[str] = []
    for f in ("wikitext-103/wiki.valid.tokens", "wikitext-103/wiki.test.tokens"):
        article: list[str] = []
        for line in (DATA / "english_lm" / f).read_text(encoding="utf-8").splitlines():
            if line.startswith(" = ") and not line.startswith(" = = ") and article:
                docs.append("\n".join(article))
                article = []
            article.append(line)
        docs.append("\n".join(article))
    for f in ("ptb/ptb.valid.txt", "ptb/ptb.test.txt"):
        lines = (DATA / "english_lm" / f).read_text(encoding="utf-8").splitlines()
        docs += ["\n".join(lines[i:i + 20]) for i in range(0, len(lines), 20)]
    for z in ("state_union", "inaugural", "abc", "webtext"):
        with zipfile.ZipFile(DATA / "english_lm" / "nltk_corpora" / f"{z}.zip") as zf:
            for name in zf.namelist():
                if name.endswith(".txt") and "README" not in name:
                    docs.append(io.TextIOWrapper(zf.open(name), encoding="latin-1").read())
    docs = [d for d in docs if d.strip()]
    random.Random(seed).shuffle(docs)
    return docs


def stream_docs(docs: list[str], n_words: int, seed: int) -> Iterator[str]:
    """Documents, reshuffled on every pass, until about ``n_words`` whitespace words have been produced."""
    rng = random.Random(seed)
    words = 0
    while words < n_words:
        order = list(range(len(docs)))
        rng.shuffle(order)
        for i in order:
            yield docs[i]
            words += docs[i].count(" ") + 1
            if words >= n_words:
                return


def run_synthetic(n_tokens: int, workers: int, out_dir: str) -> dict:
    docs = english_docs(0)
    words_per_doc = sum(d.count(" ") + 1 for d in docs)
    res: dict = {"source_docs": len(docs), "source_words": words_per_doc, "workers": workers} | baseline()
    t0 = time.perf_counter()
    # about 1.2 tokens per whitespace word after fastai's rules (xxmaj, punctuation): aim a little low
    corpus = build_corpus(stream_docs(docs, int(n_tokens / 1.2), 1), Tokenizer(), n_workers=workers,
                          out=Path(out_dir) / "synthetic")
    res["tokenize_s"] = round(time.perf_counter() - t0, 1)
    res |= {"n_docs": corpus.n_docs, "n_tokens": corpus.n_tokens, "itos": len(corpus.itos),
            "ids_file_mb": round(os.path.getsize(Path(out_dir) / "synthetic" / "ids.i32") / 2**20, 1),
            "memory_mapped": isinstance(corpus.ids, np.memmap)}
    res |= memory("after_tokenizing")
    t0 = time.perf_counter()
    vocab = make_vocab_from_counts(corpus.itos, corpus.counts(), min_freq=3, max_vocab=60000)
    dl = LMDataLoader(corpus.ids, corpus.offsets, remap=remap_ids(corpus.itos, vocab), bs=64, seq_len=72,
                      shuffle=True, seed=0)
    res["vocab_and_loader_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    n_b = min(len(dl), 2000)
    for b, _batch in enumerate(dl.batches(0)):
        if b + 1 >= n_b:
            break
    res["batches_per_s"] = round(n_b / (time.perf_counter() - t0), 1)
    res["n_batches"] = len(dl)
    res |= memory("after_counting_and_batches")
    return res


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("imdb")
    a.add_argument("--data", default=str(DATA / "imdb" / "aclImdb_v1_text.tar.gz"))
    s = sub.add_parser("synthetic")
    s.add_argument("--tokens", type=lambda v: int(float(v)), default=100_000_000)
    for q in (a, s):
        q.add_argument("--workers", type=int, default=2)
        q.add_argument("--work-dir", default=None, help="where corpora are written (a temporary folder)")
        q.add_argument("--keep", action="store_true", help="keep the written corpus")
        q.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    work = args.work_dir or tempfile.mkdtemp(prefix="scale_text_")
    try:
        res = run_imdb(args.data, args.workers, work) if args.what == "imdb" else \
            run_synthetic(args.tokens, args.workers, work)
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
