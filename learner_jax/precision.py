"""Mixed precision: matmul inputs in bfloat16 with float32 accumulation, everything else in float32.

The compute dtype is a static attribute of the model's modules (part of the graph definition, hence of the
``StepSpec`` and of every compiled step's identity): switching it recompiles once per step kind; the weights,
optimizer state, recurrent cell state, loss, softmax and BatchNorm statistics stay float32, so the same
checkpoint loads in either mode and no loss scaling is needed (bfloat16 has float32's exponent range).

Modules opt in in one of two ways: Flax's ``nnx.Linear`` (and ``LinearGeneral``/``Einsum``/``Conv``) through
their ``dtype`` and ``preferred_element_type``; our own modules by declaring a ``compute_dtype`` class attribute
(``None`` means float32) and passing it to :func:`matmul` / :func:`einsum`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

DTYPES = {"float32": None, "fp32": None, "bfloat16": jnp.bfloat16, "bf16": jnp.bfloat16}
_FLAX_MATMULS = (nnx.Linear, nnx.LinearGeneral, nnx.Einsum, nnx.Conv)


def as_compute_dtype(dtype: Any) -> Any:
    """``None`` (float32) or ``jnp.bfloat16`` from a name, a dtype or None; anything else is refused."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        if dtype.lower() not in DTYPES:
            raise ValueError(f"unknown compute dtype {dtype!r}: use one of {sorted(DTYPES)}")
        return DTYPES[dtype.lower()]
    d = jnp.dtype(dtype)
    if d == jnp.float32:
        return None
    if d == jnp.bfloat16:
        return jnp.bfloat16
    raise ValueError(f"compute dtype must be float32 or bfloat16, got {d} (float16 needs loss scaling: not offered)")


def matmul(a: jax.Array, b: jax.Array, dtype: Any = None) -> jax.Array:
    """``a @ b``; with ``dtype`` the inputs are rounded to it and the products summed in float32."""
    if dtype is None:
        return a @ b
    return jnp.matmul(a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def matmul_t(a: jax.Array, b: jax.Array, dtype: Any = None) -> jax.Array:
    """``a @ b.T`` for 2-D ``b``, as one product contracting both operands' last axes (no transpose in the graph).

    In bfloat16 the spelling matters on XLA:CPU: ``a @ b.T.astype(bf16)`` was compiled to a float32 product
    (4608 x 4608 @ 4608 x 1152: 265 GFLOP/s) where this form stays bfloat16 in YNNPACK (1090-1364 GFLOP/s, measured
    in one process; experiments/results/compile.md)."""
    if dtype is None:
        return a @ b.T
    return jax.lax.dot_general(a.astype(dtype), b.astype(dtype), (((a.ndim - 1,), (1,)), ((), ())),
                               preferred_element_type=jnp.float32)


def rows_t(a: jax.Array, dtype: Any) -> jax.Array:
    """The rows of ``a`` ((T, B, K), or (N, K)) as the columns of a (K, T*B) row-major copy in ``dtype``, for a
    weight gradient ``rows_t(x) @ dZ`` in bfloat16.

    XLA:CPU upcasts a bf16 dot that contracts the rows of both operands (``x.T @ dz``) to float32 (315-331 GFLOP/s at
    4608 x 1153 x 4608; the decoder's 30k x 401 x 4608: 169-204), while the same product with this explicit 3-D
    transpose-reshape (which XLA does not fold back into the dot) runs natively: 833-893 and 848 GFLOP/s, the copy
    included (experiments/results/compile.md). A 2-D ``a`` is first viewed as 3-D (rows split by a divisor of N).
    """
    if a.ndim == 2:
        n = a.shape[0]
        r = next(d for d in (72, 64, 32, 16, 8, 4, 2, 1) if n % d == 0)
        a = a.reshape(n // r, r, a.shape[1])
    return a.astype(dtype).transpose(2, 0, 1).reshape(a.shape[-1], -1)


def einsum(spec: str, a: jax.Array, b: jax.Array, dtype: Any = None) -> jax.Array:
    """``jnp.einsum(spec, a, b)`` with the same rounding rule as :func:`matmul`."""
    if dtype is None:
        return jnp.einsum(spec, a, b)
    return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def set_compute_dtype(model: nnx.Module, dtype: Any) -> nnx.Module:
    """Set every matmul of ``model`` (in place) to compute in ``dtype`` (None: float32); returns the model."""
    dtype = as_compute_dtype(dtype)
    for _, m in nnx.iter_graph(model):
        if isinstance(m, _FLAX_MATMULS):
            m.dtype = dtype
            m.preferred_element_type = None if dtype is None else jnp.float32
        elif isinstance(m, nnx.Module) and hasattr(type(m), "compute_dtype"):
            m.compute_dtype = dtype
    return model


def compute_dtype_of(model: nnx.Module) -> Any:
    """The compute dtype ``set_compute_dtype`` gave the model (None: float32, also for a model with no matmul)."""
    for _, m in nnx.iter_graph(model):
        if isinstance(m, _FLAX_MATMULS) and m.dtype is not None:
            return as_compute_dtype(m.dtype)
        if isinstance(m, nnx.Module) and getattr(m, "compute_dtype", None) is not None:
            return as_compute_dtype(m.compute_dtype)
    return None


_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def bf16_is_native(device: jax.Device | None = None, cpuinfo: str | None = None) -> bool:
    """Whether ``device`` (default: JAX's first) multiplies bfloat16 in hardware, so mixed precision pays.

    TPUs; NVIDIA GPUs from compute capability 8.0 (Ampere); x86 CPUs whose ``/proc/cpuinfo`` (or ``cpuinfo``)
    lists AVX512-BF16 or AMX-BF16, where XLA's bf16 dots run 2-4x its float32 ones (experiments/results/compile.md)
    and the AWD-LSTM trains 1.1-1.5x faster. Elsewhere XLA emulates bfloat16 and float32 is the faster choice.
    """
    device = device or jax.devices()[0]
    if device.platform == "tpu":
        return True
    if device.platform == "gpu":
        try:
            return float(getattr(device, "compute_capability", "0")) >= 8.0
        except ValueError:
            return False
    if device.platform != "cpu":
        return False
    if cpuinfo is None:
        f = Path("/proc/cpuinfo")
        cpuinfo = f.read_text() if f.is_file() else ""
    flags = {w for line in cpuinfo.splitlines() if line.startswith("flags") for w in line.split(":", 1)[-1].split()}
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: jax.Device | None = None) -> str:
    """``"float32"`` or ``"bf16"`` from a ``--precision`` choice: ``"auto"`` is bf16 where :func:`bf16_is_native`."""
    choice = precision.lower()
    if choice == "auto":
        return "bf16" if bf16_is_native(device) else "float32"
    if choice not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}: use auto or one of {sorted(DTYPES)}")
    return "float32" if DTYPES[choice] is None else "bf16"


__all__ = ["as_compute_dtype", "bf16_is_native", "compute_dtype_of", "einsum", "matmul", "matmul_t",
           "resolve_precision", "rows_t", "set_compute_dtype"]
