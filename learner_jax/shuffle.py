"""On-device shuffling without a sort: a keyed pseudo-random permutation (Feistel network + cycle walking).

``jax.random.permutation`` sorts random keys; on a CPU that costs ~33 ms for 80k rows, a fifth of a compiled
collaborative-filtering epoch (whose 1250 steps take ~100 ms). A Feistel network over the next even power of
two is a bijection computed element by element (``perm[i] = f(i)``, O(n) with no sort); values that fall
outside ``[0, n)`` are encrypted again until they land inside ("cycle walking"), which keeps it a bijection
on ``[0, n)``. Four rounds of a murmur3-mixed round function give a shuffle with no visible structure (tested:
a permutation, reproducible from the key, different keys disagree, positions spread uniformly).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

ROUNDS = 4


def _mix(x: jax.Array) -> jax.Array:
    """murmur3's 32-bit finaliser: every input bit flips each output bit with probability ~1/2."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def _encrypt(x: jax.Array, keys: jax.Array, half: int) -> jax.Array:
    mask = jnp.uint32((1 << half) - 1)
    left, right = x >> half, x & mask
    for r in range(ROUNDS):
        left, right = right, left ^ (_mix(right ^ keys[r]) & mask)
    return (left << half) | right


def feistel_permutation(key: jax.Array, n: int) -> jax.Array:
    """A uniformly keyed permutation of ``arange(n)`` (int32), computed on device without sorting."""
    if n <= 1:
        return jnp.zeros((max(n, 0),), jnp.int32)
    bits = max(2, (n - 1).bit_length())
    bits += bits % 2
    half = bits // 2
    keys = jax.random.bits(key, (ROUNDS,), jnp.uint32)
    x = _encrypt(jnp.arange(n, dtype=jnp.uint32), keys, half)

    def outside(x):
        return jnp.any(x >= n)

    def walk(x):
        return jnp.where(x >= n, _encrypt(x, keys, half), x)

    return jax.lax.while_loop(outside, walk, x).astype(jnp.int32)
