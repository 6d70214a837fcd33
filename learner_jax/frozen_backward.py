"""Frozen layers cost no backward pass, inside the one program that freezing as data compiles.

With ``Learner.freeze_as_data`` all stages of gradual unfreezing run one compiled step: every parameter gets a
gradient and a per-group mask in the optimizer state zeroes the frozen groups' updates. That saves a compile per
stage but computes the frozen layers' backward for nothing, which PyTorch (``requires_grad=False``) skips for
fastai. A model class that sets ``takes_frozen_groups = True`` is called with that mask
(``model(x, train=True, rngs=..., frozen=mask)``, float (n_groups,), 1.0 where frozen) and wraps its layers in
:func:`backward_if`: their backward runs under ``lax.cond`` and is skipped at run time when nothing needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp


def backward_if(need: jax.Array, f: Callable, *args):
    """``f(*args)``; its backward pass runs only when ``need`` (a traced scalar) is nonzero and otherwise hands
    back zero cotangents without computing anything. Integer arguments (token ids) get no cotangent."""
    diff = tuple(bool(jnp.issubdtype(jnp.result_type(a), jnp.inexact)) for a in args)
    return _gated(f, diff, need, *args)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _gated(f, diff, need, *args):
    return f(*args)


def _gated_fwd(f, diff, need, *args):
    def of_inexact(*xs):
        it = iter(xs)
        return f(*(next(it) if d else a for a, d in zip(args, diff)))

    out, vjp = jax.vjp(of_inexact, *(a for a, d in zip(args, diff) if d))
    return out, (need, vjp)


def _gated_bwd(f, diff, res, ct):
    need, vjp = res
    shapes = jax.eval_shape(vjp, ct)

    def skip(_):
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    cts = iter(jax.lax.cond(need > 0, vjp, skip, ct))
    return (None, *(next(cts) if d else None for d in diff))


_gated.defvjp(_gated_fwd, _gated_bwd)


def trainable_below(frozen: jax.Array) -> jax.Array:
    """For groups ordered input to output: 1.0 at ``i`` when group ``i`` or one before it trains, i.e. when a
    gradient has to pass through (or be computed in) group ``i`` on its way back to a trainable parameter."""
    return jax.lax.cummax(1.0 - frozen.astype(jnp.float32), axis=0)


__all__ = ["backward_if", "trainable_below"]
