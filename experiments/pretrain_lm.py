"""Pretrain an AWD-LSTM language model from scratch (the WT103 step of ULMFiT, for machines without fastai's
weights), on the shared English corpus, and export it in fastai's format.

    # CPU-sized, as measured for experiments/results/ulmfit_cpu_protocol.md (4.07M tokens, ~21 min on 2 busy cores)
    python -m experiments.pretrain_lm --data-dir ../shared/data --size tiny --max-words 3000000 --max-vocab 10000 \
        --epochs 1 --out /tmp/u6_models/english_tiny
    python -m experiments.pretrain_lm --size full --epochs 10 --out models/english_full          # GPU/TPU
    python -m experiments.pretrain_lm --wikitext103 PATH/wikitext-103 --size full ...           # the real WT103

Corpus (``english_lm/`` in the shared data, about 6.3M words; WikiText-103 *train* was not obtainable here):
WikiText-103 valid+test articles, NLTK's Gutenberg, Reuters, ABC, Brown (tags stripped), State of the Union,
inaugural addresses and web text, one document per article/file, each tokenized by our fastai-compatible
tokenizer so the vocabulary lines up with fastai's. The WikiText-103 *test* articles are held out as the
validation set (``--valid wikitext-test``) and the reported perplexity is on them; it is *not* comparable to
published WikiText-103 perplexities (different tokenization, vocabulary and a corpus ~20x smaller).
Output: ``<out>/lm.pth`` (fastai state-dict layout, loadable by fastai's ``load_pretrained``), ``<out>/itos.pkl``
(the vocabulary list), ``<out>/report.json``; use them with
``language_model_learner(dls, AWD_LSTM, pretrained_fnames=(<out>/lm.pth, <out>/itos.pkl), config=...)``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ulmfit_jax import AWD_LSTM, TextDataLoaders, language_model_learner
from ulmfit_jax.models import awd_lstm_lm_config
from ulmfit_jax.weights import save_fastai_lm

SIZES = {
    "tiny": dict(emb_sz=64, n_hid=256, n_layers=3),
    "small": dict(emb_sz=200, n_hid=576, n_layers=3),
    "full": {k: awd_lstm_lm_config[k] for k in ("emb_sz", "n_hid", "n_layers")},
}
NLTK_PLAIN = ("gutenberg", "webtext", "abc", "state_union", "inaugural", "reuters")
_WIKI_FIX = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "xxunk"))
_TAG = re.compile(r"/[^\s/]+(?=\s|$)")


def wikitext_articles(path: Path) -> Iterator[str]:
    """Articles of a WikiText ``.tokens`` file, its ``@-@``-style escapes undone and ``<unk>`` as ``xxunk``."""
    cur: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s.startswith("= ") and not s.startswith("= = "):
            if cur:
                yield " ".join(cur)
            cur = []
            continue
        if s and not s.startswith("="):
            for a, b in _WIKI_FIX:
                s = s.replace(a, b)
            cur.append(s)
    if cur:
        yield " ".join(cur)


def nltk_documents(path: Path, name: str) -> Iterator[str]:
    """Files of an NLTK corpus zip as documents (Brown: word/TAG pairs turned back into words)."""
    with zipfile.ZipFile(path) as zf:
        for n in sorted(zf.namelist()):
            base = n.rsplit("/", 1)[-1]
            if n.endswith("/") or base.startswith(("README", "cats", "CONTENTS")) or base.endswith((".zip", ".py")):
                continue
            text = zf.read(n).decode("utf-8", errors="replace")
            if name == "brown":
                text = _TAG.sub("", text)
            if len(text.split()) > 20:
                yield text


def english_corpus(root: Path, max_words: int | None = None) -> tuple[list[str], list[str]]:
    """(training documents, validation documents = WikiText-103 test articles)."""
    lm = root / "english_lm" if (root / "english_lm").is_dir() else root
    valid = list(wikitext_articles(lm / "wikitext-103" / "wiki.test.tokens"))
    train = list(wikitext_articles(lm / "wikitext-103" / "wiki.valid.tokens"))
    for name in NLTK_PLAIN + ("brown",):
        z = lm / "nltk_corpora" / f"{name}.zip"
        if z.is_file():
            train += list(nltk_documents(z, name))
    if max_words is not None:
        rng = np.random.default_rng(0)
        order, kept, n = rng.permutation(len(train)), [], 0
        for i in order:
            kept.append(train[i])
            n += len(train[i].split())
            if n >= max_words:
                break
        train = kept
    return train, valid


def pretrain(train: list[str], valid: list[str], out: Path, config: dict, epochs: int, lr: float, bs: int,
             drop_mult: float, seed: int = 0, max_vocab: int = 60000) -> dict:
    """Train from scratch with one-cycle and write lm.pth + itos.pkl + report.json to ``out``."""
    df = pd.DataFrame({"text": train + valid, "is_valid": [False] * len(train) + [True] * len(valid)})
    t0 = time.perf_counter()
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_col="is_valid", bs=bs, seq_len=72,
                                  seed=seed, cache_dir=None, max_vocab=max_vocab)
    t_tok = time.perf_counter() - t0
    print(f"corpus: {len(train)} training / {len(valid)} validation documents, "
          f"{dls.train.n_tokens:,} / {dls.valid.n_tokens:,} tokens, vocab {len(dls.vocab):,} ({t_tok:.0f}s)")
    learn = language_model_learner(dls, AWD_LSTM, drop_mult=drop_mult, pretrained=False, config=config, seed=seed,
                                   path=out)
    t0 = time.perf_counter()
    learn.fit_one_cycle(epochs, lr, moms=(0.8, 0.7))
    fit_s = time.perf_counter() - t0
    loss, acc, ppl = learn.validate()
    out.mkdir(parents=True, exist_ok=True)
    save_fastai_lm(learn.model, out / "lm.pth")
    with open(out / "itos.pkl", "wb") as f:
        pickle.dump(list(dls.vocab), f)
    report = {"config": config, "epochs": epochs, "lr": lr, "bs": bs, "drop_mult": drop_mult,
              "train_tokens": dls.train.n_tokens, "valid_tokens": dls.valid.n_tokens, "vocab": len(dls.vocab),
              "valid_loss": loss, "valid_accuracy": acc, "valid_perplexity": ppl, "fit_seconds": fit_s,
              "tokens_per_second": epochs * dls.train.n_tokens / fit_s}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"validation perplexity {ppl:.1f} (accuracy {acc:.3f}) after {epochs} epochs, {fit_s:.0f}s; "
          f"wrote {out}/lm.pth, itos.pkl, report.json")
    return report


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA", "../shared/data"))
    ap.add_argument("--wikitext103", default=None, help="a WikiText-103 folder with wiki.train.tokens (GPU runs)")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--drop-mult", type=float, default=0.1)
    ap.add_argument("--max-words", type=int, default=None, help="subsample the training corpus")
    ap.add_argument("--max-vocab", type=int, default=60000, help="fastai's default; smaller is faster on a CPU")
    ap.add_argument("--out", default="models/english_lm")
    a = ap.parse_args(argv)
    if a.wikitext103:
        root = Path(a.wikitext103)
        train = list(wikitext_articles(root / "wiki.train.tokens"))
        valid = list(wikitext_articles(root / "wiki.valid.tokens"))
    else:
        train, valid = english_corpus(Path(a.data_dir), a.max_words)
    return pretrain(train, valid, Path(a.out), SIZES[a.size], a.epochs, a.lr, a.bs, a.drop_mult,
                    max_vocab=a.max_vocab)


if __name__ == "__main__":
    main()
