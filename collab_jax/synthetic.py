"""Generated ratings with known low-rank structure, and measures of how well a trained model recovers it.

Used when MovieLens is not available (offline, no local copy: the main job says so and trains on this) and by
the tests. Ratings are ``mean + b_user + b_item + <u, v> + noise``, clipped to ``[1, 5]``, where ``u`` and ``v``
are ``rank``-dimensional factors; the clean part (without noise) is returned so recovery can be scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LowRankRatings:
    """A generated ratings frame (user, item, rating, clean) and the true factors (row i = id i)."""

    ratings: pd.DataFrame
    user_factors: np.ndarray  # (n_users, rank)
    item_factors: np.ndarray  # (n_items, rank)
    noise: float


def low_rank_ratings(n_users: int = 500, n_items: int = 400, rank: int = 4, density: float = 0.15,
                     noise: float = 0.3, seed: int = 0) -> LowRankRatings:
    """Each user rates a random ``density`` share of the items (at least one); ids are 1-based like MovieLens."""
    if rank < 1 or n_users < 2 or n_items < 2:
        raise ValueError("need rank >= 1 and at least 2 users and 2 items")
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    rs = np.random.default_rng(seed)
    u = rs.normal(size=(n_users, rank)) * 0.9 / rank**0.25
    v = rs.normal(size=(n_items, rank)) * 0.9 / rank**0.25
    bu, bi = rs.normal(0, 0.3, n_users), rs.normal(0, 0.4, n_items)
    mask = rs.random((n_users, n_items)) < density
    mask[np.arange(n_users), rs.integers(0, n_items, n_users)] = True
    users, items = np.nonzero(mask)
    clean = np.clip(3.5 + bu[users] + bi[items] + np.sum(u[users] * v[items], axis=1), 1.0, 5.0)
    rating = np.clip(clean + rs.normal(0, noise, len(users)), 1.0, 5.0)
    df = pd.DataFrame({"user": users + 1, "item": items + 1, "rating": rating.astype(np.float32),
                       "clean": clean.astype(np.float32)})
    return LowRankRatings(df.sample(frac=1.0, random_state=seed).reset_index(drop=True), u, v, noise)


def subspace_r2(learned: np.ndarray, true: np.ndarray) -> float:
    """Share of the true factors' variance a linear map of the learned factors explains (1 = recovered up to
    rotation and scale, 0 = unrelated). Rows are the same entities in the same order."""
    learned, true = np.asarray(learned, np.float64), np.asarray(true, np.float64)
    x = np.concatenate([learned - learned.mean(0), np.ones((len(learned), 1))], axis=1)
    t = true - true.mean(0)
    coef, *_ = np.linalg.lstsq(x, t, rcond=None)
    resid = t - x @ coef
    return float(1.0 - np.sum(resid**2) / np.sum(t**2))
