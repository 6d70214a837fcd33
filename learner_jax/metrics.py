"""Metrics computed on device as sums (sufficient statistics) and finalised once on the host, so uneven last
batches and padding rows (weight 0) reduce exactly as over the unpadded data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from learner_jax.losses import MSELossFlat

Stats = dict[str, jax.Array]


def _row_weights(w: jax.Array, values: jax.Array) -> jax.Array:
    """Broadcast per-row weights over any extra axes of per-row values (e.g. tokens)."""
    return jnp.broadcast_to(w.reshape(w.shape + (1,) * (values.ndim - 1)), values.shape)


def weighted_sum(values: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    ww = _row_weights(w, values)
    return jnp.sum(values.astype(jnp.float32) * ww), jnp.sum(ww)


@dataclass(frozen=True)
class Metric:
    """A metric as ``stats(preds, y, w, loss_sum, count) -> {name: sum}`` and ``value(stats) -> float``."""

    name: str
    stats: Callable[..., Stats] = field(repr=False)
    value: Callable[[dict[str, float]], float] = field(repr=False)


def _mean_metric(name: str, per_row: Callable[[jax.Array, jax.Array], jax.Array]) -> Metric:
    def stats(preds, y, w, loss_sum, count):
        s, n = weighted_sum(per_row(preds, y), w)
        return {f"{name}_sum": s, f"{name}_n": n}

    return Metric(name, stats, lambda st: float(st[f"{name}_sum"] / max(st[f"{name}_n"], 1e-12)))


def _correct(preds: jax.Array, y: jax.Array) -> jax.Array:
    if preds.ndim == y.ndim:  # a single logit per row: binary with threshold 0 on the logit
        return ((preds > 0).astype(jnp.int32) == y.astype(jnp.int32)).astype(jnp.float32)
    return (jnp.argmax(preds, axis=-1) == y).astype(jnp.float32)


def _sq_err(preds, y):
    d = preds.reshape(y.shape[0], -1).astype(jnp.float32) - y.reshape(y.shape[0], -1).astype(jnp.float32)
    return jnp.mean(d * d, axis=-1)


def _abs_err(preds, y):
    d = preds.reshape(y.shape[0], -1).astype(jnp.float32) - y.reshape(y.shape[0], -1).astype(jnp.float32)
    return jnp.mean(jnp.abs(d), axis=-1)


accuracy = _mean_metric("accuracy", _correct)
error_rate = Metric("error_rate", accuracy.stats, lambda st: 1.0 - accuracy.value(st))
mse = _mean_metric("mse", _sq_err)
rmse = Metric("rmse", mse.stats, lambda st: float(np.sqrt(mse.value(st))))
mae = _mean_metric("mae", _abs_err)
perplexity = Metric("perplexity", lambda preds, y, w, loss_sum, count: {},
                    lambda st: float(np.exp(st["loss_sum"] / max(st["loss_n"], 1e-12))))


def F1Score(pos_label: int = 1) -> Metric:
    """Binary F1 from true/false positive and false negative counts summed over the whole set."""

    def stats(preds, y, w, loss_sum, count):
        pred = (jnp.argmax(preds, -1) if preds.ndim > y.ndim else (preds > 0).astype(jnp.int32)) == pos_label
        true = y == pos_label
        wf = w.astype(jnp.float32)
        return {"f1_tp": jnp.sum(wf * (pred & true)), "f1_fp": jnp.sum(wf * (pred & ~true)),
                "f1_fn": jnp.sum(wf * (~pred & true))}

    def value(st):
        denom = 2 * st["f1_tp"] + st["f1_fp"] + st["f1_fn"]
        return float(2 * st["f1_tp"] / denom) if denom > 0 else 0.0

    return Metric("f1_score", stats, value)


CLASSIFICATION_METRICS = ("accuracy", "error_rate", "f1_score")


def check_metrics_for_loss(metrics: list[Metric], loss_func: Callable) -> None:
    """Refuse a classification metric on a regression loss: it would print a meaningless number (0.000)."""
    regression = isinstance(loss_func, MSELossFlat)  # L1LossFlat too
    bad = [m.name for m in metrics if m.name in CLASSIFICATION_METRICS]
    if regression and bad:
        raise ValueError(f"metrics {bad} are for classification but the loss is {type(loss_func).__name__} (a "
                         "regression): use rmse, mae or mse")


def as_metric(m: Metric | Callable) -> Metric:
    """Accept our Metric objects or a plain ``fn(preds, y) -> per-row values`` (averaged over rows)."""
    if isinstance(m, Metric):
        return m
    if callable(m):
        return _mean_metric(getattr(m, "__name__", "metric"), m)
    raise TypeError(f"not a metric: {m!r}")
