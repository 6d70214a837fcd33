"""Loss functions with fastai's names. Each returns a per-row (or per-token) loss; the engine weights and
averages it, so padded rows (weight 0) never count. ``activation`` maps raw outputs to predictions
(``get_preds``) and ``decodes`` maps predictions to labels (``predict``), as fastai's loss objects do."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax


@dataclass(frozen=True)
class CrossEntropyLossFlat:
    """Softmax cross-entropy over the last axis; integer targets of shape ``preds.shape[:-1]``."""

    axis: int = -1

    def __call__(self, preds: jax.Array, y: jax.Array) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(preds.astype(jnp.float32), y.astype(jnp.int32))

    def activation(self, preds: jax.Array) -> jax.Array:
        return jax.nn.softmax(preds, axis=-1)

    def decodes(self, probs: jax.Array) -> jax.Array:
        return jnp.argmax(probs, axis=-1)


@dataclass(frozen=True)
class BCEWithLogitsLossFlat:
    """Sigmoid cross-entropy per label (multi-label); the row loss is the mean over labels."""

    thresh: float = 0.5

    def __call__(self, preds: jax.Array, y: jax.Array) -> jax.Array:
        return optax.sigmoid_binary_cross_entropy(preds.astype(jnp.float32), y.astype(jnp.float32)).mean(-1)

    def activation(self, preds: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(preds)

    def decodes(self, probs: jax.Array) -> jax.Array:
        return probs > self.thresh


@dataclass(frozen=True)
class MSELossFlat:
    """Squared error; predictions of shape ``(B, 1)`` are flattened against ``(B,)`` targets like fastai."""

    def __call__(self, preds: jax.Array, y: jax.Array) -> jax.Array:
        d = (preds.astype(jnp.float32).reshape(y.shape[0], -1) - y.astype(jnp.float32).reshape(y.shape[0], -1))
        return jnp.mean(d * d, axis=-1)

    def activation(self, preds: jax.Array) -> jax.Array:
        return preds

    def decodes(self, preds: jax.Array) -> jax.Array:
        return preds


@dataclass(frozen=True)
class L1LossFlat(MSELossFlat):
    """Absolute error."""

    def __call__(self, preds: jax.Array, y: jax.Array) -> jax.Array:
        d = (preds.astype(jnp.float32).reshape(y.shape[0], -1) - y.astype(jnp.float32).reshape(y.shape[0], -1))
        return jnp.mean(jnp.abs(d), axis=-1)
