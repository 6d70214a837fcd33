"""Ours vs fastai on whatever accelerator this machine has (driven by ``device_check.sh``; CPU with ``--tiny``).

    python -m experiments.bench.device_check --ref-python REFENV/bin/python [--tiny] [--out result.json]

Workloads, built from the same seeds on both sides: the full AWD-LSTM LM (emb 400, hidden 1152, 3 layers,
vocab ``--vocab``), bs 64, bptt 72 on random tokens -> training tokens/s (median step after warm-up), ours fp32
(and bf16 when this checkout's models take a compute dtype) vs fastai fp32 (cuDNN's LSTM on CUDA) and
``to_fp16``; the classifier on documents of log-normal lengths (median 230, within 144..432: four padded
widths) -> training docs/s of the second epoch; collab (ML-100k-sized synthetic ratings, 50 factors, bs 64) and
tabular (Adult-sized synthetic frame, [200, 100], bs 64) -> the second epoch's wall time (the first compiles).
fastai runs in ``--ref-python`` (``fastai_device_ref.py``), never in this process.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from learner_jax import Callback

HERE = Path(__file__).resolve().parent


def workload(tiny: bool, vocab: int) -> dict:
    rng = np.random.default_rng(0)
    n_docs = 64 * (2 if tiny else 12)
    # lengths kept within 2..6 chunks of 72: four padded widths, so compiling the classifier stays ~a minute
    lens = np.clip(rng.lognormal(np.log(40 if tiny else 230), 0.3, n_docs), 10 if tiny else 144, 432).astype(int)
    small = dict(emb_sz=32, n_hid=64, n_layers=2)
    return dict(vocab=200 if tiny else vocab, bs=64, seq_len=72 if not tiny else 16,
                lm_tokens=64 * 16 * 8 + 1 if tiny else 64 * 72 * 30 + 1, doc_lengths=lens.tolist(),
                lm_config=small if tiny else {}, clas_config=small if tiny else {},
                collab=(200, 100, 5_000) if tiny else (943, 1682, 100_000),
                tabular_rows=2_000 if tiny else 32_561, cats=[f"c{i}" for i in range(6)], conts=["x0", "x1", "x2"])


def write_frames(spec: dict, folder: Path) -> None:
    rng = np.random.default_rng(1)
    n_u, n_i, n = spec["collab"]
    pd.DataFrame({"user": rng.integers(1, n_u + 1, n), "item": rng.integers(1, n_i + 1, n),
                  "rating": rng.integers(1, 6, n).astype(np.float32)}).to_csv(folder / "ratings.csv", index=False)
    m = spec["tabular_rows"]
    df = pd.DataFrame({c: rng.choice([f"v{j}" for j in range(3 + 4 * k)], m) for k, c in enumerate(spec["cats"])})
    for c in spec["conts"]:
        df[c] = rng.normal(size=m)
    df["y"] = np.where(df["x0"] + (df["c0"] == "v0") > 0.5, "yes", "no")
    df.to_csv(folder / "table.csv", index=False)
    spec["collab_csv"], spec["tabular_csv"] = str(folder / "ratings.csv"), str(folder / "table.csv")


class StepTimes(Callback):
    """Wall time of each training step (the engine fetches each step's metrics, so the step has finished)."""

    order = 90

    def __init__(self):
        self.times, self.t = [], None

    def before_epoch(self, learn):
        self.t = time.perf_counter()

    def after_batch(self, learn, metrics):
        now = time.perf_counter()
        self.times.append(now - self.t)
        self.t = now


def _median(times: list[float]) -> float:
    return float(np.median(times[2:] if len(times) > 3 else times))


def bf16_kwargs() -> dict | None:
    """The compute-dtype argument of this checkout's language model, if it has one (the bf16 change)."""
    from ulmfit_jax import language_model_learner
    from ulmfit_jax.models import get_language_model

    for fn in (language_model_learner, get_language_model):
        for name in ("compute_dtype", "dtype"):
            if name in inspect.signature(fn).parameters:
                return {name: "bfloat16"}
    return None


def ours_lm(spec: dict, extra: dict) -> float:
    from learner_jax.data import DataLoaders
    from ulmfit_jax import AWD_LSTM, language_model_learner
    from ulmfit_jax.text_loaders import LMDataLoader

    def dl(seed):
        toks = np.random.default_rng(seed).integers(2, spec["vocab"], spec["lm_tokens"]).astype(np.int32)
        return LMDataLoader(toks, np.asarray([0, len(toks)]), bs=spec["bs"], seq_len=spec["seq_len"])

    dls = DataLoaders(dl(0), dl(1))
    dls.vocab = ["xxunk", "xxpad"] + [f"w{i}" for i in range(spec["vocab"] - 2)]
    cb = StepTimes()
    learn = language_model_learner(dls, AWD_LSTM, config=spec["lm_config"] or None, drop_mult=0.3,
                                   pretrained=False, progress=False, **extra)
    learn.fit(1, 1e-3, cbs=[cb])
    return spec["bs"] * spec["seq_len"] / _median(cb.times)


def ours_clas(spec: dict) -> float:
    from learner_jax.data import DataLoaders
    from ulmfit_jax import AWD_LSTM, text_classifier_learner
    from ulmfit_jax.text_loaders import SortedDL

    rng = np.random.default_rng(2)
    lens = np.asarray(spec["doc_lengths"])
    ids = rng.integers(2, spec["vocab"], int(lens.sum())).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    labels = rng.integers(0, 2, len(lens)).astype(np.int32)
    kw = dict(bs=spec["bs"], seq_len=spec["seq_len"])
    dls = DataLoaders(SortedDL(ids, offsets, None, labels, shuffle=True, **kw),
                      SortedDL(ids, offsets, np.arange(spec["bs"]), labels[: spec["bs"]], **kw))
    dls.vocab, dls.classes = ["xxunk", "xxpad"] + [f"w{i}" for i in range(spec["vocab"] - 2)], ["a", "b"]
    learn = text_classifier_learner(dls, AWD_LSTM, config=spec["clas_config"] or None, drop_mult=0.5,
                                    seq_len=spec["seq_len"], pretrained=False, progress=False)
    learn.fit(1, 1e-3)  # compiles every bucket shape of the epoch
    cb = StepTimes()
    learn.fit(1, 1e-3, cbs=[cb])
    return len(cb.times) * spec["bs"] / sum(cb.times)


def _second_epoch(learn) -> float:
    import jax

    learn.fit(1, 1e-3)
    t0 = time.perf_counter()
    learn.fit(1, 1e-3)
    jax.block_until_ready(learn.state.params)
    return time.perf_counter() - t0


def ours_collab(spec: dict) -> float:
    from collab_jax import CollabDataLoaders, collab_learner

    dls = CollabDataLoaders.from_df(pd.read_csv(spec["collab_csv"]), bs=64, seed=0)
    return _second_epoch(collab_learner(dls, n_factors=50, y_range=(0, 5.5), progress=False))


def ours_tabular(spec: dict) -> float:
    from tabular_jax import Categorify, Normalize, TabularDataLoaders, tabular_learner

    dls = TabularDataLoaders.from_df(pd.read_csv(spec["tabular_csv"]), procs=[Categorify, Normalize],
                                     cat_names=spec["cats"], cont_names=spec["conts"], y_names="y", bs=64)
    return _second_epoch(tabular_learner(dls, layers=[200, 100], progress=False))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref-python", default="", help="interpreter with torch + fastai (empty: ours only)")
    ap.add_argument("--vocab", type=int, default=30000)
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: checks the script (CPU dry run), not speed")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    import jax

    spec = workload(a.tiny, a.vocab)
    tmp = Path(tempfile.mkdtemp())
    write_frames(spec, tmp)
    (tmp / "spec.json").write_text(json.dumps(spec))
    dev = jax.devices()[0]
    res = {"jax": jax.__version__, "device": f"{dev.platform}:{dev.device_kind}", "tiny": a.tiny}
    t0 = time.perf_counter()
    res["lm_fp32_tok_s"] = ours_lm(spec, {})
    bf16 = bf16_kwargs()
    res["lm_bf16_tok_s"] = ours_lm(spec, bf16) if bf16 else None
    res["clas_docs_s"] = ours_clas(spec)
    res["collab_epoch_s"] = ours_collab(spec)
    res["tabular_epoch_s"] = ours_tabular(spec)
    res["ours_wall_s"] = time.perf_counter() - t0
    ref = None
    if a.ref_python:  # fastai runs after us (never at the same time: both would share the device)
        ref_cmd = [a.ref_python, str(HERE / "fastai_device_ref.py"), str(tmp / "spec.json")]
        ref_proc = subprocess.run(ref_cmd, capture_output=True, text=True, timeout=1800)
        if ref_proc.returncode:
            print(ref_proc.stderr[-3000:], file=sys.stderr)
        else:
            ref = json.loads(ref_proc.stdout.strip().splitlines()[-1])
    res["fastai"] = ref
    rows = [("LM train tokens/s fp32 (fastai: cuDNN LSTM on CUDA)", "lm_fp32_tok_s", "lm_fp32_tok_s"),
            ("LM train tokens/s bf16 (fastai: to_fp16)", "lm_bf16_tok_s", "lm_fp16_tok_s"),
            ("classifier train docs/s", "clas_docs_s", "clas_docs_s"),
            (f"collab epoch s ({spec['collab'][2]:,} ratings, bs 64)", "collab_epoch_s", "collab_epoch_s"),
            (f"tabular epoch s ({spec['tabular_rows']:,} rows, bs 64)", "tabular_epoch_s", "tabular_epoch_s")]
    print(f"ours: jax {res['jax']} on {res['device']}; fastai: "
          f"{'-' if ref is None else ref['torch'] + ' on ' + ref['device']}{' (TINY dry run)' if a.tiny else ''}")
    print(f"{'':55s}{'ours':>12s}{'fastai':>12s}")
    for label, ko, kr in rows:
        ours = res[ko]
        theirs = None if ref is None else ref.get(kr)
        fmt = lambda v: "n/a" if v is None else f"{v:,.1f}" if v >= 100 else f"{v:.3g}"  # noqa: E731
        print(f"{label:55s}{fmt(ours):>12s}{fmt(theirs):>12s}")
    if bf16 is None:
        print("ours bf16: n/a: this checkout's language model takes no compute dtype")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
