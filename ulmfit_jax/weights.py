"""fastai AWD-LSTM weights: import (WT103 v1/v2 checkpoints, vocabulary matching) and export, by name.

fastai state-dict layout (fastai_facts.md section 6.3): ``0.encoder.weight`` (V, emb), ``0.encoder_dp.emb.weight``
(the same tensor), per layer ``0.rnns.l.weight_hh_l0_raw`` (4h, h), ``0.rnns.l.module.weight_ih_l0`` (4h, in),
``...bias_ih_l0``/``bias_hh_l0`` (4h), then ``1.decoder.weight`` (tied copy) and ``1.decoder.bias``. v1 files
also hold the dropped copy ``0.rnns.l.module.weight_hh_l0`` (ignored, as fastai's ``clean_raw_keys`` does).
Classifiers prefix the encoder with ``0.module.``; ``save_encoder`` files hold the bare AWD_LSTM keys.

Deliberate difference: fastai v2 copies pretrained tensors *by position* (``load_ignore_keys``); we match by name
and check every shape, so a checkpoint for another configuration fails with an error naming the tensor.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from ulmfit_jax.models import AWD_LSTM, LanguageModel, TextClassifier
from ulmfit_jax.pretrained import (
    is_json_vocab,
    is_npz_weights,
    load_json_vocab,
    load_npz_state_dict,
    shipped_sha256,
)
from ulmfit_jax.torch_pickle import load_checkpoint, load_pickle, save_state_dict

StateDict = Mapping[str, np.ndarray]


class WeightsMismatchError(ValueError):
    """A state dict does not fit the model (missing tensor, unexpected tensor or wrong shape)."""


def load_state_dict(path: str | os.PathLike) -> OrderedDict:
    """A fastai/PyTorch ``.pth`` as ``{name: ndarray}``; an enclosing ``{'model': ..., 'opt': ...}`` is unwrapped.
    A code-free ``.npz`` (the shipped format of ``ulmfit_jax.pretrained``) is read too, its checksum checked
    when the file is a shipped one."""
    if is_npz_weights(path):
        stored = load_npz_state_dict(path, shipped_sha256(path))
        emb = stored.get("0.encoder.weight")
        if emb is None:
            return stored
        # stored once: the tied decoder and fastai's second embedding name, put back in fastai's key order
        # (fastai's own loader copies tensors by position)
        wgts = OrderedDict()
        for k, v in stored.items():
            if k == "1.decoder.bias" and "1.decoder.weight" not in stored:
                wgts["1.decoder.weight"] = emb.copy()
            wgts[k] = v
            if k == "0.encoder.weight" and "0.encoder_dp.emb.weight" not in stored:
                wgts["0.encoder_dp.emb.weight"] = emb.copy()
        wgts.setdefault("1.decoder.weight", emb.copy())
        return wgts
    obj = load_checkpoint(path)
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise WeightsMismatchError(f"{path}: expected a state dict, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise WeightsMismatchError(f"{path}: entries that are not tensors: {bad[:5]}")
    return OrderedDict(obj)


def load_vocab(path: str | os.PathLike) -> list[str]:
    """A fastai vocabulary pickle (``itos_wt103.pkl``: a list of tokens), read without executing code, or a JSON
    list of tokens (the shipped format)."""
    if is_json_vocab(path):
        return load_json_vocab(path, shipped_sha256(path))
    vocab = load_pickle(path)
    if isinstance(vocab, Mapping) and "itos" in vocab:
        vocab = vocab["itos"]
    if not isinstance(vocab, (list, tuple)) or not all(isinstance(t, str) for t in vocab):
        raise WeightsMismatchError(f"{path}: expected a list of token strings, got {type(vocab).__name__}")
    return list(vocab)


def clean_raw_keys(wgts: Mapping[str, np.ndarray]) -> OrderedDict:
    """Drop ``X.module.weight_hh_l0`` when ``X.weight_hh_l0_raw`` exists (fastai's ``clean_raw_keys``)."""
    keys = set(wgts)
    out = OrderedDict()
    for k, v in wgts.items():
        if k.endswith(".module.weight_hh_l0") and k[: -len(".module.weight_hh_l0")] + ".weight_hh_l0_raw" in keys:
            continue
        out[k] = v
    return out


def match_embeds(old_wgts: Mapping[str, np.ndarray], old_vocab: Sequence[str],
                 new_vocab: Sequence[str]) -> OrderedDict:
    """fastai's ``match_embeds``: rows (and decoder biases) of ``new_vocab`` tokens known to ``old_vocab`` are
    copied, new tokens get the mean embedding and mean bias."""
    wgts = OrderedDict(old_wgts)
    if "0.encoder.weight" not in wgts:
        raise WeightsMismatchError("no '0.encoder.weight' in the pretrained weights: not a fastai language model")
    emb = np.asarray(wgts["0.encoder.weight"])
    if emb.shape[0] != len(old_vocab):
        raise WeightsMismatchError(f"pretrained embedding has {emb.shape[0]} rows but its vocabulary has "
                                   f"{len(old_vocab)} tokens")
    o2i: dict[str, int] = {}
    for i, w in enumerate(old_vocab):
        o2i.setdefault(w, i)
    idx = np.array([o2i.get(w, -1) for w in new_vocab], np.int64)
    known = idx >= 0
    new_emb = np.where(known[:, None], emb[np.maximum(idx, 0)], emb.mean(0, keepdims=True)).astype(emb.dtype)
    wgts["0.encoder.weight"] = new_emb
    if "0.encoder_dp.emb.weight" in wgts:
        wgts["0.encoder_dp.emb.weight"] = new_emb.copy()
    wgts["1.decoder.weight"] = new_emb.copy()
    if "1.decoder.bias" in wgts:
        bias = np.asarray(wgts["1.decoder.bias"])
        wgts["1.decoder.bias"] = np.where(known, bias[np.maximum(idx, 0)], bias.mean()).astype(bias.dtype)
    return wgts


# ---- name mapping between fastai keys and our parameter paths ------------------------------------------------

def _encoder_entries(enc: AWD_LSTM, prefix: str, path: tuple) -> list[tuple[str, tuple, bool]]:
    """(fastai key, our param path, transposed?) for one AWD_LSTM."""
    entries = [(f"{prefix}encoder.weight", path + ("embedding",), False)]
    for i in range(enc.n_layers):
        p = path + ("rnns", i)
        entries += [(f"{prefix}rnns.{i}.weight_hh_l0_raw", p + ("weight_hh_raw",), True),
                    (f"{prefix}rnns.{i}.module.weight_ih_l0", p + ("weight_ih",), True),
                    (f"{prefix}rnns.{i}.module.bias_ih_l0", p + ("bias_ih",), False),
                    (f"{prefix}rnns.{i}.module.bias_hh_l0", p + ("bias_hh",), False)]
    return entries


def _aliases(prefix: str) -> list[tuple[str, str]]:
    """Keys fastai writes twice (same tensor): (alias, canonical)."""
    return [(f"{prefix}encoder_dp.emb.weight", f"{prefix}encoder.weight")]


def _lm_entries(model: LanguageModel) -> list[tuple[str, tuple, bool]]:
    entries = _encoder_entries(model.encoder, "0.", ("encoder",))
    if not model.decoder.tied:
        entries.append(("1.decoder.weight", ("decoder", "weight"), False))
    if model.decoder.has_bias:
        entries.append(("1.decoder.bias", ("decoder", "bias"), False))
    return entries


def _head_entries(model: TextClassifier) -> list[tuple[str, tuple, bool]]:
    entries = []
    for i, layer in enumerate(model.head.layers):
        p = ("head", "layers", i)
        lin = 2 if layer.p != 0.0 else 1  # LinBnDrop omits its Dropout when p == 0, shifting the index
        entries += [(f"1.layers.{i}.0.weight", p + ("bn", "scale"), False),
                    (f"1.layers.{i}.0.bias", p + ("bn", "bias"), False),
                    (f"1.layers.{i}.0.running_mean", p + ("bn", "mean"), False),
                    (f"1.layers.{i}.0.running_var", p + ("bn", "var"), False),
                    (f"1.layers.{i}.{lin}.weight", p + ("linear", "kernel"), True)]
    return entries


def _entries(model: nnx.Module) -> tuple[list[tuple[str, tuple, bool]], list[tuple[str, str]], set[str]]:
    """Entries, aliases and keys to ignore for a model (LM, classifier or bare encoder)."""
    if isinstance(model, LanguageModel):
        extra = {"1.decoder.weight"} if model.decoder.tied else set()
        return _lm_entries(model), _aliases("0."), extra
    if isinstance(model, TextClassifier):
        heads = _head_entries(model)
        ignore = {f"1.layers.{i}.0.num_batches_tracked" for i in range(len(model.head.layers))}
        return _encoder_entries(model.encoder.module, "0.module.", ("encoder", "module")) + heads, \
            _aliases("0.module."), ignore
    if isinstance(model, AWD_LSTM):
        return _encoder_entries(model, "", ()), _aliases(""), set()
    raise TypeError(f"no fastai layout for {type(model).__name__}")


def _get(tree: Any, path: tuple) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def _set(tree: dict, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        tree = tree[k]
    tree[path[-1]] = value


def to_fastai_state_dict(model: nnx.Module) -> OrderedDict:
    """Our weights in fastai v2's state-dict layout and key order (NumPy arrays), e.g. to ``torch.load`` into
    fastai's ``get_language_model(AWD_LSTM, ...)`` with ``load_state_dict``."""
    state = nnx.to_pure_dict(nnx.state(model))
    entries, aliases, _ = _entries(model)
    alias_of = {canon: alias for alias, canon in aliases}
    out = OrderedDict()
    for k, p, t in entries:
        value = np.asarray(_get(state, p))
        out[k] = value.T.copy() if t else value.copy()
        if k in alias_of:  # fastai's state dict names the embedding twice
            out[alias_of[k]] = out[k].copy()
        if k.endswith(".running_var"):
            out[k[: -len("running_var")] + "num_batches_tracked"] = np.array(0, np.int64)
        if k.endswith(".bias_hh_l0") and isinstance(model, LanguageModel) and model.decoder.tied \
                and k == f"0.rnns.{model.encoder.n_layers - 1}.module.bias_hh_l0":
            out["1.decoder.weight"] = out["0.encoder.weight"].copy()  # the tied decoder, written as fastai does
    return out


def from_fastai_state_dict(model: nnx.Module, wgts: Mapping[str, np.ndarray], source: str = "state dict") -> None:
    """Load a fastai state dict into ``model`` in place, by name, checking every shape.

    Missing tensors, tensors of the wrong shape and unexpected tensors raise :class:`WeightsMismatchError`
    naming the key, both shapes and ``source``.
    """
    wgts = clean_raw_keys(wgts)
    entries, aliases, ignore = _entries(model)
    state = nnx.to_pure_dict(nnx.state(model))
    known = {k for k, _, _ in entries} | {a for a, _ in aliases} | ignore
    missing = [k for k, _, _ in entries if k not in wgts]
    if missing:
        raise WeightsMismatchError(f"{source} lacks {len(missing)} tensors the model needs, e.g. {missing[:4]}")
    unexpected = [k for k in wgts if k not in known]
    if unexpected:
        raise WeightsMismatchError(f"{source} has tensors this model does not use: {unexpected[:4]} "
                                   "(a model of another kind or configuration?)")
    for k, p, t in entries:
        value = np.asarray(wgts[k])
        value = value.T if t else value
        expected = tuple(np.shape(_get(state, p)))
        if value.shape != expected:
            shown = value.T.shape if t else value.shape
            want = expected[::-1] if t else expected
            raise WeightsMismatchError(f"{source}: '{k}' has shape {tuple(shown)} but the model expects "
                                       f"{tuple(want)}: the weights were trained with another configuration "
                                       "(emb_sz, n_hid, n_layers or vocabulary size)")
        _set(state, p, jnp.asarray(value, jnp.float32))
    nnx.update(model, nnx.State(state))


def load_pretrained(model: LanguageModel | TextClassifier, wgts_fname: str | os.PathLike,
                    vocab_fname: str | os.PathLike, new_vocab: Sequence[str],
                    state: Mapping[str, Any] | None = None) -> None:
    """fastai's ``load_pretrained``: read a WT103-style ``.pth`` + ``.pkl``, match the vocabulary, load by name.

    ``state``: the weights already read from ``wgts_fname`` (``language_model_learner`` reads the file once to
    size the model; reading it again was ~1 s for WT103's 460 MB); errors still name the file. For a classifier
    only the encoder part is loaded (fastai loads into ``model[0]``).
    """
    wgts = load_state_dict(wgts_fname) if state is None else state
    wgts = match_embeds(clean_raw_keys(wgts), load_vocab(vocab_fname), new_vocab)
    if isinstance(model, TextClassifier):
        enc = {k[2:]: v for k, v in wgts.items() if k.startswith("0.")}
        from_fastai_state_dict(model.encoder.module, enc, source=str(wgts_fname))
    else:
        from_fastai_state_dict(model, wgts, source=str(wgts_fname))


def save_encoder_file(encoder: AWD_LSTM, path: str | os.PathLike) -> Path:
    """Write the AWD_LSTM as a fastai ``save_encoder`` file (bare keys, PyTorch zip format)."""
    return save_state_dict(to_fastai_state_dict(encoder), path)


def load_encoder_file(encoder: AWD_LSTM, path: str | os.PathLike) -> None:
    """Load a ``save_encoder`` file (ours or fastai's) into an AWD_LSTM, with a clear vocabulary-size error."""
    wgts = load_state_dict(path)
    emb = wgts.get("encoder.weight")
    if emb is not None and emb.shape[0] != encoder.vocab_sz:
        raise WeightsMismatchError(
            f"{path}: the encoder was trained with a vocabulary of {emb.shape[0]} tokens but this model has "
            f"{encoder.vocab_sz}: build the classifier's DataLoaders with text_vocab=dls_lm.vocab")
    from_fastai_state_dict(encoder, wgts, source=str(path))


def save_fastai_lm(model: LanguageModel, path: str | os.PathLike) -> Path:
    """Export a language model as a fastai ``.pth`` state dict (PyTorch zip format)."""
    return save_state_dict(to_fastai_state_dict(model), path)
