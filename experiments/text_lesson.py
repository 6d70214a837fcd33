"""Lesson 4, text (ULMFiT): pretrain a language model, fine-tune it on movie reviews, classify sentiment.

    python -m experiments.lesson4 --part text [--data-dir ../shared/data]
    python -m experiments.text_lesson [--data-dir DIR] [--quick]

What it does, plainly. fastai's lesson starts from the WikiText-103 weights (``pretrained=True``); those are a
105 MB download and nothing here may assume a network, so this run makes its own small pretrained model
first and then follows the lesson's recipe with it, through the same code paths fastai's weights take:
  1. *General-domain pretraining*: a small AWD-LSTM (emb 64, hidden 256, 3 layers) is trained from scratch on
     English text -- WikiText-103 articles from ``--data-dir``/``$LESSON4_DATA``/english_lm when present, else
     (offline, fresh clone) on the generated review corpus below -- and written as a fastai-format ``.pth`` +
     ``.pkl`` vocabulary.
  2. *LM fine-tuning* (the lesson): ``language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3,
     pretrained_fnames=(pth, pkl))`` matches the pretrained vocabulary to the reviews' (new words get the mean
     embedding) and freezes; ``fit_one_cycle(1, 1e-2, moms=(0.8, 0.7))``, ``unfreeze()``, more epochs at 1e-3;
     ``predict('I liked this movie because', 40, temperature=0.75)``; ``save_encoder('fine_tuned_enc')``.
  3. *Classifier* (the lesson): ``text_classifier_learner(dls_clas, AWD_LSTM, drop_mult=0.5)``,
     ``load_encoder``, then gradual unfreezing: ``fit_one_cycle(1, 2e-2)``, ``freeze_to(-2)``, ``freeze_to(-3)``,
     ``unfreeze()`` with the lesson's discriminative learning rates ``slice(lr/2.6**4, lr)``. Reviews are cut to
     their last 288 tokens (144 with ``quick``) so that few batch widths, hence few programs, get compiled.
``quick`` (the smoke test) trims further: 200/100 reviews, the LM's frozen stage only, the classifier's first
and last stages only.
Reviews: fastai's IMDB sample (``imdb/imdb_sample/texts.csv``, 800 train / 200 valid) when present, else a
generated corpus of template reviews with a known sentiment (it says so). Numbers are far from the lesson's
(WT103 + full IMDB on a GPU: LM accuracy 0.34, classifier 94.4%; see experiments/ulmfit.py for that config):
the point is the whole chain running offline in a couple of minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ulmfit_jax import AWD_LSTM, TextDataLoaders, language_model_learner, text_classifier_learner
from ulmfit_jax.weights import save_fastai_lm

SMALL = dict(emb_sz=64, n_hid=256, n_layers=3)
MAX_LEN = 72 * 4  # classifier documents keep their last 288 tokens (IMDB sample: median ~230)
POSITIVE = ["great", "wonderful", "brilliant", "moving", "funny", "superb", "beautiful", "touching", "excellent",
            "charming", "gripping", "delightful"]
NEGATIVE = ["boring", "awful", "terrible", "dull", "stupid", "painful", "weak", "horrible", "lame", "tedious",
            "pointless", "clumsy"]
SUBJECTS = ["the plot", "the acting", "the story", "the script", "the ending", "the cast", "the music",
            "the director", "the dialogue", "the photography"]
FILLERS = ["I saw it last week with friends.", "It is about a family in a small town.", "The film runs two hours.",
           "My brother recommended it.", "It was shown on TV yesterday.", "The lead actor is well known.",
           "It is based on a novel.", "I watched it twice."]


def generated_reviews(n: int, seed: int = 0) -> pd.DataFrame:
    """Template movie reviews with a known label (the offline fallback; say so when used)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        pos = bool(rng.random() < 0.5)
        words, other = (POSITIVE, NEGATIVE) if pos else (NEGATIVE, POSITIVE)
        sents = []
        for _ in range(int(rng.integers(8, 16))):
            r = rng.random()
            subj = SUBJECTS[rng.integers(len(SUBJECTS))]
            if r < 0.45:
                sents.append(f"{subj.capitalize()} was {words[rng.integers(len(words))]}.")
            elif r < 0.6:  # a contrary remark, so single words do not decide the label
                sents.append(f"Only {subj} was {other[rng.integers(len(other))]}.")
            elif r < 0.8:
                sents.append(FILLERS[rng.integers(len(FILLERS))])
            else:
                sents.append(f"Overall a {words[rng.integers(len(words))]} movie, "
                             f"{'I loved it' if pos else 'I hated it'}!")
        rows.append({"label": "positive" if pos else "negative", "text": " ".join(sents), "is_valid": i >= 0.8 * n})
    return pd.DataFrame(rows)


def wikitext_paragraphs(data_dir: str | None, max_words: int) -> list[str] | None:
    """Paragraphs of WikiText-103's validation articles (shared English corpus), escapes undone, up to
    ``max_words`` words; None when the corpus is not there."""
    if not data_dir:
        return None
    path = Path(data_dir) / "english_lm" / "wikitext-103" / "wiki.valid.tokens"
    if not path.is_file():
        return None
    paras, n = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if not s or s.startswith("="):
            continue
        s = s.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".").replace("<unk>", "xxunk")
        paras.append(s)
        n += len(s.split())
        if n >= max_words:
            break
    return paras


def reviews(data_dir: str | None, quick: bool) -> tuple[pd.DataFrame, str]:
    csv = Path(data_dir) / "imdb" / "imdb_sample" / "texts.csv" if data_dir else None
    if csv is not None and csv.is_file():
        df = pd.read_csv(csv)
        if quick:  # a subset: 200 train, 100 valid
            df = pd.concat([df[~df.is_valid].head(200), df[df.is_valid].head(100)])
        return df, f"fastai's IMDB sample from {csv} ({(~df.is_valid).sum()} train / {df.is_valid.sum()} valid)"
    n = 300 if quick else 1200
    return generated_reviews(n), (f"no IMDB sample found (--data-dir / $LESSON4_DATA): using {n} GENERATED "
                                  "template reviews (positive/negative words in fixed sentence patterns)")


def pretrain(texts: list[str], out: Path, epochs: int, quick: bool) -> tuple[Path, Path, list]:
    """Step 1: a small LM from scratch, exported as fastai-format weights + vocabulary."""
    df = pd.DataFrame({"text": texts})
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_pct=0.1, bs=16 if quick else 32, seed=0)
    learn = language_model_learner(dls, AWD_LSTM, drop_mult=0.1, pretrained=False, config=SMALL, unroll=1,
                                   path=out)
    learn.fit_one_cycle(epochs, 1e-2, moms=(0.8, 0.7))
    pth, pkl = out / "pretrained_lm.pth", out / "pretrained_itos.pkl"
    save_fastai_lm(learn.model, pth)
    with open(pkl, "wb") as f:  # a plain list of strings, as fastai's itos files
        pickle.dump(list(dls.vocab), f)
    return pth, pkl, learn.recorder.values[-1]


def run(data_dir: str | None = None, quick: bool = False, plots_dir: Path | None = None) -> dict:
    """The text part; with ``plots_dir``, the fine-tuned LM's and the classifier's loss curves there."""
    t0 = time.perf_counter()
    data_dir = data_dir or os.environ.get("LESSON4_DATA")
    df, source = reviews(data_dir, quick)
    print(f"Reviews: {source}")
    general = wikitext_paragraphs(data_dir, 20_000 if quick else 100_000)
    if general is not None:
        print(f"Pretraining text: {len(general)} WikiText-103 paragraphs from {data_dir}/english_lm")
    else:
        general = df.text.tolist()
        print("Pretraining text: no shared English corpus found, so the 'pretrained' model is trained on the "
              "review texts themselves (no general-domain transfer in this run)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        print("\n1) Pretraining a small AWD-LSTM from scratch")
        pth, pkl, pre = pretrain(general, out, 1, quick)

        print("\n2) Fine-tuning the language model on the reviews (the lesson's recipe)")
        dls_lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_pct=0.1, bs=16 if quick else 32,
                                         seed=0)
        learn = language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3, pretrained_fnames=(pth, pkl), config=SMALL,
                                       unroll=1, path=out)
        learn.fit_one_cycle(1, 1e-2, moms=(0.8, 0.7))
        if not quick:  # quick (smoke test): the frozen stage only, one compiled program fewer
            learn.unfreeze()
            learn.fit_one_cycle(1, 1e-3, moms=(0.8, 0.7))
        lm_loss, lm_acc, lm_ppl = learn.validate()
        if plots_dir is not None:
            learn.recorder.plot_loss(fname=str(plots_dir / "text_lm_loss.png"))
        sample = learn.predict("I liked this movie because", 20 if quick else 40, temperature=0.75, seed=0)
        print(f"predict: {sample}")
        learn.save_encoder("fine_tuned_enc")

        print("\n3) Classifier with gradual unfreezing (the lesson's recipe)")
        # reviews cut to their last MAX_LEN tokens: few distinct batch widths, so few compiled programs
        dls_clas = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid",
                                           text_vocab=dls_lm.vocab, bs=32 if quick else 64, seed=0,
                                           max_len=144 if quick else MAX_LEN)
        clas = text_classifier_learner(dls_clas, AWD_LSTM, drop_mult=0.5, config=SMALL, pretrained=False, unroll=1,
                                       path=out)
        clas.load_encoder("fine_tuned_enc")
        clas.fit_one_cycle(1, 2e-2, moms=(0.8, 0.7))
        if not quick:
            clas.freeze_to(-2)
            clas.fit_one_cycle(1, slice(1e-2 / (2.6 ** 4), 1e-2), moms=(0.8, 0.7))
            clas.freeze_to(-3)
            clas.fit_one_cycle(1, slice(5e-3 / (2.6 ** 4), 5e-3), moms=(0.8, 0.7))
        clas.unfreeze()
        clas.fit_one_cycle(1, slice(1e-3 / (2.6 ** 4), 1e-3), moms=(0.8, 0.7))
        clas_loss, clas_acc = clas.validate()
        if plots_dir is not None:
            clas.recorder.plot_loss(fname=str(plots_dir / "text_classifier_loss.png"))
        label, probs = "-", np.zeros(1)
        if not quick:
            label, _, probs = clas.predict("I really liked this movie, the acting was brilliant!")
    res = {"reviews": source.split(" (")[0], "pretrain_valid_loss": float(pre[1]), "lm_accuracy": float(lm_acc),
           "lm_perplexity": float(lm_ppl), "classifier_accuracy": float(clas_acc), "sample": sample,
           "example_prediction": f"{label} ({float(probs.max()):.2f})", "seconds": time.perf_counter() - t0}
    print(f"\nText summary: LM accuracy {lm_acc:.3f} (perplexity {lm_ppl:.1f}), classifier accuracy {clas_acc:.3f}, "
          f"{res['seconds']:.0f}s")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    run(a.data_dir, a.quick)
