"""A toy training run executed in a subprocess by the sharding and kill-and-resume tests.

usage: python -m tests.learner_jax.toy_run OUT.npz [--ckpt DIR] [--kill-at STEP] [--resume]
The XLA_FLAGS environment decides how many CPU devices the run sees.
"""

from __future__ import annotations

import argparse
import os
import signal

import jax
import numpy as np

from learner_jax import Callback, CheckpointCallback
from tests.learner_jax.tiny import toy_learner


class KillAt(Callback):
    """SIGKILL this process once ``step`` steps are done (after checkpoints had a chance to be written)."""

    order = 100

    def __init__(self, step: int):
        self.step = step

    def after_batch(self, learn, metrics):
        if int(metrics["step"]) + 1 == self.step:
            learn_cb = [c for c in learn._active_cbs if isinstance(c, CheckpointCallback)]
            for c in learn_cb:
                c.store.wait()
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--ckpt")
    ap.add_argument("--kill-at", type=int)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    learn = toy_learner(seed=1, bs=32)
    cbs = []
    if args.ckpt:
        cbs.append(CheckpointCallback(args.ckpt, every_n_steps=5, every_epoch=True))
    if args.kill_at:
        cbs.append(KillAt(args.kill_at))
    learn.fit_one_cycle(3, 1e-2, cbs=cbs, resume_from=args.ckpt if args.resume else None)
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(learn.params)]
    np.savez(args.out, *leaves, n_devices=len(jax.devices()), valid=np.asarray(learn.validate()))


if __name__ == "__main__":
    main()
