"""One AWD-LSTM layer's training pass, ours vs PyTorch's ``nn.LSTM`` (what fastai runs), on the same CPU.

    python -m experiments.bench.bench_lstm_layer                     # the lesson's middle layer, 1152 -> 1152
    python -m experiments.bench.bench_lstm_layer --steps 72 --n-in 400
    python -m experiments.bench.bench_lstm_layer --steps 72 --n-in 640 --n-hid 640 --bf16 --ref-python ''

Why: the AWD-LSTM's time is almost all in its LSTM layers, so the rate one layer's forward + backward reaches
(GFLOP/s of its matmuls, the standard 3x forward) against the machine's matmul peak bounds what any AWD-LSTM
implementation can gain on this CPU. fastai's layers are PyTorch's oneDNN/MKL LSTM kernels; ours is
``ulmfit_jax.lstm.lstm_layer`` (a ``lax.scan`` with a hand-written backward). PyTorch runs in its own
interpreter (``--ref-python``), never in this JAX process; both use every core. Best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from experiments.bench.bench_ulmfit import DEFAULT_REF, jax_matmul_peak
from ulmfit_jax.lstm import lstm_layer

TORCH_SNIPPET = """
import json, sys, time, torch
t, b, n_in, h, reps = map(int, sys.argv[1:])
layer = torch.nn.LSTM(n_in, h)
x = torch.randn(t, b, n_in, requires_grad=True)
best = float("inf")
for _ in range(reps + 1):
    t0 = time.perf_counter()
    out, _ = layer(x)
    out.sum().backward()
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best, "threads": torch.get_num_threads(), "torch": torch.__version__}))
"""


def layer_flops(t: int, b: int, n_in: int, h: int) -> float:
    """Matmul FLOPs of one layer's training pass: 3 x (input projection + recurrent projection)."""
    return 3.0 * 2 * t * b * 4 * h * (n_in + h)


def ours_seconds(t: int, b: int, n_in: int, h: int, reps: int, dtype=None) -> float:
    k = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k[0], (t, b, n_in))
    w_ih = jax.random.normal(k[1], (n_in, 4 * h)) / n_in ** 0.5
    w_hh = jax.random.normal(k[2], (h, 4 * h)) / h ** 0.5
    bias, zeros = jnp.zeros(4 * h), jnp.zeros((b, h))
    grad = jax.jit(jax.grad(lambda *a: lstm_layer(*a, zeros, zeros, 1, dtype)[0].sum(), argnums=(0, 1, 2, 3)))
    jax.block_until_ready(grad(x, w_ih, bias, w_hh))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(grad(x, w_ih, bias, w_hh))
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=295, help="time steps (295: a median IMDB batch)")
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--n-in", type=int, default=1152)
    ap.add_argument("--n-hid", type=int, default=1152)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ref-python", default=DEFAULT_REF if Path(DEFAULT_REF).exists() else "")
    ap.add_argument("--bf16", action="store_true", help="our layer in mixed precision (bf16 matmul inputs, as "
                    "learn.to_bf16()); PyTorch's stays float32")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    shape = (a.steps, a.bs, a.n_in, a.n_hid)
    flops = layer_flops(*shape)
    peak = jax_matmul_peak()
    ours = ours_seconds(*shape, a.repeats, jnp.bfloat16 if a.bf16 else None)
    res = {"shape": dict(zip(("steps", "bs", "n_in", "n_hid"), shape)), "ours_s": ours,
           "ours_dtype": "bf16" if a.bf16 else "fp32"}
    if a.ref_python:
        out = subprocess.run([a.ref_python, "-c", TORCH_SNIPPET, *map(str, shape), str(a.repeats)],
                             capture_output=True, text=True, check=True)
        res["torch"] = json.loads(out.stdout.strip().splitlines()[-1])
    res["peak_gflops"] = peak = max(peak, jax_matmul_peak())
    print(f"LSTM layer {a.n_in}->{a.n_hid}, {a.steps} steps x bs {a.bs}: forward + backward, matmul peak "
          f"{peak:.0f} GFLOP/s (2048^3 f32, JAX)")
    for name, sec in ((f"ulmfit_jax {res['ours_dtype']}", res["ours_s"]),
                      ("torch nn.LSTM", res.get("torch", {}).get("seconds"))):
        if sec:
            g = flops / sec / 1e9
            print(f"  {name:19s} {sec:7.3f} s  {g:6.1f} GFLOP/s  {100 * g / peak:5.1f}% of peak")
    if "torch" in res:
        print(f"  ratio ours/torch (speed): {res['torch']['seconds'] / res['ours_s']:.2f}")
    if a.out:
        tmp = Path(f"{a.out}.tmp")  # atomic: a killed run never leaves half a results file
        tmp.write_text(json.dumps(res, indent=1))
        os.replace(tmp, a.out)
    return res


if __name__ == "__main__":
    main()
