"""A two-epoch toy run (16 steps an epoch) that checkpoints and kills itself at a chosen step; the resume tests
run it in a subprocess and continue it in their own process.

usage: python -m tests.learner_jax.resume_run CASES.json OUT_DIR
CASES.json lists ``{"id", "ckpt", "every", "every_epoch", "device_epoch", "kill_at", "mode"}``. Each case runs
in a child forked after the imports (JAX's backend is not started yet, so each child starts its own): one
interpreter start-up for all cases instead of one each. OUT_DIR gets ``<id>.log`` (the child's output) and
``status.json`` (``{id: exit status}``, ``-signal`` when killed by a signal).
Modes: ``after``: SIGKILL once KILL_AT steps are done and every checkpoint is on disk; ``in-save``: SIGKILL right
after the checkpoint of that step was started (orbax is still writing it); ``sigterm``: SIGTERM at that step.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

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


def run_case(case: dict) -> None:
    """One killed run; returns only if the kill never came."""
    train(case["ckpt"], case["every"], case["every_epoch"], case["device_epoch"],
          extra=[Kill(case["kill_at"], case["mode"])])


def fork_case(case: dict, log: Path) -> int:
    """Run ``case`` in a forked child writing its output to ``log``; returns the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 71  # the run finished without being killed
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        run_case(case)
    except SystemExit as e:  # SIGTERM: Preempted(143)
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    cases_file, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    cases = json.loads(cases_file.read_text())
    pids = {c["id"]: fork_case(c, out_dir / f"{c['id']}.log") for c in cases}
    status = {}
    for case_id, pid in pids.items():
        _, st = os.waitpid(pid, 0)
        status[case_id] = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
    tmp = out_dir / "status.json.tmp"
    tmp.write_text(json.dumps(status))
    os.replace(tmp, out_dir / "status.json")


if __name__ == "__main__":
    main()
