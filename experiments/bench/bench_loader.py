"""Grain vs our hand-written loader on the in-memory arrays our applications use (the measurement behind the
choice documented in learner_jax/data.py).

    python -m experiments.bench.bench_loader [--rows 200000] [--bs 64]

Both produce shuffled (x, y) batches of a tabular-sized table (8 int32 + 6 float32 columns); we time one
epoch of batch production on the host, without training.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from learner_jax.data import DataLoader


def time_ours(x, y, bs: int) -> float:
    dl = DataLoader(x, y, bs=bs, shuffle=True, seed=0)
    t0 = time.perf_counter()
    n = sum(1 for _ in dl.batches(0))
    assert n == len(dl)
    return time.perf_counter() - t0


def time_grain_map(x, y, bs: int) -> float:
    import grain

    ds = (grain.MapDataset.range(len(y)).shuffle(seed=0)
          .batch(bs, drop_remainder=True, batch_fn=lambda idx: (x[np.asarray(idx)], y[np.asarray(idx)])))
    t0 = time.perf_counter()
    n = sum(1 for _ in ds)
    assert n == len(y) // bs
    return time.perf_counter() - t0


def time_grain_records(x, y, bs: int) -> float:
    """Grain's usual per-record path: map each index to a record, then batch (stack) records."""
    import grain

    ds = (grain.MapDataset.range(len(y)).shuffle(seed=0).map(lambda i: (x[i], y[i]))
          .batch(bs, drop_remainder=True))
    t0 = time.perf_counter()
    n = sum(1 for _ in ds)
    assert n == len(y) // bs
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--bs", type=int, default=64)
    args = ap.parse_args()
    rs = np.random.default_rng(0)
    x = {"cat": rs.integers(0, 50, (args.rows, 8)).astype(np.int32),
         "cont": rs.normal(size=(args.rows, 6)).astype(np.float32)}
    y = rs.integers(0, 2, args.rows).astype(np.int32)
    ours = time_ours(x, y, args.bs)
    xt = np.concatenate([x["cat"].astype(np.float32), x["cont"]], 1)
    g_batch = time_grain_map(xt, y, args.bs)
    g_rec = time_grain_records(xt, y, args.bs)
    n_b = args.rows // args.bs
    print(f"{args.rows} rows, bs {args.bs}, {n_b} batches per epoch (host batch production only)")
    for name, t in [("ours (index per batch)", ours), ("grain MapDataset, batch_fn", g_batch),
                    ("grain MapDataset, per record", g_rec)]:
        print(f"  {name:32s} {t:8.3f} s   {n_b / t:10.0f} batches/s   x{t / ours:6.1f} ours")


if __name__ == "__main__":
    main()
