"""``TextDataLoaders``: the lesson's text data calls (fastai v2 names) building our loaders from a tokenized corpus.

    dls_lm   = TextDataLoaders.from_folder(path, is_lm=True, valid_pct=0.1)
    dls_clas = TextDataLoaders.from_folder(path, valid='test', text_vocab=dls_lm.vocab)
    dls      = TextDataLoaders.from_csv(path, 'texts.csv', text_col='text', label_col='label', valid_col='is_valid')
    dls.show_batch()

Conventions (and where they differ from fastai):
  * ``dls.vocab`` is always the text vocabulary (a ``list[str]``, fastai's order and ``xxfake`` padding); a
    classifier's labels are in ``dls.classes`` (fastai's classifier ``dls.vocab`` is ``[text_vocab, classes]``;
    passing that pair as ``text_vocab`` also works). ``dls.c`` is the number of classes (1 for regression,
    the vocabulary size for a language model).
  * The vocabulary is counted on the training split only (fastai counts every text it tokenized).
  * ``from_folder`` tokenizes every text file under ``path`` once and caches the result (arrays, keyed by the
    tokenizer, its rules and the files), so the classifier built after the language model reuses it. A folder
    or a ``.tar.gz`` of one works the same. The cache lives in ``cache_dir`` (default: ``$ULMFIT_JAX_CACHE`` or
    ``~/.cache/ulmfit_jax/corpora``), not beside the data as fastai's ``<path>_tok``; ``cache_dir=False`` keeps
    everything in memory. Labels in ``unlabelled`` folders (IMDB's ``unsup``) serve the language model only.
  * ``seed=None`` means seed 0: splits and shuffles are reproducible by default (fastai draws a fresh seed).
  * Missing texts (NaN) become empty documents, with a warning (fastai tokenizes the string ``'nan'``).
  * Labels seen only in the validation split are an error naming them (fastai v2 fails later with NaN targets).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from learner_jax.data import DataLoaders
from learner_jax.figures import show_table
from ulmfit_jax.corpus import Corpus, build_corpus, cached_corpus, corpus_key, texts_key
from ulmfit_jax.sentencepiece_tok import SentencePieceTokenizer
from ulmfit_jax.text_files import SKIP_FILES, files_key, is_archive, iter_text_files, list_text_files
from ulmfit_jax.text_loaders import LMDataLoader, SortedDL
from ulmfit_jax.text_rules import FLD, PAD, undo_rules
from ulmfit_jax.tokenize import Tokenizer, iter_tokenize
from ulmfit_jax.vocab import check_vocab, make_vocab_from_counts, numericalize, remap_ids, token_to_id

PAD_IDX = 1  # position of xxpad in every vocabulary


def _as_tokenizer(tok_tfm: Any) -> Tokenizer:
    """``tok_tfm``: None (spaCy port), 'spacy', 'sentencepiece', a base tokenizer, or a ``Tokenizer``."""
    if isinstance(tok_tfm, Tokenizer):
        return tok_tfm
    if tok_tfm in ("sentencepiece", "subword"):
        return Tokenizer(SentencePieceTokenizer())
    return Tokenizer(tok_tfm)


def _as_text_vocab(text_vocab: Any) -> list[str]:
    """A vocabulary given by the user: a token list, or fastai's classifier pair ``[text_vocab, classes]``."""
    if (isinstance(text_vocab, (list, tuple)) and len(text_vocab) == 2
            and isinstance(text_vocab[0], (list, tuple)) and isinstance(text_vocab[1], (list, tuple))):
        text_vocab = text_vocab[0]
    vocab = list(text_vocab)
    check_vocab(vocab)
    return vocab


def _random_split(n: int, valid_pct: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """fastai's ``RandomSplitter``: the first ``int(valid_pct * n)`` of a permutation are the validation set."""
    if not 0 <= valid_pct < 1:
        raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(valid_pct * n)
    return perm[cut:], perm[:cut]


def _check_classes(classes: Sequence | None, train_labels: np.ndarray) -> None:
    """Refuse a text vocabulary passed as the class list (fastai v1's ``vocab=data_lm.vocab``) and a training
    split with fewer than two classes."""
    if classes is not None:
        items = list(classes)
        nested = len(items) == 2 and all(isinstance(c, (list, tuple)) for c in items)
        if nested or any(str(c) in ("xxunk", "xxpad", "xxbos") for c in items):
            raise ValueError(f"vocab= names the classes, but this is a text vocabulary ({len(items)} entries: "
                             f"{[str(c)[:20] for c in items[:4]]}...): pass the language model's vocabulary as "
                             "text_vocab=dls_lm.vocab (fastai v1's vocab=data_lm.vocab), and vocab= only for the "
                             "class list")
    found = sorted({str(v) for v in train_labels.tolist()})
    if len(found) < 2:
        raise ValueError(f"the training split has {len(found)} class(es) {found}: a classifier needs at least two; "
                         "check label_col and the split (or use y_block='regression' for numbers)")


@dataclass(repr=False, eq=False)
class TextDataLoaders(DataLoaders):
    """Training and validation text loaders plus what is needed to read them back (vocab, classes, tokenizer)."""

    vocab: list[str] = field(default_factory=list)
    is_lm: bool = False
    seq_len: int = 72
    backwards: bool = False
    classes: list | None = None
    is_regression: bool = False
    tokenizer: Tokenizer | None = None
    pad_idx: int = PAD_IDX
    n_workers: int | None = None
    max_len: int | None = None

    def __repr__(self) -> str:
        kind = "language model" if self.is_lm else "regression" if self.is_regression else \
            f"classifier {self.classes[:5]}{'...' if len(self.classes or []) > 5 else ''}"
        return (f"TextDataLoaders({kind}: {len(self.train)} train / {len(self.valid)} valid batches of "
                f"bs={self.train.bs}, seq_len={self.seq_len}, vocab {len(self.vocab)})")

    @property
    def c(self) -> int:
        """Output size: vocabulary size (LM), number of classes, or 1 (regression)."""
        if self.is_lm:
            return len(self.vocab)
        return 1 if self.is_regression else len(self.classes or [])

    @property
    def bs(self) -> int:
        return self.train.bs

    # ---- inspection -----------------------------------------------------------------------------------
    def decode(self, ids: np.ndarray, readable: bool = False) -> str:
        """Text of a row of ids: tokens joined by spaces (as fastai shows them) or, ``readable``, rules undone."""
        toks = [self.vocab[i] for i in np.asarray(ids).tolist() if i != self.pad_idx]
        return undo_rules(toks) if readable else " ".join(toks)

    def show_batch(self, dl: Any = None, max_n: int = 9, trunc_at: int = 150, readable: bool = False,
                   show: bool = True) -> pd.DataFrame:
        """The first ``max_n`` rows of a training batch as a table (``text`` [, ``text_``] or ``category``),
        returned (a notebook displays it) and printed outside IPython when ``show``."""
        x, y, w = next((self.train if dl is None else dl).batches(0))
        rows = []
        for i in range(min(max_n, int((w > 0).sum()))):
            xi = x[i][x[i] != self.pad_idx][:trunc_at]
            row = {"text": self.decode(xi, readable)}
            if self.is_lm:
                row["text_"] = self.decode(y[i][:trunc_at], readable)
            elif self.is_regression:
                row["target"] = float(y[i])
            else:
                row["category"] = self.classes[int(y[i])]
            rows.append(row)
        return show_table(pd.DataFrame(rows), show, max_colwidth=400)

    def decode_inputs(self, x: np.ndarray, readable: bool = True) -> pd.DataFrame:
        """A batch of token ids as a ``text`` column (padding dropped, rules undone), for interpretation tables."""
        x = np.asarray(x)
        rows = [r[r != self.pad_idx] for r in x]
        return pd.DataFrame({"text": [self.decode(r[::-1] if self.backwards else r, readable) for r in rows]})

    # ---- new data ---------------------------------------------------------------------------------------
    @functools.cached_property
    def o2i(self) -> dict[str, int]:
        """token -> id of ``vocab`` (unknown tokens: use ``.get(t, 0)``)."""
        return token_to_id(self.vocab)

    def numericalize_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, offsets) of ``texts`` tokenized and numericalized like the training data."""
        o2i = self.o2i
        docs = [numericalize(t, o2i) for t in iter_tokenize(list(texts), self.n_workers, self.tokenizer)]
        lengths = np.fromiter(map(len, docs), np.int64, count=len(docs))
        ids = np.concatenate(docs) if docs else np.zeros(0, np.int32)
        return ids.astype(np.int32), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    def test_dl(self, texts: Sequence[str] | pd.Series, bs: int | None = None) -> LMDataLoader | SortedDL:
        """A loader over new texts, in their order (fastai's ``dls.test_dl``); classifier targets are 0."""
        if isinstance(texts, pd.DataFrame):
            raise TypeError("test_dl takes a list (or Series) of texts, not a DataFrame: pass df[text_col]")
        texts = [str(t) for t in (texts.tolist() if isinstance(texts, pd.Series) else texts)]
        ids, offsets = self.numericalize_texts(texts)
        bs = bs or self.valid.bs
        if self.is_lm:
            return LMDataLoader(ids, offsets, bs=bs, seq_len=self.seq_len, backwards=self.backwards)
        y = np.zeros(len(texts), np.float32 if self.is_regression else np.int32)
        return SortedDL(ids, offsets, None, y, bs=bs, seq_len=self.seq_len, backwards=self.backwards,
                        sort=False, pad_idx=self.pad_idx, max_len=self.max_len)

    # ---- constructors -----------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, path: str | os.PathLike, train: str = "train", valid: str = "valid",
                    valid_pct: float | None = None, seed: int | None = None, vocab: Sequence | None = None,
                    text_vocab: Sequence[str] | None = None, is_lm: bool = False, tok_tfm: Any = None,
                    seq_len: int = 72, backwards: bool = False, bs: int = 64, val_bs: int | None = None,
                    min_freq: int = 3, max_vocab: int = 60000, n_workers: int | None = None,
                    cache_dir: str | os.PathLike | bool | None = None, exclude: Sequence[str] = SKIP_FILES,
                    unlabelled: Sequence[str] = ("unsup",), max_len: int | None = None) -> TextDataLoaders:
        """Texts in ``path/<split>/<label>/*.txt`` (a folder or a ``.tar.gz`` of it), as fastai's ``from_folder``.

        Language model: with ``valid_pct`` every text file is used and a random share is held out; without it,
        files under ``train`` and ``valid``. Classifier: labels are parent folder names, the split is the
        grandparent (``train``/``valid``) or random with ``valid_pct``; ``vocab`` fixes the class list.
        """
        path = Path(path)
        tokenizer = _as_tokenizer(tok_tfm)
        seed = 0 if seed is None else int(seed)
        if not path.exists():
            raise FileNotFoundError(f"no folder or archive at {path}")

        def split(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
            parts = [PurePosixPath(n).parts for n in names]
            labelled = [len(p) >= 2 and p[-2] not in unlabelled for p in parts]
            if valid_pct is not None:
                keep = np.arange(len(names)) if is_lm else np.flatnonzero(labelled)
                tr, va = _random_split(len(keep), valid_pct, seed)
                tr, va = keep[tr], keep[va]
            else:
                gp = [p[-3] if len(p) >= 3 else None for p in parts]
                ok = [True] * len(names) if is_lm else labelled
                tr = np.array([i for i, g in enumerate(gp) if g == train and ok[i]], np.int64)
                va = np.array([i for i, g in enumerate(gp) if g == valid and ok[i]], np.int64)
                if len(tr) == 0:
                    raise ValueError(f"no text files in {path} under a {train!r} folder (found e.g. "
                                     f"{list(names[:3])}); pass train=/valid= folder names or valid_pct")
                if len(va) == 0:
                    raise ValueError(f"no text files in {path} under a {valid!r} folder: pass valid= the name "
                                     "of the validation folder (valid='test' for IMDB) or valid_pct")
            labels = None if is_lm else [p[-2] for p in parts]
            return tr, va, labels

        if not tokenizer_needs_setup(tokenizer):
            corpus = _folder_corpus(path, tokenizer, n_workers, cache_dir, exclude)
            tr, va, labels = split(corpus.names)
        else:  # a subword model is trained on the training texts first
            names = list_text_files(path, exclude=exclude)
            tr, va, labels = split(names)
            train_names = {names[i] for i in tr.tolist()}
            tokenizer.setup([t for n, t in iter_text_files(path, exclude=exclude) if n in train_names])
            corpus = _folder_corpus(path, tokenizer, n_workers, cache_dir, exclude)
            if corpus.names != names:
                raise RuntimeError(f"the files under {path} changed while reading them")
        return cls._from_corpus(corpus, tr, va, labels=labels, is_lm=is_lm, text_vocab=text_vocab,
                                classes=vocab, tokenizer=tokenizer, seq_len=seq_len, backwards=backwards,
                                bs=bs, val_bs=val_bs, seed=seed, min_freq=min_freq, max_vocab=max_vocab,
                                n_workers=n_workers, max_len=max_len)

    @classmethod
    def from_df(cls, df: pd.DataFrame, path: str | os.PathLike = ".", valid_pct: float = 0.2,
                seed: int | None = None, text_col: Any = 0, label_col: Any = 1, label_delim: str | None = None,
                y_block: str | None = None, text_vocab: Sequence[str] | None = None, is_lm: bool = False,
                valid_col: Any = None, tok_tfm: Any = None, seq_len: int = 72, backwards: bool = False,
                bs: int = 64, val_bs: int | None = None, min_freq: int = 3, max_vocab: int = 60000,
                mark_fields: bool | None = None, vocab: Sequence | None = None, n_workers: int | None = None,
                cache_dir: str | os.PathLike | bool | None = False,
                max_len: int | None = None) -> TextDataLoaders:
        """Texts in ``df[text_col]`` (one or several columns), labels in ``df[label_col]``.

        Split by the boolean column ``valid_col`` or at random (``valid_pct``). ``y_block='regression'`` makes
        float targets; otherwise labels are classes (sorted, from the training split, or ``vocab``).
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_df needs a pandas DataFrame, got {type(df).__name__}")
        if label_delim is not None:
            raise NotImplementedError("multi-label text classification (label_delim) is not supported")
        if y_block not in (None, "category", "regression"):
            raise ValueError(f"y_block must be None, 'category' or 'regression', got {y_block!r}")
        seed = 0 if seed is None else int(seed)
        text_cols = [_column(df, c, "text_col") for c in (text_col if isinstance(text_col, list) else [text_col])]
        if len(text_cols) == 1:
            _check_text_column(df, text_cols[0], text_col)
        texts = _join_texts(df, text_cols, len(text_cols) > 1 if mark_fields is None else mark_fields)
        labels = None
        if not is_lm:
            lcol = _column(df, label_col, "label_col")
            labels = df[lcol].to_numpy()
            if pd.isna(labels).any():
                raise ValueError(f"label column {lcol!r} has {int(pd.isna(labels).sum())} missing values")
        if valid_col is not None:
            vcol = _column(df, valid_col, "valid_col")
            is_valid = df[vcol].to_numpy()
            if is_valid.dtype != bool:
                is_valid = pd.Series(is_valid).astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy()
            tr, va = np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
        else:
            tr, va = _random_split(len(df), valid_pct, seed)
        tokenizer = _as_tokenizer(tok_tfm)
        if tokenizer_needs_setup(tokenizer):
            tokenizer.setup([texts[i] for i in tr.tolist()])
        if cache_dir is False:
            corpus = build_corpus(texts, tokenizer, n_workers)
        else:
            key = corpus_key(tokenizer.key, texts_key(texts))
            corpus = cached_corpus(key, lambda d: build_corpus(texts, tokenizer, n_workers, out=d,
                                                              meta={"key": key}), cache_dir, "df")
        return cls._from_corpus(corpus, tr, va, labels=labels, is_lm=is_lm, text_vocab=text_vocab,
                                classes=vocab, tokenizer=tokenizer, seq_len=seq_len, backwards=backwards,
                                bs=bs, val_bs=val_bs, seed=seed, min_freq=min_freq, max_vocab=max_vocab,
                                n_workers=n_workers, max_len=max_len, regression=y_block == "regression")

    @classmethod
    def from_csv(cls, path: str | os.PathLike, csv_fname: str = "labels.csv", header: Any = "infer",
                 delimiter: str | None = None, encoding: str | None = None, **kwargs: Any) -> TextDataLoaders:
        """``from_df`` on ``path/csv_fname`` (``encoding`` as pandas', default UTF-8)."""
        fname = Path(path) / csv_fname
        if not fname.exists():
            raise FileNotFoundError(f"no CSV file at {fname}")
        # pandas >= 3 reads delimiter=None as "sniff the separator"; fastai (pandas 1-2) meant the default ','
        opts = ({} if delimiter is None else {"delimiter": delimiter}) | ({} if encoding is None else
                                                                          {"encoding": encoding})
        try:
            df = pd.read_csv(fname, header=header, **opts)
        except UnicodeDecodeError as e:
            raise ValueError(f"{fname} is not {encoding or 'UTF-8'} text ({e}): pass its encoding, e.g. "
                             "encoding='latin-1', or re-save it as UTF-8") from e
        return cls.from_df(df, path=path, **kwargs)

    @classmethod
    def from_tfds(cls, name: str = "imdb_reviews", split: Sequence[str] = ("train", "test"),
                  data_dir: str | None = None, text_key: str = "text", label_key: str = "label",
                  **kwargs: Any) -> TextDataLoaders:
        """A TensorFlow Datasets text dataset (needs the ``tfds`` extra), read with ``tfds.data_source``.

        ``split`` = (training split, validation split); labels are mapped to the dataset's class names.
        """
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:
            raise ImportError("from_tfds needs tensorflow-datasets: pip install 'lesson4-jax[tfds]'") from e
        frames = []
        for i, s in enumerate(split):
            src = tfds.data_source(name, split=s, data_dir=data_dir)
            feature = src.dataset_info.features[label_key] if label_key in src.dataset_info.features else None
            names = getattr(feature, "names", None)
            rows = [src[j] for j in range(len(src))]
            text = [r[text_key].decode("utf-8", "replace") if isinstance(r[text_key], bytes) else str(r[text_key])
                    for r in rows]
            label = [names[int(r[label_key])] if names else r[label_key] for r in rows]
            frames.append(pd.DataFrame({"text": text, "label": label, "is_valid": i == 1}))
        df = pd.concat(frames, ignore_index=True)
        return cls.from_df(df, text_col="text", label_col="label", valid_col="is_valid", **kwargs)

    # ---- shared assembly ----------------------------------------------------------------------------------
    @classmethod
    def _from_corpus(cls, corpus: Corpus, tr: np.ndarray, va: np.ndarray, *, labels: Sequence | None,
                     is_lm: bool, text_vocab: Any, classes: Sequence | None, tokenizer: Tokenizer, seq_len: int,
                     backwards: bool, bs: int, val_bs: int | None, seed: int, min_freq: int, max_vocab: int,
                     n_workers: int | None, max_len: int | None, regression: bool = False) -> TextDataLoaders:
        if text_vocab is None:
            vocab = make_vocab_from_counts(corpus.itos, corpus.counts(tr), min_freq, max_vocab)
        else:
            vocab = _as_text_vocab(text_vocab)
        remap = remap_ids(corpus.itos, vocab)
        val_bs = val_bs or bs
        common = dict(vocab=vocab, is_lm=is_lm, seq_len=seq_len, backwards=backwards, tokenizer=tokenizer,
                      n_workers=n_workers, max_len=max_len)
        if is_lm:
            train = LMDataLoader(corpus.ids, corpus.offsets, tr, remap, bs, seq_len, shuffle=True, seed=seed,
                                 backwards=backwards)
            try:
                valid = LMDataLoader(corpus.ids, corpus.offsets, va, remap, val_bs, seq_len, seed=seed,
                                     backwards=backwards)
            except ValueError as e:
                raise ValueError(f"validation split ({len(va)} documents): {e}") from None
            return cls(train, valid, **common)
        labels = np.asarray(labels, dtype=object if not regression else np.float32)
        if not regression:
            _check_classes(classes, labels[tr])
        if regression:
            y, cls_list = labels.astype(np.float32), None
        else:
            cls_list = sorted(set(labels[tr].tolist())) if classes is None else list(classes)
            index = {c: i for i, c in enumerate(cls_list)}
            unseen = sorted({str(v) for v in labels[np.concatenate([tr, va])].tolist() if v not in index})
            if unseen:
                where = "the given vocab" if classes is not None else "the training split"
                raise ValueError(f"label(s) {unseen[:5]} are not in {where} ({cls_list[:10]}): a classifier "
                                 "cannot predict them; fix the labels or pass vocab=[...] with every class")
            y = np.array([index.get(v, 0) for v in labels.tolist()], np.int32)
        train = SortedDL(corpus.ids, corpus.offsets, tr, y[tr], remap, bs, seq_len, shuffle=True, seed=seed,
                         pad_idx=PAD_IDX, backwards=backwards, max_len=max_len)
        valid = SortedDL(corpus.ids, corpus.offsets, va, y[va], remap, val_bs, seq_len, shuffle=False,
                         seed=seed, pad_idx=PAD_IDX, backwards=backwards, max_len=max_len)
        return cls(train, valid, classes=cls_list, is_regression=regression, **common)


def tokenizer_needs_setup(tokenizer: Tokenizer) -> bool:
    """Whether the base tokenizer must be trained on the training texts first (an untrained subword model)."""
    return hasattr(tokenizer.tok, "setup") and not getattr(tokenizer.tok, "is_trained", True)


def _column(df: pd.DataFrame, col: Any, what: str) -> Any:
    if isinstance(col, int) and col not in df.columns:
        if not 0 <= col < len(df.columns):
            raise KeyError(f"{what}={col} is out of range: the frame has {len(df.columns)} columns "
                           f"{list(df.columns)}")
        return df.columns[col]
    if col not in df.columns:
        raise KeyError(f"{what}={col!r} is not a column of the frame; columns are {list(df.columns)}")
    return col


def _check_text_column(df: pd.DataFrame, col: Any, text_col: Any) -> None:
    """Refuse a text column that holds a few short repeated values while another column holds long distinct
    strings: the columns are swapped. fastai's defaults (``text_col=0, label_col=1``, by position) pick the
    label column of IMDB_SAMPLE's ``texts.csv`` (label,text,is_valid) and train on the words 'positive'/'negative'."""
    n = len(df)
    if n < 10:
        return
    texts = df[col].astype(str)
    if texts.nunique() > max(2, min(50, n // 20)) or texts.str.len().mean() >= 30:
        return
    for other in df.columns:
        if other == col or not pd.api.types.is_object_dtype(df[other].dtype) and \
                not pd.api.types.is_string_dtype(df[other].dtype):
            continue
        vals = df[other].dropna().astype(str)
        long = vals.str.len().mean() >= 4 * max(texts.str.len().mean(), 1)
        if len(vals) > n // 2 and vals.nunique() > n // 2 and long:
            examples = sorted(texts.unique().tolist())[:5]
            raise ValueError(
                f"text_col={text_col!r} is column {col!r}, which holds only {texts.nunique()} distinct short values "
                f"{examples}: it looks like labels, while column {other!r} holds long distinct texts. fastai's "
                f"defaults are text_col=0, label_col=1 (positions); pass the names, e.g. "
                f"TextDataLoaders.from_csv(path, 'texts.csv', text_col={other!r}, label_col={col!r}"
                + (", valid_col='is_valid')" if "is_valid" in df.columns else ")"))


def _join_texts(df: pd.DataFrame, cols: list, mark_fields: bool) -> list[str]:
    """One text per row: the columns joined by spaces, each preceded by ``xxfld i`` with ``mark_fields``."""
    n_missing = int(sum(df[c].isna().sum() for c in cols))
    if n_missing:
        warnings.warn(f"{n_missing} missing text value(s) in {cols} are treated as empty texts", stacklevel=3)
    columns = [df[c].astype(object).where(df[c].notna(), "").astype(str).tolist() for c in cols]
    if not mark_fields:
        return [" ".join(vals) for vals in zip(*columns)]
    return [" ".join(f"{FLD} {i + 1} {v}" for i, v in enumerate(vals)) for vals in zip(*columns)]


def _folder_corpus(path: Path, tokenizer: Tokenizer, n_workers: int | None,
                   cache_dir: str | os.PathLike | bool | None, exclude: Sequence[str]) -> Corpus:
    """Every text file under ``path`` tokenized (from the cache when possible)."""
    names: list[str] = []

    def texts():
        for name, text in iter_text_files(path, exclude=exclude):
            names.append(name)
            yield text

    if cache_dir is False:
        return build_corpus(texts(), tokenizer, n_workers, names=names)
    key = corpus_key(tokenizer.key, files_key(path, exclude=exclude))
    stem = path.name.split(".")[0] if is_archive(path) else path.name
    return cached_corpus(key, lambda d: build_corpus(texts(), tokenizer, n_workers, names=names, out=d,
                                                     meta={"key": key, "source": str(path)}),
                         None if cache_dir in (None, True) else cache_dir, stem or "folder")


__all__ = ["PAD", "PAD_IDX", "TextDataLoaders", "tokenizer_needs_setup"]
