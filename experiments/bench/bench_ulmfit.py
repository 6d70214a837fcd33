"""Side-by-side AWD-LSTM throughput: ulmfit_jax vs fastai 2.8 on the same CPU, in one run.

    python -m experiments.bench.bench_ulmfit                          # full config, LM + classifier
    python -m experiments.bench.bench_ulmfit --what lm --lm-steps 8   # LM only, more steps
    python -m experiments.bench.bench_ulmfit --tiny                   # a seconds-long smoke run of this script
    python -m experiments.bench.bench_ulmfit --precisions fp32,bf16   # + ours bf16 vs fastai under bf16 autocast
    python -m experiments.bench.bench_ulmfit --ref-python /work/refenv/bin/python --out bench_ulmfit.json

Workload (both sides build it from the same seeds): the lesson's AWD-LSTM (emb 400, hidden 1152, 3 layers,
``awd_lstm_lm_config``/``awd_lstm_clas_config``, drop_mult 0.3/0.5), vocabulary ``--vocab`` (30k), bs 64,
seq_len 72, random token ids (throughput does not depend on the text). Measured through each library's own
``Learner.fit``/``validate`` with a timing callback; the first step of a phase (compilation for us, warm-up
for torch) is excluded:
  * LM training tokens/s: bs * seq_len / median step time; our GFLOP/s counts the matmul FLOPs of a training
    step (forward + two backward matmuls per weight, the standard 3x) against the machine's matmul peak
    (a 2048^3 float32 matmul measured here, and the issue's ~150 GFLOP/s figure);
  * LM inference tokens/s: validation batches (eval forward, loss and metrics);
  * classifier training docs/s: ``--clas-batches`` batches of documents as a sortish IMDB epoch forms them
    (each batch's length drawn from a log-normal with median ``--doc-median`` tokens, its documents within 3%
    of it), fastai's ``SortedDL`` + ``pad_input_chunk`` vs our ``SortedDL``; the last of ``--clas-epochs``
    epochs is timed, so both sides have seen (and we have compiled) the batch shapes.
fastai runs in a separate interpreter (``--ref-python``, default /work/refenv/bin/python when it exists), so
torch and JAX never share a process or its threads. Both sides use every core of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from learner_jax.callbacks import Callback
from ulmfit_jax import AWD_LSTM, language_model_learner, text_classifier_learner
from ulmfit_jax.models import awd_lstm_clas_config, awd_lstm_lm_config
from ulmfit_jax.text_data import TextDataLoaders
from ulmfit_jax.text_loaders import LMDataLoader, SortedDL

DEFAULT_REF = "/work/refenv/bin/python"
REF_SCRIPT = Path(__file__).with_name("fastai_ulmfit_ref.py")
ISSUE_PEAK = 150.0  # GFLOP/s, the issue's figure for this machine
TINY = dict(emb_sz=32, n_hid=64, n_layers=3)


class RefWorker:
    """The fastai side as a subprocess stepping in lock-step with us (see fastai_ulmfit_ref.py)."""

    def __init__(self, ref_python: str, spec: dict, workdir: Path):
        self.spec_path, self.out_path = workdir / "spec.json", workdir / "ref.json"
        self.spec_path.write_text(json.dumps(spec))
        self.proc = subprocess.Popen([ref_python, str(REF_SCRIPT), str(self.spec_path), str(self.out_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.pending: str | None = None

    def _read(self) -> str:
        if self.pending is not None:
            msg, self.pending = self.pending, None
            return msg
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the fastai worker exited (code {self.proc.wait()}); see its stderr above")
            if line.startswith("@@"):
                return line[2:].strip()

    def expect(self, msg: str) -> None:
        got = self._read()
        if got != msg:
            raise RuntimeError(f"fastai worker said {got!r}, expected {msg!r}")

    def step(self, kind: str = "train") -> float | None:
        """Let the worker run one ``kind`` batch (first releasing any gated validation batch); its seconds."""
        while True:
            msg = self._read()
            if msg == f"step {kind}" or msg == "step valid":
                self.proc.stdin.write("go\n")
                done = self._read()
                if msg == f"step {kind}":
                    return float(done.split()[1])
                continue
            self.pending = msg
            return None

    def stop(self) -> None:
        """Cancel the worker's current fit/validate at its next gated batch."""
        msg = self._read()
        if msg.startswith("step"):
            self.proc.stdin.write("stop\n")
        else:
            self.pending = msg

    def settle(self) -> None:
        """Let the worker finish what its current fit still gates (its last validation batches) until its next
        phase or its end: a following phase then starts in step with ours."""
        while True:
            msg = self._read()
            if not msg.startswith("step"):
                self.pending = msg
                return
            self.proc.stdin.write("go\n")
            self._read()

    def finish(self) -> dict:
        while True:
            msg = self._read()
            if msg == "end":
                break
            if msg.startswith("step"):
                self.proc.stdin.write("go\n")
                self._read()
        self.proc.wait()
        return json.loads(self.out_path.read_text())


class PingPong(Callback):
    """After each of our training batches, let fastai run one; record both sides' step times."""

    def __init__(self, ref: RefWorker | None):
        self.ref, self.ours, self.theirs = ref, [], []

    def before_fit(self, learn):
        self.t = time.perf_counter()

    def before_epoch(self, learn):
        self.t = time.perf_counter()
        self.ours.append([])
        self.theirs.append([])

    def after_batch(self, learn, metrics):
        self.ours[-1].append(time.perf_counter() - self.t)
        if self.ref is not None:
            self.theirs[-1].append(self.ref.step("train"))
        self.t = time.perf_counter()


def encoder_token_flops(cfg: dict) -> float:
    """Matmul FLOPs of one training token through the AWD-LSTM: 3 x (LSTM input + recurrent projections)."""
    sizes = [cfg["emb_sz"]] + [cfg["n_hid"]] * (cfg["n_layers"] - 1) + [cfg["emb_sz"]]
    return 3.0 * sum(2 * 4 * sizes[i + 1] * (sizes[i] + sizes[i + 1]) for i in range(cfg["n_layers"]))


def lm_step_flops(cfg: dict, vocab: int) -> float:
    """Matmul FLOPs of one training token: 3 x (LSTM input + recurrent projections + decoder)."""
    return encoder_token_flops(cfg) + 3.0 * 2 * cfg["emb_sz"] * vocab


def jax_matmul_peak(n: int = 2048) -> float:
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    f(a, a).block_until_ready()
    best = min(_timed(lambda: f(a, a).block_until_ready()) for _ in range(5))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _corpus(n_tokens: int, vocab: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.random.default_rng(seed).integers(2, vocab, n_tokens).astype(np.int32)
    return ids, np.array([0, n_tokens], np.int64)


def _vocab(n: int) -> list[str]:
    return ["xxunk", "xxpad"] + [f"w{i}" for i in range(n - 2)]


def _suffix(precision: str) -> str:
    return "" if precision == "fp32" else f"_{precision}"


def lm_phase(spec: dict, ref: RefWorker | None, precision: str = "fp32") -> dict:
    """LM training then validation, step by step alternating with fastai (``bf16``: ours ``to_bf16()``, fastai
    under torch's bf16 autocast)."""
    sfx = _suffix(precision)
    bs, sl = spec["bs"], spec["seq_len"]
    train = LMDataLoader(*_corpus(spec["lm_tokens"], spec["vocab"], 0), bs=bs, seq_len=sl)
    valid = LMDataLoader(*_corpus(spec["lm_tokens"], spec["vocab"], 1), bs=bs, seq_len=sl)
    dls = TextDataLoaders(train, valid, vocab=_vocab(spec["vocab"]), is_lm=True, seq_len=sl)
    pp = PingPong(ref)
    learn = language_model_learner(dls, AWD_LSTM, config=spec["lm_config"], drop_mult=spec["drop_mult"],
                                   pretrained=False, cbs=[pp], progress=False, unroll=spec["unroll"])
    if precision == "bf16":
        learn.to_bf16()
    if ref:
        ref.expect(f"phase lm_train{sfx}")
    learn.fit(1, 1e-3)  # its validation compiles the eval step used below
    if ref:
        ref.stop()
        ref.expect(f"phase lm_valid{sfx}")
    eval_fn = learn._jit("eval")
    state = learn.state.replace(carry=learn._fresh_carry(bs))
    ours_v, theirs_v = [], []
    for batch in valid.batches(0):
        t = time.perf_counter()
        state, stats = eval_fn(state, batch)
        jax.block_until_ready(stats)
        ours_v.append(time.perf_counter() - t)
        theirs_v.append(ref.step("valid") if ref else None)
    if ref:
        ref.stop()
    drop_first = lambda xs: [x for x in xs[1:] if x is not None]  # noqa: E731 (warm-up / compilation)
    return {"ours": {f"lm_train_step_s{sfx}": drop_first(pp.ours[0]), f"lm_valid_step_s{sfx}": drop_first(ours_v)},
            "fastai": {f"lm_train_step_s{sfx}": drop_first(pp.theirs[0]),
                       f"lm_valid_step_s{sfx}": drop_first(theirs_v)}}


def clas_phase(spec: dict, ref: RefWorker | None, precision: str = "fp32") -> dict:
    """Classifier training, batch by batch alternating with fastai; the last epoch is the measurement."""
    sfx = _suffix(precision)
    lens = np.asarray(spec["doc_lengths"])
    rng = np.random.default_rng(2)
    ids = rng.integers(2, spec["vocab"], int(lens.sum())).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    labels = rng.integers(0, 2, len(lens)).astype(np.int32)
    kw = dict(bs=spec["bs"], seq_len=spec["seq_len"])
    train = SortedDL(ids, offsets, None, labels, shuffle=True, seed=0, **kw)
    valid = SortedDL(ids, offsets, np.arange(spec["bs"]), labels[: spec["bs"]], **kw)
    dls = TextDataLoaders(train, valid, vocab=_vocab(spec["vocab"]), classes=["a", "b"], seq_len=spec["seq_len"])
    sequential = spec.get("sequential", False)
    pp = PingPong(None if sequential else ref)
    learn = text_classifier_learner(dls, AWD_LSTM, config=spec["clas_config"], drop_mult=spec["drop_mult"],
                                    pretrained=False, seq_len=spec["seq_len"], cbs=[pp], progress=False,
                                    unroll=spec["unroll"])
    if precision == "bf16":
        learn.to_bf16()
    if ref:
        ref.expect(f"phase clas_train{sfx}")
    learn.fit(spec["clas_epochs"], 1e-3)
    if ref and sequential:  # then fastai's whole fit on its own, batch by batch
        pp.theirs = [[ref.step("train") for _ in range(len(train))] for _ in range(spec["clas_epochs"])]
    if ref:
        ref.settle()
    n_docs = len(train) * spec["bs"]
    return {"ours": {f"clas_epoch_s{sfx}": sum(pp.ours[-1]), "clas_docs": n_docs, f"clas_step_s{sfx}": pp.ours},
            "fastai": {f"clas_epoch_s{sfx}": sum(pp.theirs[-1]), "clas_docs": n_docs,
                       f"clas_step_s{sfx}": pp.theirs} if ref else None}


def summarize(spec: dict, ours: dict, ref: dict | None, peak: float) -> dict:
    bs, sl = spec["bs"], spec["seq_len"]
    flops = lm_step_flops(spec["lm_config"], spec["vocab"])
    rows: dict[str, dict] = {}

    def add(name, key, per_step_units, side_ref=True):
        o = ours.get(key)
        r = ref.get(key) if (ref and side_ref) else None
        val = (lambda s: per_step_units / statistics.median(s)) if per_step_units else None
        rows[name] = {"ours": val(o) if o else None, "fastai": val(r) if r else None}

    for p in spec.get("precisions", ["fp32"]):
        sfx, tag = _suffix(p), ("" if p == "fp32" else " [bf16 / fastai autocast]")
        if "lm" in spec["what"]:
            add(f"LM training tokens/s{tag}", f"lm_train_step_s{sfx}", bs * sl)
            add(f"LM inference tokens/s{tag}", f"lm_valid_step_s{sfx}", bs * sl)
            tr = rows[f"LM training tokens/s{tag}"]
            rows[f"LM training GFLOP/s{tag}"] = {k: (v * flops / 1e9 if v else None) for k, v in tr.items()}
        if "clas" in spec["what"]:
            o = ours["clas_docs"] / ours[f"clas_epoch_s{sfx}"]
            r = ref["clas_docs"] / ref[f"clas_epoch_s{sfx}"] if ref and "clas_docs" in ref else None
            rows[f"classifier training docs/s{tag}"] = {"ours": o, "fastai": r}
            # the documents' own tokens through the encoder (padding excluded: the work both sides must do)
            per_doc = float(np.mean(spec["doc_lengths"])) * encoder_token_flops(spec["clas_config"]) / 1e9
            rows[f"classifier training GFLOP/s{tag}"] = {"ours": o * per_doc, "fastai": r * per_doc if r else None}
    if "bf16" in spec.get("precisions", []):  # the issue's targets: our bf16 against fastai's plain fp32
        for name in ("LM training tokens/s", "classifier training docs/s"):
            a, b = rows.get(f"{name} [bf16 / fastai autocast]"), rows.get(name)
            if a and b:
                rows[f"{name} [our bf16 / fastai fp32]"] = {"ours": a["ours"], "fastai": b["fastai"]}
    for row in rows.values():
        row["ratio"] = row["ours"] / row["fastai"] if row["ours"] and row["fastai"] else None
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", default="lm,clas")
    ap.add_argument("--vocab", type=int, default=30000)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=72)
    ap.add_argument("--lm-steps", type=int, default=6, help="timed LM training/validation steps")
    ap.add_argument("--clas-batches", type=int, default=4, help="classifier batches per epoch")
    ap.add_argument("--clas-epochs", type=int, default=2)
    ap.add_argument("--doc-median", type=float, default=230.0)
    ap.add_argument("--unroll", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="tiny model and data: checks the script, not speed")
    ap.add_argument("--precisions", default="fp32", help="comma-separated fp32,bf16: bf16 runs ours after "
                    "learn.to_bf16() and fastai under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--sequential", action="store_true",
                    help="classifier: each side's whole fit on its own (ours, then fastai's) instead of batch by "
                         "batch alternation, which costs both sides their caches (ours alone 8.9 vs 6.6 docs/s)")
    ap.add_argument("--ref-python", default=DEFAULT_REF if Path(DEFAULT_REF).exists() else "")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    lm_cfg = dict(awd_lstm_lm_config) | (TINY if a.tiny else {})
    clas_cfg = dict(awd_lstm_clas_config) | (TINY if a.tiny else {})
    vocab = 500 if a.tiny else a.vocab
    n_docs = a.clas_batches * a.bs
    # a real IMDB epoch's sortish batches hold documents of nearly equal length (consecutive in a sorted chunk of
    # bs*50): each batch length comes from the log-normal, its documents within 3% of it
    rng = np.random.default_rng(3)
    batch_len = np.clip(rng.lognormal(np.log(a.doc_median), 0.6, a.clas_batches), 40, 1200)
    lens = (np.repeat(batch_len, a.bs) * rng.uniform(0.97, 1.0, n_docs)).astype(int)
    spec = {"what": a.what, "vocab": vocab, "bs": a.bs, "seq_len": a.seq_len, "unroll": a.unroll,
            "lm_tokens": (a.lm_steps + 2) * a.bs * a.seq_len + 1, "lm_config": lm_cfg, "clas_config": clas_cfg,
            "drop_mult": 0.3, "doc_lengths": lens.tolist(), "clas_epochs": a.clas_epochs,
            "precisions": [p for p in a.precisions.split(",") if p], "sequential": a.sequential}
    bad = sorted(set(spec["precisions"]) - {"fp32", "bf16"})
    if bad:
        raise SystemExit(f"unknown precisions {bad}: use fp32 and/or bf16")
    print(f"workload: vocab {vocab}, bs {a.bs}, seq_len {a.seq_len}, config {lm_cfg}; JAX {jax.__version__} on "
          f"{jax.devices()[0].platform}, {os.cpu_count()} CPUs")
    peak = jax_matmul_peak()
    ours: dict = {}
    ref_res: dict = {}
    with tempfile.TemporaryDirectory() as d:
        ref = None
        if a.ref_python and Path(a.ref_python).exists():
            ref = RefWorker(a.ref_python, spec | {"what": "bench", "what_bench": a.what}, Path(d))
        else:
            print(f"no reference interpreter at {a.ref_python!r}: fastai side skipped")
        for precision in spec["precisions"]:  # the same order as the reference worker's phases
            for name, phase in (("lm", lm_phase), ("clas", clas_phase)):
                if name in a.what:
                    r = phase(spec, ref, precision)
                    ours |= r["ours"]
                    ref_res |= r["fastai"] or {}
        if ref:
            ref_res |= ref.finish()
    ref_res = ref_res or None
    peak = max(peak, jax_matmul_peak())  # measured before and after, the better of the two
    rows = summarize(spec, ours, ref_res, peak)
    print(f"\nmatmul peak (2048^3 f32, JAX): {peak:.0f} GFLOP/s; issue's figure {ISSUE_PEAK:.0f}")
    print(f"{'metric':60s} {'ulmfit_jax':>12s} {'fastai':>12s} {'ratio':>7s}")
    for name, r in rows.items():
        fmt = lambda v: f"{v:12.1f}" if v else f"{'-':>12s}"  # noqa: E731
        print(f"{name:60s} {fmt(r['ours'])} {fmt(r['fastai'])} {r['ratio'] or float('nan'):7.2f}")
    for name in ("LM training GFLOP/s", "classifier training GFLOP/s"):
        for side in ("ours", "fastai"):
            g = rows.get(name, {}).get(side)
            if g:
                print(f"{side} {name.split(' GFLOP')[0]}: {g:.0f} GFLOP/s = {100 * g / peak:.0f}% of the measured "
                      f"peak, {100 * g / ISSUE_PEAK:.0f}% of {ISSUE_PEAK:.0f}")
    result = {"spec": {k: v for k, v in spec.items() if k != "doc_lengths"}, "peak_gflops": peak, "rows": rows,
              "ours": ours, "fastai": ref_res}
    if a.out:
        tmp = Path(f"{a.out}.tmp")  # atomic: a killed run never leaves half a results file
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, a.out)
    return result


if __name__ == "__main__":
    main()
