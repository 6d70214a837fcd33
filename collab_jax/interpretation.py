"""The lesson's picture of a collaborative-filtering model: items placed by the first principal components of
their learned factors, each labelled with its title (similar films land near each other).

    top = most_rated(ratings, "title", 1000)
    plot_item_pca(learn, top)                      # 50 of them at random, as the lesson draws it
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from collab_jax.interpret import pca
from learner_jax.figures import show_or_save
from learner_jax.recorder import PLOT_STYLE


def explained_variance(x: np.ndarray) -> np.ndarray:
    """Share of the variance of the centred rows along each principal direction."""
    xc = np.asarray(x, np.float64) - np.asarray(x, np.float64).mean(0)
    s = np.linalg.svd(xc, compute_uv=False) ** 2
    return s / max(s.sum(), 1e-12)


_DARK = ["#1b4f72", "#922b21", "#1e8449", "#6c3483", "#9a7d0a", "#117a65", "#424949", "#a04000"]
# label offsets tried in order (points): right, left, above, below, then further out
_OFFSETS = [(4, 3), (-4, 3), (4, 9), (4, -11), (-4, -11), (-4, 9), (8, 16), (8, -18), (-8, 16), (-8, -18)]


def place_labels(ax: Any, xs: np.ndarray, ys: np.ndarray, labels: Sequence[str], colors: Sequence[Any]) -> int:
    """Label each point at the first offset whose text box overlaps no label placed before (greedy; a point with
    no free spot stays unlabelled). Returns the number of labels drawn. A few dozen labels: no dependency."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    placed: list[Any] = [Bbox.from_extents(px - 3, py - 3, px + 3, py + 3) for px, py in pts]  # the dots
    shown = 0
    for x, y, text, color in zip(xs, ys, labels, colors):
        ann = None
        for dx, dy in _OFFSETS:
            ha = "left" if dx >= 0 else "right"
            cand = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=9, color=color,
                               ha=ha, va="center")
            box = cand.get_window_extent(renderer).expanded(1.02, 1.1)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in placed):
                ann = cand
                break
            cand.remove()
        if ann is not None:  # no free spot: the point stays unlabelled rather than under another label
            placed.append(ann.get_window_extent(renderer))
            shown += 1
    return shown


def plot_item_pca(learn: Any, items: Sequence[Any], n_show: int = 50, components: tuple[int, int] = (0, 1),
                  titles: Mapping[Any, str] | None = None, seed: int = 0, max_chars: int = 32,
                  fname: str | os.PathLike | None = None) -> Path | None:
    """PCA of the factors of ``items`` (raw ids, e.g. the 1000 most rated), then ``n_show`` of them drawn at
    random (``seed``) at their ``components`` coordinates, labelled with ``titles[id]`` (default: the id itself).
    Shown inline in a notebook, else written under ``<learn.path>/plots``; returns the written path."""
    import matplotlib.pyplot as plt

    items = list(items)
    if len(items) < 3:
        raise ValueError(f"plot_item_pca needs at least 3 items, got {len(items)}")
    w = np.asarray(learn.weight(items, is_item=True))
    k = max(components) + 1
    if k > min(w.shape):
        raise ValueError(f"components {components} need {k} principal directions; the factors have shape {w.shape}")
    comps = pca(w, k)
    share = explained_variance(w)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(items), size=min(n_show, len(items)), replace=False))
    cx, cy = components
    labels = [str(titles.get(items[i], items[i]) if titles is not None else items[i]) for i in pick]
    labels = [t if len(t) <= max_chars else t[:max_chars - 1] + "…" for t in labels]
    with plt.rc_context(PLOT_STYLE):
        fig, ax = plt.subplots(figsize=(12, 10))
        ax.scatter(comps[pick, cx], comps[pick, cy], s=14, color="C0", alpha=0.7)
        colors = [_DARK[j % len(_DARK)] for j in range(len(pick))]
        ax.margins(0.12)
        ax.set_xlim(ax.get_xlim())  # fix the limits now: label boxes are measured in screen coordinates
        ax.set_ylim(ax.get_ylim())
        shown = place_labels(ax, comps[pick, cx], comps[pick, cy], labels, colors)
        ax.set_xlabel(f"principal component {cx + 1} ({share[cx]:.0%} of the variance)")
        ax.set_ylabel(f"principal component {cy + 1} ({share[cy]:.0%} of the variance)")
        hidden = f"; {len(pick) - shown} labels left out where they would overlap" if shown < len(pick) else ""
        ax.set_title(f"Item factors on their principal components ({len(pick)} of {len(items)} "
                     f"{learn.dls.item_name}s{hidden})")
    return show_or_save(fig, fname, "item_pca.png", getattr(learn, "path", None), "item PCA map")


__all__ = ["explained_variance", "plot_item_pca"]
