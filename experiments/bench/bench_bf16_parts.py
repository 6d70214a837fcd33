"""The LM's two hot spots in fp32 and bf16, alternating in one process: one AWD-LSTM layer (1152 -> 1152, bs 64,
T 72) forward+backward through ``lstm_layer``, and the tied decoder + cross-entropy (4608 x 400 @ 400 x 30000)
with gradients. Prints best-of-4 wall and CPU time per call and the bf16 speed-up.

    python -m experiments.bench.bench_bf16_parts
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from ulmfit_jax.lm_head import cross_entropy, vocab_projection
from ulmfit_jax.lstm import lstm_layer


def main(argv: list[str] | None = None) -> dict:
    t_, b_, h_ = 72, 64, 1152
    k = jax.random.split(jax.random.key(0), 6)
    x = jax.random.normal(k[0], (t_, b_, h_))
    wih = jax.random.normal(k[1], (h_, 4 * h_)) * 0.03
    b = jnp.zeros(4 * h_)
    whh = jax.random.normal(k[2], (h_, 4 * h_)) * 0.03
    h0 = c0 = jnp.zeros((b_, h_))

    def layer(dt):
        return jax.jit(jax.grad(lambda x, a, bb, w: jnp.sum(lstm_layer(x, a, bb, w, h0, c0, 2, dt)[0] ** 2),
                                argnums=(0, 1, 2, 3)))

    xd = jax.random.normal(k[3], (b_ * t_, 400))
    wd = jax.random.normal(k[4], (30000, 400)) * 0.1
    bd = jnp.zeros(30000)
    y = jax.random.randint(k[5], (b_ * t_,), 0, 30000)

    def dec(dt):
        return jax.jit(jax.grad(lambda x, w, bb: jnp.mean(cross_entropy(vocab_projection(x, w, bb, dt), y)),
                                argnums=(0, 1, 2)))

    dtypes = (("fp32", None), ("bf16", jnp.bfloat16))
    fns = {("layer", n): (layer(d), (x, wih, b, whh)) for n, d in dtypes}
    fns |= {("decoder", n): (dec(d), (xd, wd, bd)) for n, d in dtypes}
    for f, a in fns.values():
        jax.block_until_ready(f(*a))
    res: dict = {key: [] for key in fns}
    for _ in range(4):
        for key, (f, a) in fns.items():
            t, c = time.perf_counter(), time.process_time()
            jax.block_until_ready(f(*a))
            res[key].append((time.perf_counter() - t, time.process_time() - c))
    out = {}
    for part in ("layer", "decoder"):
        w32, w16 = (min(r[0] for r in res[(part, p)]) for p in ("fp32", "bf16"))
        c32, c16 = (min(r[1] for r in res[(part, p)]) for p in ("fp32", "bf16"))
        out[part] = {"fp32_s": w32, "bf16_s": w16, "fp32_cpu_s": c32, "bf16_cpu_s": c16}
        print(f"{part}: fp32 {w32 * 1e3:.0f} ms wall / {c32 * 1e3:.0f} ms CPU; bf16 {w16 * 1e3:.0f} ms wall / "
              f"{c16 * 1e3:.0f} ms CPU; speed-up wall {w32 / w16:.2f}x, CPU {c32 / c16:.2f}x", flush=True)
    return out


if __name__ == "__main__":
    main()
