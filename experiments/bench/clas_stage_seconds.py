"""Seconds of the few-label classifier per gradual-unfreezing stage, for A/B runs of the classifier's speed options.

    python -m experiments.bench.clas_stage_seconds                           # as shipped
    python -m experiments.bench.clas_stage_seconds --frozen-backward full    # frozen layers' backward computed
    python -m experiments.bench.clas_stage_seconds --widths buckets          # one training program per length bucket

The 200-label draw of seed 0 (``experiments/few_label.py``, IMDB from ``$LESSON4_DATA`` or ``--reviews``), the
shipped LM's sizes and vocabulary, random init, bf16, bs 32, texts cut to 400 tokens. Each round builds a new learner
and runs one epoch of each stage of the lesson's schedule (its first stage includes the compiles; no persistent
cache), then the 2,000-review test pass twice (cold, warm). Prints one JSON line; run each mode in its own process,
alternated.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import experiments.few_label as fl  # no JAX at import


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frozen-backward", choices=["skip", "full"], default="skip")
    ap.add_argument("--widths", choices=["one", "buckets"], default="one", help="training batch widths")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--reviews", default=None, help="a review corpus (train/<class>, test/<class>) instead of IMDB")
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--pretrained", default=fl.DEFAULT_PRETRAINED,
                    help="the shipped LM whose sizes and vocabulary to use")
    a = ap.parse_args(argv)
    from learner_jax import accuracy
    from ulmfit_jax import AWD_LSTM, pretrained_lm, text_classifier_learner
    from ulmfit_jax.weights import load_vocab

    reviews = fl.read_reviews(Path(a.reviews) if a.reviews else fl.default_reviews(a.data_dir))
    _, clas_df = fl.make_draw(reviews, a.labels, a.test, 10, 0, 400)
    pre = pretrained_lm(a.pretrained)
    dls, test_dl = fl._clas_loaders(clas_df, list(load_vocab(pre.vocab)),
                                    argparse.Namespace(bs=32, max_len=400))
    if a.widths == "buckets":
        dls.train.one_width = False
    out: dict = {"frozen_backward": a.frozen_backward, "widths": a.widths, "frozen_to_model": None,
                 "train_widths": sorted({int(b[0].shape[1]) for b in dls.train.batches(0)}), "rounds": []}
    for _ in range(a.rounds):
        clas = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, config=dict(pre.config), pretrained=False,
                                       metrics=accuracy, progress=False).to_bf16()
        # "full": the model is not handed the frozen-groups mask, so every gradient is computed and frozen
        # updates are masked (the learner reads this when it builds its training step)
        clas.takes_frozen_groups = a.frozen_backward == "skip"
        clas.freeze()
        stages = []
        for stage, _, lr in fl.SCHEDULE:
            if stage is not None:
                clas.freeze_to(stage) if stage != 0 else clas.unfreeze()
            t0, c0 = time.perf_counter(), time.process_time()
            clas.fit_one_cycle(1, lr if stage is None else slice(lr / 2.6 ** 4, lr), moms=(0.8, 0.7))
            stages.append({"wall": round(time.perf_counter() - t0, 2), "cpu": round(time.process_time() - c0, 2)})
        tests = []
        for _ in range(2):
            t0, c0 = time.perf_counter(), time.process_time()
            clas.validate(test_dl)
            tests.append({"wall": round(time.perf_counter() - t0, 2), "cpu": round(time.process_time() - c0, 2)})
        out["rounds"].append({"stages": stages, "test": tests})
        out["frozen_to_model"] = clas.spec.frozen_to_model
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
