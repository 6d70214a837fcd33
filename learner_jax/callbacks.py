"""Callbacks with fastai's event names. The learner calls ``before_fit``, ``before_epoch``,
``after_batch(metrics)`` (host values of one step), ``after_epoch`` and ``after_fit``; a callback stops
training by raising ``CancelFitException``."""

from __future__ import annotations

import math
import operator
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the learner imports us; annotations only
    from learner_jax.learner import Learner


class CancelFitException(Exception):
    """Raised by a callback to end ``fit`` cleanly (after_fit still runs)."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss; the learner keeps the last good state."""


class Callback:
    order = 0

    def before_fit(self, learn: Learner) -> None: ...

    def before_epoch(self, learn: Learner) -> None: ...

    def after_batch(self, learn: Learner, metrics: dict) -> None: ...

    def after_epoch(self, learn: Learner) -> None: ...

    def after_fit(self, learn: Learner) -> None: ...


class TerminateOnNaNCallback(Callback):
    """Stops at the first non-finite training loss with an error naming the step; the learner's state is
    rolled back to the one before that step (the last good state)."""

    order = -10

    def after_batch(self, learn, metrics):
        if not math.isfinite(float(metrics["loss"])):
            learn.rollback_to_good_state()
            raise NonFiniteLossError(f"loss is {float(metrics['loss'])} at step {int(metrics['step'])} "
                                     f"(epoch {learn.epoch}); the learner holds the last good state")


class _Monitor(Callback):
    def __init__(self, monitor: str = "valid_loss", comp=None, min_delta: float = 0.0):
        self.monitor, self.min_delta = monitor, min_delta
        if comp is None:
            comp = operator.lt if ("loss" in monitor or "error" in monitor) else operator.gt
        self.comp = comp
        if comp is operator.lt:
            self.min_delta = -self.min_delta

    def before_fit(self, learn):
        self.best = math.inf if self.comp is operator.lt else -math.inf
        self.improved = False

    def _current(self, learn) -> float:
        names = learn.recorder.metric_names[1:-1]  # drop epoch and time
        if self.monitor not in names:
            raise ValueError(f"cannot monitor {self.monitor!r}: the recorded values are {names}")
        return learn.recorder.values[-1][names.index(self.monitor)]

    def after_epoch(self, learn):
        value = self._current(learn)
        self.improved = self.comp(value - self.min_delta, self.best)
        if self.improved:
            self.best = value


class EarlyStoppingCallback(_Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor="valid_loss", comp=None, min_delta=0.0, patience=1):
        super().__init__(monitor, comp, min_delta)
        self.patience = patience

    def before_fit(self, learn):
        super().before_fit(learn)
        self.wait = 0

    def after_epoch(self, learn):
        super().after_epoch(learn)
        self.wait = 0 if self.improved else self.wait + 1
        if self.wait >= self.patience:
            print(f"No improvement since epoch {learn.epoch - self.wait}: early stopping")
            raise CancelFitException()


class SaveModelCallback(_Monitor):
    """Save the model whenever ``monitor`` improves (or every epoch), and load the best at the end."""

    order = 10

    def __init__(self, monitor="valid_loss", comp=None, min_delta=0.0, fname="model", every_epoch=False,
                 with_opt=False):
        super().__init__(monitor, comp, min_delta)
        self.fname, self.every_epoch, self.with_opt = fname, every_epoch, with_opt

    def after_epoch(self, learn):
        if self.every_epoch:
            learn.save(f"{self.fname}_{learn.epoch}", with_opt=self.with_opt)
            return
        super().after_epoch(learn)
        if self.improved:
            print(f"Better model found at epoch {learn.epoch} with {self.monitor} value: {self.best}.")
            learn.save(self.fname, with_opt=self.with_opt)

    def after_fit(self, learn):
        from learner_jax.checkpoint import saved_copy

        if self.every_epoch:
            return
        try:  # the newest whole copy (an interrupted save may have left only ``fname.old``)
            saved_copy(Path(learn.path, learn.model_dir, self.fname))
        except FileNotFoundError:
            return
        learn.load(self.fname, with_opt=self.with_opt)


class NormLoggerCallback(Callback):
    """Records gradient, parameter and update norms per step in ``learn.recorder`` (and optionally prints
    them every ``every`` steps): cheap, and the first thing to look at when training diverges."""

    def __init__(self, every: int | None = None):
        self.every = every

    def after_batch(self, learn, metrics):
        r = learn.recorder
        r.grad_norms.append(float(metrics["grad_norm"]))
        r.param_norms.append(float(metrics["param_norm"]))
        if self.every and int(metrics["step"]) % self.every == 0:
            print(f"step {int(metrics['step'])}: grad_norm {r.grad_norms[-1]:.4g} "
                  f"param_norm {r.param_norms[-1]:.4g} update_norm {float(metrics['update_norm']):.4g}")


class Preempted(SystemExit):
    """Raised after SIGTERM once a checkpoint is saved: the process ends without a traceback, status 143
    (128 + SIGTERM, what a scheduler expects of a terminated job)."""

    def __init__(self):
        super().__init__(128 + signal.SIGTERM)


class CheckpointCallback(Callback):
    """Save the whole training state (params, optimizer state, step, freeze stage, schedule, data position,
    RNG seed) every ``every_n_steps`` steps and/or each epoch, with orbax; resume with
    ``learn.fit_one_cycle(..., resume_from=directory)`` (or ``fit``).

    A step checkpoint due at an epoch's last batch is taken after that epoch's validation when ``every_epoch``
    (one save, not two of the same step). An on-device epoch (``device_epoch=True``) is one compiled call, so
    its checkpoints fall at epoch ends only. SIGTERM (a preempted machine) saves a checkpoint at the next step
    boundary (epoch end on device) and ends the process with status 143; rerun with ``resume_from`` to continue."""

    order = 20

    def __init__(self, directory: str | os.PathLike, every_n_steps: int | None = None, every_epoch: bool = True,
                 keep: int = 2):
        if every_n_steps is not None and (isinstance(every_n_steps, bool) or int(every_n_steps) != every_n_steps
                                          or every_n_steps < 1):
            raise ValueError(f"every_n_steps={every_n_steps!r}: give a whole number of steps >= 1, or None")
        if int(keep) < 1:
            raise ValueError(f"keep={keep!r}: at least one checkpoint must be kept")
        self.directory, self.every_n_steps, self.every_epoch, self.keep = directory, every_n_steps, every_epoch, keep
        self.store = None
        self.preempted, self._prev_handler = False, None

    def before_fit(self, learn):
        from learner_jax.checkpoint import TrainingCheckpoints

        self.store = TrainingCheckpoints(self.directory, keep=self.keep)
        latest, step = self.store.latest_step(), int(learn.state.step)
        if latest is not None and latest > step:
            raise ValueError(f"checkpoint folder {self.store.directory} holds step {latest}, beyond this run's step "
                             f"{step}: it belongs to another run. Pass resume_from={str(self.directory)!r} to "
                             "continue it, or give CheckpointCallback an empty folder")
        self.preempted = False
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            self._prev_handler = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        self.preempted = True  # acted on at the next step boundary, where the state is whole

    def _save_and_exit(self, learn) -> None:
        learn.save_training_checkpoint(self.store)
        self.store.wait()
        print(f"SIGTERM: checkpoint of step {int(learn.state.step)} saved in {self.store.directory}; rerun with "
              f"resume_from={str(self.directory)!r} to continue", file=sys.stderr, flush=True)
        raise Preempted()

    def after_batch(self, learn, metrics):
        if not learn.batch_pos_known:
            return
        if self.preempted:
            self._save_and_exit(learn)
        epoch_end = learn.batch_idx == len(learn.dls.train)
        if (self.every_n_steps and (int(metrics["step"]) + 1) % self.every_n_steps == 0
                and not (epoch_end and self.every_epoch)):
            learn.save_training_checkpoint(self.store)

    def after_epoch(self, learn):
        if self.preempted:
            self._save_and_exit(learn)
        if self.every_epoch:
            learn.save_training_checkpoint(self.store)

    def after_fit(self, learn):
        if self._prev_handler is not None:
            signal.signal(signal.SIGTERM, self._prev_handler)
            self._prev_handler = None
        if self.store is not None:
            self.store.wait()
            self.store.close()


def finite(x) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x))))
