"""Building a model's parameters in one compiled program at XLA's lowest optimisation level.

An ``nnx`` constructor run eagerly compiles one small program per initializer and shape (the tabular lesson's
model: 34 programs, 2.0 s of a cold process's 2.1 s learner build); under ``nnx.jit`` it is one program (1.06 s);
that program runs once, so its compile is all its cost and XLA's optimisation passes buy nothing: at
``xla_backend_optimization_level=0`` it compiles in about half the time (0.50 s). Values are an eager build's to
within one float32 ulp (that level fuses no multiply-adds) and deterministic (experiments/results/compile.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
from flax import nnx

M = TypeVar("M", bound=nnx.Module)

INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def build_compiled(build: Callable[[], M]) -> M:
    """``build()`` (a model constructor taking no arguments, its ``nnx.Rngs`` inside) run as one compiled program;
    the module it returns."""
    graphdef = nnx.graphdef(nnx.eval_shape(build))
    state = jax.jit(lambda: nnx.state(build()), compiler_options=INIT_COMPILER_OPTIONS)()
    return nnx.merge(graphdef, state)


__all__ = ["build_compiled"]
