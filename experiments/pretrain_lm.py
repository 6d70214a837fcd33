"""Pretrain an AWD-LSTM language model from scratch (the WT103 step of ULMFiT, for machines without fastai's
weights) and export it: fastai's format (lm.pth + itos.pkl) and the code-free format shipped with the package
(weights .npz in fp16 + vocabulary .json, see ``ulmfit_jax.pretrained``).

    # the shipped "english-small" LM (experiments/results/pretrained_lm.md): review text + general English,
    # checkpointed every few minutes; rerunning the same command after a kill continues where it stopped
    nice -n 10 python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu.py \
        --config.data_dir=../shared/data --workdir runs/english_small
    python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_lesson.py \
        --config.wikitext103=PATH/wikitext-103 --workdir runs/wt103_full                     # GPU/TPU, the real WT103

Config fields (experiments/configs/base_pretrain_lm.py; the former options data_dir, wikitext103, corpus, size,
epochs, lr, bs, drop_mult, max_words, english_words, heldout_reviews, max_vocab, ckpt_minutes, out; new: seed,
model.* size overrides, corpus=generated for smoke runs). ``out`` defaults to ``--workdir``.

Corpora (``corpus``): ``english`` is ``english_lm/`` in the shared data (about 6.3M words: WikiText-103
valid articles, NLTK's Gutenberg, Reuters, ABC, Brown (tags stripped), State of the Union, inaugural addresses
and web text; WikiText-103 *train* was not obtainable here); ``reviews`` is IMDB ``train/`` (pos, neg) and
``train/unsup`` (never ``test/``), minus ``heldout_reviews`` drawn at random (seed 0) from ``train/unsup`` for
the held-out perplexity; ``reviews+english`` mixes both (``english_words`` of the general text). A language
model of reviews is what learns sentiment (the probe in experiments/results/ulmfit_cpu_protocol.md). The
validation set is the WikiText-103 *test* articles; the IMDB held-out perplexity is measured after training.
Perplexities are not comparable to published WikiText-103 numbers (different tokenization, vocabulary, corpus).
Output in ``out``: ``lm.pth``/``itos.pkl`` (fastai), ``lm.npz``/``vocab.json`` (code-free), ``report.json``,
``curve.jsonl`` (smoothed training loss per logged step, continued across restarts) and ``curve.png``;
``checkpoints/`` holds the orbax training state (every ``ckpt_minutes``), from which a rerun resumes.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from learner_jax.callbacks import Callback, CheckpointCallback
from ulmfit_jax import AWD_LSTM, TextDataLoaders, language_model_learner
from ulmfit_jax.models import awd_lstm_lm_config
from ulmfit_jax.weights import load_vocab, save_fastai_lm

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


def wikitext_file(path: Path) -> list[str]:
    """The articles of one WikiText ``.tokens`` file; a missing file or one without articles is refused by name."""
    if not path.is_file():
        raise FileNotFoundError(f"no pretraining text: {path} does not exist (WikiText-103's wiki.train/valid/test"
                                ".tokens are expected in that folder)")
    arts = list(wikitext_articles(path))
    if not arts:
        raise ValueError(f"no pretraining text: {path} holds no WikiText articles ('= Title =' lines followed by text)")
    return arts


def english_corpus(root: Path, max_words: int | None = None) -> tuple[list[str], list[str]]:
    """(training documents, validation documents = WikiText-103 test articles)."""
    lm = root / "english_lm" if (root / "english_lm").is_dir() else root
    if not (lm / "wikitext-103").is_dir():
        raise FileNotFoundError(f"no pretraining text under {root}: expected english_lm/wikitext-103/ (or "
                                "wikitext-103/) with wiki.valid.tokens and wiki.test.tokens, and optionally "
                                "nltk_corpora/*.zip (config.data_dir; the shared data's README)")
    valid = wikitext_file(lm / "wikitext-103" / "wiki.test.tokens")
    train = wikitext_file(lm / "wikitext-103" / "wiki.valid.tokens")
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


IMDB_HELDOUT_SEED = 0


def review_corpus(root: Path, heldout: int, max_reviews: int | None = None) -> tuple[list[str], list[str]]:
    """(IMDB ``train/`` + ``train/unsup`` reviews for training, ``heldout`` unsup reviews held out); never test/.
    ``max_reviews`` keeps a random subset (seed 1) of the training reviews, in corpus order."""
    from ulmfit_jax.text_files import iter_text_files

    tar = root / "imdb" / "aclImdb_v1_text.tar.gz"
    src = tar if tar.is_file() else root / "imdb" / "aclImdb"
    if not src.exists():
        raise FileNotFoundError(f"no IMDB reviews under {root / 'imdb'} (aclImdb_v1_text.tar.gz or aclImdb/)")
    names, texts = [], []
    for name, text in iter_text_files(src, folders=["train"]):
        if name.startswith(("train/pos/", "train/neg/", "train/unsup/")):
            names.append(name)
            texts.append(text.replace("<br />", "\n"))
    if not texts:
        raise ValueError(f"{src} holds no review text under train/ (pos, neg, unsup)")
    unsup = [i for i, n in enumerate(names) if n.startswith("train/unsup/")]
    held = set(np.random.default_rng(IMDB_HELDOUT_SEED).choice(unsup, size=min(heldout, len(unsup)),
                                                                 replace=False).tolist())
    train = [i for i in range(len(texts)) if i not in held]
    if max_reviews is not None and max_reviews < len(train):
        rng = np.random.default_rng(IMDB_HELDOUT_SEED + 1)
        train = sorted(rng.choice(train, size=max_reviews, replace=False).tolist())
    return [texts[i] for i in train], [texts[i] for i in sorted(held)]


class CurveLogger(Callback):
    """Append (step, smoothed loss, lr) to ``curve.jsonl`` every ``every`` steps, flushed at once, so the
    learning curve survives a kill; on resume, entries past the restored step are dropped."""

    def __init__(self, path: Path, every: int = 20):
        self.path, self.every = path, every

    def before_fit(self, learn):
        step = int(learn.state.step)
        rows = read_curve(self.path)
        kept = [r for r in rows if r["step"] <= step]
        if len(kept) != len(rows):
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self.t0 = time.perf_counter()

    def after_batch(self, learn, metrics):
        step = int(metrics["step"]) + 1
        if step % self.every == 0:
            row = {"step": step, "loss": float(learn.recorder.smooth_loss), "lr": float(np.ravel(metrics["lr"])[-1]),
                   "epoch": learn.epoch, "time": time.time()}
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")


def read_curve(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill mid-write
            break
    return rows


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def plot_curve(rows: list[dict], path: Path, title: str) -> Path | None:
    """The learning curve (smoothed training loss against tokens seen) as a PNG."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1.5)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (smoothed cross-entropy, nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def pretrain(train: list[str], valid: list[str], out: Path, config: dict, epochs: int, lr: float, bs: int,
             drop_mult: float, seed: int = 0, max_vocab: int = 60000, heldout: list[str] | None = None,
             ckpt_minutes: float = 5.0, corpus_note: str = "", extra_cbs: Sequence[Callback] = (),
             ckpt_steps: int | None = None, curve_every: int = 20, precision: str = "fp32",
             storage: str = "float16", init_from: Sequence[str | os.PathLike] | None = None) -> dict:
    """Train with one-cycle, checkpointing every ``ckpt_minutes`` (a rerun resumes), then write
    lm.pth + itos.pkl (fastai), lm.npz + vocab.json (shipped format), report.json and the learning curve.
    From scratch, or with ``init_from=(weights, vocab)`` (e.g. ``pretrained_lm(name)``) from an earlier LM, all of
    it trained, on its vocabulary: more epochs for a pretrained LM, under a new one-cycle schedule.
    ``precision='bf16'`` trains with ``learn.to_bf16()`` (float32 weights and checkpoints either way);
    ``storage`` is the shipped .npz's (float16, or int8 rows with float32 scales: half the bytes)."""
    _check_precision(precision)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"text": train + valid, "is_valid": [False] * len(train) + [True] * len(valid)})
    t0 = time.perf_counter()
    # continuing an LM keeps its vocabulary (every row of its embedding keeps its meaning)
    init_vocab = load_vocab(init_from[1]) if init_from is not None else None
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_col="is_valid", bs=bs, seq_len=72,
                                  seed=seed, cache_dir=out / "cache", max_vocab=max_vocab, text_vocab=init_vocab)
    t_tok = time.perf_counter() - t0
    print(f"corpus: {len(train)} training / {len(valid)} validation documents, "
          f"{dls.train.n_tokens:,} / {dls.valid.n_tokens:,} tokens, vocab {len(dls.vocab):,} ({t_tok:.0f}s)",
          flush=True)
    learn = language_model_learner(dls, AWD_LSTM, drop_mult=drop_mult, pretrained=False, config=config, seed=seed,
                                   path=out, pretrained_fnames=init_from)
    if init_from is not None:
        learn.unfreeze()  # a pretrained learner starts frozen (fastai); continued pretraining trains every layer
    _in_precision(learn, precision)
    steps_per_ckpt = ckpt_steps or max(1, int(ckpt_minutes * 60 * 6000 / (bs * 72)))  # ~6k tokens/s, 2 cores
    ckpt_dir = out / "checkpoints"
    resume = ckpt_dir if ckpt_dir.is_dir() and any(ckpt_dir.iterdir()) else None
    if resume:
        print(f"resuming from {ckpt_dir}", flush=True)
    t0 = time.perf_counter()
    cbs = [CheckpointCallback(ckpt_dir, every_n_steps=steps_per_ckpt, every_epoch=True),
           CurveLogger(out / "curve.jsonl", every=curve_every), *extra_cbs]
    learn.fit_one_cycle(epochs, lr, moms=(0.8, 0.7), cbs=cbs, resume_from=resume)
    fit_s = time.perf_counter() - t0
    loss, acc, ppl = learn.validate()
    report = {"config": config, "epochs": epochs, "lr": lr, "bs": bs, "drop_mult": drop_mult, "seed": seed,
              "precision": precision, "init_from": [str(f) for f in init_from] if init_from is not None else None,
              "corpus": corpus_note, "train_documents": len(train), "train_tokens": dls.train.n_tokens,
              "valid_tokens": dls.valid.n_tokens, "vocab": len(dls.vocab), "max_vocab": max_vocab,
              "wikitext103_test": {"loss": loss, "accuracy": acc, "perplexity": ppl},
              "fit_seconds_this_run": fit_s, "resumed": bool(resume)}
    if heldout:
        # the held-out reviews as the validation split (the training split, unused, repeats them: a loader
        # needs enough tokens for one batch)
        hdf = pd.DataFrame({"text": heldout + heldout, "is_valid": [True] * len(heldout) + [False] * len(heldout)})
        hdls = TextDataLoaders.from_df(hdf, text_col="text", is_lm=True, valid_col="is_valid", bs=bs, seq_len=72,
                                       text_vocab=list(dls.vocab), cache_dir=None)
        h_loss, h_acc, h_ppl = learn.validate(hdls.valid)
        report["imdb_heldout"] = {"reviews": len(heldout), "tokens": hdls.valid.n_tokens, "loss": h_loss,
                                  "accuracy": h_acc, "perplexity": h_ppl}
    save_fastai_lm(learn.model, out / "lm.pth")
    with open(out / "itos.pkl", "wb") as f:
        pickle.dump(list(dls.vocab), f)
    from ulmfit_jax.pretrained import save_shipped_lm

    report["shipped"] = save_shipped_lm(learn.model, list(dls.vocab), out / "lm.npz", out / "vocab.json",
                                        config=config, storage=storage)
    report["shipped"] |= shipped_file_perplexities(out, dls, config, precision, hdls if heldout else None)
    rows = read_curve(out / "curve.jsonl")
    if rows:
        report["wall_seconds_total"] = rows[-1]["time"] - rows[0]["time"]
    plot_curve(rows, out / "curve.png", f"AWD-LSTM {config['emb_sz']}/{config['n_hid']}/{config['n_layers']} "
                                        f"pretraining ({dls.train.n_tokens / 1e6:.1f}M tokens/epoch)")
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    print(f"wrote {out}/lm.pth, itos.pkl, lm.npz, vocab.json, report.json, curve.png", flush=True)
    return report


def _check_precision(precision: str) -> None:
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")


def _in_precision(learn, precision: str) -> None:
    """The one place a pretraining learner (training, or the shipped file's evaluation) gets its precision."""
    if precision == "bf16":
        learn.to_bf16()


def shipped_file_perplexities(out: Path, dls: TextDataLoaders, config: dict, precision: str,
                              heldout_dls: TextDataLoaders | None) -> dict:
    """Perplexities of the weights as written to ``out/lm.npz`` (what ships, e.g. int8-stored), loaded back through
    ``pretrained_fnames`` and measured on the same splits, in the same precision, as the trained model."""
    learn = language_model_learner(dls, AWD_LSTM, pretrained_fnames=(out / "lm.npz", out / "vocab.json"),
                                   config=config, progress=False)
    _in_precision(learn, precision)
    res = {"wikitext103_test_perplexity": learn.validate()[2]}
    if heldout_dls is not None:
        res["imdb_heldout_perplexity"] = learn.validate(heldout_dls.valid)[2]
    return res


def corpus_from_config(c) -> tuple[list[str], list[str], list[str] | None, str]:
    """(train, valid, IMDB held-out reviews or None, a note saying what the corpus is) for config ``c``."""
    heldout = None
    if c.wikitext103:
        root = Path(c.wikitext103)
        train = wikitext_file(root / "wiki.train.tokens")
        valid = wikitext_file(root / "wiki.valid.tokens")
        return train, valid, None, f"WikiText-103 train ({root})"
    if c.corpus == "generated":
        from experiments.text_lesson import generated_reviews

        texts = generated_reviews(c.generated_docs).text.tolist()
        cut = max(1, len(texts) // 10)
        return texts[cut:], texts[:cut], None, f"{len(texts)} generated template reviews"
    if c.corpus not in ("english", "reviews", "reviews+english"):
        raise ValueError(f"config.corpus must be english, reviews, reviews+english or generated, got {c.corpus!r}")
    root = Path(c.data_dir or os.environ.get("LESSON4_DATA", "../shared/data"))
    words = c.english_words if c.corpus == "reviews+english" else c.max_words
    train, valid = english_corpus(root, words)
    note = f"general English ({sum(len(t.split()) for t in train):,} words)"
    if c.corpus != "english":
        reviews, heldout = review_corpus(root, c.heldout_reviews, c.max_reviews)
        rw = sum(len(t.split()) for t in reviews)
        if c.corpus == "reviews":
            train, note = reviews, f"IMDB train+unsup reviews ({len(reviews):,} reviews, {rw:,} words)"
        else:
            train = train + reviews
            note += f" + IMDB train+unsup reviews ({len(reviews):,} reviews, {rw:,} words)"
    return train, valid, heldout, note


def init_files(spec: str) -> tuple[Path, Path]:
    """(weights, vocab) to continue from: a shipped LM's name, or an earlier run's folder (its lm.npz, vocab.json)."""
    from ulmfit_jax.pretrained import available_models, pretrained_lm

    if spec in available_models():
        lm = pretrained_lm(spec)
        return Path(lm.weights), Path(lm.vocab)
    folder = Path(spec)
    missing = [n for n in ("lm.npz", "vocab.json") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"config.init_from={spec!r} is neither a shipped LM ({', '.join(available_models())}) "
                                f"nor a pretraining run's folder: {', '.join(missing)} missing in {folder}")
    return folder / "lm.npz", folder / "vocab.json"


def shipped_description(report: dict, init_from: str = "") -> str:
    """The manifest's one-line description of a pretraining run's LM: model, corpus, the LM it continued (if any)
    and its held-out perplexities."""
    then = f", continuing the LM of {init_from}" if init_from else ""
    return (f"AWD-LSTM {report['config']}, {report['train_tokens']:,} tokens x {report['epochs']} epoch(s) of "
            f"{report['corpus']}{then}; WikiText-103 test perplexity {report['wikitext103_test']['perplexity']:.1f}"
            + (f", IMDB held-out {report['imdb_heldout']['perplexity']:.1f}" if "imdb_heldout" in report else ""))


def run(c, workdir: Path | None = None) -> dict:
    """Pretrain as config ``c`` says into ``c.out`` (default: ``workdir``), which also gets the config, host facts,
    per-epoch metrics (JSON lines, TensorBoard) and a checkpoint on SIGTERM."""
    from experiments.launch import host_info
    from experiments.preemption import SaveOnPreemption
    from experiments.workdir import MetricsCallback, Workdir

    if c.size not in SIZES:
        raise ValueError(f"config.size must be one of {sorted(SIZES)}, got {c.size!r}")
    config = dict(SIZES[c.size]) | {k: v for k, v in c.model.items() if v is not None}
    out = Path(c.out or workdir or "models/english_lm")
    init_from = init_files(c.init_from) if c.init_from else None
    train, valid, heldout, note = corpus_from_config(c)
    with Workdir(out, c, host_info()) as wd:
        cbs = [MetricsCallback(wd.metrics, "pretrain"), SaveOnPreemption(wd.preemption)]
        report = pretrain(train, valid, out, config, c.epochs, c.lr, c.bs, c.drop_mult, seed=c.seed,
                          max_vocab=c.max_vocab, heldout=heldout, ckpt_minutes=c.ckpt_minutes, corpus_note=note,
                          extra_cbs=cbs, precision=c.precision, storage=c.storage, init_from=init_from)
    if c.ship:
        from ulmfit_jax.pretrained import ship_model

        desc = shipped_description(report, c.init_from)
        entry = ship_model(c.ship, out / "lm.npz", out / "vocab.json", report["config"], desc)
        print(f"shipped as {c.ship!r}: {entry}")
    return report


def main(argv: list[str] | None = None) -> dict:
    from experiments.launch import CONFIGS, run_script

    return run_script(run, CONFIGS / "pretrain_lm_cpu.py", argv)


if __name__ == "__main__":
    main()
