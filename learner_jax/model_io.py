"""What the engine expects of a model: an ``nnx.Module`` called as

    model(x, *, train: bool, rngs: nnx.Rngs)              -> preds | ModelOutput
    model(x, carry, *, train: bool, rngs: nnx.Rngs)       -> ModelOutput   (stateful models, e.g. AWD-LSTM LM)

``rngs`` carries one explicit ``dropout`` key per step (``jax.random.fold_in(rng, step)``); models never keep
PRNG state of their own, so a step is a pure function of (state, batch, rng). Normalisation layers read
``train`` (``use_running_average=not train``). Nothing else is assumed of the module.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class ModelOutput(NamedTuple):
    """A model's output when it is more than predictions.

    preds: what ``loss_func`` and metrics see.
    carry: recurrent state handed to the next batch (stop-gradient is applied by the engine).
    aux_loss: added to the back-propagated loss only (AR/TAR); the recorded loss excludes it, as in fastai.
    """

    preds: Any
    carry: Any = None
    aux_loss: Any = 0.0  # a Python float: building a jnp scalar here would start the JAX backend on import


def as_output(out: Any) -> ModelOutput:
    return out if isinstance(out, ModelOutput) else ModelOutput(out)
