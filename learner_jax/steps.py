"""Pure training and evaluation steps over a state pytree.

``make_train_step(spec)`` returns ``train_step(state, batch, rng) -> (state, metrics)``: a pure function a user
can ``jax.jit`` and call in their own loop. Everything that may change between fits (learning rates, beta1,
weight decay, the schedule's shape) lives in ``state.sched`` as arrays; everything that fixes the compiled
program (model graph, loss, which parameters train) lives in the static ``StepSpec``. One compile per freeze
stage and batch shape, none per learning-rate change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from learner_jax.metrics import Metric, weighted_sum
from learner_jax.model_io import ModelOutput, as_output
from learner_jax.optim import Schedule, adamw, hypers_at


@struct.dataclass
class TrainState:
    """Everything a training run carries from step to step (all arrays; checkpointable as is)."""

    step: jax.Array
    params: Any  # pure dict of parameters
    model_state: Any  # pure dict of non-parameter variables (BatchNorm statistics)
    opt_state: Any  # optax state over the trainable leaves
    carry: Any  # recurrent state across batches (None for stateless models)
    sched: Schedule


@dataclass(frozen=True, eq=False)
class StepSpec:
    """What fixes the compiled program: model graph, loss, metrics and which parameter leaves train."""

    graphdef: Any
    loss_func: Callable
    metrics: Sequence[Metric] = ()
    trainable: tuple[int, ...] = ()  # indices into the flattened params
    labels: tuple[int, ...] = ()  # layer group of each trainable leaf
    decay_mask: tuple[bool, ...] = ()  # weight decay applies to each trainable leaf?
    n_groups: int = 1
    clip: float | None = None
    stateful: bool = False
    b2: float = 0.99
    eps: float = 1e-5
    log_norms: bool = False  # gradient/parameter/update norms cost ~45% of a tiny model's step: only on demand
    extra: dict = field(default_factory=dict)
    exempt: tuple[bool, ...] | None = None  # freezing as data (optim.freeze_groups): leaves that always train
    frozen_to_model: bool = False  # freezing as data: the model gets the frozen-groups mask (frozen_backward)

    def tx(self, sched_hypers) -> optax.GradientTransformation:
        return adamw(sched_hypers, self.labels, self.decay_mask, self.n_groups, self.b2, self.eps, self.clip,
                     self.exempt)


def apply_model(graphdef, params, model_state, x, carry, key, train: bool, stateful: bool,
                frozen: jax.Array | None = None):
    """Run the module functionally: returns its ``ModelOutput`` and the updated non-parameter state.
    ``frozen``: the frozen-groups mask, passed on to a model that takes it (learner_jax.frozen_backward)."""
    model = nnx.merge(graphdef, nnx.State(params), nnx.State(model_state))
    rngs = nnx.Rngs(dropout=key)
    kw = {} if frozen is None else {"frozen": frozen}
    out = model(x, carry, train=train, rngs=rngs, **kw) if stateful else model(x, train=train, rngs=rngs, **kw)
    _, _, new_state = nnx.split(model, nnx.Param, ...)
    return as_output(out), nnx.to_pure_dict(new_state)


def split_trainable(params, trainable: Sequence[int]):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    return [leaves[i] for i in trainable], leaves, treedef


def join_trainable(train_leaves, leaves, treedef, trainable: Sequence[int]):
    leaves = list(leaves)
    for j, i in enumerate(trainable):
        leaves[i] = train_leaves[j]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def global_norm(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.float32(0.0)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def step_key(rng: jax.Array, step: jax.Array) -> jax.Array:
    """Per-step randomness (dropout) from the run's key and the global step: reproducible, no carried PRNG."""
    return jax.random.fold_in(rng, step)


def init_opt_state(spec: StepSpec, params, sched: Schedule):
    train_leaves, _, _ = split_trainable(params, spec.trainable)
    return spec.tx(hypers_at(sched, sched.first_step)).init(train_leaves)


def make_train_step(spec: StepSpec) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict]]:
    """``train_step(state, batch, rng) -> (state, metrics)`` for one batch ``(x, y, w)``."""

    def train_step(state: TrainState, batch, rng: jax.Array):
        x, y, w = batch
        hyp = hypers_at(state.sched, state.step)
        train_leaves, leaves, treedef = split_trainable(state.params, spec.trainable)
        key = step_key(rng, state.step)
        frozen = optax.tree_utils.tree_get(state.opt_state, "frozen") if spec.frozen_to_model else None

        def loss_fn(tl):
            params = join_trainable(tl, leaves, treedef, spec.trainable)
            out, new_ms = apply_model(spec.graphdef, params, state.model_state, x, state.carry, key, True,
                                      spec.stateful, frozen)
            loss_sum, n = weighted_sum(spec.loss_func(out.preds, y), w)
            loss = loss_sum / jnp.maximum(n, 1.0)
            return loss + out.aux_loss, (loss, out.carry, new_ms)

        grads, (loss, carry, new_ms) = jax.grad(loss_fn, has_aux=True)(train_leaves)
        updates, opt_state = spec.tx(hyp).update(grads, state.opt_state, train_leaves)
        new_leaves = optax.apply_updates(train_leaves, updates)
        params = join_trainable(new_leaves, leaves, treedef, spec.trainable)
        carry = jax.lax.stop_gradient(carry) if carry is not None else None
        new_state = state.replace(step=state.step + 1, params=params, model_state=new_ms, opt_state=opt_state,
                                  carry=carry)
        metrics = {"loss": loss, "lr": hyp.lr, "mom": hyp.mom}
        if spec.log_norms:
            metrics |= {"grad_norm": global_norm(grads), "param_norm": global_norm(new_leaves),
                        "update_norm": global_norm(updates)}
        return new_state, metrics

    return train_step


def make_eval_step(spec: StepSpec) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
    """``eval_step(state, batch) -> (state, stats)``: summed loss and metric statistics (no dropout, BatchNorm
    running averages). The state comes back only for its carry (stateful models continue across batches)."""

    def eval_step(state: TrainState, batch):
        x, y, w = batch
        out, _ = apply_model(spec.graphdef, state.params, state.model_state, x, state.carry,
                             jax.random.key(0), False, spec.stateful)
        loss_sum, n = weighted_sum(spec.loss_func(out.preds, y), w)
        stats = {"loss_sum": loss_sum, "loss_n": n}
        for m in spec.metrics:
            stats.update(m.stats(out.preds, y, w, loss_sum, n))
        return state.replace(carry=out.carry), stats

    return eval_step


def make_predict_step(spec: StepSpec) -> Callable:
    """``predict(params, model_state, x, carry) -> (preds, carry)`` in evaluation mode."""

    def predict(params, model_state, x, carry):
        out, _ = apply_model(spec.graphdef, params, model_state, x, carry, jax.random.key(0), False,
                             spec.stateful)
        return out.preds, out.carry

    return predict


Permute = Callable[[jax.Array, int], jax.Array]


def shuffled_batches(key: jax.Array, n: int, bs: int, n_batches: int,
                     permute: Permute = jax.random.permutation) -> jax.Array:
    """An epoch's row indices ``(n_batches, bs)``: a permutation drawn on device (``permute(key, n)``; e.g.
    ``learner_jax.shuffle.feistel_permutation``, which needs no sort), the partial tail dropped."""
    return permute(key, n)[: n_batches * bs].reshape(n_batches, bs)


def make_train_epoch(spec: StepSpec, bs: int, n_batches: int, batch_sharding=None,
                     permute: Permute = jax.random.permutation) -> Callable:
    """A whole shuffled epoch as one ``lax.scan`` over device-resident arrays (no Python loop per batch).

    ``train_epoch(state, arrays, rng, epoch_key) -> (state, stacked per-step metrics)``. The permutation is
    drawn on device; the last partial batch is dropped, as fastai's training loader does.
    """
    train_step = make_train_step(spec)

    def train_epoch(state: TrainState, arrays, rng: jax.Array, epoch_key: jax.Array):
        x, y, w = arrays
        n = jax.tree_util.tree_leaves(x)[0].shape[0]
        perm = shuffled_batches(epoch_key, n, bs, n_batches, permute)

        def body(st, idx):
            batch = jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), (x, y, w))
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return train_step(st, batch, rng)

        return jax.lax.scan(body, state, perm)

    return train_epoch


__all__ = ["ModelOutput", "StepSpec", "TrainState", "apply_model", "init_opt_state", "make_eval_step",
           "make_predict_step", "make_train_epoch", "make_train_step", "shuffled_batches"]
