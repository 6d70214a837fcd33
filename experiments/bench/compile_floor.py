"""The compile floor of the lesson fits: the smallest jit-compiled epoch program that trains each lesson's model.

collab: four embedding lookups, a sigmoid-range dot, MSE, ``jax.grad`` and plain SGD in one ``lax.scan`` over
ML-100k-sized batches. tabular: the Adult lesson's model (7 categorical embeddings at fastai's sizes, 3
continuous columns through BatchNorm, Linear-ReLU-BatchNorm 200 and 100, Linear 2, cross-entropy) with plain
SGD in one ``lax.scan`` over the lesson's 26k training rows in batches of 64. Neither has Adam, a schedule, a
shuffle, dropout, metrics or a validation pass: their trace+lower+compile seconds plus the lesson's compiled epochs
are what *any* XLA-compiled fit of that model pays at least on this machine (experiments/results/compile.md).

    python -m experiments.bench.compile_floor [--learner collab|tabular|both] [--form scan|step]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

N_USERS, N_ITEMS, N_FACTORS, N_RATINGS, BS = 944, 1683, 50, 80_000, 64
# Adult lesson: (cardinality incl. #na#, fastai's emb_sz_rule size) of workclass, education, marital-status,
# occupation, relationship, race, education-num_na; 3 continuous columns; 80% of 32,561 rows
ADULT_CATS = ((10, 6), (17, 8), (8, 5), (16, 8), (7, 5), (6, 4), (3, 3))
ADULT_CONT, ADULT_ROWS, ADULT_LAYERS = 3, 26_049, (200, 100)


def _collab_loss(p: dict, u: jax.Array, i: jax.Array, r: jax.Array) -> jax.Array:
    pred = jnp.sum(p["u"][u] * p["i"][i], -1) + p["ub"][u] + p["ib"][i]
    return jnp.mean((jax.nn.sigmoid(pred) * 5.5 - r) ** 2)


def _batchnorm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    mean, var = jnp.mean(x, 0), jnp.var(x, 0)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias


def _tabular_loss(p: dict, cats: jax.Array, conts: jax.Array, y: jax.Array) -> jax.Array:
    x = jnp.concatenate([e[cats[:, j]] for j, e in enumerate(p["emb"])]
                        + [_batchnorm(conts, *p["bn_cont"])], -1)
    for lin, bn in zip(p["lin"][:-1], p["bn"]):
        x = _batchnorm(jax.nn.relu(x @ lin[0] + lin[1]), *bn)
    logits = x @ p["lin"][-1][0] + p["lin"][-1][1]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def _sgd_step(loss: Callable) -> Callable:
    def step(p, *b):
        g = jax.grad(loss)(p, *b)
        return jax.tree.map(lambda a, d: a - 0.01 * d, p, g)

    return step


def _sgd_epoch(loss: Callable) -> Callable:
    def epoch(p, *data):
        nb = data[0].shape[0] // BS

        def step(p, b):
            g = jax.grad(loss)(p, *b)
            return jax.tree.map(lambda a, d: a - 0.01 * d, p, g), None

        cut = lambda a: a[: nb * BS].reshape(nb, BS, *a.shape[1:])  # noqa: E731
        return jax.lax.scan(step, p, tuple(cut(a) for a in data))[0]

    return epoch


def collab_problem(rng: np.random.Generator) -> tuple[Callable, Callable, dict, tuple, int]:
    p = {"u": jnp.asarray(rng.normal(0, 0.01, (N_USERS, N_FACTORS)), jnp.float32),
         "i": jnp.asarray(rng.normal(0, 0.01, (N_ITEMS, N_FACTORS)), jnp.float32),
         "ub": jnp.zeros(N_USERS), "ib": jnp.zeros(N_ITEMS)}
    data = (jnp.asarray(rng.integers(0, N_USERS, N_RATINGS)), jnp.asarray(rng.integers(0, N_ITEMS, N_RATINGS)),
            jnp.asarray(rng.uniform(1, 5, N_RATINGS), jnp.float32))
    return _sgd_epoch(_collab_loss), _collab_loss, p, data, 5


def tabular_problem(rng: np.random.Generator) -> tuple[Callable, Callable, dict, tuple, int]:
    f32 = lambda *s: jnp.asarray(rng.normal(0, 0.05, s), jnp.float32)  # noqa: E731
    widths = [sum(d for _, d in ADULT_CATS) + ADULT_CONT, *ADULT_LAYERS, 2]
    p = {"emb": [f32(n, d) for n, d in ADULT_CATS],
         "bn_cont": (jnp.ones(ADULT_CONT), jnp.zeros(ADULT_CONT)),
         "lin": [(f32(a, b), jnp.zeros(b)) for a, b in zip(widths[:-1], widths[1:])],
         "bn": [(jnp.ones(w), jnp.zeros(w)) for w in ADULT_LAYERS]}
    cats = np.stack([rng.integers(0, n, ADULT_ROWS) for n, _ in ADULT_CATS], 1)
    data = (jnp.asarray(cats), f32(ADULT_ROWS, ADULT_CONT), jnp.asarray(rng.integers(0, 2, ADULT_ROWS)))
    y = (cats[:, 1] > 8) ^ (cats[:, 3] % 2 == 0)  # a learnable target: the program must train, not only run
    return _sgd_epoch(_tabular_loss), _tabular_loss, p, data[:2] + (jnp.asarray(y.astype(np.int32)),), 3


PROBLEMS = {"collab": collab_problem, "tabular": tabular_problem}


def _per_step(loss: Callable, p: dict, data: tuple) -> Callable:
    """The other minimal form: one compiled SGD step, called from Python for each batch of the epoch."""
    step = jax.jit(_sgd_step(loss)).lower(p, *(a[:BS] for a in data)).compile()
    nb = data[0].shape[0] // BS
    host = [np.asarray(a) for a in data]  # sliced in NumPy: no eager device ops outside the one program
    batches = [tuple(a[k * BS:(k + 1) * BS] for a in host) for k in range(nb)]

    def epoch(p, *_):
        for b in batches:
            p = step(p, *b)
        return p

    return epoch


def floor(name: str, form: str = "scan") -> dict:
    """Compile the minimal epoch program of ``name`` in this (cold) process, then run the lesson's epochs; the
    full-data loss before and after (computed outside the timing) shows the program trains. ``form``: ``scan``
    (one program per epoch) or ``step`` (one program per batch, a Python loop)."""
    epoch, loss, p, data, n_epochs = PROBLEMS[name](np.random.default_rng(0))
    p0 = p
    t, c = time.perf_counter(), time.process_time()
    compiled = (jax.jit(epoch).lower(p, *data).compile() if form == "scan" else _per_step(loss, p, data))
    out = {"learner": name, "form": form, "compile_wall_s": time.perf_counter() - t,
           "compile_cpu_s": time.process_time() - c}
    epochs = []
    for _ in range(n_epochs):
        t = time.perf_counter()
        p = jax.block_until_ready(compiled(p, *data))
        epochs.append(time.perf_counter() - t)
    rows = (data[0].shape[0] // BS) * BS * n_epochs
    out |= {"epoch_s": epochs, "floor_fit_s": out["compile_wall_s"] + sum(epochs), "train_rows": rows,
            "floor_rows_per_s": rows / (out["compile_wall_s"] + sum(epochs)),
            "loss_before": float(jax.jit(loss)(p0, *data)), "loss_after": float(jax.jit(loss)(p, *data))}
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learner", default="both", choices=["collab", "tabular", "both"])
    ap.add_argument("--form", default="scan", choices=["scan", "step"])
    a = ap.parse_args(argv)
    outs = [floor(n, a.form) for n in (PROBLEMS if a.learner == "both" else [a.learner])]
    print(json.dumps(outs, indent=1))
    return outs


if __name__ == "__main__":
    main()
