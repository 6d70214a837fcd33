"""A two-epoch toy run (16 steps an epoch) that checkpoints and kills itself at a chosen step; the resume tests
run it in a subprocess and continue it in their own process.

usage: python -m tests.learner_jax.resume_run CKPT --every N [--no-epoch-saves] [--device-epoch]
       --kill-at STEP --mode after|in-save|sigterm
``after``: SIGKILL once STEP steps are done and every checkpoint is on disk; ``in-save``: SIGKILL right after the
checkpoint of STEP was started (orbax is still writing it); ``sigterm``: SIGTERM at STEP (a preempted machine).
"""

from __future__ import annotations

import argparse
import os
import signal

import jax
import numpy as np

from learner_jax import Callback, CheckpointCallback
from tests.learner_jax.tiny import toy_learner

EPOCHS, LR = 2, 1e-2


class Kill(Callback):
    """Signal this process once ``step`` steps are done."""

    def __init__(self, step: int, mode: str):
        self.step, self.mode = step, mode
        self.order = {"after": 100, "in-save": 21, "sigterm": 10}[mode]  # CheckpointCallback's order is 20

    def after_batch(self, learn, metrics):
        if int(metrics["step"]) + 1 != self.step:
            return
        if self.mode == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if self.mode == "after":
            for c in learn._active_cbs:
                if isinstance(c, CheckpointCallback):
                    c.store.wait()
        os.kill(os.getpid(), signal.SIGKILL)


def train(ckpt, every: int, every_epoch: bool, device_epoch: bool, resume: bool = False, extra=()):
    """The run; returns the learner (for the final parameters and optimizer state)."""
    learn = toy_learner(seed=1, bs=32, device_epoch=device_epoch)
    cbs = [CheckpointCallback(ckpt, every_n_steps=every, every_epoch=every_epoch), *extra] if ckpt else []
    learn.fit_one_cycle(EPOCHS, LR, cbs=cbs, resume_from=ckpt if resume else None)
    return learn


def final_leaves(learn) -> list[np.ndarray]:
    """Parameters, optimizer state, model state and step, as host arrays."""
    s = learn.state
    return [np.asarray(x) for x in jax.tree_util.tree_leaves((s.params, s.opt_state, s.model_state, s.step))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--every", type=int, required=True)
    ap.add_argument("--no-epoch-saves", action="store_true")
    ap.add_argument("--device-epoch", action="store_true")
    ap.add_argument("--kill-at", type=int, required=True)
    ap.add_argument("--mode", choices=["after", "in-save", "sigterm"], default="after")
    a = ap.parse_args()
    train(a.ckpt, a.every, not a.no_epoch_saves, a.device_epoch, extra=[Kill(a.kill_at, a.mode)])
    raise SystemExit(f"run finished without being killed at step {a.kill_at}")


if __name__ == "__main__":
    main()
