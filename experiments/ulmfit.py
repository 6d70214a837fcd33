"""ULMFiT on IMDB: transfer vs from-scratch, ours vs fastai under the identical protocol; and the full lesson config.

    # CPU-feasible protocol as measured on a shared 2-core CPU (experiments/results/ulmfit_cpu_protocol.md):
    python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu.py --workdir runs/english_tiny
    python -m experiments.ulmfit --config experiments/configs/imdb_cpu.py \
        --config.pretrained=runs/english_tiny --workdir runs/imdb_cpu [--config.only=ours|fastai|scratch]
    # (only= runs one library's side, so both sides can run as two processes; without it ours runs, then fastai)
    # the lesson itself (WT103 weights, full IMDB, 400/1152/3; for a GPU/TPU machine; downloads WT103 + IMDB
    # when online, or reads $LESSON4_DATA/imdb/aclImdb_v1_text.tar.gz)
    python -m experiments.ulmfit --config experiments/configs/imdb_lesson.py --workdir runs/imdb_lesson
    python -m experiments.ulmfit --protocol lesson          # the same (--protocol X = configs/imdb_X.py)
    python -m experiments.ulmfit --protocol few-label --labels 200 ...   # experiments/few_label.py's protocol

Config fields (experiments/configs/base_imdb.py; the former options): protocol, data_dir, pretrained, size,
max_vocab, review_words, bs, lm.{docs, frozen_epochs, epochs, lr, unfrozen_lr, bs}, clas.{train, test, epochs,
final_epochs, lr_mult, gradual}, scratch.{enabled, lrs}, only, xla_cache, ref_python, out; new: source/generated_reviews
(template reviews for smoke runs), model.* (size overrides), checkpoint_every_steps.

CPU protocol, identical for both libraries (same texts, same pretrained weights file, same schedule):
  * pretrained LM: ``pretrained`` (lm.pth + itos.pkl written by experiments/pretrain_lm.py, i.e. fastai's
    format, which fastai itself loads with ``pretrained_fnames``);
  * LM fine-tuning on ``lm.docs`` reviews drawn at random (seed 0) from IMDB train+unsup (never test), 10% held
    out, vocabulary of at most ``max_vocab`` words (min_freq 3; words new to the pretrained vocabulary get the
    mean embedding, as fastai): ``fit_one_cycle(lm.frozen_epochs, lm.lr=1e-2)`` frozen, then ``lm.epochs``
    unfrozen at ``lm.unfrozen_lr=1e-3``, moms (0.8, 0.7), drop_mult 0.3, batch size ``lm.bs``;
  * classifier on ``clas.train`` random reviews from train/ and ``clas.test`` from test/ (the validation set;
    each cut to its last ``review_words`` words when given, to fit a CPU budget), the LM's vocabulary, the
    lesson's gradual unfreezing (2e-2; freeze_to(-2) 1e-2; freeze_to(-3) 5e-3, ``clas.epochs`` each; unfreeze
    1e-3 x ``clas.final_epochs``; all four rates times ``clas.lr_mult``), drop_mult 0.5;
  * from scratch (ours only): the same classifier without the pretrained/fine-tuned encoder, all layers trained
    for the same total number of epochs in one ``fit_one_cycle(n, lr)`` for each lr of ``scratch.lrs`` (the
    best reported; ``only=scratch`` runs just this, e.g. as a process of its own).
Reported: LM accuracy/perplexity, classifier accuracy (transfer, scratch; fastai transfer), wall times. With
``--workdir`` (experiments/workdir.py) each fit call is a checkpointed stage (lm_frozen, lm_unfrozen, clas_0..3,
scratch_<lr>): a rerun resumes, SIGTERM saves first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from experiments.launch import CONFIGS, host_info, run_script
from experiments.lesson4 import enable_compilation_cache
from experiments.pretrain_lm import SIZES
from experiments.workdir import Workdir
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


def _no_workdir(stage: str) -> dict:
    return {}


def _fit_clas_schedule(learn, schedule, moms=(0.8, 0.7), fit_kw=_no_workdir):
    for i, (stage, epochs, lr) in enumerate(schedule):
        if stage is not None:
            learn.freeze_to(stage) if stage != 0 else learn.unfreeze()
        learn.fit_one_cycle(epochs, lr if stage is None else slice(lr / 2.6 ** 4, lr), moms=moms,
                            **fit_kw(f"clas_{i}"))


def _scratch(dls, config: dict, a, workdir: Path, res: dict, fit_kw=_no_workdir) -> None:
    """The from-scratch classifier at each ``--scratch-lr``; ``scratch_accuracy`` is the best of them."""
    n_epochs = sum(e for _, e, _ in a.schedule)
    runs = []
    for lr in a.scratch_lr:
        t0 = time.perf_counter()
        scratch = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, config=config, pretrained=False,
                                          path=workdir, seed=1)
        scratch.fit_one_cycle(n_epochs, lr, moms=(0.8, 0.7), **fit_kw(f"scratch_{lr:g}"))
        runs.append({"lr": lr, "accuracy": scratch.validate()[1], "seconds": time.perf_counter() - t0})
        print(f"scratch lr {lr}: accuracy {runs[-1]['accuracy']:.4f} ({runs[-1]['seconds']:.0f}s)", flush=True)
    best = max(runs, key=lambda r: r["accuracy"])
    res["scratch_runs"], res["scratch_lr"] = runs, best["lr"]
    res["scratch_accuracy"], res["scratch_seconds"] = best["accuracy"], sum(r["seconds"] for r in runs)


def _clas_dls(clas_df: pd.DataFrame, vocab: list[str], bs: int) -> TextDataLoaders:
    """The classifier's loaders on the LM's vocabulary (the same for the transfer and the scratch model)."""
    return TextDataLoaders.from_df(clas_df, text_col="text", label_col="label", valid_col="is_valid",
                                   text_vocab=vocab, bs=bs, seed=0)


def ours(lm_texts, clas_df, pre: tuple[Path, Path] | None, config: dict, a, workdir: Path,
         wd: Workdir | None = None) -> dict:
    """Our side: LM fine-tuning, the transfer classifier, the scratch classifier; with ``wd``, every fit call
    checkpoints into (and resumes from) its stage folder and the loss curves go to its plots."""
    fit_kw = wd.fit_kwargs if wd is not None else _no_workdir
    res: dict = {}
    t0 = time.perf_counter()
    dls_lm = TextDataLoaders.from_df(pd.DataFrame({"text": lm_texts}), text_col="text", is_lm=True, valid_pct=0.1,
                                     bs=a.lm_bs, seed=0, max_vocab=a.max_vocab)
    res["lm_vocab"], res["lm_train_tokens"] = len(dls_lm.vocab), dls_lm.train.n_tokens
    if a.only == "scratch":  # the LM's vocabulary only: the from-scratch classifier as its own process
        _scratch(_clas_dls(clas_df, dls_lm.vocab, a.bs), config, a, workdir, res, fit_kw)
        return res
    pretrained = dict(pretrained_fnames=pre) if pre else dict(pretrained=a.protocol == "lesson")
    learn = language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3, config=config, path=workdir, **pretrained)
    learn.fit_one_cycle(a.lm_frozen_epochs, a.lm_lr, moms=(0.8, 0.7), **fit_kw("lm_frozen"))
    learn.unfreeze()
    learn.fit_one_cycle(a.lm_epochs, a.lm_unfrozen_lr, moms=(0.8, 0.7), **fit_kw("lm_unfrozen"))
    if wd is not None:
        wd.plot_loss(learn, "lm_loss.png")
    _, res["lm_accuracy"], res["lm_perplexity"] = learn.validate()
    res["lm_sample"] = learn.predict("I liked this movie because", 30, temperature=0.75, seed=0)
    learn.save_encoder("fine_tuned_enc")
    res["lm_seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dls = _clas_dls(clas_df, dls_lm.vocab, a.bs)
    clas = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, config=config, pretrained=False, path=workdir)
    clas.load_encoder("fine_tuned_enc")
    _fit_clas_schedule(clas, a.schedule, fit_kw=fit_kw)
    if wd is not None:
        wd.plot_loss(clas, "clas_loss.png")
    res["clas_accuracy"] = clas.validate()[1]
    res["clas_seconds"] = time.perf_counter() - t0
    if a.scratch:
        _scratch(dls, config, a, workdir, res, fit_kw)
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


def options(c) -> SimpleNamespace:
    """The config as the flat option names the protocol functions use (the former command-line options)."""
    e, m = c.clas.epochs, c.clas.lr_mult
    schedule = [(None, e, 2e-2 * m), (-2, e, 1e-2 * m), (-3, e, 5e-3 * m), (0, c.clas.final_epochs, 1e-3 * m)]
    if not c.clas.gradual:  # the frozen and the unfrozen stage only (fewer compiled programs: smoke runs)
        schedule = [schedule[0], schedule[-1]]
    return SimpleNamespace(
        protocol=c.protocol, data_dir=c.data_dir or os.environ.get("LESSON4_DATA"), pretrained=c.pretrained or None,
        size=c.size, lm_docs=c.lm.docs, clas_train=c.clas.train, clas_test=c.clas.test,
        lm_frozen_epochs=c.lm.frozen_epochs, lm_epochs=c.lm.epochs, clas_final_epochs=c.clas.final_epochs,
        clas_epochs=e, clas_lr_mult=m, lm_lr=c.lm.lr, lm_unfrozen_lr=c.lm.unfrozen_lr,
        scratch_lr=list(c.scratch.lrs), bs=c.bs, lm_bs=c.lm.bs or c.bs, max_vocab=c.max_vocab,
        review_words=c.review_words, only=c.only or None, xla_cache=c.xla_cache or None,
        scratch=c.scratch.enabled, ref_python=c.ref_python, out=c.out or None, schedule=schedule)


def model_config(c) -> dict:
    """The AWD-LSTM size's fields, overridden by any set ``model.*`` field."""
    if c.size not in SIZES:
        raise ValueError(f"config.size must be one of {sorted(SIZES)}, got {c.size!r}")
    return dict(SIZES[c.size]) | {k: v for k, v in c.model.items() if v is not None}


def generated_imdb(n: int, review_words: int | None = None) -> tuple[list[str], pd.DataFrame]:
    """(LM texts, classifier frame) from template reviews with a known label: smoke runs without IMDB."""
    from experiments.text_lesson import generated_reviews

    df = generated_reviews(n)
    return df.text.tolist(), df.assign(text=[last_words(t, review_words) for t in df.text])


def run(c, workdir: Path | None = None) -> dict:
    """The protocol of config ``c``; with ``workdir``, its config, metrics, plots, checkpoints and results."""
    a = options(c)
    if a.protocol not in ("cpu", "lesson", "smoke"):
        raise ValueError(f"config.protocol must be cpu, lesson or smoke, got {a.protocol!r}")
    config = model_config(c)
    pre = None
    if a.pretrained:
        pre = (Path(a.pretrained) / "lm.pth", Path(a.pretrained) / "itos.pkl")
    elif a.protocol == "cpu":
        raise SystemExit("protocol cpu needs config.pretrained=DIR (run experiments.pretrain_lm first)")
    t0 = time.perf_counter()
    if c.source == "generated":
        lm_texts, clas_df = generated_imdb(c.generated_reviews, a.review_words)
    elif c.source == "imdb":
        lm_texts, clas_df = read_imdb(imdb_texts(a.data_dir), a.lm_docs, a.clas_train, a.clas_test,
                                      review_words=a.review_words)
    else:
        raise ValueError(f"config.source must be imdb or generated, got {c.source!r}")
    print(f"{c.source}: {len(lm_texts)} LM documents, classifier {int((~clas_df.is_valid).sum())} train / "
          f"{int(clas_df.is_valid.sum())} validation reviews ({time.perf_counter() - t0:.0f}s to read)")
    if a.xla_cache != "none":  # the scratch classifier then reuses the transfer run's compiled programs
        enable_compilation_cache(a.xla_cache)
    result = {"protocol": a.protocol, "size": a.size, "config": config, "max_vocab": a.max_vocab,
              "review_words": a.review_words, "pretrained": a.pretrained,
              "lm_docs": len(lm_texts), "lm_frozen_epochs": a.lm_frozen_epochs, "lm_epochs": a.lm_epochs,
              "lm_bs": a.lm_bs, "lm_lr": a.lm_lr, "lm_unfrozen_lr": a.lm_unfrozen_lr, "bs": a.bs,
              "scratch_lr": a.scratch_lr,
              "schedule": a.schedule, "clas_train": int((~clas_df.is_valid).sum()),
              "clas_test": int(clas_df.is_valid.sum())}
    with Workdir(workdir, c, host_info(), c.checkpoint_every_steps or None) as wd, \
            tempfile.TemporaryDirectory() as d:
        path = wd.path or Path(d)
        if a.only != "fastai":
            result["ours"] = ours(lm_texts, clas_df, pre, config, a, path, wd)
            print(json.dumps(result["ours"], indent=1), flush=True)
            _write(a.out, result)  # kept even if the fastai side fails
            wd.write_json("results.json", result)
        if pre is not None and a.only not in ("ours", "scratch"):
            result["fastai"] = fastai_side(lm_texts, clas_df, pre, config, a, Path(d))
            print(json.dumps(result["fastai"], indent=1), flush=True)
            _write(a.out, result)
            wd.write_json("results.json", result)
    return result


def _protocol_arg(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--protocol X`` / ``--protocol=X`` taken out of ``argv``: (X or None, the other arguments)."""
    for i, arg in enumerate(argv):
        if arg == "--protocol" and i + 1 < len(argv):
            return argv[i + 1], argv[:i] + argv[i + 2:]
        if arg.startswith("--protocol="):
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1:]
    return None, argv


def main(argv: list[str] | None = None) -> dict:
    """``--config FILE`` (default imdb_cpu.py) and ``--workdir``; ``--protocol few-label ...`` hands the rest to
    experiments.few_label; ``--protocol cpu|lesson|smoke`` is shorthand for that config file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    protocol, rest = _protocol_arg(argv)
    if protocol == "few-label":
        from experiments import few_label

        return few_label.main(rest)
    if protocol is not None:
        config = CONFIGS / f"imdb_{protocol}.py"
        if not config.is_file():
            raise SystemExit(f"--protocol {protocol}: no config {config} (few-label, cpu, lesson or smoke)")
        if not any(x == "--config" or x.startswith("--config=") for x in rest):
            rest = ["--config", str(config), *rest]
    return run_script(run, CONFIGS / "imdb_cpu.py", rest)


if __name__ == "__main__":
    main()
