"""build_compiled: one program at the lowest optimisation level, an eager build's values, deterministic."""

import jax
import numpy as np
from flax import nnx

from learner_jax.model_init import build_compiled


class _Small(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.emb = nnx.Embed(7, 3, rngs=rngs)
        self.lin = nnx.Linear(3, 4, rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.lin(self.emb(x)), use_running_average=True)


def _leaves(m):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.state(m))]


def test_build_compiled_matches_eager_and_is_deterministic():
    build = lambda: _Small(nnx.Rngs(params=3))  # noqa: E731
    eager, a, b = build(), build_compiled(build), build_compiled(build)
    assert type(a) is _Small
    assert jax.tree.structure(nnx.state(a)) == jax.tree.structure(nnx.state(eager))
    for x, y, z in zip(_leaves(eager), _leaves(a), _leaves(b)):
        np.testing.assert_array_equal(y, z)
        np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-7)
    flat = lambda m: np.concatenate([v.ravel() for v in _leaves(m)])  # noqa: E731
    assert not np.allclose(flat(build_compiled(lambda: _Small(nnx.Rngs(params=4)))), flat(a))
    out = a(np.array([0, 6]))
    assert out.shape == (2, 4)


def test_build_compiled_is_one_program():
    """Eager, this module's init compiles a program per initializer and shape; built here, one."""
    names = []

    def listen(event, secs, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(str(kw.get("fun_name")))

    jax.monitoring.register_event_duration_secs_listener(listen)
    build_compiled(lambda: _Small(nnx.Rngs(params=5)))  # warms the key-setup programs nnx.Rngs compiles
    names.clear()
    build_compiled(lambda: nnx.Linear(5, 9, rngs=nnx.Rngs(params=6)))
    assert names == ["jit(<lambda>)"], names
