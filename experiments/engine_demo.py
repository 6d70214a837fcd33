"""The engine on its own: a small MLP learns a generated two-moons-like problem with fastai's API.

Real training on generated data (no canned output): lr_find, fit_one_cycle with discriminative learning
rates over two layer groups, freeze/unfreeze, validate. ``python -m experiments.engine_demo``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from learner_jax import CrossEntropyLossFlat, DataLoader, DataLoaders, Learner, accuracy


class TwoLayerNet(nnx.Module):
    """Linear -> BatchNorm -> ReLU -> Linear, in two layer groups (body, head)."""

    def __init__(self, rngs: nnx.Rngs, n_in: int = 2, n_hidden: int = 64, n_out: int = 2):
        self.body = nnx.Linear(n_in, n_hidden, use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(n_hidden, rngs=rngs)
        self.head = nnx.Linear(n_hidden, n_out, rngs=rngs)

    def __call__(self, x, *, train: bool, rngs: nnx.Rngs):
        return self.head(jax.nn.relu(self.bn(self.body(x), use_running_average=not train)))


def make_moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles with Gaussian noise."""
    rs = np.random.default_rng(seed)
    t = rs.uniform(0, np.pi, n)
    y = rs.integers(0, 2, n)
    x = np.stack([np.cos(t) + y * 1.0 - 0.5 * y, np.sin(t) * (1 - 2 * y) + 0.5 * y], 1)
    return (x + rs.normal(0, 0.15, x.shape)).astype(np.float32), y.astype(np.int32)


def run(quick: bool = False, seed: int = 0, plots_dir: Path | None = None) -> dict:
    n = 2_000 if quick else 20_000
    x, y = make_moons(n, seed)
    cut = int(0.8 * n)
    dls = DataLoaders(DataLoader(x[:cut], y[:cut], bs=64, shuffle=True, seed=seed),
                      DataLoader(x[cut:], y[cut:], bs=256))
    learn = Learner(dls, TwoLayerNet(nnx.Rngs(seed)), CrossEntropyLossFlat(), metrics=accuracy,
                    splitter=lambda path: 0 if path[0] in ("body", "bn") else 1, seed=seed)
    suggestion = learn.lr_find(show_plot=False)
    print(f"lr_find valley suggestion: {suggestion.valley:.2e}")
    if plots_dir is not None:
        learn.recorder.plot_lr_find(suggestions={"valley": suggestion.valley},
                                    fname=str(plots_dir / "engine_lr_find.png"))
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    learn.unfreeze()
    learn.fit_one_cycle(2 if quick else 4, slice(1e-3, 1e-2))
    loss, acc = learn.validate()
    print(f"engine demo: valid loss {loss:.4f}, accuracy {acc:.4f} on {n - cut} generated points")
    return {"valid_loss": loss, "accuracy": acc, "lr_valley": suggestion.valley}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    run(ap.parse_args().quick)


if __name__ == "__main__":
    main()
