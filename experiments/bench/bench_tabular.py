"""Side-by-side benchmark on Adult: tabular_jax vs fastai 2.8 (and LightGBM when installed), same frame, same split.

    python -m experiments.bench.bench_tabular                       # random 20% split (seed 42), 3 seeds
    python -m experiments.bench.bench_tabular --protocol lesson     # rows 800..999 as validation, fit(1, 1e-2)
    python -m experiments.bench.bench_tabular --protocol uci        # official split, our recipe on both sides
    python -m experiments.bench.bench_tabular --ref-python /work/refenv/bin/python --out bench_tabular.json
    python -m experiments.bench.bench_tabular --bf16   # + ours in bf16, fastai under torch's bf16 autocast

fastai runs in a separate interpreter (``--ref-python``, default /work/refenv/bin/python when it exists; the
``ref`` extra), reading the very frame and validation rows we use, so accuracies compare like for like. The
random protocol's 20% are the rows of fastai's own ``RandomSplitter(0.2, seed=42)`` (asked from the ref side;
``--split ours`` uses our NumPy permutation, the default without a ref interpreter).
Both sides: procs FillMissing/Categorify/Normalize, ``layers=[200, 100]``, bs 64, the lesson's 6 categorical +
3 continuous columns (``--features all``: all 14; ``--protocol uci``: the recipe's frame, wd 0.1, 5 epochs;
LightGBM then gets the 14 raw columns). Reported per side: fit wall time (validation each epoch included, as
fastai's), training rows/s = epochs * training rows / fit time, validation accuracy (median over seeds). For
us, the first fit of a new learner includes XLA compilation; a second, identical fit on the same learner gives
the steady-state time. LightGBM (default parameters, categorical columns as pandas categories) is a
non-neural reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.tabular import RECIPE, recipe_frame, recipe_names
from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, adult_sample, tabular_learner
from tabular_jax.adult import CAT_NAMES, CONT_NAMES, LESSON_CAT_NAMES, LESSON_CONT_NAMES, uci_adult
from tabular_jax.data import random_splitter

DEFAULT_REF = "/work/refenv/bin/python"
REF_SCRIPT = Path(__file__).with_name("fastai_tabular_ref.py")


def protocol_spec(protocol: str, n_rows: int, epochs: int | None, lr: float) -> dict:
    """Validation rows and schedule of a protocol: ``random`` (20%, seed 42, one-cycle), ``lesson``, or ``uci``
    (the official split with our recommended recipe, experiments/tabular.py)."""
    base = {"bs": 64, "layers": RECIPE["layers"], "wd": 0.01, "y_name": "salary", "lr": lr}
    if protocol == "random":
        return base | {"valid_idx": random_splitter(n_rows, 0.2, 42)[1].tolist(), "schedule": "one_cycle",
                       "epochs": epochs or 3}
    if protocol == "lesson":
        return base | {"valid_idx": list(range(800, 1000)), "schedule": "fit", "epochs": epochs or 1}
    if protocol == "uci":
        return base | {"valid_idx": [], "schedule": "one_cycle", "epochs": epochs or RECIPE["epochs"],
                       "wd": RECIPE["wd"], "y_name": "income"}
    raise ValueError(f"unknown protocol {protocol!r}")


def protocol_frame(protocol: str, features: str, data_dir: str | None):
    """(frame, cat_names, cont_names, LightGBM's raw (cat, cont) names, valid_idx or None)."""
    if protocol == "uci":
        train, test = uci_adult(data_dir)
        df = pd.concat([recipe_frame(train), recipe_frame(test)], ignore_index=True)
        return (df, *recipe_names(), (CAT_NAMES, CONT_NAMES), list(range(len(train), len(df))))
    names = (LESSON_CAT_NAMES, LESSON_CONT_NAMES) if features == "lesson" else (CAT_NAMES, CONT_NAMES)
    return adult_sample(data_dir), *names, names, None


def run_ours(df, cat_names, cont_names, spec: dict, seed: int, bf16: bool = False) -> dict:
    dls = TabularDataLoaders.from_df(df, procs=[FillMissing, Categorify, Normalize], cat_names=cat_names,
                                     cont_names=cont_names, y_names=spec["y_name"], valid_idx=spec["valid_idx"],
                                     bs=spec["bs"], seed=seed)
    learn = tabular_learner(dls, layers=spec["layers"], metrics=accuracy, wd=spec["wd"], seed=seed,
                            progress=False)
    if bf16:
        learn.to_bf16()
    fit = learn.fit_one_cycle if spec["schedule"] == "one_cycle" else learn.fit
    t0, c0 = time.perf_counter(), time.process_time()
    fit(spec["epochs"], spec["lr"])
    first_s, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    loss, acc = learn.validate()
    t0, c0 = time.perf_counter(), time.process_time()
    fit(spec["epochs"], spec["lr"])  # same shapes: no compilation, the steady-state cost
    steady_s, steady_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seed": seed, "accuracy": acc, "valid_loss": loss, "fit_s": first_s, "cpu_s": first_cpu,
            "steady_fit_s": steady_s, "steady_cpu_s": steady_cpu, "n_train": len(dls.to.train)}


def run_fastai(ref_python: str, frame_path: str, cat_names, cont_names, spec: dict, seeds, threads: int | None):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec | {"frame": frame_path, "seeds": list(seeds), "cat_names": cat_names,
                          "cont_names": cont_names, "threads": threads}, f)
    try:
        proc = subprocess.run([ref_python, str(REF_SCRIPT), f.name], capture_output=True, text=True, check=False)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise RuntimeError(f"fastai reference run failed ({ref_python}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fastai_split(ref_python: str, n: int, seed: int = 42) -> list[int]:
    """Validation positions of fastai's own ``RandomSplitter(0.2, seed)`` (torch's permutation), from the ref side."""
    proc = subprocess.run([ref_python, str(REF_SCRIPT), "--split", str(n), str(seed)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"fastai split failed ({ref_python}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_lightgbm(df, cat_names, cont_names, y_name, valid_idx, seeds) -> list[dict] | None:
    try:
        import lightgbm as lgb
    except ImportError:
        return None
    x = df[cat_names + cont_names].copy()
    for c in cat_names:
        x[c] = x[c].astype("category")
    y = df[y_name].isin([">=50k", ">50K"]).to_numpy().astype(int)
    valid = np.zeros(len(df), bool)
    valid[valid_idx] = True
    out = []
    for seed in seeds:  # LightGBM's defaults (100 rounds, 31 leaves), through its native API (no scikit-learn)
        params = {"objective": "binary", "seed": seed, "verbose": -1, "num_threads": os.cpu_count()}
        t0, c0 = time.perf_counter(), time.process_time()
        model = lgb.train(params, lgb.Dataset(x[~valid], y[~valid]), num_boost_round=100)
        fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        acc = float(((model.predict(x[valid]) > 0.5) == y[valid]).mean())
        out.append({"seed": seed, "accuracy": acc, "fit_s": fit_s, "cpu_s": cpu_s, "n_train": int((~valid).sum())})
    return out


def summarise(runs: list[dict], epochs: int, key: str = "fit_s", cpu_key: str = "cpu_s") -> dict:
    """Median accuracy and timings; rows/s from wall time and, robust to other load on the machine, from the
    process's CPU time (all its threads)."""
    fit_s = float(np.median([r[key] for r in runs]))
    cpu_s = float(np.median([r[cpu_key] for r in runs]))
    n = runs[0]["n_train"]
    return {"accuracy_median": float(np.median([r["accuracy"] for r in runs])),
            "accuracy_min": float(min(r["accuracy"] for r in runs)),
            "accuracy_max": float(max(r["accuracy"] for r in runs)),
            "fit_s_median": fit_s, "rows_per_s": epochs * n / fit_s,
            "cpu_s_median": cpu_s, "rows_per_cpu_s": epochs * n / cpu_s}


def result_split(protocol: str, split: str) -> str:
    return f"{split}'s RandomSplitter(0.2, seed=42)" if protocol == "random" else "fixed validation rows"


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=["random", "lesson", "uci"], default="random")
    ap.add_argument("--features", choices=["lesson", "all"], default="lesson")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--ref-python", default=DEFAULT_REF if Path(DEFAULT_REF).exists() else None,
                    help="interpreter with fastai 2.8 (omit or 'none' to skip the fastai side)")
    ap.add_argument("--split", choices=["fastai", "ours"], default=None,
                    help="random protocol: whose seed-42 permutation picks the 20%% (default fastai's with a ref)")
    ap.add_argument("--ref-threads", type=int, default=None, help="torch threads on the fastai side")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--bf16", action="store_true", help="also ours after learn.to_bf16() and fastai under "
                    "torch.autocast('cpu', dtype=torch.bfloat16), same seeds")
    args = ap.parse_args(argv)

    df, cat_names, cont_names, lgbm_names, valid_idx = protocol_frame(args.protocol, args.features, args.data_dir)
    spec = protocol_spec(args.protocol, len(df), args.epochs, args.lr)
    if valid_idx is not None:
        spec["valid_idx"] = valid_idx
    use_ref = bool(args.ref_python) and args.ref_python != "none"
    split = args.split or ("fastai" if use_ref else "ours")
    if args.protocol == "random" and split == "fastai":
        if not use_ref:
            raise SystemExit("--split fastai needs --ref-python")
        spec["valid_idx"] = fastai_split(args.ref_python, len(df), 42)
    epochs = spec["epochs"]
    print(f"Adult {len(df)} rows, protocol {args.protocol} [{result_split(args.protocol, split)}] "
          f"({spec['schedule']}({epochs}, {args.lr})), "
          f"features {'recipe' if args.protocol == 'uci' else args.features}, "
          f"{len(spec['valid_idx'])} validation rows, seeds {args.seeds}", flush=True)
    result: dict = {"protocol": args.protocol, "features": args.features, "epochs": epochs, "seeds": args.seeds,
                    "split": result_split(args.protocol, split),
                    "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}

    ours = [run_ours(df, cat_names, cont_names, spec, s) for s in args.seeds]
    steady = summarise(ours, epochs, "steady_fit_s", "steady_cpu_s")
    result["tabular_jax"] = {"runs": ours, **summarise(ours, epochs), "steady_rows_per_s": steady["rows_per_s"],
                             "steady_rows_per_cpu_s": steady["rows_per_cpu_s"]}
    print("tabular_jax:", json.dumps({k: v for k, v in result["tabular_jax"].items() if k != "runs"}), flush=True)
    if args.bf16:
        ours16 = [run_ours(df, cat_names, cont_names, spec, s, bf16=True) for s in args.seeds]
        steady16 = summarise(ours16, epochs, "steady_fit_s", "steady_cpu_s")
        result["tabular_jax_bf16"] = {"runs": ours16, **summarise(ours16, epochs),
                                      "steady_rows_per_s": steady16["rows_per_s"],
                                      "steady_rows_per_cpu_s": steady16["rows_per_cpu_s"]}

    if use_ref:
        with tempfile.TemporaryDirectory() as tmp:
            frame = str(Path(tmp) / "adult.pkl")
            df.to_pickle(frame)
            ref = run_fastai(args.ref_python, frame, cat_names, cont_names, spec, args.seeds, args.ref_threads)
            if args.bf16:
                ref16 = run_fastai(args.ref_python, frame, cat_names, cont_names, spec | {"autocast": True},
                                   args.seeds, args.ref_threads)
                result["fastai_autocast"] = {"runs": ref16, **summarise(ref16, epochs)}
        result["fastai"] = {"runs": ref, **summarise(ref, epochs)}
        print("fastai:", json.dumps({k: v for k, v in result["fastai"].items() if k != "runs"}), flush=True)
        fa, us = result["fastai"], result["tabular_jax"]
        result["ratios"] = {"rows_per_s_incl_compile": us["rows_per_s"] / fa["rows_per_s"],
                            "rows_per_s_steady": us["steady_rows_per_s"] / fa["rows_per_s"],
                            "rows_per_cpu_s_incl_compile": us["rows_per_cpu_s"] / fa["rows_per_cpu_s"],
                            "rows_per_cpu_s_steady": us["steady_rows_per_cpu_s"] / fa["rows_per_cpu_s"],
                            "accuracy_diff": us["accuracy_median"] - fa["accuracy_median"]}

    lgbm = run_lightgbm(df, *lgbm_names, spec["y_name"], spec["valid_idx"], args.seeds)
    if lgbm is not None:
        result["lightgbm"] = {"runs": lgbm, **summarise(lgbm, 1)}
    result["loadavg_end"] = os.getloadavg()

    print(f"\nload average (1 min) {result['loadavg_start'][0]:.1f} at start, {result['loadavg_end'][0]:.1f} at end "
          f"on {result['cpus']} CPUs")
    print(f"{'':12s} {'accuracy (median)':>18s} {'fit s':>8s} {'rows/s':>10s} {'CPU s':>8s} {'rows/CPU s':>11s}")
    for name in ("tabular_jax", "tabular_jax_bf16", "fastai", "fastai_autocast", "lightgbm"):
        if name in result:
            r = result[name]
            print(f"{name:12s} {r['accuracy_median']:18.4f} {r['fit_s_median']:8.2f} {r['rows_per_s']:10,.0f} "
                  f"{r['cpu_s_median']:8.2f} {r['rows_per_cpu_s']:11,.0f}")
    r = result["tabular_jax"]
    print(f"{'(steady)':12s} {'':18s} {np.median([x['steady_fit_s'] for x in r['runs']]):8.2f} "
          f"{r['steady_rows_per_s']:10,.0f} {np.median([x['steady_cpu_s'] for x in r['runs']]):8.2f} "
          f"{r['steady_rows_per_cpu_s']:11,.0f}")
    if "ratios" in result:
        q = result["ratios"]
        print(f"ours/fastai rows/s (wall): {q['rows_per_s_incl_compile']:.1f}x incl. compile, "
              f"{q['rows_per_s_steady']:.1f}x steady; per CPU second: {q['rows_per_cpu_s_incl_compile']:.1f}x "
              f"incl. compile, {q['rows_per_cpu_s_steady']:.1f}x steady; accuracy diff {q['accuracy_diff']:+.4f}")
    for name in ("tabular_jax_bf16",):
        if name in result:
            r = result[name]
            print(f"{'(bf16 steady)':12s} {'':18s} {np.median([x['steady_fit_s'] for x in r['runs']]):8.2f} "
                  f"{r['steady_rows_per_s']:10,.0f} {np.median([x['steady_cpu_s'] for x in r['runs']]):8.2f} "
                  f"{r['steady_rows_per_cpu_s']:11,.0f}")
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
