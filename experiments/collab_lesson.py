"""Lesson 4, collaborative filtering: the lesson's workflow on MovieLens 100k, then its interpretation.

    python -m experiments.lesson4 --part collab [--data-dir ../shared/data]
    python -m experiments.collab_lesson [--data-dir DIR] [--quick] [--no-download]

Data: ML-100k from ``--data-dir``/``$LESSON4_DATA`` when a copy is there (the package never bundles it: the
GroupLens terms forbid redistribution), else downloaded from GroupLens through the engine's checked registry
(short timeout). When neither works this says so plainly and trains on generated ratings with a known
low-rank structure instead, reporting how well the learned factors recover the true ones.

Recipe (as in the lesson and fastai's tutorial): ``CollabDataLoaders.from_df(ratings, seed=42)``,
``collab_learner(dls, n_factors=50, y_range=(0, 5.5))``, ``fit_one_cycle(5, 5e-3, wd=0.1)``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from collab_jax import CollabDataLoaders, bias_ranking, collab_learner, factor_components, most_rated
from collab_jax.data import random_split
from collab_jax.movielens import find_ml100k, ml100k_path, read_ml100k_items, read_ml100k_ratings
from collab_jax.synthetic import low_rank_ratings, subspace_r2


def locate(data_dir: str | None, download: bool) -> tuple[object | None, str]:
    """ML-100k's folder (or None) and a sentence saying where it came from or why it is missing."""
    local = find_ml100k(data_dir)
    if local is not None:
        return local, f"MovieLens 100k from {local}"
    if not download:
        return None, "MovieLens 100k: no local copy (--data-dir / $LESSON4_DATA) and downloading is off"
    try:
        path = ml100k_path(data_dir, download=True, timeout=10.0)
        return path, f"MovieLens 100k downloaded to {path}"
    except FileNotFoundError as e:
        return None, f"MovieLens 100k unavailable: {e}"


def fit_lesson(ratings: pd.DataFrame, epochs: int, seed: int = 42):
    """The lesson's three lines, timed."""
    dls = CollabDataLoaders.from_df(ratings, seed=seed)
    learn = collab_learner(dls, n_factors=50, y_range=(0, 5.5))
    t = time.perf_counter()
    learn.fit_one_cycle(epochs, 5e-3, wd=0.1)
    fit_s = time.perf_counter() - t
    return dls, learn, fit_s


def interpret(learn, ratings: pd.DataFrame, titles: pd.Series) -> dict:
    """The lesson's reading of the model: item biases and the first principal component of the item factors."""
    top = [i for i in most_rated(ratings, "item", 1000) if i in set(learn.dls.classes["item"])]
    ranked = bias_ranking(learn, top)
    name = lambda ids: [titles.get(i, str(i)) for i in ids]  # noqa: E731
    low, high = name(ranked.item[:5]), name(ranked.item[-5:][::-1])
    comps = factor_components(learn, top, k=3).sort_values("pc0")
    pc0_low, pc0_high = name(comps.item[:3]), name(comps.item[-3:][::-1])
    print("\nLowest item bias (disliked whoever watches):  " + "; ".join(low))
    print("Highest item bias (liked whoever watches):    " + "; ".join(high))
    print("First factor component, one end:  " + "; ".join(pc0_low))
    print("First factor component, other end: " + "; ".join(pc0_high))
    recs = learn.recommend(learn.dls.classes["user"][1], n=3)
    print(f"Top 3 unseen for user {learn.dls.classes['user'][1]}: " + "; ".join(name(recs.item)))
    return {"lowest_bias": low[0], "highest_bias": high[0]}


def _plot_loss(learn, plots_dir: Path | None) -> None:
    if plots_dir is not None:
        learn.recorder.plot_loss(fname=str(plots_dir / "collab_loss.png"))


def run_movielens(path, quick: bool, plots_dir: Path | None = None) -> dict:
    ratings = read_ml100k_ratings(path)[["user", "item", "rating"]]
    epochs = 1 if quick else 5
    dls, learn, fit_s = fit_lesson(ratings, epochs)
    _plot_loss(learn, plots_dir)
    valid_mse = learn.validate()[0]
    n = len(dls.train) * dls.train.bs * epochs
    print(f"\nvalid MSE {valid_mse:.4f} after {epochs} epoch(s) (fastai 2.8 measured 0.852 for 5 epochs; "
          f"its tutorial reports 0.8115); fit {fit_s:.1f}s incl. compilation = {n / fit_s:,.0f} ratings/s")
    titles = read_ml100k_items(path).set_index("item")["title"]
    out = {"data": "ml-100k", "epochs": epochs, "valid_mse": valid_mse, "fit_s": fit_s, "ratings_per_s": n / fit_s}
    return out | interpret(learn, ratings, titles)


def run_generated(quick: bool, seed: int = 0, plots_dir: Path | None = None) -> dict:
    rank, noise = 4, 0.3
    syn = (low_rank_ratings(300, 250, rank, 0.25, noise, seed) if quick
           else low_rank_ratings(943, 1682, rank, 0.063, noise, seed))
    ratings = syn.ratings[["user", "item", "rating"]]
    print(f"generated: {len(ratings)} ratings of {ratings.user.nunique()} users x {ratings.item.nunique()} items, "
          f"true rank {rank}, noise sd {noise}")
    epochs = 2 if quick else 5
    dls, learn, fit_s = fit_lesson(ratings, epochs)
    _plot_loss(learn, plots_dir)
    valid_mse = learn.validate()[0]
    preds, _ = learn.get_preds()
    valid_idx = random_split(len(ratings), 0.2, 42)[1]  # the rows from_df(seed=42) validates on, in order
    clean_mse = float(np.mean((preds - syn.ratings.clean.to_numpy()[valid_idx]) ** 2))
    users, items = dls.classes["user"][1:], dls.classes["item"][1:]
    r2_users = subspace_r2(learn.weight(users, is_item=False), syn.user_factors[np.array(users) - 1])
    r2_items = subspace_r2(learn.weight(items), syn.item_factors[np.array(items) - 1])
    print(f"\nvalid MSE {valid_mse:.4f} (noise floor {noise**2:.3f}); MSE to the noiseless ratings {clean_mse:.4f}")
    print(f"factor recovery (R^2 of the true factors from the learned ones): users {r2_users:.3f}, "
          f"items {r2_items:.3f}; fit {fit_s:.1f}s")
    return {"data": "generated", "epochs": epochs, "valid_mse": valid_mse, "clean_mse": clean_mse,
            "r2_user_factors": r2_users, "r2_item_factors": r2_items, "fit_s": fit_s}


def run(data_dir: str | None = None, quick: bool = False, download: bool = True,
        plots_dir: Path | None = None) -> dict:
    """The collaborative-filtering part of the main job (see the module docstring); with ``plots_dir``, the loss
    curve there."""
    path, where = locate(data_dir, download)
    print(where)
    if path is None:
        print("=> training on GENERATED low-rank ratings instead (numbers below are not MovieLens numbers)")
        return run_generated(quick, plots_dir=plots_dir)
    return run_movielens(path, quick, plots_dir)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-download", action="store_true")
    args = ap.parse_args(argv)
    return run(args.data_dir, args.quick, download=not args.no_download)


if __name__ == "__main__":
    main()
