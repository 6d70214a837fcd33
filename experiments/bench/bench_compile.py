"""First-fit latency in a cold process: what a fresh Python process compiles during its first ``fit_one_cycle``,
ours vs Surprise's SVD and fastai, each side in its own new interpreter, alternating, several repeats.

    python -m experiments.bench.bench_compile --data-dir ../shared/data                      # collab + tabular
    python -m experiments.bench.bench_compile --data-dir ../shared/data --learners collab,tabular,clas_chain,lm
    python -m experiments.bench.bench_compile --worker collab --data-dir ../shared/data      # one cold run, JSON

Learners (each the lesson's fit, no persistent XLA cache):
  collab      ML-100k 80/20 (seed 42), n_factors 50, y_range (0, 5.5), ``fit_one_cycle(5, 5e-3, wd=0.1)``; the
              reference side times Surprise's ``SVD().fit`` (defaults) and fastai's fit on the same split;
  tabular     Adult (lesson's 6+3 columns), random 20% (seed 42), ``layers=[200, 100]``, ``fit_one_cycle(3, 1e-2)``;
              reference: fastai's fit; reported as training rows/s with the compile included;
  clas_chain  the lesson's gradual-unfreezing chain (freeze, freeze_to(-2), freeze_to(-3), unfreeze; one epoch
              each) on a small 64/256/3 AWD-LSTM classifier over the IMDB sample (or synthetic documents);
              compile seconds per stage;
  lm          a small LM's first fit_one_cycle(1) (programs and seconds).
Each worker reports wall and CPU seconds of imports, data, learner and first fit, and the compiled programs
(``experiments.bench.compile_log``: name, XLA seconds; trace/lower/compile totals). ``--bf16`` runs ours in
mixed precision. ``main(argv)`` returns the results as a dict (the ``experiments.bench`` dispatcher calls it).
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

T_START = time.perf_counter()
C_START = time.process_time()

DEFAULT_REF = "/work/refenv/bin/python"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LEARNERS = ("collab", "tabular", "clas_chain", "lm")


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> dict:
    return {"wall_s": time.perf_counter() - t[0], "cpu_s": time.process_time() - t[1]}


# ------------------------------------------------------------------ workers (run in a fresh process)
def _collab(args, log) -> dict:
    from collab_jax.learner import collab_learner
    from collab_jax.movielens import find_ml100k, read_ml100k_ratings
    from experiments.bench.bench_collab import CONFIG, split_frame

    t = _clock()
    from collab_jax.data import CollabDataLoaders

    df = split_frame(read_ml100k_ratings(find_ml100k(args.data_dir)), CONFIG)
    dls = CollabDataLoaders.from_df(df, valid_col="is_valid", bs=CONFIG["bs"], seed=CONFIG["seed"])
    data = _since(t)
    t, m = _clock(), log.mark()
    learn = collab_learner(dls, n_factors=CONFIG["n_factors"], y_range=tuple(CONFIG["y_range"]), progress=False)
    if args.bf16:
        learn.to_bf16()
    build, build_log = _since(t), log.since(m)
    fresh = learn.state
    t, m = _clock(), log.mark()
    learn.fit_one_cycle(CONFIG["epochs"], CONFIG["lr"], wd=CONFIG["wd"])
    fit, fit_log = _since(t), log.since(m)
    mse = learn.validate()[0]
    learn.state = fresh
    t = _clock()
    learn.fit_one_cycle(CONFIG["epochs"], CONFIG["lr"], wd=CONFIG["wd"])
    return {"data": data, "build": build, "build_compile": _log_dict(build_log), "fit": fit,
            "fit_compile": _log_dict(fit_log), "compiled_fit": _since(t), "valid_mse": float(mse),
            "n_train_rows": len(dls.train) * dls.train.bs * CONFIG["epochs"]}


def _tabular(args, log) -> dict:
    from tabular_jax import (
        Categorify,
        FillMissing,
        Normalize,
        TabularDataLoaders,
        accuracy,
        adult_sample,
        tabular_learner,
    )
    from tabular_jax.adult import LESSON_CAT_NAMES, LESSON_CONT_NAMES
    from tabular_jax.data import random_splitter

    t = _clock()
    df = adult_sample(args.data_dir)
    dls = TabularDataLoaders.from_df(df, procs=[FillMissing, Categorify, Normalize], cat_names=LESSON_CAT_NAMES,
                                     cont_names=LESSON_CONT_NAMES, y_names="salary",
                                     valid_idx=random_splitter(len(df), 0.2, 42)[1].tolist(), bs=64, seed=42)
    data = _since(t)
    t, m = _clock(), log.mark()
    learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy, seed=42, progress=False)
    if args.bf16:
        learn.to_bf16()
    build, build_log = _since(t), log.since(m)
    t, m = _clock(), log.mark()
    learn.fit_one_cycle(3, 1e-2)
    fit, fit_log = _since(t), log.since(m)
    acc = learn.validate()[1]
    t = _clock()
    learn.fit_one_cycle(3, 1e-2)
    return {"data": data, "build": build, "build_compile": _log_dict(build_log), "fit": fit,
            "fit_compile": _log_dict(fit_log), "compiled_fit": _since(t), "accuracy": float(acc),
            "n_train_rows": len(dls.train.arrays[1]) * 3}


def _text_dls(args, bs: int):
    """The IMDB sample's classifier loaders when the data is there, else synthetic documents of similar lengths."""
    from ulmfit_jax import TextDataLoaders

    csv = Path(args.data_dir or "") / "imdb" / "imdb_sample" / "texts.csv"
    if args.data_dir and csv.exists():
        import pandas as pd

        df = pd.read_csv(csv)
        return TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=bs,
                                       seq_len=72), "imdb_sample"
    sys.path.insert(0, str(ROOT))
    from tests.ulmfit_jax.tiny_text import clas_dls, tiny_vocab

    return clas_dls(tiny_vocab(400), n=800, bs=bs, seq_len=72, length=72 * 5), "synthetic"


SMALL = dict(emb_sz=64, n_hid=256, n_layers=3)


def _clas_chain(args, log) -> dict:
    from ulmfit_jax import AWD_LSTM, text_classifier_learner

    t = _clock()
    dls, source = _text_dls(args, 16)
    data = _since(t)
    t, m = _clock(), log.mark()
    learn = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, config=SMALL, pretrained=False, progress=False)
    if args.per_stage_programs:
        learn.freeze_as_data = False
    learn.freeze()
    if args.bf16:
        learn.to_bf16()
    build, build_log = _since(t), log.since(m)
    stages = []
    plan = [(None, 2e-2), (-2, slice(1e-2 / 2.6 ** 4, 1e-2)), (-3, slice(5e-3 / 2.6 ** 4, 5e-3)),
            (0, slice(1e-3 / 2.6 ** 4, 1e-3))]
    for n_frozen, lr in plan:
        t, m = _clock(), log.mark()
        if n_frozen is not None:
            learn.freeze_to(n_frozen)
        learn.fit_one_cycle(1, lr, moms=(0.8, 0.7))
        stages.append({"freeze_to": n_frozen, **_since(t), "compile": _log_dict(log.since(m))})
    return {"data": data, "source": source, "build": build, "build_compile": _log_dict(build_log),
            "stages": stages, "accuracy": float(learn.validate()[1]),
            "freeze_as_data": bool(learn.freeze_as_data)}


def _lm(args, log) -> dict:
    from ulmfit_jax import AWD_LSTM, language_model_learner

    sys.path.insert(0, str(ROOT))
    from tests.ulmfit_jax.tiny_text import lm_dls, tiny_vocab

    t = _clock()
    dls = lm_dls(tiny_vocab(400), bs=32, seq_len=72, n=40000)
    data = _since(t)
    t, m = _clock(), log.mark()
    learn = language_model_learner(dls, AWD_LSTM, config=SMALL, pretrained=False, progress=False)
    if args.bf16:
        learn.to_bf16()
    build, build_log = _since(t), log.since(m)
    t, m = _clock(), log.mark()
    learn.fit_one_cycle(1, 1e-2)
    return {"data": data, "build": build, "build_compile": _log_dict(build_log), "fit": _since(t),
            "fit_compile": _log_dict(log.since(m)), "valid_loss": float(learn.validate()[0])}


def _log_dict(log) -> dict:
    return {"programs": [[n, round(s, 3)] for n, s in log.programs], "seconds": round(log.seconds, 3),
            "by_phase": {k: round(v, 3) for k, v in log.by_phase().items()}}


def worker(args) -> dict:
    t = _clock()
    import jax

    from experiments.bench.compile_log import CompileLog

    jax.config.update("jax_enable_compilation_cache", False)  # cold: nothing loaded from a persistent cache
    imports = _since(t)
    log = CompileLog().__enter__()
    out = {"collab": _collab, "tabular": _tabular, "clas_chain": _clas_chain, "lm": _lm}[args.worker](args, log)
    return {"learner": args.worker, "bf16": args.bf16, "imports": imports,
            "process": {"wall_s": time.perf_counter() - T_START, "cpu_s": time.process_time() - C_START}, **out}


# ------------------------------------------------------------------ driver
def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_COMPILATION"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_worker(learner: str, data_dir: str | None, bf16: bool = False, extra: tuple = ()) -> dict:
    """One cold process of ours; its wall time from the parent (interpreter start included)."""
    cmd = [sys.executable, "-m", "experiments.bench.bench_compile", "--worker", learner, *extra]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if bf16:
        cmd.append("--bf16")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {learner} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_from_parent_s"] = time.perf_counter() - t
    return res


def run_ref_collab(ref_python: str, data_dir: str | None) -> dict:
    """Surprise's SVD fit and fastai's fit, cold interpreter, same split (bench_collab's reference script)."""
    from collab_jax.movielens import find_ml100k, read_ml100k_ratings
    from experiments.bench.bench_collab import CONFIG, split_frame

    df = split_frame(read_ml100k_ratings(find_ml100k(data_dir)), CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        csv, spec = Path(tmp) / "ratings.csv", Path(tmp) / "spec.json"
        df.to_csv(csv, index=False)
        spec.write_text(json.dumps(CONFIG | {"csv": str(csv), "valid_col": "is_valid", "user": "user",
                                             "item": "item", "rating": "rating"}))
        out, whole = _run_ref(ref_python, "fastai_collab_ref.py", spec)
    out["process_from_parent_s"] = whole
    return out


def _run_ref(ref_python: str, script: str, spec: Path):
    """A reference script in a cold interpreter: (its last stdout line as JSON, wall seconds of the process)."""
    t = time.perf_counter()
    proc = subprocess.run([ref_python, str(HERE / script), str(spec)], capture_output=True, text=True, env=_env())
    whole = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), whole


def run_ref_tabular(ref_python: str, data_dir: str | None) -> dict:
    """fastai's Adult fit_one_cycle(3, 1e-2) in a cold interpreter on the same frame and split."""
    from tabular_jax import adult_sample
    from tabular_jax.adult import LESSON_CAT_NAMES, LESSON_CONT_NAMES
    from tabular_jax.data import random_splitter

    df = adult_sample(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        frame, spec = Path(tmp) / "adult.pkl", Path(tmp) / "spec.json"
        df.to_pickle(frame)
        spec.write_text(json.dumps({"frame": str(frame), "seeds": [42], "cat_names": LESSON_CAT_NAMES,
                                    "cont_names": LESSON_CONT_NAMES, "y_name": "salary", "bs": 64,
                                    "layers": [200, 100], "wd": None, "schedule": "one_cycle", "epochs": 3,
                                    "lr": 1e-2, "valid_idx": random_splitter(len(df), 0.2, 42)[1].tolist()}))
        runs, whole = _run_ref(ref_python, "fastai_tabular_ref.py", spec)
    out = runs[0]
    out["process_from_parent_s"] = whole
    return out


def _fmt_compile(c: dict) -> str:
    return f"{len(c['programs'])} programs {c['seconds']:.2f}s"


def report(results: dict) -> None:
    for learner, runs in results["runs"].items():
        print(f"\n== {learner} ==")
        for r in runs:
            side = r["side"]
            if side.startswith("ours"):
                if learner == "clas_chain":
                    st = ", ".join(f"{s['wall_s']:.1f}s ({_fmt_compile(s['compile'])})" for s in r["stages"])
                    print(f"  {side:10} stages: {st}; process {r['process_from_parent_s']:.1f}s")
                    continue
                fit = r["fit"]
                print(f"  {side:10} first fit {fit['wall_s']:.2f}s wall {fit['cpu_s']:.2f}s cpu "
                      f"({_fmt_compile(r['fit_compile'])}; learner build {r['build']['wall_s']:.2f}s, "
                      f"{_fmt_compile(r['build_compile'])}); compiled fit {r['compiled_fit']['wall_s']:.2f}s; "
                      f"process {r['process_from_parent_s']:.1f}s")
            elif side == "ref" and learner == "collab":
                sp, fa = r.get("surprise") or {}, r.get("fastai") or {}
                print(f"  surprise   SVD fit {sp.get('fit_s', float('nan')):.2f}s; fastai fit "
                      f"{fa.get('fit_s', float('nan')):.2f}s; process {r['process_from_parent_s']:.1f}s")
            elif side == "ref":
                print(f"  fastai     fit {r['fit_s']:.2f}s wall {r['cpu_s']:.2f}s cpu, "
                      f"{r['n_train'] * 3 / r['fit_s']:,.0f} rows/s; process {r['process_from_parent_s']:.1f}s")
    for line in results.get("summary", []):
        print(line)


def summarize(results: dict) -> list[str]:
    import numpy as np

    lines = []
    runs = results["runs"]
    if "collab" in runs:
        ours = [r["fit"]["wall_s"] for r in runs["collab"] if r["side"] == "ours"]
        ours_b = [r["build"]["wall_s"] + r["fit"]["wall_s"] for r in runs["collab"] if r["side"] == "ours"]
        sp = [r["surprise"]["fit_s"] for r in runs["collab"] if r["side"] == "ref" and r.get("surprise")]
        if ours and sp:
            lines.append(f"collab cold first fit: ours median {np.median(ours):.2f}s (learner build + fit "
                         f"{np.median(ours_b):.2f}s) vs Surprise SVD fit median {np.median(sp):.2f}s -> "
                         f"ratio {np.median(ours) / np.median(sp):.2f} "
                         f"(build+fit {np.median(ours_b) / np.median(sp):.2f})")
    if "tabular" in runs:
        ours = [r["n_train_rows"] / r["fit"]["wall_s"] for r in runs["tabular"] if r["side"] == "ours"]
        fa = [r["n_train"] * 3 / r["fit_s"] for r in runs["tabular"] if r["side"] == "ref"]
        if ours and fa:
            lines.append(f"tabular cold first fit rows/s: ours median {np.median(ours):,.0f} vs fastai "
                         f"{np.median(fa):,.0f} -> {np.median(ours) / np.median(fa):.1f}x")
    if "clas_chain" in runs:
        for side in sorted({r["side"] for r in runs["clas_chain"]}):
            per = np.array([[s["compile"]["seconds"] for s in r["stages"]] for r in runs["clas_chain"]
                            if r["side"] == side])
            if len(per):
                med = np.median(per, axis=0)
                lines.append(f"clas chain compile per stage ({side}): {', '.join(f'{v:.1f}' for v in med)} s; "
                             f"total/first {med.sum() / max(med[0], 1e-9):.2f}")
    return lines


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--learners", default="collab,tabular", help=f"comma-separated, of {','.join(LEARNERS)}")
    ap.add_argument("--repeats", type=int, default=3, help="cold processes per side, alternating")
    ap.add_argument("--ref-python", default=DEFAULT_REF if Path(DEFAULT_REF).exists() else None,
                    help="interpreter with fastai and Surprise; 'none' skips the reference side")
    ap.add_argument("--bf16", action="store_true", help="also run ours in mixed precision")
    ap.add_argument("--per-stage-programs", action="store_true",
                    help="clas_chain: also run with freeze_as_data=False (a step compiled per freeze stage)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--worker", choices=LEARNERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        res = worker(args)
        print(json.dumps(res))
        return res
    learners = [s for s in args.learners.split(",") if s]
    unknown = sorted(set(learners) - set(LEARNERS))
    if unknown:
        raise SystemExit(f"unknown learners {unknown}: choose from {LEARNERS}")
    use_ref = bool(args.ref_python) and args.ref_python != "none"
    results: dict = {"runs": {k: [] for k in learners}, "load": [os.getloadavg()[0]], "cpus": os.cpu_count()}
    for rep in range(args.repeats):
        for learner in learners:
            sides = [("ours", False, ())] + ([("ours-bf16", True, ())] if args.bf16 else [])
            if learner == "clas_chain" and args.per_stage_programs:
                sides.append(("ours-per-stage", False, ("--per-stage-programs",)))
            if use_ref and learner in ("collab", "tabular"):
                sides.append(("ref", False, ()))
            if rep % 2:
                sides.reverse()  # alternate the order between repeats
            for side, bf16, extra in sides:
                if side == "ref":
                    r = (run_ref_collab if learner == "collab" else run_ref_tabular)(args.ref_python, args.data_dir)
                else:
                    r = run_worker(learner, args.data_dir, bf16, extra)
                r["side"] = side
                results["runs"][learner].append(r)
                print(f"[{rep}] {learner} {side} done", flush=True)
        results["load"].append(os.getloadavg()[0])
    results["summary"] = summarize(results)
    report(results)
    print(f"load average ({os.cpu_count()} cores): " + " -> ".join(f"{v:.1f}" for v in results["load"]))
    if args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(args.out)
    return results


if __name__ == "__main__":
    main()
