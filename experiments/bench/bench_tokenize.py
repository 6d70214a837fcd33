"""Tokenizer parity and speed against fastai: same IMDB reviews, same number of worker processes.

fastai runs in its own interpreter (``--ref-python``, a venv with fastai + spaCy), never in this process. Both sides
time ``tokenize_texts(texts, n_workers=W)`` with the tokenizer object built beforehand (so spaCy's start-up is not
counted against fastai); runs alternate between the two sides and the best of ``--repeats`` is kept, which keeps
the comparison fair on a shared machine. The CPU seconds both sides use (all processes) are reported too: on a
loaded machine they are steadier than wall time. Agreement is the share of documents whose token lists are
identical.

    python -m experiments.bench.bench_tokenize --n 2000
    python -m experiments.bench.bench_tokenize --n 10000 --repeats 3 --out /tmp/bench_tokenize.json
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ulmfit_jax.text_files import iter_text_files
from ulmfit_jax.tokenize import Tokenizer, iter_tokenize

DEFAULT_DATA = "/work/shared/data/imdb/aclImdb_v1_text.tar.gz"
DEFAULT_REF = "/work/refenv/bin/python"

REF_SCRIPT = r"""
import json, resource, sys, time
from fastai.text.all import WordTokenizer, tokenize_texts

def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

texts = json.load(open(sys.argv[1], encoding='utf-8'))
n_workers, repeats = int(sys.argv[3]), int(sys.argv[4])
tok = WordTokenizer()
times, cpus = [], []
for _ in range(repeats):
    t, c = time.perf_counter(), cpu()
    out = tokenize_texts(texts, n_workers=n_workers, tok=tok)
    times.append(time.perf_counter() - t)
    cpus.append(cpu() - c)
json.dump({'times': times, 'cpu': cpus, 'tokens': [list(o) for o in out]}, open(sys.argv[2], 'w', encoding='utf-8'))
"""


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes), user + system."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def sample_reviews(path: str, n: int) -> list[str]:
    """``n`` reviews spread evenly over the corpus (every k-th file in archive order: train, test and unsup)."""
    texts = [t for _, t in iter_text_files(path)]
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def run_ref(ref_python: str, texts_file: str, n_workers: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        script, out = os.path.join(d, "ref.py"), os.path.join(d, "out.json")
        Path(script).write_text(REF_SCRIPT)
        subprocess.run([ref_python, script, texts_file, out, str(n_workers), str(repeats)], check=True)
        return json.loads(Path(out).read_text(encoding="utf-8"))


def run_ours(texts: list[str], n_workers: int, repeats: int) -> dict:
    tok = Tokenizer()
    times, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), cpu_seconds()
        out = list(iter_tokenize(texts, n_workers=n_workers, tokenizer=tok))
        times.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    return {"times": times, "cpu": cpus, "tokens": out}


def differences(ours: list[list[str]], ref: list[list[str]], max_examples: int = 10) -> tuple[Counter, list]:
    """Kinds of token differences (ours -> fastai) and a few examples with context."""
    kinds: Counter = Counter()
    examples = []
    for i, (a, b) in enumerate(zip(ours, ref)):
        if a == b:
            continue
        for op, a0, a1, b0, b1 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if op != "equal":
                kinds[f"{' '.join(a[a0:a1])!r} -> {' '.join(b[b0:b1])!r}"] += 1
                if len(examples) < max_examples:
                    examples.append({"doc": i, "ours": a[max(0, a0 - 3):a1 + 3], "fastai": b[max(0, b0 - 3):b1 + 3]})
    return kinds, examples


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="IMDB folder or .tar.gz")
    p.add_argument("--n", type=int, default=2000, help="number of reviews")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-python", default=DEFAULT_REF if os.path.exists(DEFAULT_REF) else None)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if not args.ref_python:
        sys.exit("no reference interpreter: pass --ref-python (a venv with fastai and spaCy)")

    texts = sample_reviews(args.data, args.n)
    n_chars = sum(map(len, texts))
    print(f"{len(texts)} IMDB reviews, {n_chars / 1e6:.1f}M characters; {args.workers} workers each")
    ours_t, ref_t, ours_c, ref_c = [], [], [], []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(texts, f)
    try:
        for _ in range(args.repeats):  # alternate sides so background load hits both alike
            ref = run_ref(args.ref_python, f.name, args.workers, 1)
            ref_t += ref["times"]
            ref_c += ref["cpu"]
            ours = run_ours(texts, args.workers, 1)
            ours_t += ours["times"]
            ours_c += ours["cpu"]
    finally:
        os.unlink(f.name)
    same = sum(a == b for a, b in zip(ours["tokens"], ref["tokens"]))
    n_tok = sum(map(len, ref["tokens"]))
    kinds, examples = differences(ours["tokens"], ref["tokens"])
    res = {
        "n_docs": len(texts), "n_tokens_fastai": n_tok, "n_tokens_ours": sum(map(len, ours["tokens"])),
        "identical_docs": same, "identical_share": same / len(texts),
        "workers": args.workers, "fastai_s": min(ref_t), "ours_s": min(ours_t),
        "fastai_tok_per_s": n_tok / min(ref_t), "ours_tok_per_s": n_tok / min(ours_t),
        "speedup": min(ref_t) / min(ours_t), "fastai_times": ref_t, "ours_times": ours_t,
        "fastai_cpu_s": min(ref_c), "ours_cpu_s": min(ours_c), "cpu_ratio": min(ref_c) / min(ours_c),
        "difference_kinds": kinds.most_common(20), "examples": examples,
    }
    print(f"identical token sequences: {same}/{len(texts)} = {100 * same / len(texts):.2f}%")
    print(f"fastai (spaCy) : {min(ref_t):7.3f} s  {n_tok / min(ref_t):12,.0f} tokens/s   runs {ref_t}")
    print(f"ulmfit_jax     : {min(ours_t):7.3f} s  {n_tok / min(ours_t):12,.0f} tokens/s   runs {ours_t}")
    print(f"speed-up (wall clock, best run): {res['speedup']:.1f}x;  CPU seconds used, all processes: "
          f"fastai {min(ref_c):.2f}, ours {min(ours_c):.2f} = {res['cpu_ratio']:.1f}x less")
    for k, c in kinds.most_common(10):
        print(f"  {c:5d}  {k}")
    if args.out:
        tmp = Path(f"{args.out}.tmp")  # atomic: a killed run never leaves half a results file
        tmp.write_text(json.dumps(res, indent=1))
        os.replace(tmp, args.out)
    return res


if __name__ == "__main__":
    main()
