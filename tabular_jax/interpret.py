"""Permutation feature importance: how much the loss rises (and metrics fall) when one input column's values
are shuffled across rows, breaking its link to the target while keeping its distribution.

Columns are the user's input columns: a continuous column and the ``<col>_na`` flag FillMissing made for it are
shuffled together, since they are one feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def feature_slots(to: Any) -> dict[str, list[tuple[int, int]]]:
    """For each input column, the (0 = x_cat / 1 = x_cont, position) slots it occupies in the model inputs."""
    cat, cont = to.input_names
    slots: dict[str, list[tuple[int, int]]] = {n: [] for n in (*cat, *cont)}
    for j, n in enumerate(to.cat_names):
        if n in slots:
            slots[n].append((0, j))
        elif n.endswith("_na") and n[:-3] in slots:
            slots[n[:-3]].append((0, j))
    for j, n in enumerate(to.cont_names):
        slots[n].append((1, j))
    return slots


def permute_columns(xs: tuple[np.ndarray, np.ndarray], slots: list[tuple[int, int]],
                    perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of (x_cat, x_cont) with the given slots reordered by ``perm`` (all with the same permutation)."""
    out = [np.array(xs[0]), np.array(xs[1])]
    for part, j in slots:
        out[part][:, j] = np.asarray(xs[part])[perm, j]
    return out[0], out[1]


def permutation_importance(learn: Any, dl: Any = None, n_repeats: int = 3, seed: int = 0) -> pd.DataFrame:
    """One row per input column, most important first: ``importance`` = mean rise of the loss over
    ``n_repeats`` shuffles (``std`` its spread), and each metric's mean value with the column shuffled.

    ``dl`` defaults to the validation loader; it must hold labels. Shuffles come from ``seed`` only.
    """
    dl = learn.dls.valid if dl is None else dl
    if getattr(dl, "has_labels", True) is False:
        raise ValueError("permutation importance needs labelled rows: make the loader with the target columns")
    if dl.n < 2:
        raise ValueError(f"permutation importance needs at least 2 rows, the loader has {dl.n}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be at least 1, got {n_repeats}")
    names = [m.name for m in learn.metrics]
    base = learn.validate(dl)
    rng = np.random.default_rng(seed)
    rows = []
    for feature, slots in feature_slots(learn.dls.to).items():
        scores = np.array([learn.validate(dl.new(x=permute_columns(dl.x, slots, rng.permutation(dl.n))))
                           for _ in range(n_repeats)])
        rise = scores[:, 0] - base[0]
        rows.append({"feature": feature, "importance": float(rise.mean()), "std": float(rise.std()),
                     **{n: float(scores[:, 1 + i].mean()) for i, n in enumerate(names)}})
    df = pd.DataFrame(rows).sort_values("importance", ascending=False, ignore_index=True)
    df.attrs["baseline"] = {"loss": base[0], **dict(zip(names, base[1:]))}
    return df
