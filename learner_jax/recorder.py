"""Training history with fastai's names (``lrs``, ``moms``, ``losses``, ``values``) and its plots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learner_jax.figures import show_or_save

PLOT_STYLE = {"axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
              "font.size": 10}


@dataclass
class Recorder:
    """Per-step ``lrs``, ``moms``, ``losses`` (smoothed train loss, beta 0.98 debiased, as fastai) and per-epoch
    ``values`` ([train_loss, valid_loss, *metrics]). An ``lrs`` entry is a float when all layer groups share
    the learning rate and a list (one per group) where they differ."""

    metric_names: list[str] = field(default_factory=list)
    lrs: list = field(default_factory=list)
    moms: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    param_norms: list[float] = field(default_factory=list)
    beta: float = 0.98
    _avg: float = 0.0
    _count: int = 0
    folder: Callable[[], Path] | None = field(default=None, repr=False)  # the learner's path, for pictures

    def reset(self, metric_names: list[str]) -> None:
        self.metric_names = metric_names
        self.lrs, self.moms, self.losses, self.values = [], [], [], []
        self.grad_norms, self.param_norms = [], []
        self._avg, self._count = 0.0, 0

    def add_step(self, loss: float, lr: np.ndarray, mom: float) -> float:
        """Record one step; returns the smoothed loss."""
        self.add_steps(np.asarray([loss]), np.asarray([lr]), np.asarray([mom]))
        return self.losses[-1]

    def add_steps(self, losses: np.ndarray, lrs: np.ndarray, moms: np.ndarray) -> None:
        """Record steps: the smoothed loss (fastai's debiased running mean), each step's lr (one float when all
        groups share it) and beta1. A whole on-device epoch goes in one call (per-step NumPy overhead was ~15 ms
        of a 100 ms collaborative-filtering epoch)."""
        lrs = np.asarray(lrs, np.float64).reshape(len(losses), -1)
        uniform = np.all(lrs == lrs[:, :1], axis=1)
        avg, count, beta = self._avg, self._count, self.beta
        for loss, lr, same in zip(np.asarray(losses, np.float64).tolist(), lrs.tolist(), uniform.tolist()):
            count += 1
            avg = beta * avg + (1 - beta) * loss
            self.losses.append(avg / (1 - beta**count))
            self.lrs.append(lr[0] if same else lr)
        self.moms.extend(np.asarray(moms, np.float64).tolist())
        self._avg, self._count = avg, count

    @property
    def smooth_loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")

    def _last_group_lrs(self) -> np.ndarray:
        return np.array([v[-1] if isinstance(v, list) else v for v in self.lrs])

    def _out(self, fig, fname, default: str, what: str) -> Path | None:
        return show_or_save(fig, fname, default, self.folder() if self.folder else None, what)

    def _n_per_epoch(self) -> int:
        return max(len(self.losses) // len(self.values), 1) if self.values else len(self.losses)

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, fname: str | None = None) -> Path | None:
        """fastai's ``plot_loss``: the smoothed training loss per step and the validation loss at each epoch's
        end. Shown inline in a notebook; otherwise written under ``<learn.path>/plots`` (see ``figures``)."""
        import matplotlib.pyplot as plt

        if not self.losses:
            raise ValueError("nothing to plot: the recorder is empty (train first: learn.fit_one_cycle(...))")
        skip = min(skip_start, max(len(self.losses) - 2, 0))
        with plt.rc_context(PLOT_STYLE):
            fig, ax = plt.subplots(figsize=(7, 4.2))
            ax.plot(range(skip, len(self.losses)), self.losses[skip:], label="train (smoothed)", color="C0")
            if with_valid and self.values:
                n = self._n_per_epoch()
                xs = [(i + 1) * n - 1 for i in range(len(self.values))]
                ax.plot(xs, [v[1] for v in self.values], "o-", label="valid", color="C1")
            ax.set_xlabel("training step (batch)")
            ax.set_ylabel("loss")
            n_ep = len(self.values)
            ax.set_title(f"Loss over {n_ep} epoch{'s' if n_ep != 1 else ''}" if n_ep else "Training loss")
            ax.legend()
        return self._out(fig, fname, "loss.png", "loss plot")

    def plot_losses(self, skip_start: int = 5, with_valid: bool = True, fname: str | None = None) -> Path | None:
        """fastai v1's name for ``plot_loss``."""
        return self.plot_loss(skip_start, with_valid, fname)

    def plot_lr_find(self, skip_end: int = 5, suggestions: dict | None = None,
                     fname: str | None = None) -> Path | None:
        """The LR finder's loss against the learning rate (log scale), each suggestion marked with its value.
        ``suggestions`` maps a name to a learning rate (``lr_find`` passes its suggestions)."""
        import matplotlib.pyplot as plt

        lrs, losses = self._last_group_lrs(), np.array(self.losses)
        if len(lrs) < 2:
            raise ValueError("nothing to plot: run learn.lr_find() first")
        end = len(lrs) - skip_end if len(lrs) > skip_end + 1 else len(lrs)
        lrs, losses = lrs[:end], losses[:end]
        with plt.rc_context(PLOT_STYLE):
            fig, ax = plt.subplots(figsize=(7, 4.2))
            ax.plot(lrs, losses, color="C0")
            ax.set_xscale("log")
            ax.set_xlabel("learning rate (log scale)")
            ax.set_ylabel("loss (smoothed)")
            ax.set_title("Learning rate finder")
            finite = losses[np.isfinite(losses)]
            if len(finite):  # the divergence at the end would squash the interesting part
                lo, hi = finite.min(), min(finite.max(), finite[0] + 2 * (finite[0] - finite.min()) + 1e-6)
                ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            for i, (name, val) in enumerate((suggestions or {}).items()):
                j = int(np.argmin(np.abs(np.log(lrs) - np.log(val))))
                ax.plot([lrs[j]], [losses[j]], "o", ms=8, color=f"C{i + 1}", label=f"{name}: {val:.2e}", zorder=3)
                ax.axvline(val, linestyle="--", alpha=0.5, color=f"C{i + 1}")
            if suggestions:
                ax.legend(title="suggested lr")
        return self._out(fig, fname, "lr_find.png", "lr_find plot")

    def plot(self, skip_end: int = 5, suggestions: dict | None = None, fname: str | None = None) -> Path | None:
        """fastai v1's ``recorder.plot()``: the LR finder's plot (``plot_lr_find``)."""
        return self.plot_lr_find(skip_end, suggestions, fname)

    def plot_sched(self, fname: str | None = None) -> Path | None:
        """The learning rate (each layer group when they differ) and Adam's beta1 per training step."""
        import matplotlib.pyplot as plt

        if not self.lrs:
            raise ValueError("nothing to plot: the recorder is empty (train first)")
        per_group = any(isinstance(v, list) for v in self.lrs)
        with plt.rc_context(PLOT_STYLE):
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
            if per_group:
                width = max(len(v) for v in self.lrs if isinstance(v, list))
                lrs = np.array([v if isinstance(v, list) else [v] * width for v in self.lrs])
                for g in range(lrs.shape[1]):
                    a1.plot(lrs[:, g], label=f"group {g}")
                a1.legend()
            else:
                a1.plot(self.lrs)
            a1.set_title("Learning rate")
            a1.set_xlabel("training step (batch)")
            a1.set_ylabel("learning rate")
            a1.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
            a2.plot(self.moms, color="C1")
            a2.set_title("Momentum (Adam beta1)")
            a2.set_xlabel("training step (batch)")
            a2.set_ylabel("beta1")
        return self._out(fig, fname, "sched.png", "schedule plot")
