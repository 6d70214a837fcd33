"""Ours vs fastai on the lesson's collaborative-filtering fit, same ratings, same split, same config, one run.

    python -m experiments.bench.bench_collab --data-dir ../shared/data
    python -m experiments.bench.bench_collab --data-dir ../shared/data --ref-python /work/refenv/bin/python
    python -m experiments.bench.bench_collab --data-dir ../shared/data --xla-cache /tmp/xla   # run twice
    python -m experiments.bench.bench_collab --data-dir ../shared/data --bf16    # + bf16 / torch bf16 autocast

ML-100k ``u.data``, random 80/20 split (seed 42, ``collab_jax.data.random_split``), ``n_factors=50``,
``y_range=(0, 5.5)``, ``fit_one_cycle(5, 5e-3, wd=0.1)``, bs 64. Our side runs here; fastai (and Surprise's SVD
with its defaults, when importable there) runs in a subprocess of ``--ref-python`` on a CSV of the same rows
with the same ``is_valid`` column. Prints fit wall time, training throughput (ratings/s) and valid MSE for
both, and the ratio. Our first fit includes tracing and compilation (or, with ``--xla-cache`` on a second run,
loading the compiled program); the "compiled" fit repeats it from the same initial weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from collab_jax.data import CollabDataLoaders, random_split
from collab_jax.learner import collab_learner
from collab_jax.movielens import find_ml100k, read_ml100k_ratings
from experiments.lesson4 import enable_compilation_cache
from learner_jax.callbacks import Callback

DEFAULT_REF = "/work/refenv/bin/python"
CONFIG = {"seed": 42, "valid_pct": 0.2, "bs": 64, "n_factors": 50, "y_range": [0, 5.5], "epochs": 5, "lr": 5e-3,
          "wd": 0.1}


class EpochTimer(Callback):
    """Wall time of each epoch (training + validation), as fastai's table reports it."""

    def before_fit(self, learn):
        self.times: list[float] = []

    def before_epoch(self, learn):
        self.t0 = time.perf_counter()

    def after_epoch(self, learn):
        self.times.append(time.perf_counter() - self.t0)


def split_frame(ratings: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """The ratings with an ``is_valid`` column from our seeded random split (shared with the reference side)."""
    _, valid_idx = random_split(len(ratings), cfg["valid_pct"], cfg["seed"])
    is_valid = np.zeros(len(ratings), bool)
    is_valid[valid_idx] = True
    return ratings[["user", "item", "rating"]].assign(is_valid=is_valid)


def run_ours(df: pd.DataFrame, cfg: dict, progress: bool = True, repeats: int = 3, bf16: bool = False) -> dict:
    """The lesson's fit twice on fresh weights: first in this process (tracing and XLA compilation included, or
    loaded from the persistent cache with ``--xla-cache``), then again once compiled (what every later fit of a
    session costs: lr_find, another fit_one_cycle, a rerun in a notebook)."""
    dls = CollabDataLoaders.from_df(df, valid_col="is_valid", bs=cfg["bs"], seed=cfg["seed"])
    learn = collab_learner(dls, n_factors=cfg["n_factors"], y_range=tuple(cfg["y_range"]), progress=progress)
    if bf16:
        learn.to_bf16()
    fresh = learn.state
    timer = EpochTimer()
    t = time.perf_counter()
    learn.fit_one_cycle(cfg["epochs"], cfg["lr"], wd=cfg["wd"], cbs=[timer])
    fit_s = time.perf_counter() - t
    valid_mse = learn.validate()[0]
    epoch_valid = [v[1] for v in learn.recorder.values]
    refits = []
    for _ in range(repeats):  # best of a few: the machine is shared, the program is the same each time
        learn.state = fresh  # the same initial weights again; the compiled epoch is reused
        t = time.perf_counter()
        learn.fit_one_cycle(cfg["epochs"], cfg["lr"], wd=cfg["wd"])
        refits.append(time.perf_counter() - t)
    refit_s = min(refits)
    n_train = len(dls.train) * dls.train.bs  # ratings seen per epoch (the last partial batch is dropped)
    steady = float(np.median(timer.times[1:])) if len(timer.times) > 1 else float("nan")
    return {"fit_s": fit_s, "compiled_fit_s": refit_s, "compiled_fit_runs_s": refits, "epoch_s": timer.times,
            "valid_mse": valid_mse,
            "compiled_fit_valid_mse": learn.validate()[0], "epoch_valid_mse": epoch_valid, "n_train": n_train,
            "ratings_per_s": n_train * cfg["epochs"] / fit_s,
            "compiled_ratings_per_s": n_train * cfg["epochs"] / refit_s, "steady_ratings_per_s": n_train / steady}


def run_ref(ref_python: str, df: pd.DataFrame, cfg: dict, timeout: float = 1800, autocast: bool = False) -> dict:
    script = Path(__file__).with_name("fastai_collab_ref.py")
    with tempfile.TemporaryDirectory() as tmp:
        csv, spec = Path(tmp) / "ratings.csv", Path(tmp) / "spec.json"
        df.to_csv(csv, index=False)
        spec.write_text(json.dumps(cfg | {"csv": str(csv), "valid_col": "is_valid", "user": "user", "item": "item",
                                          "rating": "rating", "autocast_too": autocast}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
        proc = subprocess.run([ref_python, str(script), str(spec)], capture_output=True, text=True, timeout=timeout,
                              env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed ({ref_python}):\n{proc.stderr[-3000:]}")
    for line in proc.stderr.splitlines():  # fastai's epoch table: [epoch, train_loss, valid_loss, time]
        if line.startswith("["):
            print(f"  fastai {line}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(ours: dict, ref: dict | None) -> None:
    print(f"\n{'':24}{'ours':>12}{'fastai':>12}")
    fa = (ref or {}).get("fastai") or {}
    n = ours["n_train"] * CONFIG["epochs"]

    def row(name, a, b, fmt):
        print(f"{name:24}{format(a, fmt):>12}{(format(b, fmt) if b is not None else '-'):>12}")

    row("fit wall time (s)", ours["fit_s"], fa.get("fit_s"), ".2f")
    row(f"  compiled (best of {len(ours['compiled_fit_runs_s'])})", ours["compiled_fit_s"], None, ".2f")
    row("ratings/s (whole fit)", ours["ratings_per_s"], n / fa["fit_s"] if fa else None, ",.0f")
    row("  compiled", ours["compiled_ratings_per_s"], None, ",.0f")
    row("valid MSE", ours["valid_mse"], fa.get("valid_mse"), ".4f")
    row("  compiled fit", ours["compiled_fit_valid_mse"], None, ".4f")
    if fa:
        fa_rate = n / fa["fit_s"]
        print(f"throughput ratio ours/fastai: {fa['fit_s'] / ours['fit_s']:.1f}x first fit, "
              f"{ours['compiled_ratings_per_s'] / fa_rate:.1f}x compiled")
    o16, fa16 = ours.get("bf16"), (ref or {}).get("fastai_autocast")
    if o16 or fa16:
        print(f"bf16: ours first fit {o16['fit_s']:.2f}s, compiled {o16['compiled_fit_s']:.2f}s, valid MSE "
              f"{o16['valid_mse']:.4f}" if o16 else "bf16: ours not run", end="; ")
        print(f"fastai autocast fit {fa16['fit_s']:.2f}s, valid MSE {fa16['valid_mse']:.4f}" if fa16 else "")
    sp = (ref or {}).get("surprise")
    if sp:
        print(f"Surprise SVD (defaults): fit {sp['fit_s']:.2f}s, valid MSE {sp['valid_mse']:.4f}; our 5-epoch fit "
              f"takes {ours['fit_s'] / sp['fit_s']:.2f}x its time first, {ours['compiled_fit_s'] / sp['fit_s']:.2f}x "
              "once compiled")
    elif ref is not None:
        print("Surprise is not importable in the reference environment")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"), help="folder holding ml-100k")
    ap.add_argument("--ref-python", default=DEFAULT_REF if Path(DEFAULT_REF).exists() else None,
                    help="interpreter with fastai (the ref extra); 'none' skips the reference side")
    ap.add_argument("--epochs", type=int, default=CONFIG["epochs"])
    ap.add_argument("--repeats", type=int, default=3, help="compiled fits to time (the fastest is reported)")
    ap.add_argument("--xla-cache", default=None, help="persistent XLA compilation cache folder (a second run of the "
                    "benchmark then loads the compiled epoch instead of compiling it)")
    ap.add_argument("--bf16", action="store_true", help="also ours after learn.to_bf16() and fastai under "
                    "torch.autocast('cpu', dtype=torch.bfloat16)")
    args = ap.parse_args(argv)
    if args.xla_cache:
        enable_compilation_cache(args.xla_cache, min_compile_secs=0.0)
    path = find_ml100k(args.data_dir)
    if path is None:
        sys.exit("ML-100k not found: pass --data-dir (the folder holding ml-100k/u.data) or set LESSON4_DATA")
    CONFIG["epochs"] = args.epochs
    df = split_frame(read_ml100k_ratings(path), CONFIG)
    print(f"ML-100k from {path}: {int((~df.is_valid).sum())} train / {int(df.is_valid.sum())} valid ratings; "
          f"config {CONFIG}")
    # 1-minute load averages before/after each side: on a shared machine they say how comparable the timings are
    load = [os.getloadavg()[0]]
    ours = run_ours(df, CONFIG, repeats=args.repeats)
    if args.bf16:
        ours["bf16"] = run_ours(df, CONFIG, repeats=args.repeats, bf16=True)
    load.append(os.getloadavg()[0])
    ref = None
    if args.ref_python and args.ref_python != "none":
        print(f"reference side: {args.ref_python} (fastai, then Surprise) ...", flush=True)
        ref = run_ref(args.ref_python, df, CONFIG, autocast=args.bf16)
        load.append(os.getloadavg()[0])
    report(ours, ref)
    print(f"load average ({os.cpu_count()} cores): " + " -> ".join(f"{v:.1f}" for v in load)
          + " (start, after ours, after reference)")
    return {"ours": ours, "ref": ref, "load": load}


if __name__ == "__main__":
    main()
