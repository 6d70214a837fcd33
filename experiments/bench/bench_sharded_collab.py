"""Collab tables larger than a device: the dot model with its user/item tables split by rows over the devices.

Trains a synthetic ``n_users x n_items`` problem (default 1M x 100k, 64 factors) with ``shard_tables=True`` and
prints, per device, the bytes of parameters and Adam moments actually held (from the arrays' shards) and the
step time of a compiled epoch (the second epoch; the first includes compilation). Simulate devices on a CPU:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \\
        python -m experiments.bench.bench_sharded_collab --n-users 1000000 --n-items 100000 --n-factors 64
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def synthetic_loaders(n_users: int, n_items: int, n_ratings: int, bs: int, seed: int = 0):
    """Random (user, item, rating) rows over the full id ranges: every table row exists, few are rated."""
    from collab_jax.data import CollabDataLoaders
    from learner_jax.data import DataLoader

    rng = np.random.default_rng(seed)
    x = np.stack([rng.integers(1, n_users + 1, n_ratings), rng.integers(1, n_items + 1, n_ratings)], 1)
    y = rng.uniform(1, 5, n_ratings).astype(np.float32)
    cut = n_ratings * 9 // 10
    classes = {"user": ["#na#", *range(1, n_users + 1)], "item": ["#na#", *range(1, n_items + 1)]}
    return CollabDataLoaders(train=DataLoader(x[:cut].astype(np.int32), y[:cut], bs=bs, shuffle=True),
                             valid=DataLoader(x[cut:].astype(np.int32), y[cut:], bs=bs), classes=classes,
                             rating_range=(1.0, 5.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-users", type=int, default=1_000_000)
    ap.add_argument("--n-items", type=int, default=100_000)
    ap.add_argument("--n-factors", type=int, default=64)
    ap.add_argument("--bs", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=10, help="training steps per epoch")
    ap.add_argument("--no-shard", action="store_true", help="replicate the tables instead (the baseline)")
    args = ap.parse_args()

    import jax

    from collab_jax import collab_learner
    from learner_jax.sharding import per_device_bytes

    dls = synthetic_loaders(args.n_users, args.n_items, args.steps * args.bs * 10 // 9 + args.bs, args.bs)
    t0 = time.perf_counter()
    learn = collab_learner(dls, n_factors=args.n_factors, y_range=(0.5, 5.5), progress=False,
                           shard_tables=not args.no_shard)
    build = time.perf_counter() - t0
    held = per_device_bytes((learn.state.params, learn.state.opt_state))
    n_dev = len(jax.devices())
    table_bytes = 4 * (args.n_users + 1 + args.n_items + 1) * (args.n_factors + 1)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        learn.fit(1, 1e-3)
        jax.block_until_ready(learn.state.params)
        times.append(time.perf_counter() - t0)
    n = len(learn.dls.train)
    path = "row-sparse dot epoch" if learn.table_shapes or n_dev == 1 else "engine epoch"
    print(f"devices {n_dev}  tables {args.n_users} x {args.n_items} x {args.n_factors}  sharded "
          f"{bool(learn.table_shapes)}  ({path})")
    print(f"tables (weights+biases) {table_bytes / 2**20:.1f} MiB; with Adam moments x3 = "
          f"{3 * table_bytes / 2**20:.1f} MiB")
    print("held per device (params + optimizer state): " +
          ", ".join(f"{d.split(':')[-1].strip()}={b / 2**20:.1f} MiB" for d, b in sorted(held.items())))
    print(f"max per device {max(held.values()) / 2**20:.1f} MiB = {max(held.values()) / sum(held.values()):.3f} of "
          f"the total {sum(held.values()) / 2**20:.1f} MiB")
    print(f"build {build:.1f} s; epoch of {n} steps (bs {args.bs}): first {times[0]:.2f} s (with compile), "
          f"second {times[1]:.2f} s = {1e3 * times[1] / n:.1f} ms/step; valid loss {learn.validate()[0]:.4f}")


if __name__ == "__main__":
    main()
