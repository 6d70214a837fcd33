"""Inference throughput of exported learners: ``learn.export()`` -> ``load_learner(cpu=True)`` -> batch predict.

    python -m experiments.bench.bench_predict                          # tabular, collab, text; 3 repeats
    python -m experiments.bench.bench_predict --apps text --text-config lesson --n-texts 200
    python -m experiments.bench.bench_predict --out bench_predict.json

Per application, on the loaded learner (CPU): ``end_to_end`` = new raw rows/texts -> ``dls.test_dl`` (procs,
id maps, tokenization) -> ``get_preds``; ``model_only`` = ``get_preds`` on a ready loader; ``predict_ms`` = one
``learn.predict(item)`` call. Medians over ``--repeats`` after one warm-up (the warm-up pays XLA compilation).
Data: Adult (bundled), MovieLens 100k from ``$LESSON4_DATA`` (else generated low-rank ratings of the same size),
IMDB_SAMPLE texts from ``$LESSON4_DATA`` (else generated reviews). Weights do not change the speed, so the models
are trained for one short epoch only (text: not at all). ``--text-config``: ``small`` (emb 100, hidden 256, 2
layers) or ``lesson`` (fastai's AWD-LSTM 400/1152/3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import pandas as pd

TEXT_CONFIGS = {"small": dict(emb_sz=100, n_hid=256, n_layers=2), "lesson": None}


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: compilation and caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _measure(learn, make_dl: Callable[[], object], n: int, item, repeats: int) -> dict:
    dl = make_dl()
    e2e = _median_time(lambda: learn.get_preds(dl=make_dl()), repeats)
    model = _median_time(lambda: learn.get_preds(dl=dl), repeats)
    one = _median_time(lambda: learn.predict(item), repeats)
    return {"n": n, "end_to_end_per_s": n / e2e, "model_only_per_s": n / model, "predict_ms": one * 1e3}


def _roundtrip(learn, folder: Path):
    from learner_jax import load_learner

    t0 = time.perf_counter()
    path = learn.export(folder / "export.zip")
    t1 = time.perf_counter()
    new = load_learner(path, cpu=True)
    return new, {"export_s": t1 - t0, "load_s": time.perf_counter() - t1, "file_mb": path.stat().st_size / 2**20}


def bench_tabular(folder: Path, repeats: int) -> dict:
    from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, adult_sample, tabular_learner
    from tabular_jax.adult import LESSON_CAT_NAMES, LESSON_CONT_NAMES

    df = adult_sample(os.environ.get("LESSON4_DATA"))
    dls = TabularDataLoaders.from_df(df, path=folder, procs=[Categorify, FillMissing, Normalize], y_names="salary",
                                     cat_names=LESSON_CAT_NAMES, cont_names=LESSON_CONT_NAMES, seed=42)
    learn = tabular_learner(dls, layers=[200, 100], progress=False)
    learn.fit_one_cycle(1, 1e-2)
    new, io = _roundtrip(learn, folder)
    rows = df.drop(columns="salary")
    return io | _measure(new, lambda: new.dls.test_dl(rows), len(rows), rows.iloc[0], repeats)


def bench_collab(folder: Path, repeats: int) -> dict:
    from collab_jax import CollabDataLoaders, collab_learner, low_rank_ratings
    from collab_jax.movielens import find_ml100k, read_ml100k_ratings

    root = find_ml100k()
    if root is not None:
        ratings, source = read_ml100k_ratings(root)[["user", "item", "rating"]], "ml-100k"
    else:
        ratings, source = low_rank_ratings(943, 1682, density=0.063).ratings[["user", "item", "rating"]], "generated"
    dls = CollabDataLoaders.from_df(ratings, bs=64, seed=42, path=folder)
    learn = collab_learner(dls, n_factors=50, y_range=(0, 5.5), progress=False)
    learn.fit_one_cycle(1, 5e-3)
    new, io = _roundtrip(learn, folder)
    pairs = ratings[["user", "item"]]
    first = tuple(pairs.iloc[0])
    return {"data": source} | io | _measure(new, lambda: new.dls.test_dl(pairs, warn_unseen=False), len(pairs),
                                            first, repeats)


def _texts(n: int) -> tuple[list[str], list[str], str]:
    from learner_jax.download import local_copy

    folder = local_copy("imdb_sample")
    if folder is not None and (folder / "texts.csv").exists():
        df = pd.read_csv(folder / "texts.csv")
        return df.text.tolist(), df.label.tolist(), "imdb_sample"
    rng = np.random.default_rng(0)
    words = "the a movie film plot acting was great awful boring superb and but with slow music cast".split()
    texts = [" ".join(rng.choice(words, rng.integers(80, 400))).capitalize() + "." for _ in range(max(n, 200))]
    return texts, rng.choice(["negative", "positive"], len(texts)).tolist(), "generated"


def bench_text(folder: Path, repeats: int, n_texts: int, config: str) -> dict:
    from ulmfit_jax import AWD_LSTM, TextDataLoaders, text_classifier_learner

    texts, labels, source = _texts(n_texts)
    df = pd.DataFrame({"text": texts, "label": labels})
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", bs=64, seed=0)
    learn = text_classifier_learner(dls, AWD_LSTM, config=TEXT_CONFIGS[config], pretrained=False, progress=False,
                                    path=folder)
    new, io = _roundtrip(learn, folder)
    batch = texts[:n_texts]
    mean_words = float(np.mean([len(t.split()) for t in batch]))
    return {"data": source, "config": config, "mean_words": mean_words} | io | _measure(
        new, lambda: new.dls.test_dl(batch), len(batch), batch[0], repeats)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", default="tabular,collab,text", help="comma-separated: tabular, collab, text")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-texts", type=int, default=200)
    ap.add_argument("--text-config", choices=sorted(TEXT_CONFIGS), default="small")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                           "backend": jax.default_backend()}}
    with tempfile.TemporaryDirectory() as tmp:
        for app in args.apps.split(","):
            folder = Path(tmp) / app
            if app == "tabular":
                results[app] = bench_tabular(folder, args.repeats)
            elif app == "collab":
                results[app] = bench_collab(folder, args.repeats)
            elif app == "text":
                results[app] = bench_text(folder, args.repeats, args.n_texts, args.text_config)
            else:
                raise SystemExit(f"unknown app {app!r}: use tabular, collab, text")
            r = results[app]
            unit = "texts" if app == "text" else "rows"
            print(f"{app:8s} n={r['n']:6d}  end-to-end {r['end_to_end_per_s']:10.0f} {unit}/s  model only "
                  f"{r['model_only_per_s']:10.0f} {unit}/s  predict(1) {r['predict_ms']:7.1f} ms  "
                  f"load {r['load_s']:.2f} s  file {r['file_mb']:.2f} MB", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
