"""The collaborative-filtering recipe we recommend on MovieLens 100k, and the per-model numbers behind it.

    python -m experiments.collab --config experiments/configs/movielens_cpu.py --config.data_dir=../shared/data
    python -m experiments.collab --config experiments/configs/movielens_cpu.py --config.data_dir=../shared/data \
        --config.split=u1                                                   # official u1.base/u1.test
    python -m experiments.collab --config experiments/configs/movielens_cpu.py --config.data_dir=../shared/data \
        --config.members="('dot_l2', 'hybrid')" --workdir runs/collab     # the recipe alone

Config fields (experiments/configs/base_movielens.py; the former options data_dir, split, members, seed, and new:
source/generated (low-rank generated ratings), epochs (overrides each member's), download, checkpoint_every_steps).

The recipe (``RECIPE``): average the predictions of two models trained through ``collab_learner`` on the same
split, which err differently:
  * ``dot_l2``: ``EmbeddingDotBias`` (50 factors, y_range (0, 5.5)) with per-occurrence L2 on the looked-up
    factors and biases (``config={'l2': 0.05}``), ``fit_one_cycle(10, 3e-3, wd=0.05)``;
  * ``hybrid``: ``HybridDotBias`` with u.user / u.item metadata, the lesson's ``fit_one_cycle(5, 5e-3, wd=0.1)``.
Every listed member is trained and reported (valid MSE and RMSE), then the recipe's ensemble and the ensemble
of all listed members. ``dot`` is the lesson's recipe, ``nn`` fastai's ``EmbeddingNN`` with its defaults.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from collab_jax import CollabDataLoaders, collab_learner
from collab_jax.data import random_split
from collab_jax.movielens import (
    find_ml100k,
    ml100k_item_meta,
    ml100k_path,
    ml100k_user_meta,
    read_ml100k_items,
    read_ml100k_ratings,
    read_ml100k_split,
    read_ml100k_users,
)
from collab_jax.synthetic import low_rank_ratings
from experiments.launch import CONFIGS, host_info, run_script
from experiments.workdir import Workdir

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


def fit_member(dls: CollabDataLoaders, cfg: dict, seed: int = 0, progress: bool = True,
               fit_kw: dict | None = None, epochs: int | None = None) -> np.ndarray:
    """Train one member on the loaders (``epochs`` overrides its own; ``fit_kw``: a workdir's callbacks and
    resume_from); its validation predictions."""
    cfg = dict(cfg)
    n, lr, wd = cfg.pop("epochs"), cfg.pop("lr"), cfg.pop("wd")
    learn = collab_learner(dls, y_range=(0, 5.5), seed=seed, progress=progress, **cfg)
    learn.fit_one_cycle(epochs or n, lr, wd=wd, **(fit_kw or {}))
    return learn.get_preds()[0]


def ensemble_mse(preds: dict[str, np.ndarray], names, y: np.ndarray) -> float:
    """MSE of the mean prediction of the named members."""
    return float(np.mean((np.mean([preds[n] for n in names], axis=0) - y) ** 2))


def generated_frame(g, seed: int = 0) -> pd.DataFrame:
    """Low-rank generated ratings (``collab_jax.synthetic``) with our seeded 80/20 split (smoke runs)."""
    ratings = low_rank_ratings(g.n_users, g.n_items, g.rank, g.density, g.noise, seed).ratings
    is_valid = np.zeros(len(ratings), bool)
    is_valid[random_split(len(ratings), 0.2, 42)[1]] = True
    return ratings[["user", "item", "rating"]].assign(is_valid=is_valid)


def run(data_dir: str | None = None, split: str = "random", members=REPORTED, seed: int = 0,
        progress: bool = True, wd: Workdir | None = None, epochs: int | None = None, source: str = "movielens",
        generated=None, download: bool = False) -> dict:
    """Train each member, report valid MSE/RMSE and the ensembles; with ``wd`` each member is a checkpointed stage."""
    if source == "generated":
        if any(MEMBERS[m].get("use_meta") for m in members):
            raise ValueError("generated ratings have no user/item metadata: drop 'hybrid' from config.members")
        df, meta = generated_frame(generated, seed), {}
    elif source == "movielens":
        path = find_ml100k(data_dir)
        if path is None and download:
            path = ml100k_path(data_dir, download=True)
        if path is None:
            raise SystemExit("ML-100k not found: set config.data_dir (the folder holding ml-100k/u.data) or "
                             "LESSON4_DATA, or config.download=True")
        df = split_frame(path, split)
        meta = {"user_meta": ml100k_user_meta(read_ml100k_users(path)),
                "item_meta": ml100k_item_meta(read_ml100k_items(path))}
    else:
        raise ValueError(f"source must be 'movielens' or 'generated', got {source!r}")
    dls = CollabDataLoaders.from_df(df, valid_col="is_valid", seed=seed, **meta)
    y = dls.valid.y
    out: dict = {"split": split if source == "movielens" else "generated"}
    preds = {}
    for name in members:
        print(f"--- {name}: {MEMBERS[name]}", flush=True)
        t = time.perf_counter()
        fit_kw = wd.fit_kwargs(name) if wd is not None else None
        p = fit_member(dls, MEMBERS[name], seed, progress, fit_kw=fit_kw, epochs=epochs)
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


def run_config(c, workdir: Path | None = None) -> dict:
    """``run`` for config ``c``; with ``workdir``: checkpoints, metrics, the loss curves and results.json."""
    with Workdir(workdir, c, host_info(), c.checkpoint_every_steps or None) as wd:
        out = run(c.data_dir or None, c.split, tuple(c.members), c.seed, wd=wd, epochs=c.epochs, source=c.source,
                  generated=c.generated, download=c.download)
        _plot_mse(wd, out, c.members)
        wd.write_json("results.json", out)
    return out


def _plot_mse(wd: Workdir, out: dict, members) -> None:
    """Valid MSE of each member and ensemble as a bar chart (``plots/valid_mse.png``)."""
    fname = wd.plot("valid_mse.png")
    if fname is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in (*members, "recipe", "all") if f"{n}_mse" in out]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.5))
    ax.bar(names, [out[f"{n}_mse"] for n in names])
    ax.set_ylabel("validation MSE")
    ax.set_title(f"MovieLens collaborative filtering ({out['split']} split)")
    fig.tight_layout()
    fig.savefig(fname, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    return run_script(run_config, CONFIGS / "movielens_cpu.py", argv)


if __name__ == "__main__":
    main()
