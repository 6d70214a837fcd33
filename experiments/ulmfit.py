"""ULMFiT on IMDB: transfer vs from-scratch, ours vs fastai under the identical protocol; and the full lesson config.

    # CPU-feasible protocol as measured on a shared 2-core CPU (experiments/results/ulmfit_cpu_protocol.md):
    python -m experiments.pretrain_lm --size tiny --max-words 3000000 --max-vocab 10000 --epochs 1 \
        --out /tmp/u6_models/english_tiny                                   # ~20 min on 2 busy cores
    python -m experiments.ulmfit --protocol cpu --pretrained /tmp/u6_models/english_tiny --size tiny \
        --lm-docs 3000 --lm-epochs 1 --max-vocab 10000 --clas-train 5000 --clas-test 5000 \
        --review-words 150 --clas-final-epochs 1 [--only ours | --only fastai] --out FILE.json
    # (--only runs one library's side, so both sides can run as two processes; without it ours runs, then fastai)
    # the lesson itself (WT103 weights, full IMDB, 400/1152/3; for a GPU/TPU machine; downloads WT103 + IMDB
    # when online, or reads $LESSON4_DATA/imdb/aclImdb_v1_text.tar.gz)
    python -m experiments.ulmfit --protocol lesson

CPU protocol, identical for both libraries (same texts, same pretrained weights file, same schedule):
  * pretrained LM: ``--pretrained DIR`` (lm.pth + itos.pkl written by experiments/pretrain_lm.py, i.e. fastai's
    format, which fastai itself loads with ``pretrained_fnames``);
  * LM fine-tuning on ``--lm-docs`` reviews drawn at random (seed 0) from IMDB train+unsup (never test), 10% held
    out, vocabulary of at most ``--max-vocab`` words (min_freq 3; words new to the pretrained vocabulary get the
    mean embedding, as fastai): ``fit_one_cycle(--lm-frozen-epochs, 1e-2)`` frozen, then ``--lm-epochs``
    unfrozen at 1e-3, moms (0.8, 0.7), drop_mult 0.3 (``--lm-lr``, ``--lm-unfrozen-lr``, ``--lm-bs`` change them);
  * classifier on ``--clas-train`` random reviews from train/ and ``--clas-test`` from test/ (the validation set;
    each cut to its last ``--review-words`` words when given, to fit a CPU budget), the LM's vocabulary, the
    lesson's gradual unfreezing (2e-2; freeze_to(-2) 1e-2; freeze_to(-3) 5e-3, ``--clas-epochs`` each; unfreeze
    1e-3 x ``--clas-final-epochs``; all four rates times ``--clas-lr-mult``), drop_mult 0.5;
  * from scratch (ours only): the same classifier without the pretrained/fine-tuned encoder, all layers trained
    for the same total number of epochs in one ``fit_one_cycle(n, --scratch-lr)`` (default 1e-2; given several
    rates, each is run and the best reported; ``--only scratch`` runs just this, e.g. as a process of its own).
Reported: LM accuracy/perplexity, classifier accuracy (transfer, scratch; fastai transfer), wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.lesson4 import enable_compilation_cache
from experiments.pretrain_lm import SIZES
from ulmfit_jax import AWD_LSTM, TextDataLoaders, language_model_learner, text_classifier_learner
from ulmfit_jax.text_files import iter_text_files

DEFAULT_REF = "/work/refenv/bin/python"
REF_SCRIPT = Path(__file__).parent / "bench" / "fastai_ulmfit_ref.py"
LESSON = dict(lm_frozen=(1, 1e-2), lm_unfrozen=(10, 1e-3), clas=[(None, 1, 2e-2), (-2, 1, 1e-2), (-3, 1, 5e-3),
                                                                (0, 2, 1e-3)], bs=64)


def imdb_texts(data_dir: str | None) -> Path:
    """The IMDB archive (shared data) or, when absent, fastai's download through the engine's registry."""
    if data_dir:
        tar = Path(data_dir) / "imdb" / "aclImdb_v1_text.tar.gz"
        if tar.is_file():
            return tar
    from learner_jax.download import URLs, untar_data

    return Path(untar_data(URLs.IMDB))


def last_words(text: str, n: int | None) -> str:
    """The last ``n`` whitespace-separated words of ``text`` (all of it when ``n`` is None), as fastai's classifier
    pools over a review's end."""
    words = text.split()
    return text if n is None or len(words) <= n else " ".join(words[-n:])


def read_imdb(path: Path, lm_docs: int | None, n_train: int | None, n_test: int | None, seed: int = 0,
              review_words: int | None = None):
    """(LM texts from train+unsup, classifier frame with label/text/is_valid), subsampled reproducibly; classifier
    reviews cut to their last ``review_words`` words when given (the same texts go to both libraries)."""
    train, test, unsup = [], [], []
    for name, text in iter_text_files(path, folders=["train", "test"]):
        parts = name.split("/")
        if len(parts) != 3:
            continue
        split, label = parts[0], parts[1]
        if label == "unsup":
            unsup.append(text)
        elif label in ("pos", "neg"):
            (train if split == "train" else test).append((label, text))
    rng = np.random.default_rng(seed)

    def pick(items, n):
        idx = rng.permutation(len(items))
        return [items[i] for i in (idx if n is None else idx[:n])]

    tr, te = pick(train, n_train), pick(test, n_test)
    clas = pd.DataFrame([{"label": lab, "text": last_words(t, review_words), "is_valid": False} for lab, t in tr]
                        + [{"label": lab, "text": last_words(t, review_words), "is_valid": True} for lab, t in te])
    lm_pool = [t for _, t in train] + unsup
    lm = pick(lm_pool, lm_docs)
    return lm, clas


def _fit_clas_schedule(learn, schedule, moms=(0.8, 0.7)):
    for stage, epochs, lr in schedule:
        if stage is not None:
            learn.freeze_to(stage) if stage != 0 else learn.unfreeze()
        learn.fit_one_cycle(epochs, lr if stage is None else slice(lr / 2.6 ** 4, lr), moms=moms)


def _scratch(dls, config: dict, a, workdir: Path, res: dict) -> None:
    """The from-scratch classifier at each ``--scratch-lr``; ``scratch_accuracy`` is the best of them."""
    n_epochs = sum(e for _, e, _ in a.schedule)
    runs = []
    for lr in a.scratch_lr:
        t0 = time.perf_counter()
        scratch = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, config=config, pretrained=False,
                                          path=workdir, seed=1)
        scratch.fit_one_cycle(n_epochs, lr, moms=(0.8, 0.7))
        runs.append({"lr": lr, "accuracy": scratch.validate()[1], "seconds": time.perf_counter() - t0})
        print(f"scratch lr {lr}: accuracy {runs[-1]['accuracy']:.4f} ({runs[-1]['seconds']:.0f}s)", flush=True)
    best = max(runs, key=lambda r: r["accuracy"])
    res["scratch_runs"], res["scratch_lr"] = runs, best["lr"]
    res["scratch_accuracy"], res["scratch_seconds"] = best["accuracy"], sum(r["seconds"] for r in runs)


def _clas_dls(clas_df: pd.DataFrame, vocab: list[str], bs: int) -> TextDataLoaders:
    """The classifier's loaders on the LM's vocabulary (the same for the transfer and the scratch model)."""
    return TextDataLoaders.from_df(clas_df, text_col="text", label_col="label", valid_col="is_valid",
                                   text_vocab=vocab, bs=bs, seed=0)


def ours(lm_texts, clas_df, pre: tuple[Path, Path] | None, config: dict, a, workdir: Path) -> dict:
    res: dict = {}
    t0 = time.perf_counter()
    dls_lm = TextDataLoaders.from_df(pd.DataFrame({"text": lm_texts}), text_col="text", is_lm=True, valid_pct=0.1,
                                     bs=a.lm_bs, seed=0, max_vocab=a.max_vocab)
    res["lm_vocab"], res["lm_train_tokens"] = len(dls_lm.vocab), dls_lm.train.n_tokens
    if a.only == "scratch":  # the LM's vocabulary only: the from-scratch classifier as its own process
        _scratch(_clas_dls(clas_df, dls_lm.vocab, a.bs), config, a, workdir, res)
        return res
    pretrained = dict(pretrained_fnames=pre) if pre else dict(pretrained=a.protocol == "lesson")
    learn = language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3, config=config, path=workdir, **pretrained)
    learn.fit_one_cycle(a.lm_frozen_epochs, a.lm_lr, moms=(0.8, 0.7))
    learn.unfreeze()
    learn.fit_one_cycle(a.lm_epochs, a.lm_unfrozen_lr, moms=(0.8, 0.7))
    _, res["lm_accuracy"], res["lm_perplexity"] = learn.validate()
    res["lm_sample"] = learn.predict("I liked this movie because", 30, temperature=0.75, seed=0)
    learn.save_encoder("fine_tuned_enc")
    res["lm_seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dls = _clas_dls(clas_df, dls_lm.vocab, a.bs)
    clas = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, config=config, pretrained=False, path=workdir)
    clas.load_encoder("fine_tuned_enc")
    _fit_clas_schedule(clas, a.schedule)
    res["clas_accuracy"] = clas.validate()[1]
    res["clas_seconds"] = time.perf_counter() - t0
    if a.scratch:
        _scratch(dls, config, a, workdir, res)
    return res


def fastai_side(lm_texts, clas_df, pre: tuple[Path, Path], config: dict, a, workdir: Path) -> dict | None:
    if not a.ref_python or not Path(a.ref_python).exists():
        print("no reference interpreter: fastai side skipped")
        return None
    models = workdir / "fastai" / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(pre[0], models / "pre.pth")
    shutil.copy(pre[1], models / "pre.pkl")
    pd.DataFrame({"text": lm_texts}).to_parquet(workdir / "lm.parquet")
    clas_df.to_parquet(workdir / "clas.parquet")
    spec = {"what": "protocol", "path": str(workdir / "fastai"), "lm": str(workdir / "lm.parquet"),
            "clas": str(workdir / "clas.parquet"), "config": config, "bs": a.bs, "max_vocab": a.max_vocab,
            "lm_frozen_epochs": a.lm_frozen_epochs, "lm_epochs": a.lm_epochs, "schedule": a.schedule,
            "lm_bs": a.lm_bs, "lm_lr": a.lm_lr, "lm_unfrozen_lr": a.lm_unfrozen_lr}
    (workdir / "spec.json").write_text(json.dumps(spec))
    res = subprocess.run([a.ref_python, str(REF_SCRIPT), str(workdir / "spec.json"), str(workdir / "ref.json")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stdout[-3000:], res.stderr[-3000:], file=sys.stderr)
        raise RuntimeError("fastai protocol run failed")
    return json.loads((workdir / "ref.json").read_text())


def _write(out: str | None, result: dict) -> None:
    """Write the results JSON atomically (temp file, then rename)."""
    if out:
        tmp = Path(out).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, out)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=["cpu", "lesson"], default="cpu")
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--pretrained", default=None, help="folder with lm.pth + itos.pkl (experiments/pretrain_lm)")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--lm-docs", type=int, default=4000)
    ap.add_argument("--clas-train", type=int, default=2000)
    ap.add_argument("--clas-test", type=int, default=2000)
    ap.add_argument("--lm-frozen-epochs", type=int, default=1)
    ap.add_argument("--lm-epochs", type=int, default=2)
    ap.add_argument("--clas-final-epochs", type=int, default=2)
    ap.add_argument("--clas-epochs", type=int, default=1,
                    help="epochs of each of the first three classifier stages (frozen, freeze_to(-2), freeze_to(-3))")
    ap.add_argument("--clas-lr-mult", type=float, default=1.0,
                    help="multiplies the lesson's classifier stage learning rates (2e-2, 1e-2, 5e-3, 1e-3)")
    ap.add_argument("--lm-lr", type=float, default=1e-2, help="LM fine-tuning learning rate, frozen stage")
    ap.add_argument("--lm-unfrozen-lr", type=float, default=1e-3, help="LM fine-tuning learning rate, unfrozen")
    ap.add_argument("--scratch-lr", type=float, nargs="+", default=[1e-2],
                    help="from-scratch classifier's fit_one_cycle lr; several: each is run, the best is reported")
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lm-bs", type=int, default=None, help="LM fine-tuning batch size (default: --bs)")
    ap.add_argument("--max-vocab", type=int, default=60000, help="LM vocabulary cap (fastai's default 60000)")
    ap.add_argument("--review-words", type=int, default=None, help="keep each classifier review's last N words")
    ap.add_argument("--only", choices=["ours", "fastai", "scratch"], default=None,
                    help="run one library's side only ('scratch': only our from-scratch classifier)")
    ap.add_argument("--xla-cache", default=None, help="persistent XLA compilation cache folder (default: the "
                    "lesson's, $LESSON4_XLA_CACHE or ~/.cache/lesson4_jax/xla); 'none' to disable")
    ap.add_argument("--no-scratch", dest="scratch", action="store_false")
    ap.add_argument("--ref-python", default=DEFAULT_REF if Path(DEFAULT_REF).exists() else "")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if a.protocol == "lesson":  # the lesson's numbers: full data, full model, WT103 weights, lesson epochs
        a.size, a.lm_docs, a.clas_train, a.clas_test = "full", None, None, None
        a.lm_frozen_epochs, a.lm_epochs = LESSON["lm_frozen"][0], LESSON["lm_unfrozen"][0]
        a.clas_final_epochs = LESSON["clas"][-1][1]
    m, e = a.clas_lr_mult, a.clas_epochs
    a.schedule = [(None, e, 2e-2 * m), (-2, e, 1e-2 * m), (-3, e, 5e-3 * m), (0, a.clas_final_epochs, 1e-3 * m)]
    a.lm_bs = a.lm_bs or a.bs
    config = SIZES[a.size]
    pre = None
    if a.pretrained:
        pre = (Path(a.pretrained) / "lm.pth", Path(a.pretrained) / "itos.pkl")
    elif a.protocol == "cpu":
        raise SystemExit("--protocol cpu needs --pretrained DIR (run experiments.pretrain_lm first)")
    t0 = time.perf_counter()
    lm_texts, clas_df = read_imdb(imdb_texts(a.data_dir), a.lm_docs, a.clas_train, a.clas_test,
                                  review_words=a.review_words)
    print(f"IMDB: {len(lm_texts)} LM documents (train+unsup), classifier {int((~clas_df.is_valid).sum())} train / "
          f"{int(clas_df.is_valid.sum())} test reviews ({time.perf_counter() - t0:.0f}s to read)")
    if a.xla_cache != "none":  # the scratch classifier then reuses the transfer run's compiled programs
        enable_compilation_cache(a.xla_cache)
    result = {"protocol": a.protocol, "size": a.size, "config": config, "max_vocab": a.max_vocab,
              "review_words": a.review_words, "pretrained": a.pretrained,
              "lm_docs": len(lm_texts), "lm_frozen_epochs": a.lm_frozen_epochs, "lm_epochs": a.lm_epochs,
              "lm_bs": a.lm_bs, "lm_lr": a.lm_lr, "lm_unfrozen_lr": a.lm_unfrozen_lr, "bs": a.bs,
              "scratch_lr": a.scratch_lr,
              "schedule": a.schedule, "clas_train": int((~clas_df.is_valid).sum()),
              "clas_test": int(clas_df.is_valid.sum())}
    with tempfile.TemporaryDirectory() as d:
        if a.only != "fastai":
            result["ours"] = ours(lm_texts, clas_df, pre, config, a, Path(d))
            print(json.dumps(result["ours"], indent=1), flush=True)
            _write(a.out, result)  # kept even if the fastai side fails
        if pre is not None and a.only not in ("ours", "scratch"):
            result["fastai"] = fastai_side(lm_texts, clas_df, pre, config, a, Path(d))
            print(json.dumps(result["fastai"], indent=1), flush=True)
            _write(a.out, result)
    return result


if __name__ == "__main__":
    main()
