"""fastai's epoch table (epoch, train_loss, valid_loss, metrics, time) and a progress bar that works in
terminals and notebooks (``tqdm.auto``)."""

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
        print("  ".join(c.ljust(w) for c, w in zip(cells, self.widths)).rstrip(), file=self.out, flush=True)

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


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
