"""Where pictures and tables go: inline in a notebook, a PNG file (or printed table) elsewhere.

In an IPython kernel whose matplotlib backend draws inline (``%matplotlib inline``, the default in Jupyter and
Colab, or a widget backend) a figure is displayed in the cell and no file is written, unless a file name is
given. Everywhere else (scripts, terminals, CI) the figure is written as a PNG under the learner's folder
(``<learn.path>/plots``), never over an earlier picture of the same default name (``loss-1.png``...), and the
path is printed. An explicit ``fname`` is written where it says (relative names under the same folder).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

PLOTS_DIR = "plots"


def in_notebook() -> bool:
    """True inside an IPython kernel (Jupyter, Colab), False in a terminal IPython or plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def inline_backend() -> bool:
    """True when figures display in the notebook itself (inline or widget matplotlib backends)."""
    if not in_notebook():
        return False
    import matplotlib

    backend = matplotlib.get_backend().lower()
    return any(k in backend for k in ("inline", "ipympl", "widget", "nbagg"))


def free_path(path: Path) -> Path:
    """``path`` if no file is there, else the first free ``stem-1.png``, ``stem-2.png``..."""
    if not path.exists():
        return path
    i = 1
    while (cand := path.with_name(f"{path.stem}-{i}{path.suffix}")).exists():
        i += 1
    return cand


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def display_inline(fig: Any) -> None:
    """Draw ``fig`` in the notebook cell's output."""
    from IPython.display import display

    display(fig)


def show_or_save(fig: Any, fname: str | os.PathLike | None, default: str, folder: str | os.PathLike | None,
                 what: str = "plot", verbose: bool = True) -> Path | None:
    """Display ``fig`` inline (notebook, no ``fname``) or write it; returns the written path (None if only shown).

    ``folder`` is the learner's path; pictures go in its ``plots`` subfolder. The figure is closed either way
    so a notebook does not show it a second time at the end of the cell.
    """
    import matplotlib.pyplot as plt

    out = None
    try:
        inline = inline_backend()
        if inline:
            display_inline(fig)
        if fname is not None or not inline:
            base = Path(folder if folder is not None else ".") / PLOTS_DIR
            if fname is None:
                path = free_path(base / default)
            else:
                path = Path(fname) if Path(fname).is_absolute() or Path(fname).parent != Path(".") else base / fname
            out = save_figure(fig, path)
            if verbose:
                print(f"{what} saved to {out}")
    finally:
        plt.close(fig)
    return out




def in_ipython() -> bool:
    """True in any IPython shell (notebook or terminal): the returned value of a call is displayed there."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def show_table(df: Any, show: bool = True, max_colwidth: int = 200) -> Any:
    """The one rule for tables (``show_batch``, ``show_results``, top losses): the DataFrame is returned, so
    IPython and notebooks display it once as the cell's value; outside IPython it is also printed when ``show``."""
    if show and not in_ipython():
        import pandas as pd

        with pd.option_context("display.max_columns", 50, "display.width", 200, "display.max_colwidth", max_colwidth):
            print(df.to_string(index=False))
    return df


__all__ = ["PLOTS_DIR", "display_inline", "free_path", "in_ipython", "in_notebook", "inline_backend", "save_figure",
           "show_or_save", "show_table"]
