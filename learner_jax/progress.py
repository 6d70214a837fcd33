"""fastai's epoch table (epoch, train_loss, valid_loss, metrics, time) and progress bars that work in terminals
and notebooks (``tqdm.auto``): one over the epochs of a fit (an on-device epoch is one jitted call, so this is
the bar that moves), one per epoch over batches, one over validation batches and one over the LR finder's steps.

Bars are transient and appear only where someone watches: ``disable=None`` turns them off when the output is
not a terminal or notebook (logs, CI), and ``progress=False`` on the learner turns them and the table off.
Table rows are written with ``tqdm.write`` so a bar never splits a row."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

from tqdm.auto import tqdm


def format_time(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class EpochTable:
    """Prints a header once, then one aligned row per epoch."""

    def __init__(self, names: list[str], out=None, enabled: bool = True):
        self.names, self.out, self.enabled = names, out or sys.stdout, enabled
        self.widths = [max(len(n), 9) for n in names]
        if enabled:
            self._line(names)

    def _line(self, cells: list[str]) -> None:
        tqdm.write("  ".join(c.ljust(w) for c, w in zip(cells, self.widths)).rstrip(), file=self.out)
        self.out.flush()

    def row(self, epoch: int, values: list[float], seconds: float) -> None:
        if self.enabled:
            cells = [str(epoch)] + [f"{v:.6f}" for v in values] + [format_time(seconds)]
            self._line(cells)


def batch_bar(it: Iterable, total: int, enabled: bool = True, desc: str = "") -> Iterator:
    """A transient per-epoch progress bar."""
    if not enabled:
        yield from it
        return
    # disable=None: off when stdout is not a terminal or notebook (logs, CI)
    with tqdm(it, total=total, leave=False, desc=desc, mininterval=0.5, dynamic_ncols=True, disable=None) as bar:
        yield from bar


def epoch_bar(epochs: range, enabled: bool = True) -> Iterator[int]:
    """A bar over a fit's epochs (left in place when done, as fastai's master bar)."""
    if not enabled or len(epochs) <= 1:
        yield from epochs
        return
    with tqdm(epochs, desc="epochs", unit="epoch", mininterval=0.5, dynamic_ncols=True, disable=None) as bar:
        yield from bar


def step_bar(total: int | None, enabled: bool = True, desc: str = "", unit: str = "it", delay: float = 0.0) -> tqdm:
    """A transient bar advanced by hand (``bar.update(n)``; ``bar.close()`` at the end); ``delay`` seconds pass
    before it appears, so quick jobs never show one."""
    return tqdm(total=total, desc=desc, unit=unit, leave=False, mininterval=0.5, dynamic_ncols=True, delay=delay,
                disable=None if enabled else True)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
