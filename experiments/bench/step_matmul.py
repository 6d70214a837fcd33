"""The LSTM step matmul's two forms at the recurrence's shapes, float32 and bf16 (GFLOP/s, median of 7 x 40 calls).

    python -m experiments.bench.step_matmul

Forward: ``h @ W`` (W stored (h, 4h)) against ``h . W^T`` (W stored (4h, h), both operands contracting their last
axis). Backward: ``dz @ W^T`` (a transposed copy of W) against ``dz . W`` (W read row-wise). bf16 inputs
accumulate in float32, as ``learn.to_bf16()`` does. Results and what they decided: experiments/results/compile.md.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = ((64, 1152), (32, 512), (64, 512), (32, 1152))  # (rows, h): classifier/LM batch, model width


def seconds_per_call(f, *args, n: int = 40, repeats: int = 7) -> float:
    f(*args).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            out = f(*args)
        out.block_until_ready()
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def contract(a_axis: int, b_axis: int):
    """A jitted ``dot_general`` contracting ``a_axis`` of the first operand with ``b_axis`` of the second."""
    return jax.jit(lambda a, b: jax.lax.dot_general(a, b, (((a_axis,), (b_axis,)), ((), ())),
                                                    preferred_element_type=jnp.float32))


def main() -> None:
    key = jax.random.key(0)
    for rows, h in SHAPES:
        flops = 2 * rows * h * 4 * h
        for dtype in (jnp.float32, jnp.bfloat16):
            x = jax.random.normal(key, (rows, h)).astype(dtype)
            w = jax.random.normal(key, (h, 4 * h)).astype(dtype)
            w_t = jnp.asarray(w.T)
            dz = jax.random.normal(key, (rows, 4 * h)).astype(dtype)
            cases = {"fwd h@W": (contract(1, 0), x, w), "fwd h.W^T (new)": (contract(1, 1), x, w_t),
                     "bwd dz@W^T copy": (contract(1, 0), dz, w_t), "bwd dz.W (new)": (contract(1, 1), dz, w)}
            cells = [f"{name} {flops / seconds_per_call(f, a, b) / 1e9:4.0f}" for name, (f, a, b) in cases.items()]
            print(f"{rows:3d} x {h:4d} {jnp.dtype(dtype).name:8s} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
