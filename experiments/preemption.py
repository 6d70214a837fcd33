"""SIGTERM (a preempted TPU VM or spot GPU) saves a training checkpoint before the script exits.

Script-level and minimal: the engine has no SIGTERM handling on this branch (issue 17 adds it inside ``fit``;
once it lands, the scripts can drop this module and keep their ``CheckpointCallback``). During a fit the handler
only raises a flag; ``SaveOnPreemption`` then saves at the next batch whose data position is known (in the
learner's loop, or at the end of an on-device epoch) and exits with 143 (128 + SIGTERM). Outside a fit the
handler exits at once: the last checkpoint is the place to resume from.
"""

from __future__ import annotations

import os
import signal

from learner_jax.callbacks import Callback, CheckpointCallback

EXIT_CODE = 128 + signal.SIGTERM


class Preemption:
    """Installs the SIGTERM handler while used as a context manager (main thread only) and restores the old one."""

    def __init__(self):
        self.requested, self.fits_running, self._old = False, 0, None

    def _handler(self, signum, frame) -> None:
        self.requested = True
        if not self.fits_running:
            print("SIGTERM outside a fit: exiting (rerun with the same --workdir to resume)", flush=True)
            raise SystemExit(EXIT_CODE)
        print("SIGTERM: saving a checkpoint at the next batch, then exiting", flush=True)

    def __enter__(self) -> Preemption:
        self._old = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGTERM, self._old)


def _default_sigterm_in_child() -> None:
    """Forked workers (the tokenizer's pool) die on SIGTERM as usual: a Python-level handler runs only between
    bytecodes, so an idle worker blocked on a lock ignored the pool's terminate() and the run hung (seen here)."""
    if isinstance(getattr(signal.getsignal(signal.SIGTERM), "__self__", None), Preemption):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_default_sigterm_in_child)


class SaveOnPreemption(Callback):
    """After a SIGTERM, save through ``ckpt``'s store (the stage's ``CheckpointCallback``; None: the one among the
    fit's callbacks) and exit."""

    order = 21  # after CheckpointCallback (20), whose store it writes to

    def __init__(self, preemption: Preemption, ckpt: CheckpointCallback | None = None):
        self.preemption, self.ckpt = preemption, ckpt

    def before_fit(self, learn):
        if self.ckpt is None:  # the engine keeps the fit's callbacks in _active_cbs
            self.ckpt = next((c for c in learn._active_cbs if isinstance(c, CheckpointCallback)), None)
            if self.ckpt is None:
                raise ValueError("SaveOnPreemption needs a CheckpointCallback in the same fit to save through")
        self.preemption.fits_running += 1

    def _save_and_exit(self, learn) -> None:
        store = self.ckpt.store
        if store.latest_step() != int(learn.state.step):  # CheckpointCallback may have just saved this step
            learn.save_training_checkpoint(store)
        print(f"checkpoint saved at step {int(learn.state.step)} in {self.ckpt.directory}", flush=True)
        raise SystemExit(EXIT_CODE)  # fit's finally runs after_fit, which waits for the save to finish

    def after_batch(self, learn, metrics):
        if self.preemption.requested and learn.batch_pos_known:
            self._save_and_exit(learn)

    def after_epoch(self, learn):
        if self.preemption.requested:
            self._save_and_exit(learn)

    def after_fit(self, learn):
        self.preemption.fits_running -= 1
