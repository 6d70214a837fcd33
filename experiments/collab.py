"""The collaborative-filtering recipe we recommend on MovieLens 100k, and the per-model numbers behind it.

    python -m experiments.collab --data-dir ../shared/data                 # random 80/20 split, seed 42
    python -m experiments.collab --data-dir ../shared/data --split u1      # official u1.base/u1.test
    python -m experiments.collab --data-dir ../shared/data --members dot_l2 hybrid   # the recipe alone

The recipe (``RECIPE``): average the predictions of two models trained through ``collab_learner`` on the same
split, which err differently:
  * ``dot_l2``: ``EmbeddingDotBias`` (50 factors, y_range (0, 5.5)) with per-occurrence L2 on the looked-up
    factors and biases (``config={'l2': 0.05}``), ``fit_one_cycle(10, 3e-3, wd=0.05)``;
  * ``hybrid``: ``HybridDotBias`` with u.user / u.item metadata, the lesson's ``fit_one_cycle(5, 5e-3, wd=0.1)``.
Every listed member is trained and reported (valid MSE and RMSE), then the recipe's ensemble and the ensemble
of all listed members. ``dot`` is the lesson's recipe, ``nn`` fastai's ``EmbeddingNN`` with its defaults.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from collab_jax import CollabDataLoaders, collab_learner
from collab_jax.data import random_split
from collab_jax.movielens import (
    find_ml100k,
    ml100k_item_meta,
    ml100k_user_meta,
    read_ml100k_items,
    read_ml100k_ratings,
    read_ml100k_split,
    read_ml100k_users,
)

# name -> collab_learner arguments + fit_one_cycle(epochs, lr, wd)
MEMBERS: dict[str, dict] = {
    "dot": {"n_factors": 50, "epochs": 5, "lr": 5e-3, "wd": 0.1, "use_meta": False},  # the lesson's recipe
    "nn": {"use_nn": True, "epochs": 5, "lr": 5e-3, "wd": 0.1, "use_meta": False},
    "hybrid": {"n_factors": 50, "epochs": 5, "lr": 5e-3, "wd": 0.1, "use_meta": True},
    "dot_l2": {"n_factors": 50, "epochs": 10, "lr": 3e-3, "wd": 0.05, "use_meta": False, "config": {"l2": 0.05}},
}
RECIPE = ("dot_l2", "hybrid")
REPORTED = ("dot", "nn", "hybrid", "dot_l2")


def split_frame(path, split: str) -> pd.DataFrame:
    """user, item, rating, is_valid: ``random`` = our seeded 80/20 split (seed 42) of u.data; ``u1``.. = official."""
    if split == "random":
        r = read_ml100k_ratings(path)
        is_valid = np.zeros(len(r), bool)
        is_valid[random_split(len(r), 0.2, 42)[1]] = True
        return r[["user", "item", "rating"]].assign(is_valid=is_valid)
    base, test = read_ml100k_split(path, split)
    return pd.concat([base.assign(is_valid=False), test.assign(is_valid=True)], ignore_index=True)[
        ["user", "item", "rating", "is_valid"]]


def fit_member(dls: CollabDataLoaders, cfg: dict, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Train one member on the loaders; its validation predictions."""
    cfg = dict(cfg)
    epochs, lr, wd = cfg.pop("epochs"), cfg.pop("lr"), cfg.pop("wd")
    learn = collab_learner(dls, y_range=(0, 5.5), seed=seed, progress=progress, **cfg)
    learn.fit_one_cycle(epochs, lr, wd=wd)
    return learn.get_preds()[0]


def ensemble_mse(preds: dict[str, np.ndarray], names, y: np.ndarray) -> float:
    """MSE of the mean prediction of the named members."""
    return float(np.mean((np.mean([preds[n] for n in names], axis=0) - y) ** 2))


def run(data_dir: str | None = None, split: str = "random", members=REPORTED, seed: int = 0,
        progress: bool = True) -> dict:
    path = find_ml100k(data_dir)
    if path is None:
        raise SystemExit("ML-100k not found: pass --data-dir (the folder holding ml-100k/u.data) or set LESSON4_DATA")
    df = split_frame(path, split)
    dls = CollabDataLoaders.from_df(df, valid_col="is_valid", seed=seed,
                                    user_meta=ml100k_user_meta(read_ml100k_users(path)),
                                    item_meta=ml100k_item_meta(read_ml100k_items(path)))
    y = dls.valid.y
    out: dict = {"split": split}
    preds = {}
    for name in members:
        print(f"--- {name}: {MEMBERS[name]}", flush=True)
        t = time.perf_counter()
        p = fit_member(dls, MEMBERS[name], seed, progress)
        mse = float(np.mean((p - y) ** 2))
        print(f"{name}: valid MSE {mse:.4f}, RMSE {mse**0.5:.4f} ({time.perf_counter() - t:.1f}s)", flush=True)
        out[f"{name}_mse"], out[f"{name}_rmse"] = mse, mse**0.5
        preds[name] = p
    groups = {"recipe": RECIPE, "all": tuple(members)}
    for label, names in groups.items():
        if len(names) > 1 and set(names) <= set(preds):
            mse = ensemble_mse(preds, names, y)
            out[f"{label}_mse"], out[f"{label}_rmse"] = mse, mse**0.5
            print(f"{label} ensemble ({'+'.join(names)}): valid MSE {mse:.4f}, RMSE {mse**0.5:.4f}")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--split", default="random", choices=["random", "u1", "u2", "u3", "u4", "u5", "ua", "ub"])
    ap.add_argument("--members", nargs="+", default=list(REPORTED), choices=sorted(MEMBERS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    return run(args.data_dir, args.split, tuple(args.members), args.seed)


if __name__ == "__main__":
    main()
