"""The Learner: a thin, fastai-named layer over the pure steps in ``steps.py``.

It holds the model graph and the state pytrees, builds one jitted step per freeze stage, and runs fastai's
loop: schedules, per-group learning rates, freezing, callbacks, metrics, epoch table, checkpoints.
"""

from __future__ import annotations

import collections
import math
import operator
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from learner_jax import optim
from learner_jax.callbacks import Callback, CancelFitException, NormLoggerCallback, TerminateOnNaNCallback
from learner_jax.checkpoint import (
    CheckpointMismatchError,
    TrainingCheckpoints,
    load_tree,
    read_saved_meta,
    save_tree,
    saved_copy,
)
from learner_jax.data import DataLoaders, Loader, prefetch
from learner_jax.distributed import is_main_process
from learner_jax.figures import show_table
from learner_jax.metrics import Metric, as_metric, check_metrics_for_loss
from learner_jax.precision import compute_dtype_of, set_compute_dtype
from learner_jax.progress import EpochTable, batch_bar, epoch_bar, step_bar
from learner_jax.recorder import Recorder
from learner_jax.sharding import (
    batch_sharding,
    check_batch_size,
    constrain,
    data_mesh,
    place,
    process_rows,
    replicate,
    replicated,
    shard_batch,
    tables_to_shard,
    to_host,
)
from learner_jax.steps import (
    StepSpec,
    TrainState,
    init_opt_state,
    make_eval_step,
    make_predict_step,
    make_train_epoch,
    make_train_step,
)

# one small compile instead of a few dozen eagerly dispatched ops (each compiled on first use: ~0.5 s in all)
_init_opt_state = jax.jit(init_opt_state, static_argnums=0)
WHOLE_SET_ROWS = 1 << 16  # validation sets up to this many rows (and input bytes) are evaluated as one batch
WHOLE_SET_BYTES = 16 << 20
NORM_TYPES = (nnx.BatchNorm, nnx.LayerNorm, nnx.GroupNorm, nnx.RMSNorm)


def param_paths(params: Any) -> list[tuple]:
    """Each parameter leaf's path as a tuple of keys, e.g. ``('layers', 0, 'kernel')``."""
    return [tuple(getattr(k, "key", getattr(k, "idx", k)) for k in p)
            for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def norm_module_paths(model: nnx.Module) -> list[tuple]:
    return [tuple(p) for p, m in nnx.iter_graph(model) if isinstance(m, NORM_TYPES)]


def _is_under(path: tuple, prefixes: Sequence[tuple]) -> bool:
    return any(path[:len(p)] == p for p in prefixes)


def valley(lrs: np.ndarray, losses: np.ndarray, num_it: int) -> tuple[float, tuple[float, float]]:
    """fastai's default suggestion: a point about halfway along the longest decreasing subsequence."""
    n = len(losses)
    max_start = max_end = 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end, max_start = i, i - lds[i]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), (float(lrs[idx]), float(losses[idx]))


def minimum(lrs: np.ndarray, losses: np.ndarray, num_it: int) -> tuple[float, tuple[float, float]]:
    """A tenth of the learning rate at the minimum loss."""
    i = int(np.argmin(losses))
    return float(lrs[i]) / 10, (float(lrs[i]), float(losses[i]))


def steep(lrs: np.ndarray, losses: np.ndarray, num_it: int) -> tuple[float, tuple[float, float]]:
    """The learning rate where the loss falls fastest against log(lr)."""
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    i = int(np.argmin(grads))
    return float(lrs[i]), (float(lrs[i]), float(losses[i]))


class Learner:
    """Model + data + loss + optimizer, with fastai's training API.

    ``splitter(path) -> group index`` assigns parameters to layer groups (discriminative learning rates,
    freezing); ``init_carry(bs)`` builds the recurrent state of stateful models; ``device_epoch=True`` runs
    each training epoch as one ``lax.scan`` on device when the training loader exposes ``.arrays``.
    ``freeze_as_data`` (class or instance attribute): freezing zeroes frozen groups' updates through a mask in the
    optimizer state instead of compiling a step per freeze stage; a model with ``takes_frozen_groups`` gets the mask
    and skips frozen layers' backward at run time (learner_jax.frozen_backward), others compute it for nothing.
    ``mesh`` (default: every device of every process) splits each batch by rows: loaders' ``bs`` is global.
    ``shard_tables`` splits embedding tables (and their Adam moments) by rows over the mesh: True, False, or
    None (default) for only when the tables would take more than half a device's memory.
    """

    freeze_as_data: bool = False

    def __init__(self, dls: DataLoaders, model: nnx.Module, loss_func: Callable, metrics=None,
                 splitter: Callable[[tuple], int] | None = None, lr: float = 1e-3, wd: float = 0.01,
                 moms: Sequence[float] = (0.95, 0.85, 0.95), clip: float | None = None,
                 cbs: Sequence[Callback] | None = None, path: str | Path = ".", model_dir: str = "models",
                 seed: int = 0, init_carry: Callable[[int], Any] | None = None, device_epoch: bool = False,
                 train_bn: bool = True, mesh=None, progress: bool = True, shard_tables: bool | None = None):
        self.dls, self.loss_func = dls, loss_func
        self.metrics: list[Metric] = [as_metric(m) for m in (metrics if isinstance(metrics, (list, tuple))
                                                            else ([metrics] if metrics is not None else []))]
        check_metrics_for_loss(self.metrics, loss_func)
        self.lr, self.wd, self.moms, self.clip = lr, wd, optim.expand_moms(moms), clip
        self.cbs = list(cbs or [])
        self.path, self.model_dir, self.seed = Path(path), model_dir, int(seed)
        self.init_carry, self.device_epoch, self.train_bn, self.progress = init_carry, device_epoch, train_bn, progress
        self.mesh = mesh if mesh is not None else data_mesh()
        for dl in dls.loaders:
            check_batch_size(dl.bs, self.mesh)
            if jax.process_count() > 1 and hasattr(dl, "rows"):  # a loader that can read only this process's rows
                dl.rows = process_rows(self.mesh, dl.bs)

        # a model that skips frozen layers' backward when told the frozen groups (learner_jax.frozen_backward)
        self.takes_frozen_groups = bool(getattr(model, "takes_frozen_groups", False))
        self.graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        params, model_state = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)
        self.table_shapes = tables_to_shard(params, self.mesh, shard_tables)
        paths = param_paths(params)
        self.groups = [int(splitter(p)) if splitter else 0 for p in paths]
        self.n_groups = max(self.groups) + 1 if self.groups else 1
        missing = sorted(set(range(self.n_groups)) - set(self.groups))
        if missing:
            raise ValueError(f"splitter left layer groups {missing} without parameters")
        norms = norm_module_paths(model)
        self.is_norm = [_is_under(p, norms) for p in paths]
        self.decay = [not (n or "bias" in str(p[-1]).lower()) for p, n in zip(paths, self.is_norm)]
        self.param_paths = paths
        self.n_frozen = 0
        key = jax.random.key(self.seed)
        self.rng, self.data_rng = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
        self.recorder = Recorder(folder=lambda: self.path)
        self.n_traces: collections.Counter = collections.Counter()
        self._jits: dict = {}
        self.log_norms = False  # set while a NormLoggerCallback is active (a separately compiled step)
        self.epoch, self.epochs_done, self.batch_idx, self.batch_pos_known = 0, 0, 0, True
        self._good_state = None
        sched = optim.constant(np.full(self.n_groups, lr), 0.9, 0, wd)
        spec = self.spec
        carry = self._fresh_carry(dls.train.bs)
        params = self._place(params)
        self.state = TrainState(step=replicate(jnp.asarray(0, jnp.int32), self.mesh), params=params,
                                model_state=replicate(model_state, self.mesh),
                                opt_state=self._place(_init_opt_state(spec, params, sched)), carry=carry,
                                sched=replicate(sched, self.mesh))

    def __repr__(self) -> str:
        n_params = sum(int(np.prod(np.shape(a))) for a in jax.tree_util.tree_leaves(self.state.params))
        loss = getattr(self.loss_func, "__name__", type(self.loss_func).__name__)
        frozen = f", frozen to group {self.n_frozen}" if self.n_frozen else ""
        return (f"{type(self).__name__}({type(self.model).__name__} with {n_params:,} parameters in {self.n_groups} "
                f"layer group{'s' if self.n_groups != 1 else ''}{frozen}; loss {loss}, metrics "
                f"{[m.name for m in self.metrics]}; {self.epochs_done} epochs trained; path {str(self.path)!r})")

    # ---------------------------------------------------------------- model access
    @property
    def params(self) -> Any:
        return self.state.params

    @property
    def model(self) -> nnx.Module:
        """The module with the current weights (a fresh object each call; for inference and inspection)."""
        return nnx.merge(self.graphdef, nnx.State(self.state.params), nnx.State(self.state.model_state))

    @property
    def spec(self) -> StepSpec:
        if self.freeze_as_data:  # every leaf gets a gradient; the optimizer state's mask zeroes frozen updates
            trainable = tuple(range(len(self.groups)))
            exempt = tuple(self.train_bn and n for n in self.is_norm)
        else:
            trainable = tuple(i for i, g in enumerate(self.groups)
                              if g >= self.n_frozen or (self.train_bn and self.is_norm[i]))
            exempt = None
        return StepSpec(self.graphdef, self.loss_func, tuple(self.metrics), trainable,
                        tuple(self.groups[i] for i in trainable), tuple(self.decay[i] for i in trainable),
                        self.n_groups, self.clip, self.init_carry is not None, log_norms=self.log_norms,
                        exempt=exempt, frozen_to_model=self.freeze_as_data and self.takes_frozen_groups)

    def _jit(self, kind: str, *extra) -> Callable:
        """Jitted steps, cached per freeze stage; ``n_traces`` counts compilations (tests use it)."""
        stage = -1 if self.freeze_as_data else self.n_frozen  # freezing as data: one program for all stages
        key = (kind, *extra) if kind in ("eval", "predict") else (kind, stage, self.log_norms, *extra)
        key = (key[0], str(self.compute_dtype), *key[1:])  # the graph carries the compute dtype: programs per dtype
        if key not in self._jits:
            spec = self.spec
            fn = {"train": lambda: make_train_step(spec), "eval": lambda: make_eval_step(spec),
                  "predict": lambda: make_predict_step(spec),
                  "epoch": lambda: self._make_train_epoch(spec, *extra)}[kind]()

            def counted(*args, _fn=fn, _kind=kind):
                self.n_traces[_kind] += 1
                out = _fn(*args)
                if _kind in ("train", "epoch") and self.table_shapes:  # updated tables stay split over the mesh
                    st = out[0]
                    out = (st.replace(params=self._constrain(st.params), opt_state=self._constrain(st.opt_state)),
                           *out[1:])
                return out

            counted.__name__ = f"{kind}_step"  # names the program in compile logs
            self._jits[key] = jax.jit(counted)
        return self._jits[key]

    def _epoch_variant(self) -> tuple:
        """Extra hashable arguments of ``_make_train_epoch`` (part of the compiled epoch's cache key)."""
        return ()

    def _make_train_epoch(self, spec: StepSpec, bs: int, n_batches: int, *variant, **kwargs) -> Callable:
        """The whole-epoch function (``make_train_epoch``'s contract); applications may specialise it."""
        return make_train_epoch(spec, bs, n_batches, batch_sharding=self._batch_sharding(), **kwargs)

    def _batch_sharding(self):
        from learner_jax.sharding import batch_sharding

        return batch_sharding(self.mesh) if self.mesh.devices.size > 1 else None

    def _shard(self, batch, bs: int | None = None):
        """A host batch on the mesh; ``bs`` (the loader's global batch size) tells multi-process runs whether the
        loader gave the global batch or only this process's rows."""
        return shard_batch(batch, self.mesh, bs)

    def _place(self, tree):
        """Parameters or optimizer state on the mesh: sharded tables split by rows, the rest replicated."""
        return place(tree, self.mesh, self.table_shapes)

    def _constrain(self, tree):
        return constrain(tree, self.mesh, self.table_shapes)

    def _fresh_carry(self, bs: int):
        """The recurrent state for ``bs`` streams, split by rows as the batch is: each device carries the
        hidden state of exactly the streams it reads (built on the mesh, so it works across processes too)."""
        if not self.init_carry:
            return None
        key = ("carry", bs)
        if key not in self._jits:
            self._jits[key] = jax.jit(self.init_carry, static_argnums=0, out_shardings=batch_sharding(self.mesh))
        return self._jits[key](bs)

    # ---------------------------------------------------------------- precision
    @property
    def compute_dtype(self) -> Any:
        """None (float32) or ``jnp.bfloat16``: the dtype of the model's matmul inputs."""
        cached = getattr(self, "_dtype_of", None)
        if cached is None or cached[0] is not self.graphdef:  # read from the graph once per graph
            self._dtype_of = (self.graphdef, compute_dtype_of(self.model))
        return self._dtype_of[1]

    def to_bf16(self) -> Learner:
        """Mixed precision (fastai's ``to_fp16`` idea, in bfloat16): matmul inputs in bfloat16, accumulated in
        float32; weights, optimizer state, cell state, loss, softmax and BatchNorm statistics stay float32, so
        checkpoints are the same in both modes and no loss scaling is needed. Recompiles once; returns self."""
        return self._set_compute_dtype(jnp.bfloat16)

    def to_fp32(self) -> Learner:
        """Back to float32 matmuls (programs compiled before in float32 are reused); returns self."""
        return self._set_compute_dtype(None)

    def _set_compute_dtype(self, dtype) -> Learner:
        model = set_compute_dtype(self.model, dtype)
        self.graphdef = nnx.split(model, nnx.Param, ...)[0]
        return self

    # ---------------------------------------------------------------- freezing
    def freeze_to(self, n: int) -> None:
        """Freeze layer groups ``[:n]`` (norm layers stay trainable); clears the optimizer state as fastai."""
        n_frozen = n if n >= 0 else self.n_groups + n
        self.n_frozen = int(min(max(n_frozen, 0), self.n_groups))
        if self.freeze_as_data:
            self.state = self.state.replace(opt_state=self._place(self._fresh_opt_state()))
            return
        self.state = self.state.replace(opt_state=self._place(
            _init_opt_state(self.spec, self.state.params, self.state.sched)))

    def _fresh_opt_state(self):
        """A fresh optimizer state whose frozen-groups mask says ``n_frozen`` (one program for every stage)."""
        key = ("opt_init", self.log_norms)
        if key not in self._jits:
            spec = self.spec

            def fresh(params, sched, frozen):
                return optax.tree_utils.tree_set(init_opt_state(spec, params, sched), frozen=frozen)

            self._jits[key] = jax.jit(fresh)
        frozen = jnp.asarray(np.arange(self.n_groups) < self.n_frozen, jnp.float32)
        return self._jits[key](self.state.params, self.state.sched, frozen)

    def freeze(self) -> None:
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        self.freeze_to(0)

    # ---------------------------------------------------------------- fitting
    def fit(self, n_epoch: int, lr: optim.LR | None = None, wd: float | None = None, cbs=None,
            resume_from: str | Path | None = None) -> None:
        """Train ``n_epoch`` epochs at a constant learning rate (beta1 stays 0.9, as fastai's plain fit)."""
        lrs = optim.expand_lr(self.lr if lr is None else lr, self.n_groups)
        wd = self.wd if wd is None else wd

        def sched(total, first):
            return optim.constant(lrs, 0.9, first, wd)

        self._fit(n_epoch, sched, cbs, resume_from, ("fit", n_epoch, list(lrs), wd))

    def fit_one_cycle(self, n_epoch: int, lr_max: optim.LR | None = None, div: float = 25.0,
                      div_final: float = 1e5, pct_start: float = 0.25, wd: float | None = None,
                      moms: Sequence[float] | None = None, cbs=None, resume_from: str | Path | None = None) -> None:
        """fastai v2's one-cycle policy for the learning rate and Adam's beta1."""
        lrs = optim.expand_lr(self.lr if lr_max is None else lr_max, self.n_groups)
        moms3 = self.moms if moms is None else optim.expand_moms(moms)
        wd = self.wd if wd is None else wd

        def sched(total, first):
            return optim.one_cycle(lrs, moms3, total, first, wd, pct_start, div, div_final)

        self._fit(n_epoch, sched, cbs, resume_from,
                  ("one_cycle", n_epoch, list(lrs), moms3, wd, pct_start, div, div_final))

    def _callbacks(self, cbs) -> list[Callback]:
        all_cbs = self.cbs + list(cbs or [])
        if not any(isinstance(c, TerminateOnNaNCallback) for c in all_cbs):
            all_cbs.append(TerminateOnNaNCallback())
        return sorted(all_cbs, key=lambda c: c.order)

    def _metric_names(self) -> list[str]:
        return ["epoch", "train_loss", "valid_loss", *[m.name for m in self.metrics], "time"]

    def _use_device_epoch(self) -> bool:
        train = self.dls.train
        if not (self.device_epoch and self.init_carry is None and hasattr(train, "arrays")):
            return False
        # a partial batch (fewer rows than bs * batches, e.g. a training set smaller than bs) goes through the
        # per-batch loop, which pads it with weight-0 rows; the on-device epoch takes full batches only
        return len(train.arrays[1]) >= len(train) * train.bs

    def _fit(self, n_epoch: int, make_sched, cbs, resume_from, descriptor) -> None:
        train = self.dls.train
        n_batches = len(train)
        check_fit_args(n_epoch, descriptor)
        if n_batches == 0:
            raise ValueError("the training loader yields no batches (fewer rows than bs with drop_last?)")
        cbs = self._active_cbs = self._callbacks(cbs)
        self.log_norms = any(isinstance(c, NormLoggerCallback) for c in cbs)
        self.recorder.reset(self._metric_names())
        self.state = self.state.replace(sched=replicate(make_sched(n_epoch * n_batches, int(self.state.step)),
                                                        self.mesh))
        self._fit_descriptor = [str(d) for d in descriptor]
        start_epoch, start_batch = 0, 0
        if resume_from is not None:
            start_epoch, start_batch = self._resume(resume_from)
        self.n_epoch = n_epoch
        table = EpochTable(self.recorder.metric_names, enabled=self.progress and is_main_process())
        for cb in cbs:
            cb.before_fit(self)
        try:
            for epoch in epoch_bar(range(start_epoch, n_epoch), self.progress):
                self.epoch = epoch
                t0 = time.perf_counter()
                for cb in cbs:
                    cb.before_epoch(self)
                if self._use_device_epoch() and start_batch == 0:
                    self._train_epoch_on_device(cbs)
                else:
                    self._train_epoch_loop(cbs, start_batch)
                start_batch = 0
                self.epochs_done += 1
                self.batch_idx = 0
                valid = self.validate()
                self.recorder.values.append([self.recorder.smooth_loss, *valid])
                table.row(epoch, self.recorder.values[-1], time.perf_counter() - t0)
                for cb in cbs:
                    cb.after_epoch(self)
        except CancelFitException:
            pass
        finally:
            for cb in cbs:
                cb.after_fit(self)

    def _after_step(self, cbs, host: dict) -> None:
        self.recorder.add_step(host["loss"], host["lr"], host["mom"])
        for cb in cbs:
            cb.after_batch(self, host)

    def _train_epoch_loop(self, cbs, start_batch: int) -> None:
        train = self.dls.train
        step_fn = self._jit("train")
        if start_batch == 0 and self.init_carry:
            self.state = self.state.replace(carry=self._fresh_carry(train.bs))
        self.batch_pos_known = True
        batches = prefetch(train.batches(self.epochs_done, start_batch), size=2, put=lambda b: self._shard(b, train.bs))
        step = int(self.state.step)  # tracked on the host: reading it from the state each step would sync
        bar = batch_bar(batches, len(train) - start_batch, self.progress and is_main_process())
        for b, batch in enumerate(bar, start=start_batch):
            self._good_state = self.state
            self.state, metrics = step_fn(self.state, batch, self.rng)
            host = jax.device_get(metrics)
            host["step"] = step
            step += 1
            self.batch_idx = b + 1
            self._after_step(cbs, host)

    def _train_epoch_on_device(self, cbs) -> None:
        train = self.dls.train
        n_batches = len(train)
        key = ("arrays", id(train))
        if getattr(self, "_device_arrays_key", None) != key:
            self._device_arrays = jax.device_put(train.arrays, replicated(self.mesh))
            self._device_arrays_key = key
        epoch_fn = self._jit("epoch", train.bs, n_batches, *self._epoch_variant())
        self._good_state = self.state
        first = int(self.state.step)
        self.batch_pos_known = False
        self.state, metrics = epoch_fn(self.state, self._device_arrays, self.rng,
                                       jax.random.fold_in(self.data_rng, self.epochs_done))
        host = jax.device_get(metrics)
        # callbacks that look at single batches get them one by one; the NaN guard only needs a finite epoch
        per_batch = [cb for cb in cbs if type(cb).after_batch is not Callback.after_batch
                     and not isinstance(cb, TerminateOnNaNCallback)]
        if per_batch or not np.all(np.isfinite(host["loss"])):
            for i in range(n_batches):
                self.batch_idx = i + 1
                self.batch_pos_known = i == n_batches - 1  # the state is the epoch's end state
                self._after_step(cbs, {k: v[i] for k, v in host.items()} | {"step": first + i})
        else:  # nobody looks at single batches: record the epoch in one go
            self.recorder.add_steps(host["loss"], host["lr"], host["mom"])
            self.batch_idx = n_batches
        self.batch_pos_known = True

    def rollback_to_good_state(self) -> None:
        """Return to the state before the last step (or, after an on-device epoch, before that epoch)."""
        if self._good_state is not None:
            self.state = self._good_state

    # ---------------------------------------------------------------- evaluation
    def validate(self, dl: Loader | None = None) -> list[float]:
        """``[valid_loss, *metrics]`` over a loader (default: the validation set)."""
        dl = self.dls.valid if dl is None else dl
        eval_fn = self._jit("eval")
        # without the optimizer state: its structure changes with each freeze stage, which recompiled this step
        state = self.state.replace(carry=self._fresh_carry(dl.bs), opt_state=None)
        acc = None
        whole = self._whole_set(dl)
        batches = [whole] if whole is not None else batch_bar(
            prefetch(dl.batches(0), size=2, put=lambda b: self._shard(b, dl.bs)), len(dl), self.progress,
            desc="valid")
        for batch in batches:
            state, stats = eval_fn(state, batch)
            acc = stats if acc is None else jax.tree_util.tree_map(operator.add, acc, stats)
        if acc is None:
            return [float("nan")] * (1 + len(self.metrics))
        host = {k: float(v) for k, v in jax.device_get(acc).items()}
        loss = host["loss_sum"] / max(host["loss_n"], 1e-12)
        return [loss, *[m.value(host) for m in self.metrics]]

    def _whole_set(self, dl: Loader):
        """A small in-memory validation set as one device-resident batch (kept across epochs): one call instead
        of a Python loop over batches (a tenth of a compiled collaborative-filtering epoch). Loss and metrics
        are sums over rows, so the batch size changes nothing but speed. None when it does not apply."""
        arrays = getattr(dl, "arrays", None)
        if arrays is None or self.init_carry is not None or self.mesh.devices.size != 1:
            return None
        key = (id(dl), len(arrays[1]), WHOLE_SET_ROWS, WHOLE_SET_BYTES)
        if getattr(self, "_whole_key", None) != key:  # decided (and copied to the device) once per loader
            n = len(arrays[1])
            x_bytes = sum(np.asarray(a).nbytes for a in jax.tree_util.tree_leaves(arrays[0]))
            fits = 0 < n <= WHOLE_SET_ROWS and x_bytes <= WHOLE_SET_BYTES
            self._whole_batch, self._whole_key = (jax.device_put(arrays) if fits else None), key
        return self._whole_batch

    def predict_batch(self, x: Any, carry: Any = None) -> Any:
        """Raw model outputs for one batch of inputs, in evaluation mode (jitted)."""
        preds, _ = self._jit("predict")(self.state.params, self.state.model_state, x, carry)
        return preds

    def get_preds(self, dl: Loader | None = None, with_input: bool = False, with_decoded: bool = False,
                  act: Callable | None = None, ds_idx: int = 1):
        """Predictions (loss activation applied) and targets over a loader, padding rows removed, as NumPy.
        Returns ``(preds, targs)``, plus decoded predictions and/or inputs when asked, in fastai's order
        ``(inputs, preds, targs, decoded)``."""
        dl = self.dls.loaders[ds_idx] if dl is None else dl
        predict = self._jit("predict")
        act = act or getattr(self.loss_func, "activation", lambda p: p)
        carry = self._fresh_carry(dl.bs)
        inputs, preds, targs = [], [], []
        for x, y, w in dl.batches(0):
            keep = np.asarray(w) > 0
            p, carry = predict(self.state.params, self.state.model_state, self._shard(x, dl.bs), carry)
            preds.append(to_host(act(p))[keep])
            targs.append(np.asarray(y)[keep])
            if with_input:
                inputs.append(jax.tree_util.tree_map(lambda a, k=keep: np.asarray(a)[k], x))
        cat = np.concatenate
        out = [cat(preds), cat(targs)] if preds else [np.zeros((0,)), np.zeros((0,))]
        if with_decoded:
            out.append(np.asarray(getattr(self.loss_func, "decodes", lambda p: p)(out[0])))
        if with_input:
            out.insert(0, jax.tree_util.tree_map(lambda *a: cat(a), *inputs) if inputs else None)
        return tuple(out)

    def show_results(self, max_n: int = 9):
        """A table of targets and predictions for the first validation rows."""
        import pandas as pd

        preds, targs, dec = self.get_preds(with_decoded=True)
        n = min(max_n, len(targs))
        df = pd.DataFrame({"target": list(targs[:n]), "prediction": list(np.asarray(dec)[:n])})
        return show_table(df)  # returned (a notebook displays it); printed outside IPython

    # ---------------------------------------------------------------- export
    def export(self, fname: str | Path = "export.zip") -> Path:
        """fastai's ``export``: model settings, weights and preprocessing in one code-free file under ``path``
        (``learner_jax.export``); ``load_learner(path)`` rebuilds the learner for inference."""
        from learner_jax.export import export_learner

        return export_learner(self, fname)

    # ---------------------------------------------------------------- lr finder
    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
                show_plot: bool = True, suggest_funcs=(valley,)):
        """fastai's LR range test: exponential lr from ``start_lr`` to ``end_lr`` over ``num_it`` steps,
        stopping when the smoothed loss exceeds 4x its best; weights and optimizer state are restored."""
        num_it = max(int(num_it), 6)
        saved, saved_epochs = self.state, self.epochs_done
        self.recorder.reset(self._metric_names())
        start = optim.expand_lr(start_lr, self.n_groups)
        end = optim.expand_lr(end_lr, self.n_groups)
        self.state = self.state.replace(sched=replicate(
            optim.exponential(start, end, num_it, 0.9, int(self.state.step), self.wd), self.mesh))
        step_fn = self._jit("train")
        best, it, train = math.inf, 0, self.dls.train
        bar = step_bar(num_it, self.progress, desc="lr_find")
        try:
            while it < num_it:
                if self.init_carry:
                    self.state = self.state.replace(carry=self._fresh_carry(train.bs))
                for batch in train.batches(self.epochs_done):
                    self.state, m = step_fn(self.state, self._shard(batch, train.bs), self.rng)
                    host = jax.device_get(m)
                    smooth = self.recorder.add_step(host["loss"], host["lr"], host["mom"])
                    it += 1
                    bar.update(1)
                    best = min(best, smooth)
                    if (stop_div and (smooth > 4 * best or not math.isfinite(smooth))) or it >= num_it:
                        raise CancelFitException()
                self.epochs_done += 1
        except CancelFitException:
            pass
        finally:
            self.state, self.epochs_done = saved, saved_epochs
            bar.close()
        lrs = self.recorder._last_group_lrs()[num_it // 10:-5]
        losses = np.asarray(self.recorder.losses, np.float64)[num_it // 10:-5]
        bad = np.flatnonzero(~np.isfinite(losses))
        if len(bad):
            lrs, losses = lrs[:bad[0]], losses[:bad[0]]
        if suggest_funcs is None or len(losses) < 2:
            if show_plot:
                self.recorder.plot_lr_find()
            return None
        names = [f.__name__ for f in suggest_funcs]
        results = [f(lrs, losses, num_it) for f in suggest_funcs]
        if show_plot:
            self.recorder.plot_lr_find(suggestions={n: r[0] for n, r in zip(names, results)})
        return collections.namedtuple("SuggestedLRs", names)(*[r[0] for r in results])

    # ---------------------------------------------------------------- persistence
    def _model_path(self, name: str) -> Path:
        return self.path / self.model_dir / name

    def save(self, name: str, with_opt: bool = True) -> Path:
        """Save weights (and optimizer state) to ``path/model_dir/name`` atomically (orbax)."""
        tree = {"params": self.state.params, "model_state": self.state.model_state}
        if with_opt:
            tree["opt_state"] = self.state.opt_state
        return save_tree(self._model_path(name), tree, {"with_opt": with_opt, "n_frozen": self.n_frozen})

    def load(self, name: str, with_opt: bool = True) -> Learner:
        """Load what ``save`` wrote; the optimizer state too when saved at the same freeze stage. After an
        interrupted save the newest complete copy is loaded (its own ``meta.json``)."""
        path = saved_copy(self._model_path(name))
        meta = read_saved_meta(path)
        use_opt = with_opt and meta.get("with_opt", False) and meta.get("n_frozen") == self.n_frozen
        template = {"params": self.state.params, "model_state": self.state.model_state}
        if meta.get("with_opt", False):
            template["opt_state"] = (self.state.opt_state if meta.get("n_frozen") == self.n_frozen else
                                     init_opt_state(self._spec_for(meta["n_frozen"]), self.state.params,
                                                    self.state.sched))
        tree, _ = load_tree(path, template)
        self.state = self.state.replace(params=self._place(tree["params"]),
                                        model_state=replicate(tree["model_state"], self.mesh))
        if use_opt:
            self.state = self.state.replace(opt_state=self._place(tree["opt_state"]))
        return self

    def _spec_for(self, n_frozen: int) -> StepSpec:
        keep, self.n_frozen = self.n_frozen, n_frozen
        try:
            return self.spec
        finally:
            self.n_frozen = keep

    def save_training_checkpoint(self, store: TrainingCheckpoints) -> bool:
        """Everything needed to resume exactly: the state, freeze stage, data position and recorder. At an
        epoch's last batch the position is ``(epoch, n_batches)``: trained, not yet validated (resuming runs
        the validation and ``after_epoch``); after ``after_epoch`` it is ``(epoch + 1, 0)``."""
        train = self.dls.train
        meta = {"epoch": self.epoch if self.batch_idx else self.epoch + 1, "batch": self.batch_idx,
                "epochs_done": self.epochs_done, "n_frozen": self.n_frozen, "seed": self.seed,
                "fit": self._fit_descriptor, "recorder": [self.recorder._avg, self.recorder._count],
                "n_batches": len(train), "bs": int(train.bs), "data_seed": _loader_seed(train)}
        return store.save(int(self.state.step), self.state, meta)

    def _resume(self, directory) -> tuple[int, int]:
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"resume_from={str(directory)!r}: no such folder. Check the spelling (it is the "
                                    "folder given to CheckpointCallback), or pass resume_from=None to start afresh")
        store = TrainingCheckpoints(directory, create=False)
        try:
            if store.latest_step() is None:
                warnings.warn(f"resume_from={str(directory)!r} holds no checkpoint yet: training from the start",
                              stacklevel=4)
                return 0, 0
            state, meta = store.restore_newest(lambda m: self._check_resumable(m, directory),
                                               self._resume_template)
            self.state = state  # restored into the template's layout: tables split, carry by rows
            self.recorder._avg, self.recorder._count = meta["recorder"]
            self.epochs_done = meta["epochs_done"]
            return int(meta["epoch"]), int(meta["batch"])
        finally:
            store.close()

    def _check_resumable(self, meta: dict, directory) -> None:
        """Refuse a checkpoint of another run: other fit call, seed, dataset size, batch size or shuffle seed."""
        train = self.dls.train
        where = f"checkpoint in {directory}"
        if meta.get("fit") != self._fit_descriptor:
            raise CheckpointMismatchError(f"{where} was written by a different fit call: {meta.get('fit')} vs "
                                          f"{self._fit_descriptor}; call fit with the same arguments to resume")
        if meta.get("seed") != self.seed:
            raise CheckpointMismatchError(f"{where}: seed {meta.get('seed')} differs from the learner's seed "
                                          f"{self.seed}; build the learner with seed={meta.get('seed')}")
        if "n_batches" in meta and (meta["n_batches"], meta.get("bs", train.bs)) != (len(train), train.bs):
            raise CheckpointMismatchError(
                f"{where} was written for {meta['n_batches']} training batches of {meta.get('bs')}, these loaders "
                f"give {len(train)} of {train.bs}: a different dataset or bs. Resume with the same data and bs, or "
                "start over in a new folder")
        if meta.get("data_seed") is not None and meta["data_seed"] != _loader_seed(train):
            raise CheckpointMismatchError(
                f"{where}: the training loader shuffled with seed {meta['data_seed']}, these loaders with "
                f"{_loader_seed(train)} (seed=None draws a new one each run): build the loaders with "
                f"seed={meta['data_seed']} to resume")

    def _resume_template(self, meta: dict):
        if meta["n_frozen"] != self.n_frozen:
            self.freeze_to(meta["n_frozen"])
        return self.state


def _loader_seed(loader) -> int | None:
    seed = getattr(loader, "seed", None)
    return None if seed is None else int(seed)


def check_fit_args(n_epoch: int, descriptor: Sequence) -> None:
    """Refuse a negative or fractional epoch count and negative or non-finite learning rates before training."""
    if isinstance(n_epoch, bool) or not isinstance(n_epoch, (int, np.integer)) or n_epoch < 0:
        raise ValueError(f"n_epoch={n_epoch!r}: the number of epochs must be a whole number >= 0")
    lrs = np.asarray(descriptor[2], np.float64)
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise ValueError(f"learning rate {descriptor[2]}: learning rates must be finite and >= 0 (a negative one "
                         "trains uphill)")


__all__ = ["Learner", "minimum", "steep", "valley"]
