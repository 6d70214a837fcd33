"""Seconds for one epoch of bf16 LM fine-tuning of a shipped LM, for A/B runs between checkouts or weights.

    cd <checkout> && python -m experiments.bench.lm_fit_seconds [--pretrained english-large]   # -m puts the cwd first
    python -m experiments.bench.lm_fit_seconds --weights A.npz --vocab A.vocab.json   # A/B weights, same code

800 documents of 250 words drawn from the LM's own vocabulary (181k tokens), bs 64, every layer trained
(``--frozen``: the frozen stage); the first fit compiles, the next two are timed (wall and CPU seconds). Alternate
checkouts and take medians.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from experiments.few_label import DEFAULT_PRETRAINED, _pretrained  # no JAX at import


def main(argv: list[str] | None = None) -> list[float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrained", default=DEFAULT_PRETRAINED)
    ap.add_argument("--weights", help="an LM weights file instead of the shipped --pretrained one")
    ap.add_argument("--vocab", help="its vocabulary (with --weights)")
    ap.add_argument("--docs", type=int, default=800)
    ap.add_argument("--words", type=int, default=5000,
                    help="distinct words of the texts, ~ the LM vocabulary (the 200-label protocol's: ~16,300)")
    ap.add_argument("--frozen", action="store_true",
                    help="time the frozen stage (fastai's freeze(): only the embedding and decoder train), as the "
                         "protocol's first epoch, instead of every layer")
    ap.add_argument("--fits", type=int, default=2, help="timed fits after the compiling one (more: whether a "
                    "long process drifts)")
    a = ap.parse_args(argv)
    import ulmfit_jax
    from ulmfit_jax import AWD_LSTM, TextDataLoaders, language_model_learner
    from ulmfit_jax.weights import load_vocab

    pre = _pretrained(a)  # the shipped --pretrained model, or --weights with --vocab (refused apart)
    words = [w for w in load_vocab(pre.vocab) if not w.startswith("xx")][:a.words]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 250)) for _ in range(a.docs)]
    dls = TextDataLoaders.from_df(pd.DataFrame({"text": texts}), text_col="text", is_lm=True, valid_pct=0.1, bs=64,
                                  seed=0)
    learn = language_model_learner(dls, AWD_LSTM, drop_mult=0.3, pretrained_fnames=pre, progress=False).to_bf16()
    learn.freeze() if a.frozen else learn.unfreeze()
    learn.fit_one_cycle(1, 1e-3)  # compiles
    walls = []
    for i in range(a.fits):
        t0, c0 = time.perf_counter(), time.process_time()
        learn.fit_one_cycle(1, 1e-3)
        walls.append(time.perf_counter() - t0)
        print(f"{ulmfit_jax.__file__} {pre.weights}: fit {i}: {walls[-1]:.1f}s wall, "
              f"{time.process_time() - c0:.1f}s CPU, {dls.train.n_tokens} tokens, vocab {len(dls.vocab)}"
              f"{', frozen' if a.frozen else ''}", flush=True)
    return walls


if __name__ == "__main__":
    main()
