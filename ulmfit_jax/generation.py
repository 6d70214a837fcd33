"""Language-model text generation: fastai's sampling rules, run statefully (prompt once, then one token per step).

fastai v2's ``LMLearner.predict`` re-feeds the whole sequence for every new word (quadratic), or with
``only_last_word=True`` restarts each step from a zeroed hidden state and loses the context (fastai_facts.md
section 0 item 8). Here the prompt goes through the model once and each step feeds only the last sampled token
with the carried hidden state, as fastai v1 did: linear cost, full context.

Sampling per step (fastai): softmax probabilities; ``no_unk`` zeroes ``xxunk``; ``min_p`` zeroes probabilities
below it unless that would zero them all (then it is ignored with a warning); ``temperature`` raises the
probabilities to ``1/temperature``; one draw from the result. Deliberate difference: padding, ``xxbos``/``xxeos``,
``xxfld`` and the vocabulary's ``xxfake`` fillers are never sampled (fastai can emit them); the case and repetition
markers (``xxmaj``, ``xxup``, ``xxrep``, ``xxwrep``) stay allowed because they decode to text.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ulmfit_jax.text_rules import BOS, EOS, FLD, PAD, UNK

NEVER_SAMPLED = (PAD, BOS, EOS, FLD)


def banned_tokens(vocab: Sequence[str], no_unk: bool = True) -> np.ndarray:
    """Boolean mask over the vocabulary of tokens generation must not emit."""
    banned = np.array([t in NEVER_SAMPLED or t.startswith("xxfake") for t in vocab], bool)
    if no_unk:
        banned |= np.array([t == UNK for t in vocab], bool)
    return banned


def sample_token(logits: jax.Array, key: jax.Array, banned: jax.Array, temperature: jax.Array,
                 min_p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One draw from ``logits`` (V,) under fastai's rules; returns (token, whether ``min_p`` had to be ignored)."""
    probs = jnp.where(banned, 0.0, jax.nn.softmax(logits.astype(jnp.float32)))
    keep = probs >= min_p
    ignored = ~jnp.any(keep & (probs > 0))
    probs = jnp.where(ignored | keep, probs, 0.0)
    logp = jnp.where(probs > 0, jnp.log(jnp.maximum(probs, 1e-38)) / temperature, -jnp.inf)
    return jax.random.categorical(key, logp).astype(jnp.int32), ignored


def make_generate_step(predict: Callable) -> Callable:
    """``step(params, model_state, token (1, 1), carry, key, banned, temperature, min_p)`` -> (next token,
    carry, min_p ignored): one model step in eval mode plus one draw, for ``jax.jit``."""

    def step(params, model_state, tokens, carry, key, banned, temperature, min_p):
        logits, carry = predict(params, model_state, tokens, carry)
        tok, ignored = sample_token(logits[0, -1], key, banned, temperature, min_p)
        return tok, carry, ignored

    return step


def generate(step: Callable, params: Any, model_state: Any, prompt: Sequence[int], carry: Any, n_words: int,
             key: jax.Array, banned: np.ndarray, temperature: float = 1.0, min_p: float | None = None) -> list[int]:
    """Feed ``prompt`` once, then sample ``n_words`` tokens, each fed back alone with the carried state."""
    if n_words <= 0:
        raise ValueError(f"n_words must be positive, got {n_words}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    temp = jnp.float32(temperature)
    mp = jnp.float32(0.0 if min_p is None else min_p)
    banned_j = jnp.asarray(banned)
    tokens = jnp.asarray(np.asarray(prompt, np.int32)[None])
    out: list[int] = []
    warned = False
    for i in range(n_words):
        tok, carry, ignored = step(params, model_state, tokens, carry, jax.random.fold_in(key, i), banned_j, temp, mp)
        if min_p is not None and bool(ignored) and not warned:
            warnings.warn(f"There is no item with probability >= {min_p}, try a lower value.", stacklevel=2)
            warned = True
        out.append(int(tok))
        tokens = tok.reshape(1, 1)
    return out
