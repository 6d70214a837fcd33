"""Lesson 4, text (ULMFiT): fine-tune a pretrained language model on movie reviews, classify their sentiment,
and show what the pretraining buys next to the same classifier trained from scratch.

    python -m experiments.lesson4 --part text [--data-dir ../shared/data]
    python -m experiments.text_lesson [--data-dir DIR] [--quick]

fastai's lesson starts from the WikiText-103 weights (a 105 MB download, a 400/1152/3 model too slow to
fine-tune on a laptop CPU). This run starts from an LM shipped inside the package,
``ulmfit_jax.pretrained_lm("english-large")`` (256/640/3, four epochs of pretraining on all 74k IMDB training and
unlabelled reviews plus general English by ``experiments/pretrain_lm.py``; ``--pretrained english-medium`` or
``english-small`` for the smaller, faster ones; see experiments/results/pretrained_lm.md), so it needs no network
and no pretraining of its own, and follows the lesson's recipe through the same code paths fastai's weights take:
  1. *LM fine-tuning*: ``language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3,
     pretrained_fnames=pretrained_lm())`` matches the pretrained vocabulary to the reviews' (new words get the
     mean embedding) and freezes; ``fit_one_cycle(1, 1e-2, moms=(0.8, 0.7))``, ``unfreeze()``, more at 1e-3;
     ``predict('I liked this movie because', 40, temperature=0.75)``; ``save_encoder('fine_tuned_enc')``.
  2. *Classifier*: ``text_classifier_learner(dls_clas, AWD_LSTM, drop_mult=0.5)``, ``load_encoder``, gradual
     unfreezing: ``fit_one_cycle(1, 2e-2)``, ``freeze_to(-2)``, ``freeze_to(-3)``, ``unfreeze()`` with
     discriminative rates ``slice(lr/2.6**4, lr)`` (the later stages at 1e-2, see ``STAGE_LRS``). Reviews
     keep their last 288 tokens (144 quick).
  3. *From scratch*: the same classifier, random init, as many epochs in one ``fit_one_cycle(n, 3e-3)``
     (``SCRATCH_LR``): the gap between 2 and 3 is the transfer.
Reviews: fastai's IMDB sample (``imdb/imdb_sample/texts.csv``, 800 train / 200 valid) when present, else a
generated corpus of template reviews with a known sentiment (it says so). When scikit-learn is installed a
tf-idf + logistic regression baseline is shown on the same split. ``quick`` (the smoke test) trims the data and
the epochs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ulmfit_jax import (
    AWD_LSTM,
    PretrainedLM,
    TextDataLoaders,
    language_model_learner,
    pretrained_lm,
    text_classifier_learner,
)
from ulmfit_jax.pretrained import DEFAULT_MODEL

# The shipped LM the main job starts from (--pretrained to change it). english-large, measured against the
# smaller ones (experiments/results/ulmfit_few_label.md): IMDB sample 0.865 with its four epochs of pretraining
# (tf-idf 0.820; three epochs 0.845, two 0.825) against english-medium's 0.760 and english-small's 0.630; generated
# reviews 1.000 (medium 1.000, small 0.988) in 4.9-6.6 min on 2 cores.
DEFAULT_PRETRAINED = DEFAULT_MODEL  # english-large
# From scratch at 1e-2 the 128/512/3 classifier diverged on the generated reviews (0.438, 5 epochs) while 3e-3
# reached 1.000 (measured): the baseline gets the rate that lets it learn.
SCRATCH_LR = 3e-3
MAX_LEN = 72 * 4  # classifier documents keep their last 288 tokens (IMDB sample: median ~230)
EXAMPLE_REVIEW = "The acting was superb and the story was moving. Overall a wonderful movie, I loved it!"
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


def tfidf_accuracy(df: pd.DataFrame) -> float | None:
    """Bag-of-words baseline on the same split (tf-idf of words and bigrams + logistic regression, best C), or
    None without scikit-learn (an optional extra, not a dependency of the library)."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return None
    tr, va = df[~df.is_valid], df[df.is_valid]
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    xtr, xva = vec.fit_transform(tr.text), vec.transform(va.text)
    return max(float((LogisticRegression(C=c, max_iter=2000).fit(xtr, tr.label).predict(xva) == va.label).mean())
               for c in (1.0, 10.0, 100.0))


def fine_tune_lm(df: pd.DataFrame, out: Path, quick: bool, pre: PretrainedLM):
    """Step 1: the shipped LM ``pre`` fine-tuned on all the review texts (the lesson uses unlabelled text too)."""
    dls_lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_pct=0.1, bs=32, seed=0)
    learn = language_model_learner(dls_lm, AWD_LSTM, drop_mult=0.3, pretrained_fnames=pre, path=out)
    learn.fit_one_cycle(1, 1e-2, moms=(0.8, 0.7))
    learn.unfreeze()
    learn.fit_one_cycle(1 if quick else 3, 1e-3, moms=(0.8, 0.7))
    return learn, dls_lm


# The lesson's stage rates (2e-2, 1e-2, 5e-3, 1e-3) are for the 400/1152/3 WT103 model. The small shipped LM's
# pooled features are weak until its encoder adapts (experiments/results/probe_encoder.json), so the unfrozen
# stages here run at 1e-2: measured on the generated reviews, the lesson's rates left the classifier at chance
# (0.529 after all four stages) while unfreezing at 1e-2 reached 0.97 in two epochs.
STAGE_LRS = (2e-2, 1e-2, 1e-2, 1e-2)


def gradual_unfreezing(clas, quick: bool, lrs: tuple[float, ...] = STAGE_LRS) -> None:
    """The lesson's four stages with discriminative rates ``slice(lr/2.6**4, lr)`` (quick: first and last)."""
    clas.fit_one_cycle(1, lrs[0], moms=(0.8, 0.7))
    if not quick:
        clas.freeze_to(-2)
        clas.fit_one_cycle(1, slice(lrs[1] / (2.6 ** 4), lrs[1]), moms=(0.8, 0.7))
        clas.freeze_to(-3)
        clas.fit_one_cycle(1, slice(lrs[2] / (2.6 ** 4), lrs[2]), moms=(0.8, 0.7))
    clas.unfreeze()
    clas.fit_one_cycle(1 if quick else 2, slice(lrs[3] / (2.6 ** 4), lrs[3]), moms=(0.8, 0.7))


def run(data_dir: str | None = None, quick: bool = False, plots_dir: Path | None = None,
        pretrained: str = DEFAULT_PRETRAINED) -> dict:
    """The text part from the shipped LM named ``pretrained``; with ``plots_dir``, the fine-tuned LM's and the
    classifier's loss curves there."""
    t0 = time.perf_counter()
    data_dir = data_dir or os.environ.get("LESSON4_DATA")
    df, source = reviews(data_dir, quick)
    print(f"Reviews: {source}")
    pre = pretrained_lm(pretrained)
    print(f"Pretrained LM: {pre.name} ({pre.config['emb_sz']}/{pre.config['n_hid']}/{pre.config['n_layers']}, "
          f"shipped in {pre.weights.parent})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        print("\n1) Fine-tuning the pretrained language model on the reviews")
        learn, dls_lm = fine_tune_lm(df, out, quick, pre)
        lm_loss, lm_acc, lm_ppl = learn.validate()
        if plots_dir is not None:
            learn.recorder.plot_loss(fname=str(plots_dir / "text_lm_loss.png"))
        sample = learn.predict("I liked this movie because", 20 if quick else 40, temperature=0.75, seed=0)
        print(f"predict: {sample}")
        learn.save_encoder("fine_tuned_enc")

        print("\n2) Classifier from the fine-tuned encoder, gradual unfreezing (the lesson's recipe)")
        dls_clas = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid",
                                           text_vocab=dls_lm.vocab, bs=32, seed=0, max_len=144 if quick else MAX_LEN)
        clas = text_classifier_learner(dls_clas, AWD_LSTM, drop_mult=0.5, config=pre.config, pretrained=False,
                                       path=out)
        clas.load_encoder("fine_tuned_enc")
        gradual_unfreezing(clas, quick)
        clas_acc = clas.validate()[1]
        if plots_dir is not None:
            clas.recorder.plot_loss(fname=str(plots_dir / "text_classifier_loss.png"))
        # a review both data sources can decide: the generated reviews put "the acting was brilliant" in either
        # class ("Only the acting was brilliant." is a negative review's contrary remark), and "liked" in neither,
        # so the former example got a confident coin flip there (positive 0.99, later negative 0.99)
        label, _, probs = clas.predict(EXAMPLE_REVIEW)

        print("\n3) The same classifier from scratch (no pretrained encoder)")
        scratch = text_classifier_learner(dls_clas, AWD_LSTM, drop_mult=0.5, config=pre.config, pretrained=False,
                                          path=out, seed=1)
        scratch.fit_one_cycle(2 if quick else 5, SCRATCH_LR, moms=(0.8, 0.7))
        scratch_acc = scratch.validate()[1]
    tfidf = tfidf_accuracy(df)
    res = {"reviews": source.split(" (")[0], "pretrained_lm": pre.name, "lm_accuracy": float(lm_acc),
           "lm_perplexity": float(lm_ppl), "classifier_accuracy": float(clas_acc),
           "scratch_accuracy": float(scratch_acc), "sample": sample,
           "example_prediction": f"{label} ({float(probs.max()):.2f})", "seconds": time.perf_counter() - t0}
    if tfidf is not None:
        res["tfidf_accuracy"] = tfidf
    print(f"\nText summary: LM accuracy {lm_acc:.3f} (perplexity {lm_ppl:.1f}); classifier accuracy "
          f"{clas_acc:.3f} with the pretrained LM vs {scratch_acc:.3f} from scratch"
          + (f" (tf-idf + logistic regression: {tfidf:.3f})" if tfidf is not None else "")
          + f"; {res['seconds']:.0f}s")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pretrained", default=DEFAULT_PRETRAINED, help="a shipped LM (ulmfit_jax.pretrained_lm)")
    a = ap.parse_args()
    run(a.data_dir, a.quick, pretrained=a.pretrained)
