"""The compile floor of a collab fit: the smallest jit-compiled epoch program that trains the lesson's dot model.

Four embedding lookups, a sigmoid-range dot, MSE, ``jax.grad`` and plain SGD in one ``lax.scan`` over ML-100k-sized
batches (no Adam, schedule, shuffle or metrics): its trace+lower+compile seconds plus five compiled epochs are
what *any* XLA-compiled collab fit pays at least on this machine (experiments/results/compile.md).

    python -m experiments.bench.compile_floor
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

N_USERS, N_ITEMS, N_FACTORS, N_RATINGS, BS = 944, 1683, 50, 80_000, 64


def _loss(p: dict, u: jax.Array, i: jax.Array, r: jax.Array) -> jax.Array:
    pred = jnp.sum(p["u"][u] * p["i"][i], -1) + p["ub"][u] + p["ib"][i]
    return jnp.mean((jax.nn.sigmoid(pred) * 5.5 - r) ** 2)


def _epoch(p: dict, users: jax.Array, items: jax.Array, ratings: jax.Array) -> dict:
    nb = users.shape[0] // BS

    def step(p, b):
        g = jax.grad(_loss)(p, *b)
        return jax.tree.map(lambda a, d: a - 0.01 * d, p, g), None

    cut = lambda a: a[: nb * BS].reshape(nb, BS)  # noqa: E731
    return jax.lax.scan(step, p, (cut(users), cut(items), cut(ratings)))[0]


def main() -> dict:
    rng = np.random.default_rng(0)
    p = {"u": jnp.asarray(rng.normal(0, 0.01, (N_USERS, N_FACTORS)), jnp.float32),
         "i": jnp.asarray(rng.normal(0, 0.01, (N_ITEMS, N_FACTORS)), jnp.float32),
         "ub": jnp.zeros(N_USERS), "ib": jnp.zeros(N_ITEMS)}
    data = (jnp.asarray(rng.integers(0, N_USERS, N_RATINGS)), jnp.asarray(rng.integers(0, N_ITEMS, N_RATINGS)),
            jnp.asarray(rng.uniform(1, 5, N_RATINGS), jnp.float32))
    t, c = time.perf_counter(), time.process_time()
    compiled = jax.jit(_epoch).lower(p, *data).compile()
    out = {"compile_wall_s": time.perf_counter() - t, "compile_cpu_s": time.process_time() - c}
    epochs = []
    for _ in range(5):
        t = time.perf_counter()
        p = jax.block_until_ready(compiled(p, *data))
        epochs.append(time.perf_counter() - t)
    out |= {"epoch_s": epochs, "floor_fit_s": out["compile_wall_s"] + sum(epochs)}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
