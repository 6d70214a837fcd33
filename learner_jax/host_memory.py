"""Keep freed host memory inside the process, so XLA:CPU's per-step buffers stop page-faulting.

XLA:CPU allocates each execution's temporaries as one block and frees it when the step ends: 461 MB for the
few-label protocol's LM fine-tuning step (bs 64 x bptt 72 tokens against a 16k vocabulary). glibc's malloc serves
every block over 32 MB with a fresh ``mmap`` and hands it back with ``munmap``, so each step faults the whole
block's pages in again: 17% of the protocol's CPU time was the kernel's (``/usr/bin/time``: 419 s system of
2,528 s), and ``perf`` put 20% of the LM head's step in page-fault handling. With one malloc arena, no ``mmap``
for large blocks and no trimming, the block is reused from the heap: the LM head's forward and backward go from
530 to 440 ms (``experiments/results/ulmfit_speed.md``). The cost: the process keeps its peak heap instead of
returning it to the system.

glibc only (Linux); elsewhere nothing changes. The settings must be in place before JAX starts its CPU client
(its worker threads pick their malloc arena at their first allocation), which is why ``import learner_jax`` (and
so ``ulmfit_jax``, ``tabular_jax``, ``collab_jax``) applies them. ``LEARNER_JAX_MALLOC=system`` in the environment
leaves malloc as it is.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -4, -8
OPT_OUT_VAR = "LEARNER_JAX_MALLOC"
TOP_PAD = 256 << 20  # grow the heap in 256 MB steps: a few brk calls instead of one per large block
TRIM_THRESHOLD = 2 ** 31 - 1  # mallopt takes an int: the largest, i.e. never trim below 2 GB of free top


def on_glibc() -> bool:
    """Whether this process runs on Linux with glibc's malloc, the only one :func:`retain_freed_memory` tunes."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def retain_freed_memory(environ: dict | None = None) -> bool:
    """Tune glibc malloc to reuse freed blocks (one arena, no ``mmap`` for large blocks, no trimming).

    Returns whether the settings were applied: False off glibc, with ``LEARNER_JAX_MALLOC=system``, or when
    ``mallopt`` refuses one of them. Idempotent.
    """
    env = os.environ if environ is None else environ
    if env.get(OPT_OUT_VAR, "").lower() == "system":
        return False
    if not on_glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)


# Applied when the engine is imported (importing JAX does not start its CPU client; the first computation does).
HOST_MALLOC_TUNED = retain_freed_memory()

__all__ = ["HOST_MALLOC_TUNED", "OPT_OUT_VAR", "on_glibc", "retain_freed_memory"]
