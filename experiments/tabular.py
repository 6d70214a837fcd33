"""The tabular recipe we recommend for UCI Adult's official split (train on adult.data, test on adult.test, all
14 features), and a command line for it.

    python -m experiments.tabular                       # official split, 3 seeds, bundled data
    python -m experiments.tabular --split valid         # the 20% split of adult.data the recipe was chosen on
    python -m experiments.tabular --data-dir ../shared/data --seeds 0 1 2 3 4 --epochs 5

Recipe (chosen on a random 20% validation split of adult.data, seed 42; adult.test was not used to choose it):
  * categorical: the 8 string columns, plus ``capital-gain`` and ``capital-loss`` *also* as categories: their
    exact values are very informative (e.g. 7688, 15024 almost always mean >50K), which an MLP on a normalised
    heavy-tailed number finds hard; this moved validation accuracy from 0.854 to 0.876;
  * continuous: the 6 numeric columns, with ``log1p`` on the two capital columns;
  * procs FillMissing, Categorify, Normalize; ``tabular_learner(layers=[200, 100])``, ``wd=0.1``,
    ``fit_one_cycle(5, 1e-2)``, bs 64.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, tabular_learner
from tabular_jax.adult import CAT_NAMES, CONT_NAMES, uci_adult
from tabular_jax.data import random_splitter

CAPITAL = ("capital-gain", "capital-loss")
RECIPE = {"layers": [200, 100], "epochs": 5, "lr": 1e-2, "wd": 0.1, "bs": 64}


def recipe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The recipe's feature engineering: capital columns copied as categories, log1p on their numeric form."""
    out = df.copy()
    for c in CAPITAL:
        out[f"{c}_cat"] = out[c]
        out[c] = np.log1p(out[c].astype(np.float64))
    return out


def recipe_names() -> tuple[list[str], list[str]]:
    return CAT_NAMES + [f"{c}_cat" for c in CAPITAL], list(CONT_NAMES)


def uci_dls(data_dir: str | None = None, split: str = "official", bs: int = 64, seed: int = 0) -> TabularDataLoaders:
    """Loaders for the recipe: ``official`` validates on adult.test, ``valid`` on 20% of adult.data (seed 42)."""
    train, test = uci_adult(data_dir)
    if split == "official":
        df = pd.concat([recipe_frame(train), recipe_frame(test)], ignore_index=True)
        valid_idx = np.arange(len(train), len(df))
    elif split == "valid":
        df = recipe_frame(train)
        valid_idx = random_splitter(len(df), 0.2, 42)[1]
    else:
        raise ValueError(f"split must be 'official' or 'valid', got {split!r}")
    cat_names, cont_names = recipe_names()
    return TabularDataLoaders.from_df(df, procs=[FillMissing, Categorify, Normalize], cat_names=cat_names,
                                      cont_names=cont_names, y_names="income", valid_idx=valid_idx, bs=bs,
                                      seed=seed)


def fit_recipe(dls: TabularDataLoaders, seed: int = 0, epochs: int = RECIPE["epochs"], lr: float = RECIPE["lr"],
               wd: float = RECIPE["wd"], progress: bool = True) -> dict:
    """Train the recipe's learner; returns validation accuracy, loss and the fit time."""
    learn = tabular_learner(dls, layers=RECIPE["layers"], metrics=accuracy, wd=wd, seed=seed, progress=progress)
    t0 = time.perf_counter()
    learn.fit_one_cycle(epochs, lr)
    fit_s = time.perf_counter() - t0
    loss, acc = learn.validate()
    return {"accuracy": acc, "valid_loss": loss, "fit_s": fit_s, "learn": learn}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="folder with adult.data/adult.test (default: bundled copy)")
    ap.add_argument("--split", choices=["official", "valid"], default="official")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    ap.add_argument("--lr", type=float, default=RECIPE["lr"])
    ap.add_argument("--wd", type=float, default=RECIPE["wd"])
    args = ap.parse_args(argv)
    accs = []
    for seed in args.seeds:
        dls = uci_dls(args.data_dir, args.split, seed=seed)
        res = fit_recipe(dls, seed=seed, epochs=args.epochs, lr=args.lr, wd=args.wd)
        accs.append(res["accuracy"])
        print(f"seed {seed}: accuracy {res['accuracy']:.4f}  valid loss {res['valid_loss']:.4f}  "
              f"fit {res['fit_s']:.1f}s", flush=True)
    summary = {"split": args.split, "accuracies": accs, "median": float(np.median(accs)),
               "min": float(min(accs)), "max": float(max(accs))}
    print(f"{args.split} split, {len(accs)} seeds: median accuracy {summary['median']:.4f} "
          f"(min {summary['min']:.4f}, max {summary['max']:.4f})")
    return summary


if __name__ == "__main__":
    main()
