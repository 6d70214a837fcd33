"""The optimizer: fastai v2's AdamW as one optax chain, with one-cycle schedules computed on device.

Hyper-parameters (per-group learning rates, Adam's beta1, weight decay) are *arrays* in the training state,
not Python constants closed over by the step, so changing them between fits never recompiles anything. The
schedule is evaluated on device from the step counter, so a whole epoch can run inside one ``lax.scan``.

fastai v2 Adam (fastai_facts §3.2): p <- p*(1 - lr*wd) (decoupled); m <- mom*m + (1-mom)*g;
v <- 0.99*v + 0.01*g^2; p <- p - lr * m/(1-mom^t) / (sqrt(v/(1-0.99^t)) + 1e-5). optax's ``scale_by_adam``
with the *current* beta1 followed by ``add_decayed_weights`` and a per-group ``-lr`` gives exactly this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

LR = float | slice | Sequence[float]


class Schedule(NamedTuple):
    """A two-phase schedule for lr (per group) and beta1, as arrays evaluated at a step on device.

    Phase 1 goes start -> mid over the first ``pct`` of ``total`` steps counted from ``first_step``, phase 2
    mid -> end. Interpolation is cosine (fastai's ``sched_cos``) or, with ``exp``, exponential (lr finder).
    A constant schedule has start == mid == end.
    """

    lr_start: jax.Array  # (n_groups,)
    lr_mid: jax.Array
    lr_end: jax.Array
    mom_start: jax.Array  # ()
    mom_mid: jax.Array
    mom_end: jax.Array
    pct: jax.Array
    total: jax.Array
    first_step: jax.Array
    exp: jax.Array  # bool: exponential interpolation
    wd: jax.Array


class Hypers(NamedTuple):
    """The hyper-parameter values one step uses."""

    lr: jax.Array  # (n_groups,)
    mom: jax.Array
    wd: jax.Array


def _f32(x) -> jax.Array:
    # cast on the host and device_put: jnp.asarray compiles a small program per shape and dtype (a cold process
    # paid several for the schedule's fields); device_put of a NumPy array compiles nothing
    return jax.device_put(np.asarray(x, np.float32))


def make_schedule(lr_start, lr_mid, lr_end, mom_start, mom_mid, mom_end, pct: float, total: int,
                  first_step: int, wd: float, exp: bool = False) -> Schedule:
    return Schedule(_f32(lr_start), _f32(lr_mid), _f32(lr_end), _f32(mom_start), _f32(mom_mid), _f32(mom_end),
                      _f32(pct), _f32(max(int(total), 1)), jax.device_put(np.int32(first_step)),
                    jax.device_put(np.bool_(exp)), _f32(wd))


def one_cycle(lrs: np.ndarray, moms: tuple[float, float, float], total: int, first_step: int, wd: float,
              pct_start: float = 0.25, div: float = 25.0, div_final: float = 1e5) -> Schedule:
    """fastai v2 ``fit_one_cycle``: lr cos lr/div -> lr -> lr/div_final, beta1 cos moms[0] -> [1] -> [2]."""
    lrs = np.asarray(lrs, np.float32)
    return make_schedule(lrs / div, lrs, lrs / div_final, *moms, pct=pct_start, total=total,
                         first_step=first_step, wd=wd)


def constant(lrs: np.ndarray, mom: float, first_step: int, wd: float) -> Schedule:
    """Plain ``fit``: constant lr; beta1 stays at ``mom`` (fastai: 0.9, plain fit schedules no momentum)."""
    return make_schedule(lrs, lrs, lrs, mom, mom, mom, pct=1.0, total=1, first_step=first_step, wd=wd)


def exponential(start: np.ndarray, end: np.ndarray, num_it: int, mom: float, first_step: int,
                wd: float) -> Schedule:
    """The lr finder's schedule: lr_i = start * (end/start)^(i/num_it)."""
    return make_schedule(start, end, end, mom, mom, mom, pct=1.0, total=num_it, first_step=first_step, wd=wd,
                         exp=True)


def _interp(start, end, p, exp):
    # fastai's start + (1 + cos(pi*(1-p))) * (end-start)/2, rewritten to stay exact in float32 near both ends
    cos = end + (start - end) * (1 + jnp.cos(jnp.pi * p)) / 2
    safe_start = jnp.where(start > 0, start, 1.0)
    expo = safe_start * (jnp.where(start > 0, end, 1.0) / safe_start) ** p
    return jnp.where(exp, expo, cos)


def hypers_at(s: Schedule, step: jax.Array) -> Hypers:
    """The schedule's values before the ``step``-th update (fastai evaluates at pos = done/total)."""
    pos = (jnp.asarray(step, jnp.float32) - s.first_step.astype(jnp.float32)) / s.total
    pos = jnp.clip(pos, 0.0, 1.0)
    in_first = pos < s.pct
    p1 = pos / jnp.maximum(s.pct, 1e-12)
    p2 = (pos - s.pct) / jnp.maximum(1.0 - s.pct, 1e-12)
    lr = jnp.where(in_first, _interp(s.lr_start, s.lr_mid, p1, s.exp), _interp(s.lr_mid, s.lr_end, p2, False))
    mom = jnp.where(in_first, _interp(s.mom_start, s.mom_mid, p1, False), _interp(s.mom_mid, s.mom_end, p2, False))
    return Hypers(lr, mom, s.wd)


def expand_lr(lr: LR, n_groups: int) -> np.ndarray:
    """fastai's lr expansion: float -> same for all groups; slice(hi) -> hi/10 for all but the last group;
    slice(lo, hi) -> geometric spacing lo..hi (``even_mults``); a sequence -> one per group."""
    if isinstance(lr, slice):
        if lr.step is not None:
            raise ValueError("a learning-rate slice takes no step")
        if lr.start is None:
            if lr.stop is None:
                raise ValueError("slice() needs at least an upper learning rate")
            return np.array([lr.stop / 10] * (n_groups - 1) + [lr.stop], np.float64)
        if n_groups == 1:
            return np.array([lr.stop], np.float64)
        i = np.arange(n_groups)
        return lr.start * (lr.stop / lr.start) ** (i / (n_groups - 1))
    if isinstance(lr, (list, tuple, np.ndarray)):
        if len(lr) != n_groups:
            raise ValueError(f"got {len(lr)} learning rates for {n_groups} layer groups")
        return np.asarray(lr, np.float64)
    return np.full(n_groups, float(lr))


def expand_moms(moms: Sequence[float]) -> tuple[float, float, float]:
    """A 2-tuple (as in the lesson's ``moms=(0.8, 0.7)``) means (0.8, 0.7, 0.8)."""
    moms = tuple(float(m) for m in moms)
    if len(moms) == 2:
        return moms[0], moms[1], moms[0]
    if len(moms) != 3:
        raise ValueError(f"moms must have 2 or 3 values, got {moms}")
    return moms


class FrozenGroupsState(NamedTuple):
    """Which layer groups are frozen, as data: (n_groups,) float, 1.0 for a frozen group."""

    frozen: jax.Array


def freeze_groups(labels: Sequence[int], exempt: Sequence[bool], n_groups: int) -> optax.GradientTransformation:
    """Zero the updates of frozen layer groups, the mask being an array in the optimizer state (as the learning
    rates are arrays in the schedule): ``freeze_to`` then changes data, not the compiled step. ``exempt`` leaves
    (norm layers under ``train_bn``) always train. Starts with nothing frozen."""

    def init(params):
        return FrozenGroupsState(jnp.zeros((n_groups,), jnp.float32))

    def update(updates, state, params=None):
        keep = 1.0 - state.frozen
        return [u if ex else u * keep[g] for u, g, ex in zip(updates, labels, exempt)], state

    return optax.GradientTransformation(init, update)


def adamw(hypers: Hypers, labels: Sequence[int], decay_mask: Sequence[bool], n_groups: int,
          b2: float = 0.99, eps: float = 1e-5, clip: float | None = None,
          exempt: Sequence[bool] | None = None) -> optax.GradientTransformation:
    """fastai v2 AdamW over a *list* of trainable leaves; ``labels[i]`` is leaf i's layer group.

    Built inside the step from traced ``hypers``: its state structure never depends on their values, so new
    learning rates reuse the compiled step. Per-group learning rates go through ``optax.partition`` labels.
    With ``exempt`` (one flag per leaf), freezing is data too: :func:`freeze_groups` ends the chain.
    """
    # only groups with trainable leaves: optax.partition wants a transform for each label present
    per_group = {g: optax.scale_by_learning_rate(hypers.lr[g]) for g in sorted(set(labels))}
    parts = [
        optax.scale_by_adam(b1=hypers.mom, b2=b2, eps=eps),
        optax.add_decayed_weights(hypers.wd, mask=list(decay_mask)),
        optax.partition(per_group, list(labels)),
    ]
    if clip is not None:
        parts.insert(0, optax.clip_by_global_norm(clip))
    if exempt is not None:
        parts.append(freeze_groups(labels, exempt, n_groups))
    return optax.chain(*parts)
