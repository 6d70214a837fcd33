"""``backward_if``: the same gradients as autodiff when needed; zero cotangents, and no backward work at all,
when not (the work is counted by a callback inside the wrapped function's own backward pass)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from learner_jax.frozen_backward import backward_if, trainable_below


def _counted_square():
    calls = []

    @jax.custom_vjp
    def square(x):
        return x * x

    def fwd(x):
        return x * x, x

    def bwd(x, g):
        jax.debug.callback(lambda: calls.append(1))
        return (2 * x * g,)

    square.defvjp(fwd, bwd)
    return square, calls


def test_backward_runs_only_when_needed_and_matches_autodiff():
    square, calls = _counted_square()
    w = jnp.arange(12.0).reshape(4, 3) / 10
    ids = jnp.array([0, 2, 3, 2])

    def f(table, x, i):  # an integer argument (token ids) gets no cotangent
        return jnp.tanh(square(jnp.take(table, i, axis=0)) @ x)

    def loss(table, x, need):
        return backward_if(need, f, table, x, ids).sum()

    x = jnp.ones((3, 2))
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    g_on = grad(w, x, jnp.float32(1.0))
    jax.effects_barrier()
    assert len(calls) == 1
    want = jax.grad(lambda t, xx: f(t, xx, ids).sum(), argnums=(0, 1))(w, x)
    for a, b in zip(g_on, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    g_off = grad(w, x, jnp.float32(0.0))  # the same compiled program, the other branch
    jax.effects_barrier()
    assert len(calls) == 2  # the autodiff reference above ran the backward once more; the skipped one did not
    assert all(not np.any(np.asarray(g)) for g in g_off)
    np.testing.assert_allclose(backward_if(jnp.float32(0.0), f, w, x, ids), f(w, x, ids))  # forward unchanged


def test_trainable_below_is_a_running_any():
    np.testing.assert_array_equal(trainable_below(jnp.array([1.0, 1.0, 0.0, 1.0, 0.0])), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(trainable_below(jnp.zeros(3)), [1, 1, 1])
    np.testing.assert_array_equal(trainable_below(jnp.ones(2)), [0, 0])
