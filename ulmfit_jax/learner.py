"""ULMFiT learners with fastai's names: ``language_model_learner`` and ``text_classifier_learner``.

Both subclass the engine's ``Learner`` and add what is text-specific: AR/TAR (inside the models' ``aux_loss``),
fastai's layer groups (4 for the LM, 5 for the classifier), pretrained WT103 weights with vocabulary matching,
``save_encoder``/``load_encoder``, stateful text generation and the forward+backward ensemble.
TextLearner's defaults are fastai v2's: ``moms=(0.8, 0.7, 0.8)``, alpha 2, beta 1, no gradient clipping.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from flax import nnx

from learner_jax.data import DataLoaders, Loader
from learner_jax.learner import Learner
from learner_jax.losses import CrossEntropyLossFlat, MSELossFlat
from learner_jax.metrics import accuracy, perplexity
from learner_jax.sharding import replicate
from learner_jax.steps import make_predict_step
from ulmfit_jax.generation import banned_tokens, generate, make_generate_step
from ulmfit_jax.lm_head import LMCrossEntropyLossFlat, lm_accuracy
from ulmfit_jax.models import (
    AWD_LSTM,
    TextClassifier,
    awd_lstm_lm_config,
    clas_splitter,
    get_language_model,
    get_text_classifier,
    lm_splitter,
    merge_config,
    zero_carry,
)
from ulmfit_jax.pretrained import PretrainedLM, config_from_state_dict
from ulmfit_jax.text_rules import BOS, PAD, TK_MAJ, TK_REP, TK_UP, TK_WREP, undo_rules
from ulmfit_jax.vocab import token_to_id
from ulmfit_jax.weights import (
    WeightsMismatchError,
    load_encoder_file,
    load_pretrained,
    load_state_dict,
    save_encoder_file,
)

TEXT_MOMS = (0.8, 0.7, 0.8)


def _text_vocab(dls: DataLoaders) -> list[str]:
    """The token vocabulary of text DataLoaders (fastai: ``dls.vocab``, or its first part for classifiers)."""
    vocab = getattr(dls, "vocab", None)
    if vocab is None:
        raise ValueError("the DataLoaders have no .vocab: build them with TextDataLoaders")
    if len(vocab) and isinstance(vocab[0], (list, tuple)):
        vocab = vocab[0]
    return list(vocab)


def _resolve_file(path: Path, model_dir: str, name: str | os.PathLike, ext: str) -> Path:
    """A file given as a path, or (fastai style) as a name under ``path/model_dir`` without extension."""
    p = Path(name)
    for cand in (p, path / model_dir / p, path / model_dir / f"{p}.{ext}", Path(f"{p}.{ext}")):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"no file '{name}' (tried it as a path and as {path / model_dir / f'{p}.{ext}'})")


def _wt103_files(backwards: bool) -> tuple[Path, Path]:
    """The WT103 weights and vocabulary from the download cache (downloaded when online)."""
    from learner_jax.download import URLs, untar_data

    folder = untar_data(URLs.WT103_BWD if backwards else URLs.WT103_FWD)
    pths, pkls = sorted(Path(folder).glob("*.pth")), sorted(Path(folder).glob("*.pkl"))
    if not pths or not pkls:
        raise FileNotFoundError(f"the model in {folder} is incomplete (needs a .pth and a .pkl): download again")
    return pths[0], pkls[0]


class TextLearner(Learner):
    """What the LM and classifier learners share: pretrained weights and encoder files."""

    backwards: bool = False

    def _replace_weights(self, load: Callable[[nnx.Module], None]) -> None:
        """Apply ``load`` to a module holding the current weights and make the result the learner's weights."""
        model = self.model
        load(model)
        _, params, rest = nnx.split(model, nnx.Param, ...)
        self.state = self.state.replace(params=replicate(nnx.to_pure_dict(params), self.mesh),
                                        model_state=replicate(nnx.to_pure_dict(rest), self.mesh))

    @staticmethod
    def _encoder_of(model: nnx.Module) -> AWD_LSTM:
        return model.encoder.module if isinstance(model, TextClassifier) else model.encoder

    def load_pretrained(self, wgts_fname: str | os.PathLike, vocab_fname: str | os.PathLike,
                        state: Mapping[str, Any] | None = None) -> TextLearner:
        """Load fastai-format pretrained weights (``.pth``) and their vocabulary (``.pkl``), matched to this
        learner's vocabulary (new words get the mean embedding), then ``freeze()`` as fastai does. ``state``: the
        weights already read from ``wgts_fname``, if they were."""
        vocab = _text_vocab(self.dls)
        self._replace_weights(lambda m: load_pretrained(m, wgts_fname, vocab_fname, vocab, state))
        self.freeze()
        return self

    def _encoder_path(self, name: str | os.PathLike) -> Path:
        name = Path(name)
        return name if name.suffix == ".pth" and name.parent != Path(".") else \
            self.path / self.model_dir / (name.name if name.suffix == ".pth" else f"{name.name}.pth")

    def save_encoder(self, file: str | os.PathLike) -> Path:
        """Save the AWD-LSTM encoder to ``path/model_dir/file.pth`` in fastai's format (fastai can load it)."""
        return save_encoder_file(self._encoder_of(self.model), self._encoder_path(file))

    def load_encoder(self, file: str | os.PathLike) -> TextLearner:
        """Load an encoder saved by ``save_encoder`` (ours or fastai's), then ``freeze()`` as fastai does.
        A vocabulary of another size is refused with both sizes named."""
        path = self._encoder_path(file)
        if not path.is_file():
            raise FileNotFoundError(f"no encoder file {path} (save one with learn.save_encoder('{Path(file).stem}'))")
        self._replace_weights(lambda m: load_encoder_file(self._encoder_of(m), path))
        self.freeze()
        return self

    def _encode(self, text: str) -> list[int]:
        """Token ids of one text, tokenized like the training data (the DataLoaders' own tokenizer, e.g.
        SentencePiece, when they offer ``numericalize_texts``; else the default word tokenizer)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("predict needs a non-empty text")
        numericalize_texts = getattr(self.dls, "numericalize_texts", None)
        if numericalize_texts is not None:
            ids, _ = numericalize_texts([text])
            return [int(i) for i in ids]
        from ulmfit_jax.tokenize import tokenize_texts

        if getattr(self, "_o2i", None) is None:
            self._o2i = token_to_id(_text_vocab(self.dls))
        return [self._o2i.get(t, 0) for t in tokenize_texts([text], n_workers=1)[0]]


class LMLearner(TextLearner):
    """A language-model learner: adds stateful ``predict`` (text generation)."""

    def show_results(self, ds_idx: int = 1, dl: Loader | None = None, max_n: int = 6, trunc_at: int = 40,
                     show: bool = True) -> pd.DataFrame:
        """fastai's LM ``show_results``: for the first batch of ``dl`` (default: loader ``ds_idx``, validation),
        each row's ``text``, the actual next tokens ``text_`` and the model's most likely next tokens
        ``text_pred``."""
        from learner_jax.figures import show_table

        dl = self.dls.loaders[ds_idx] if dl is None else dl
        x, y, _ = next(iter(dl.batches(0)))
        logits = np.asarray(self.predict_batch(self._shard(x), self._fresh_carry(dl.bs)))
        vocab = np.asarray(_text_vocab(self.dls), dtype=object)

        def text(ids):
            return " ".join(vocab[np.asarray(ids)[:trunc_at]])

        n = min(max_n, len(x))
        df = pd.DataFrame({"text": [text(x[i]) for i in range(n)], "text_": [text(y[i]) for i in range(n)],
                           "text_pred": [text(logits[i].argmax(-1)) for i in range(n)]})
        return show_table(df, show, max_colwidth=400)

    def predict(self, text: str, n_words: int = 1, no_unk: bool = True, temperature: float = 1.0,
                min_p: float | None = None, decoder: Callable[[list[str]], str] = undo_rules,
                seed: int | None = None) -> str:
        """The prompt ``text`` followed by ``n_words`` sampled tokens, as readable text (fastai v2 also returns the
        prompt; its default decoder leaves the tokens space-separated, ``undo_rules`` restores capitals and
        punctuation spacing).

        Randomness comes from ``seed`` when given, else from the learner's seed and a call counter (so two calls
        differ, and a rerun of the same script repeats them). A backwards model reads the prompt reversed and
        generates what comes *before* it.
        """
        if int(n_words) != n_words or n_words <= 0:
            raise ValueError(f"n_words must be a positive integer, got {n_words!r}")
        vocab = _text_vocab(self.dls)
        ids = self._encode(text)
        if self.backwards:
            ids = ids[::-1]
        if getattr(self, "_gen_graph", None) is not self.graphdef:  # to_bf16/to_fp32 give a new graph
            self._gen_step = jax.jit(make_generate_step(make_predict_step(self.spec)))
            self._gen_graph = self.graphdef
        self._n_predict = getattr(self, "_n_predict", 0) + 1
        key = jax.random.key(seed) if seed is not None else jax.random.fold_in(
            jax.random.fold_in(self.rng, 7919), self._n_predict)
        carry = zero_carry(self._hidden_sizes, 1)
        new = generate(self._gen_step, self.state.params, self.state.model_state, ids, carry, int(n_words), key,
                       banned_tokens(vocab, no_unk), temperature, min_p)
        all_ids = ids + new
        if self.backwards:
            all_ids = all_ids[::-1]
        tokens = [vocab[i] for i in all_ids if vocab[i] not in (BOS, PAD)]
        while tokens and tokens[-1] in (TK_MAJ, TK_UP, TK_REP, TK_WREP):  # a rule with nothing left to apply to
            tokens.pop()
        return decoder(tokens)


class TextClassifierLearner(TextLearner):
    """A text classifier learner (fastai's ``TextLearner`` built by ``text_classifier_learner``).

    Freezing is data (``Learner.freeze_as_data``): the gradual-unfreezing chain compiles one training step for
    all four stages instead of one per stage (measured in experiments/results/compile.md).
    """

    freeze_as_data = True

    classes: list | None = None

    def show_results(self, ds_idx: int = 1, dl: Loader | None = None, max_n: int = 9, trunc_at: int = 300,
                     show: bool = True) -> pd.DataFrame:
        """The first ``max_n`` rows of ``dl`` (default: loader ``ds_idx``, validation): readable text, label and
        predicted label (``category`` / ``category_pred``; ``target`` / ``prediction`` for regression), with the
        probability."""
        from learner_jax.figures import show_table
        from learner_jax.interpretation import decoded_inputs

        dl = self.dls.loaders[ds_idx] if dl is None else dl
        preds, targs = self.get_preds(dl=dl)
        n = min(max_n, len(targs))
        texts = decoded_inputs(self, dl)
        df = pd.DataFrame({"text": [t[:trunc_at] for t in texts["text"][:n]]}) if texts is not None else \
            pd.DataFrame(index=range(n))
        if isinstance(self.loss_func, MSELossFlat):
            df["target"], df["prediction"] = np.asarray(targs[:n]).tolist(), np.asarray(preds[:n]).tolist()
        else:
            names = np.asarray(self.classes if self.classes is not None else range(preds.shape[1]), dtype=object)
            dec = preds[:n].argmax(axis=1)
            df["category"], df["category_pred"] = names[np.asarray(targs[:n], np.int64)], names[dec]
            df["probability"] = np.round(preds[np.arange(n), dec], 4)
        return show_table(df, show, max_colwidth=trunc_at)

    def predict(self, text: str) -> tuple[Any, int | None, np.ndarray]:
        """(decoded label, class index, probabilities) for one text, as fastai's ``Learner.predict``; for
        regression (label, None, raw outputs)."""
        ids = self._encode(text)
        if self.backwards:
            ids = ids[::-1]
        x = np.asarray(ids, np.int32)[None]
        out = np.asarray(self.loss_func.activation(self.predict_batch(x)))[0]
        if isinstance(self.loss_func, MSELossFlat):
            return out, None, out
        idx = int(np.argmax(out))
        label = self.classes[idx] if self.classes is not None and idx < len(self.classes) else idx
        return label, idx, out


def _merge_kwargs(defaults: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return dict(defaults) | dict(kwargs)


def language_model_learner(dls: DataLoaders, arch: type = AWD_LSTM, drop_mult: float = 1.0, pretrained: bool = True,
                           pretrained_fnames: Sequence[str | os.PathLike] | None = None,
                           config: Mapping[str, Any] | None = None, backwards: bool = False, seed: int = 0,
                           alpha: float = 2.0, beta: float = 1.0, unroll: int = 2, **kwargs) -> LMLearner:
    """fastai's ``language_model_learner``: an AWD-LSTM LM over ``dls.vocab``.

    ``pretrained_fnames=(weights.pth, vocab.pkl)`` are paths (or fastai-style names under
    ``path/model_dir``) of fastai-format files, or the code-free shipped files (``pretrained_lm()``, an ``.npz``
    and a ``.json``); with ``config=None`` the model's sizes are then read from the weights. Otherwise
    ``pretrained=True`` takes fastai's WT103 weights (forward or ``backwards``) from the download cache,
    downloading them when online. Pretrained weights are matched to the vocabulary and the learner is frozen
    (only the embedding/decoder group trains), as in fastai.
    Extra keyword arguments go to the engine's ``Learner`` (``lr``, ``wd``, ``moms``, ``path``, ``cbs``...).
    """
    if getattr(dls, "is_lm", None) is False:
        raise TypeError("language_model_learner got a classifier's DataLoaders (is_lm=False): build language-model "
                        "ones with TextDataLoaders.from_...(..., is_lm=True)")
    vocab = _text_vocab(dls)
    files = None
    if pretrained_fnames is not None:
        if isinstance(pretrained_fnames, (str, os.PathLike)) or len(pretrained_fnames) != 2:
            raise ValueError("pretrained_fnames must be (weights file, vocabulary file), e.g. pretrained_lm()")
        if isinstance(pretrained_fnames, PretrainedLM):
            pretrained_fnames.verify()
        path, model_dir = Path(kwargs.get("path", ".")), kwargs.get("model_dir", "models")
        files = (_resolve_file(path, model_dir, pretrained_fnames[0], "pth"),
                 _resolve_file(path, model_dir, pretrained_fnames[1], "pkl"))
        state = load_state_dict(files[0])  # read once: it sizes the model and is then loaded into it
        config = _config_for_weights(files[0], config, state)
    model = get_language_model(arch, len(vocab), config=config, drop_mult=drop_mult, seed=seed, alpha=alpha,
                               beta=beta, unroll=unroll)
    sizes = model.encoder.hidden_sizes
    kw = _merge_kwargs(dict(metrics=[lm_accuracy, perplexity], moms=TEXT_MOMS), kwargs)
    learn = LMLearner(dls, model, loss_func=LMCrossEntropyLossFlat(), splitter=lm_splitter(model.encoder.n_layers),
                      seed=seed, init_carry=partial(zero_carry, sizes), **kw)
    learn.backwards, learn._hidden_sizes = bool(backwards or getattr(dls, "backwards", False)), sizes
    learn._export_args = {"kind": "lm", "config": dict(config or {}), "drop_mult": drop_mult, "alpha": alpha,
                          "beta": beta, "unroll": unroll, "backwards": learn.backwards}
    if files is not None:
        learn.load_pretrained(*files, state=state)
    elif pretrained:
        try:
            files = _wt103_files(backwards)
        except Exception as e:
            raise RuntimeError(f"could not get fastai's WT103 {'backward' if backwards else 'forward'} weights "
                               f"({e}); pass pretrained=False to train from scratch, or pretrained_fnames="
                               "(weights.pth, vocab.pkl) for local files") from e
        learn.load_pretrained(*files)
    return learn


def _config_for_weights(wgts_fname: Path, config: Mapping[str, Any] | None,
                        state: Mapping[str, Any]) -> dict[str, Any] | None:
    """``config`` checked against the sizes of the weights ``state`` read from ``wgts_fname`` (a size that
    contradicts them is an error naming it); with ``config=None`` the sizes are read from the weights."""
    sizes = config_from_state_dict(state)
    if config is None:
        return sizes
    merged = merge_config(awd_lstm_lm_config, config)
    wrong = {k: (merged[k], v) for k, v in sizes.items() if merged[k] != v}
    if wrong:
        said = ", ".join(f"{k}={a} (the weights have {b})" for k, (a, b) in wrong.items())
        raise WeightsMismatchError(f"config contradicts the pretrained weights {wgts_fname}: {said}; pass "
                                   "config=None to read the sizes from the weights")
    return dict(config)


def _classes(dls: DataLoaders) -> list | None:
    for name in ("classes", "label_vocab"):
        c = getattr(dls, name, None)
        if c is not None:
            return list(c)
    vocab = getattr(dls, "vocab", None)
    if vocab is not None and len(vocab) == 2 and isinstance(vocab[0], (list, tuple)):
        return list(vocab[1])
    return None


def _check_seq_len(dls: DataLoaders, seq_len: int) -> None:
    """Classifier batches are padded in chunks of the loaders' seq_len; the encoder must use the same."""
    dl_seq_len = getattr(dls, "seq_len", None)
    if dl_seq_len is not None and int(dl_seq_len) != int(seq_len):
        warnings.warn(f"the DataLoaders pad documents in chunks of seq_len={dl_seq_len} but the classifier uses "
                      f"seq_len={seq_len}: pass seq_len={dl_seq_len} so chunks line up with the padding",
                      stacklevel=3)


def _first_targets(dl: Loader) -> np.ndarray:
    return np.asarray(next(iter(dl.batches(0)))[1])


def text_classifier_learner(dls: DataLoaders, arch: type = AWD_LSTM, drop_mult: float = 0.5,
                            lin_ftrs: list[int] | None = None, ps: list[float] | None = None, seq_len: int = 72,
                            max_len: int | None = 72 * 20, y_range: tuple[float, float] | None = None,
                            config: Mapping[str, Any] | None = None, pretrained: bool = True,
                            backwards: bool = False, n_out: int | None = None, seed: int = 0, alpha: float = 2.0,
                            beta: float = 1.0, unroll: int = 2, **kwargs) -> TextClassifierLearner:
    """fastai's ``text_classifier_learner``: chunked AWD-LSTM encoder + concat pooling + LinBnDrop head.

    Integer targets -> classification (cross-entropy, metric accuracy); float targets or ``y_range`` ->
    regression (MSE). ``pretrained=True`` loads WT103 into the encoder when the weights are available; unlike
    fastai, being offline only warns (the lesson replaces the encoder with ``load_encoder`` right after).
    """
    if getattr(dls, "is_lm", None):
        raise TypeError("text_classifier_learner got a language model's DataLoaders (is_lm=True): build labelled "
                        "ones with TextDataLoaders.from_...(..., label_col=..., text_vocab=dls_lm.vocab)")
    vocab = _text_vocab(dls)
    regression = getattr(dls, "is_regression", None)
    if regression is None:
        regression = bool(np.issubdtype(_first_targets(dls.train).dtype, np.floating))
    regression = regression or y_range is not None
    classes = None if regression else _classes(dls)
    if n_out is None:
        n_out = getattr(dls, "c", None)
    if n_out is None:
        if regression:
            y = _first_targets(dls.train)
            n_out = 1 if y.ndim == 1 else int(y.shape[-1])
        elif classes is not None:
            n_out = len(classes)
        else:
            raise ValueError("cannot infer the number of classes: pass n_out or give the DataLoaders .classes")
    model = get_text_classifier(arch, len(vocab), int(n_out), seq_len=seq_len, config=config, drop_mult=drop_mult,
                                lin_ftrs=lin_ftrs, ps=ps, pad_idx=int(getattr(dls, "pad_idx", 1)), max_len=max_len,
                                y_range=y_range, seed=seed, alpha=alpha, beta=beta, unroll=unroll)
    n_layers = model.encoder.module.n_layers
    loss = MSELossFlat() if regression else CrossEntropyLossFlat()
    kw = _merge_kwargs(dict(metrics=[] if regression else [accuracy], moms=TEXT_MOMS), kwargs)
    learn = TextClassifierLearner(dls, model, loss_func=loss, splitter=clas_splitter(n_layers), seed=seed, **kw)
    learn.backwards, learn.classes = bool(backwards or getattr(dls, "backwards", False)), classes
    learn._export_args = {"kind": "classifier", "n_out": int(n_out), "seq_len": seq_len, "max_len": max_len,
                          "lin_ftrs": lin_ftrs, "ps": ps, "y_range": None if y_range is None else list(y_range),
                          "config": dict(config or {}), "drop_mult": drop_mult, "alpha": alpha, "beta": beta,
                          "unroll": unroll, "backwards": learn.backwards, "regression": bool(regression)}
    _check_seq_len(dls, seq_len)
    if pretrained:
        try:
            files = _wt103_files(backwards)
        except Exception as e:  # offline: keep the random encoder, the lesson loads its own next
            warnings.warn(f"WT103 weights unavailable ({e}); the encoder starts from random weights: load a "
                          "fine-tuned one with learn.load_encoder(...) or pass pretrained=False", stacklevel=2)
        else:
            learn.load_pretrained(*files)
    return learn


def bidir_preds(fwd: TextClassifierLearner, bwd: TextClassifierLearner, dl_fwd: Loader | None = None,
                dl_bwd: Loader | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ULMFiT paper's bidirectional prediction: the mean of a forward and a backward classifier's
    probabilities over the same documents (``dl_bwd`` holds them reversed). Returns (probs, targets)."""
    if bwd.backwards == fwd.backwards:
        warnings.warn("bidir_preds expects one forward and one backwards learner", stacklevel=2)
    p_f, t_f = fwd.get_preds(dl=dl_fwd)
    p_b, t_b = bwd.get_preds(dl=dl_bwd)
    if p_f.shape != p_b.shape or not np.array_equal(t_f, t_b):
        raise ValueError("the forward and backward loaders do not yield the same documents in the same order "
                         f"({len(t_f)} vs {len(t_b)} targets)")
    return (p_f + p_b) / 2, t_f


__all__ = ["LMLearner", "TextClassifierLearner", "TextLearner", "bidir_preds", "language_model_learner",
           "text_classifier_learner"]
