"""One benchmark command: ours and fastai on the same data and configuration, alternating, repeated, one table.

    python -m experiments.bench all                                  # every part, 3 repeats each
    python -m experiments.bench collab tabular --repeats 5 --out bench.json
    python -m experiments.bench all --quick --repeats 1              # checks the command (minutes), not a measurement

Parts (each calls its bench module's functions; the modules stay runnable on their own with more options):
  collab    bench_collab: the lesson's fit_one_cycle(5, 5e-3, wd=0.1) on ML-100k's random 80/20 split (generated
            low-rank ratings when no ML-100k copy is found, said in the table)
  tabular   bench_tabular: Adult, the lesson's 9 columns, 20% validation (fastai's RandomSplitter rows),
            fit_one_cycle(3, 1e-2), layers [200, 100]
  lm, clas  bench_ulmfit: the lesson's AWD-LSTM, LM training/inference tokens/s and classifier docs/s; fastai's
            worker steps in lock-step with ours (one batch each, in turn)
  tokenize  bench_tokenize: IMDB reviews (generated reviews without the data), both tokenizers, 2 workers each
  compile   bench_compile (when present): calls ``experiments.bench.bench_compile.main(argv)``; a returned
            ``{"rows": {metric: {"ours", "fastai"}}}`` joins the table
For collab, tabular and tokenize each repeat runs our side, then fastai's (a fresh interpreter of ``--ref-python``,
the ``ref`` extra); lm/clas repeat the lock-stepped run. The table gives medians over the repeats and ours/fastai
(above 1: ours is faster; quality rows give the difference instead). The JSON (``--out``) holds every repeat's
numbers and the machine: CPU model and count, load averages before and after, JAX devices, library versions.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_REF = "/work/refenv/bin/python"
PARTS = ("collab", "tabular", "lm", "clas", "tokenize", "compile")


@dataclass
class Row:
    """One metric of one part: every repeat's value for each side."""

    part: str
    metric: str
    ours: list[float] = field(default_factory=list)
    fastai: list[float] = field(default_factory=list)
    quality: bool = False  # accuracy/MSE: compared by difference, not ratio

    def medians(self) -> tuple[float | None, float | None]:
        med = lambda xs: float(np.median(xs)) if xs else None  # noqa: E731
        return med(self.ours), med(self.fastai)

    def compare(self) -> str:
        o, f = self.medians()
        if o is None or f is None:
            return "-"
        return f"{o - f:+.4f}" if self.quality else f"{o / f:.2f}x"


def machine_info(ref_python: str | None) -> dict:
    """What the numbers were measured on."""
    import jax

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "jax": jax.__version__, "devices": [str(d) for d in jax.devices()], "loadavg_start": os.getloadavg()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                                  if line.startswith("model name")), platform.processor())
    if ref_python:
        proc = subprocess.run([ref_python, "-c", "import fastai, torch; print(fastai.__version__, torch.__version__)"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            info["fastai"], info["torch"] = proc.stdout.split()[:2]
    return info


def part_collab(a) -> list[Row]:
    from collab_jax.movielens import find_ml100k, read_ml100k_ratings
    from experiments.bench import bench_collab as bc
    from experiments.collab import generated_frame
    from experiments.configs.base_movielens import base

    cfg = dict(bc.CONFIG) | ({"epochs": 1} if a.quick else {})
    path = find_ml100k(a.data_dir)
    data = "ML-100k" if path is not None else "generated"
    df = bc.split_frame(read_ml100k_ratings(path), cfg) if path is not None else generated_frame(base().generated)
    first, compiled = Row("collab", f"{data} ratings/s, first fit"), Row("collab", f"{data} ratings/s, compiled fit")
    mse = Row("collab", f"{data} valid MSE", quality=True)
    for _ in range(a.repeats):
        o = bc.run_ours(df, cfg, progress=False, repeats=1)
        first.ours.append(o["ratings_per_s"])
        compiled.ours.append(o["compiled_ratings_per_s"])
        mse.ours.append(o["valid_mse"])
        if a.ref_python:
            fa = bc.run_ref(a.ref_python, df, cfg)["fastai"]
            rate = o["n_train"] * cfg["epochs"] / fa["fit_s"]  # fastai has no compile step: both rows
            first.fastai.append(rate)
            compiled.fastai.append(rate)
            mse.fastai.append(fa["valid_mse"])
    return [first, compiled, mse]


def part_tabular(a) -> list[Row]:
    from experiments.bench import bench_tabular as bt

    df, cat_names, cont_names, _, _ = bt.protocol_frame("random", "lesson", a.data_dir)
    spec = bt.protocol_spec("random", len(df), 1 if a.quick else 3, 1e-2)
    if a.ref_python:  # fastai's own RandomSplitter rows, as bench_tabular does
        spec["valid_idx"] = bt.fastai_split(a.ref_python, len(df), 42)
    first, steady = Row("tabular", "Adult rows/s, first fit"), Row("tabular", "Adult rows/s, compiled fit")
    acc = Row("tabular", "Adult accuracy", quality=True)
    with tempfile.TemporaryDirectory() as tmp:
        frame = str(Path(tmp) / "adult.pkl")
        df.to_pickle(frame)
        for seed in range(a.repeats):
            o = bt.run_ours(df, cat_names, cont_names, spec, seed)
            n = o["n_train"] * spec["epochs"]
            first.ours.append(n / o["fit_s"])
            steady.ours.append(n / o["steady_fit_s"])
            acc.ours.append(o["accuracy"])
            if a.ref_python:
                fa = bt.run_fastai(a.ref_python, frame, cat_names, cont_names, spec, [seed], None)[0]
                first.fastai.append(fa["n_train"] * spec["epochs"] / fa["fit_s"])
                steady.fastai.append(first.fastai[-1])
                acc.fastai.append(fa["accuracy"])
    return [first, steady, acc]


def _part_ulmfit(a, what: str) -> list[Row]:
    from experiments.bench import bench_ulmfit as bu

    rows: dict[str, Row] = {}
    argv = ["--what", what, "--ref-python", a.ref_python or ""]
    if a.quick:
        argv += ["--tiny", "--lm-steps", "3", "--clas-batches", "2"]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeats):
            res = bu.main(argv + ["--out", str(Path(tmp) / "ulmfit.json")])
            for name, r in res["rows"].items():
                row = rows.setdefault(name, Row(what, name + (" (tiny)" if a.quick else "")))
                if r["ours"]:
                    row.ours.append(r["ours"])
                if r["fastai"]:
                    row.fastai.append(r["fastai"])
    return list(rows.values())


def part_lm(a) -> list[Row]:
    return _part_ulmfit(a, "lm")


def part_clas(a) -> list[Row]:
    return _part_ulmfit(a, "clas")


def part_tokenize(a) -> list[Row]:
    from experiments.bench import bench_tokenize as bt

    n = 200 if a.quick else 2000
    tar = Path(a.data_dir or "") / "imdb" / "aclImdb_v1_text.tar.gz"
    if a.data_dir and tar.is_file():
        texts, data = bt.sample_reviews(str(tar), n), "IMDB"
    else:
        from experiments.text_lesson import generated_reviews

        texts, data = generated_reviews(n).text.tolist(), "generated reviews"
    speed = Row("tokenize", f"{data} tokens/s (2 workers)")
    same = Row("tokenize", "identical token lists (share)", quality=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(texts, f)
    try:
        for _ in range(a.repeats):
            o = bt.run_ours(texts, 2, 1)
            n_tok = sum(map(len, o["tokens"]))
            speed.ours.append(n_tok / o["times"][0])
            if a.ref_python:
                r = bt.run_ref(a.ref_python, f.name, 2, 1)
                speed.fastai.append(n_tok / r["times"][0])
                share = float(np.mean([x == y for x, y in zip(o["tokens"], r["tokens"])]))
                same.ours.append(share)
                same.fastai.append(1.0)
    finally:
        os.unlink(f.name)
    return [speed] + ([same] if same.ours else [])


def part_compile(a) -> list[Row]:
    """The hook for experiments/bench/bench_compile.py (issue 14): ``main(argv)`` with this command's
    ``--repeats``, ``--ref-python`` and ``--data-dir``; its whole result goes into the JSON, and a returned ``rows``
    dict ({metric: {"ours": x, "fastai": y}}) joins the table."""
    if importlib.util.find_spec("experiments.bench.bench_compile") is None:
        print("compile: experiments/bench/bench_compile.py is missing on this branch (issue 14 adds it); skipped")
        return []
    module = importlib.import_module("experiments.bench.bench_compile")
    argv = ["--repeats", str(a.repeats), "--ref-python", a.ref_python or "none"]
    res = module.main(argv + (["--data-dir", a.data_dir] if a.data_dir else [])) or {}
    a.raw["compile"] = res
    return [Row("compile", name, [r["ours"]] if r.get("ours") else [], [r["fastai"]] if r.get("fastai") else [])
            for name, r in (res.get("rows") or {}).items()]


def table(rows: list[Row]) -> str:
    lines = [f"{'part':9s} {'metric':44s} {'ours':>12s} {'fastai':>12s} {'ours/fastai':>12s}"]

    def fmt(v: float | None) -> str:
        if v is None:
            return f"{'-':>12s}"
        return f"{v:12.4f}" if abs(v) < 10 else f"{v:12,.0f}"

    for r in rows:
        o, f = r.medians()
        lines.append(f"{r.part:9s} {r.metric:44s} {fmt(o)} {fmt(f)} {r.compare():>12s}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="+", choices=[*PARTS, "all"])
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of each side (medians are reported)")
    ap.add_argument("--quick", action="store_true", help="tiny workloads: checks the command, not a measurement")
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"))
    ap.add_argument("--ref-python", default=DEFAULT_REF if Path(DEFAULT_REF).exists() else "none",
                    help="interpreter with fastai (the ref extra); 'none' runs our side only")
    ap.add_argument("--out", default="bench_results.json", help="JSON with every repeat and the machine")
    a = ap.parse_args(argv)
    a.ref_python = None if a.ref_python in ("", "none") else a.ref_python
    a.raw = {}  # parts' own result dicts kept whole in the JSON (compile)
    if a.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {a.repeats}")
    parts = PARTS if "all" in a.parts else tuple(dict.fromkeys(a.parts))
    info = machine_info(a.ref_python)
    rows: list[Row] = []
    seconds = {}
    for name in parts:
        print(f"\n=== bench {name} ({a.repeats} repeat(s){', quick' if a.quick else ''}) ===", flush=True)
        t0 = time.perf_counter()
        rows += globals()[f"part_{name}"](a)
        seconds[name] = time.perf_counter() - t0
    info["loadavg_end"] = os.getloadavg()
    text = table(rows)
    print(f"\n{text}\nmedians of {a.repeats} repeat(s); {info.get('cpu_model', '?')}, {info['cpu_count']} CPUs, "
          f"load {info['loadavg_start'][0]:.1f} -> {info['loadavg_end'][0]:.1f}")
    result = {"command": " ".join(["python -m experiments.bench", *(argv if argv is not None else sys.argv[1:])]),
              "machine": info, "seconds": seconds, "quick": a.quick, "repeats": a.repeats,
              "rows": [asdict(r) | {"ours_median": r.medians()[0], "fastai_median": r.medians()[1],
                                    "compare": r.compare()} for r in rows], "table": text, "parts": a.raw}
    if a.out:
        tmp = Path(a.out).with_name(Path(a.out).name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, a.out)
        print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
