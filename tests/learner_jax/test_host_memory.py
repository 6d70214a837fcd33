"""``import learner_jax`` tunes glibc malloc so that large freed blocks are reused instead of unmapped."""

import os
import subprocess
import sys

import pytest

from learner_jax.host_memory import OPT_OUT_VAR, on_glibc, retain_freed_memory

glibc = pytest.mark.skipif(not on_glibc(), reason="malloc tuning is glibc-only")

# In a fresh interpreter: import learner_jax, malloc and free a 64 MB block, and report where it came from
# (mallinfo2: hblkhd = bytes in mmap'ed blocks; arena = bytes of the heap).
PROBE = """
import ctypes, learner_jax
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
block = libc.malloc(64 << 20)
held = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(learner_jax.HOST_MALLOC_TUNED, held.hblkhd >= 64 << 20, after.arena >= 64 << 20)
"""


def _probe(**env) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != OPT_OUT_VAR} | env)
    return out.stdout.split()


@glibc
def test_large_blocks_come_from_the_heap_and_stay():
    tuned, mmapped, kept = _probe()
    assert (tuned, mmapped, kept) == ("True", "False", "True")


@glibc
def test_opt_out_leaves_malloc_alone():
    tuned, mmapped, _ = _probe(**{OPT_OUT_VAR: "system"})
    assert (tuned, mmapped) == ("False", "True")  # glibc's default: a 64 MB block is its own mmap


def test_opt_out_is_read_from_the_given_environment():
    assert retain_freed_memory({OPT_OUT_VAR: "System"}) is False
