"""Cold start on ML-100k: RMSE on users (or items) held out of training entirely.

    python -m experiments.bench.bench_cold_start --data-dir ../shared/data
    python -m experiments.bench.bench_cold_start --data-dir ../shared/data --holdout item --seeds 0 1 2

20% of the users (all their ratings) go to validation; every model trains on the rest with the lesson's
recipe (n_factors 50, y_range (0, 5.5), fit_one_cycle(5, 5e-3, wd=0.1)). Compared: the training mean, the
damped bias baseline (mean + item offset; a newcomer's user offset is 0), fastai's ``EmbeddingDotBias`` (the
newcomer maps to ``#na#``) and the hybrid with u.user / u.item metadata, plain and with ``id_drop``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from collab_jax.cold_start import cold_start_eval
from collab_jax.movielens import (
    find_ml100k,
    ml100k_item_meta,
    ml100k_user_meta,
    read_ml100k_items,
    read_ml100k_ratings,
    read_ml100k_users,
)

COLUMNS = ("global_mean", "bias_baseline", "dot", "hybrid")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--holdout", default="user", choices=["user", "item"])
    ap.add_argument("--frac", type=float, default=0.2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--id-drop", type=float, nargs="+", default=[0.0, 0.3])
    args = ap.parse_args(argv)
    path = find_ml100k(args.data_dir)
    if path is None:
        raise SystemExit("ML-100k not found: pass --data-dir (the folder holding ml-100k/u.data) or set LESSON4_DATA")
    ratings = read_ml100k_ratings(path)[["user", "item", "rating"]]
    um, im = ml100k_user_meta(read_ml100k_users(path)), ml100k_item_meta(read_ml100k_items(path))
    rows = {}
    for id_drop in args.id_drop:
        for seed in args.seeds:
            t = time.perf_counter()
            res = cold_start_eval(ratings, um, im, holdout=args.holdout, frac=args.frac, seed=seed, id_drop=id_drop)
            rows[(id_drop, seed)] = res
            print(f"id_drop={id_drop} seed={seed}: " + ", ".join(f"{k} {res[k]:.4f}" for k in COLUMNS)
                  + f" ({int(res['n_cold'])} cold ratings, {time.perf_counter() - t:.0f}s)", flush=True)
    print(f"\nRMSE on held-out {args.holdout}s (mean over seeds {args.seeds}):")
    print(f"{'id_drop':>8}" + "".join(f"{c:>15}" for c in COLUMNS))
    for id_drop in args.id_drop:
        means = [np.mean([rows[(id_drop, s)][c] for s in args.seeds]) for c in COLUMNS]
        print(f"{id_drop:>8}" + "".join(f"{m:>15.4f}" for m in means))
    return {f"{k[0]}/{k[1]}": v for k, v in rows.items()}


if __name__ == "__main__":
    main()
