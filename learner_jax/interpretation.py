"""fastai's ``ClassificationInterpretation``: the confusion matrix, the most confused pairs and the top losses of
a classifier over a loader, with the inputs decoded (text, table rows) by the loaders' ``decode_inputs``.

    interp = ClassificationInterpretation.from_learner(learn)
    interp.plot_confusion_matrix()
    interp.plot_top_losses(9)      # a table: decoded input, target, predicted, probability, loss
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from learner_jax.figures import show_or_save, show_table
from learner_jax.recorder import PLOT_STYLE


def class_names(learn: Any, n: int) -> list:
    """The labels of a classifier's outputs: ``learn.classes`` (text), ``learn.dls.vocab`` (tabular), else 0..n-1."""
    for names in (getattr(learn, "classes", None), getattr(learn.dls, "classes", None),
                  getattr(learn.dls, "vocab", None)):
        if isinstance(names, (list, tuple)) and len(names) == n and not isinstance(names[0], (list, tuple)):
            return list(names)
    return list(range(n))


def decoded_inputs(learn: Any, dl: Any) -> pd.DataFrame | None:
    """One row per real (weight > 0) input of ``dl``, in ``get_preds`` order, via ``dls.decode_inputs``."""
    decode = getattr(learn.dls, "decode_inputs", None)
    if decode is None:
        return None
    parts = [decode(x).iloc[np.flatnonzero(np.asarray(w) > 0)] for x, _, w in dl.batches(0)]
    return pd.concat(parts, ignore_index=True) if parts else None


class ClassificationInterpretation:
    """Predictions, targets and per-row losses of a classifier over one loader."""

    def __init__(self, learn: Any, dl: Any, preds: np.ndarray, targs: np.ndarray):
        if preds.ndim != 2 or preds.shape[1] < 2:
            raise ValueError(f"ClassificationInterpretation needs class probabilities (n, n_classes); got shape "
                             f"{preds.shape}: is this a regression or language model?")
        self.learn, self.dl = learn, dl
        self.preds, self.targs = preds, np.asarray(targs).astype(np.int64)
        self.decoded = preds.argmax(axis=1)
        self.vocab = class_names(learn, preds.shape[1])
        # the per-row cross-entropy, from the probabilities get_preds returns
        self.losses = -np.log(np.clip(preds[np.arange(len(preds)), self.targs], 1e-12, None))

    @classmethod
    def from_learner(cls, learn: Any, ds_idx: int = 1, dl: Any = None) -> ClassificationInterpretation:
        """Interpret ``learn`` on ``dl`` (default: the validation loader, ``ds_idx=1``)."""
        dl = learn.dls.loaders[ds_idx] if dl is None else dl
        preds, targs = learn.get_preds(dl=dl)
        return cls(learn, dl, np.asarray(preds, np.float64), targs)

    def confusion_matrix(self) -> np.ndarray:
        """Counts with actual classes as rows and predicted classes as columns."""
        n = len(self.vocab)
        return np.bincount(self.targs * n + self.decoded, minlength=n * n).reshape(n, n)

    def most_confused(self, min_val: int = 1) -> list[tuple[Any, Any, int]]:
        """(actual, predicted, count) for off-diagonal cells with at least ``min_val`` rows, most first."""
        cm = self.confusion_matrix()
        np.fill_diagonal(cm, 0)
        pairs = [(self.vocab[i], self.vocab[j], int(cm[i, j])) for i, j in zip(*np.nonzero(cm >= min_val))]
        return sorted(pairs, key=lambda p: -p[2])

    def plot_confusion_matrix(self, normalize: bool = False, title: str = "Confusion matrix", cmap: str = "Blues",
                              norm_dec: int = 2, fname: str | os.PathLike | None = None) -> Path | None:
        """fastai's picture: actual classes down, predicted across, each cell's count (or row share with
        ``normalize``). Shown inline in a notebook, else written under ``<learn.path>/plots``."""
        import matplotlib.pyplot as plt

        cm = self.confusion_matrix().astype(np.float64)
        if normalize:
            cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        n = len(self.vocab)
        side = min(max(4.0, 0.6 * n + 2.5), 14.0)
        with plt.rc_context(PLOT_STYLE | {"axes.grid": False}):
            fig, ax = plt.subplots(figsize=(side, side))
            im = ax.imshow(cm, interpolation="nearest", cmap=cmap)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            labels = [str(v) for v in self.vocab]
            ax.set_xticks(range(n), labels, rotation=90 if max(map(len, labels)) > 6 else 0)
            ax.set_yticks(range(n), labels)
            thresh = cm.max() / 2 if cm.size else 0
            if n <= 30:
                for i in range(n):
                    for j in range(n):
                        txt = f"{cm[i, j]:.{norm_dec}f}" if normalize else f"{int(cm[i, j])}"
                        ax.text(j, i, txt, ha="center", va="center", color="white" if cm[i, j] > thresh else "black")
            ax.set_xlabel("Predicted")
            ax.set_ylabel("Actual")
            acc = float(np.trace(self.confusion_matrix()) / max(len(self.targs), 1))
            ax.set_title(f"{title} ({len(self.targs)} rows, accuracy {acc:.3f})")
        folder = getattr(self.learn, "path", None)
        return show_or_save(fig, fname, "confusion_matrix.png", folder, "confusion matrix")

    def top_losses(self, k: int | None = None, largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """fastai's ``top_losses``: the ``k`` largest (or smallest) per-row losses and their row indices."""
        order = np.argsort(-self.losses if largest else self.losses, kind="stable")
        order = order[:k] if k is not None else order
        return self.losses[order], order

    def top_losses_table(self, k: int = 9, largest: bool = True) -> pd.DataFrame:
        """The rows behind the top losses: decoded inputs, ``target``, ``predicted``, ``probability`` (of the
        prediction) and ``loss``."""
        losses, idx = self.top_losses(k, largest)
        inputs = decoded_inputs(self.learn, self.dl)
        df = (inputs.iloc[idx].reset_index(drop=True) if inputs is not None and len(inputs) == len(self.targs)
              else pd.DataFrame({"row": idx}))
        vocab = np.asarray(self.vocab, dtype=object)
        df["target"] = vocab[self.targs[idx]]
        df["predicted"] = vocab[self.decoded[idx]]
        df["probability"] = np.round(self.preds[idx, self.decoded[idx]], 4)
        df["loss"] = np.round(losses, 4)
        return df

    def plot_top_losses(self, k: int = 9, largest: bool = True, show: bool = True,
                        max_colwidth: int = 300) -> pd.DataFrame:
        """fastai's ``plot_top_losses`` for text and tables is a table: returned (a notebook displays it), and
        printed outside IPython."""
        return show_table(self.top_losses_table(k, largest), show, max_colwidth)

    def __repr__(self) -> str:
        return (f"ClassificationInterpretation({len(self.targs)} rows, {len(self.vocab)} classes "
                f"{self.vocab[:5]}{'...' if len(self.vocab) > 5 else ''})")


__all__ = ["ClassificationInterpretation"]
