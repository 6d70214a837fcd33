"""SentencePiece subword tokenization (fastai's ``SentencePieceTokenizer``), usable wherever a base tokenizer is.

The model (unigram or BPE) is trained on the rule-processed training texts, with fastai's special tokens as
user-defined symbols so they are never split. fastai keeps them as ``▁xxbos``-style pieces, which then miss the
``xxbos`` entries at the head of the vocabulary; we map those pieces back to the plain special tokens (a
deliberate difference) so ``xxbos``/``xxpad``/``xxunk`` keep their fixed ids with subwords too. The trained
model travels as bytes (picklable to worker processes) and can be saved and reloaded with ``sp_model``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ulmfit_jax.text_rules import SPECIAL_TOKENS

# languages whose alphabets are small: fastai's character coverage 0.99999 (0.9998 otherwise)
EU_LANGS = ("bg cs da de el en es et fi fr ga hr hu it lt lv mt nl pl pt ro sk sl sv").split()
SPACE = "\u2581"


class SentencePieceTokenizer:
    """Subword tokenizer: ``setup(texts)`` trains it (unless ``sp_model`` is given), ``tok(texts)`` yields pieces."""

    def __init__(self, lang: str = "en", special_toks: Sequence[str] | None = None,
                 sp_model: str | os.PathLike | None = None, vocab_sz: int | None = None,
                 max_vocab_sz: int = 30000, model_type: str = "unigram", char_coverage: float | None = None,
                 max_sentences: int = 1_000_000, seed: int = 0):
        try:
            import sentencepiece  # noqa: F401
        except ImportError as e:  # pragma: no cover - sentencepiece is a dependency
            raise ImportError("SentencePieceTokenizer needs the sentencepiece package") from e
        if model_type not in ("unigram", "bpe", "char", "word"):
            raise ValueError(f"model_type must be unigram, bpe, char or word, got {model_type!r}")
        self.lang, self.vocab_sz, self.max_vocab_sz, self.model_type = lang, vocab_sz, max_vocab_sz, model_type
        self.special_toks = tuple(SPECIAL_TOKENS if special_toks is None else special_toks)
        self.char_coverage = char_coverage if char_coverage is not None else (
            0.99999 if lang in EU_LANGS else 0.9998)
        self.max_sentences, self.seed = int(max_sentences), int(seed)
        self.model_bytes: bytes | None = Path(sp_model).read_bytes() if sp_model is not None else None
        self._sp = None

    @property
    def is_trained(self) -> bool:
        return self.model_bytes is not None

    def _vocab_size(self, texts: Sequence[str]) -> int:
        """fastai's default: a quarter of the distinct words, a multiple of 8, between 29 and ``max_vocab_sz``.

        Unlike fastai, never fewer than the pieces SentencePiece requires (every character, the special tokens
        and ``<unk>``), so a small corpus trains instead of failing.
        """
        cnt: Counter = Counter()
        for t in texts:
            cnt.update(t.split())
            if len(cnt) // 4 > self.max_vocab_sz:
                return self.max_vocab_sz
        res = len(cnt) // 4
        res += (-res) % 8
        required = len(set().union(*map(set, texts))) + len(self.special_toks) + 1
        return max(res, 29, required + (-required) % 8)

    def setup(self, texts: Sequence[str]) -> None:
        """Train the model on ``texts`` (already through the rules); a no-op once trained."""
        if self.is_trained:
            return
        import sentencepiece as spm

        texts = [t for t in texts if t.strip()]
        if not texts:
            raise ValueError("cannot train SentencePiece on no text: the training split is empty")
        vocab_sz = self.vocab_sz or self._vocab_size(texts)
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_sz,
            character_coverage=self.char_coverage, model_type=self.model_type,
            unk_id=len(self.special_toks), pad_id=-1, bos_id=-1, eos_id=-1, minloglevel=2,
            user_defined_symbols=[SPACE + s for s in self.special_toks], hard_vocab_limit=False,
            input_sentence_size=self.max_sentences, shuffle_input_sentence=True)
        self.model_bytes = model.getvalue()
        self._sp = None

    def _processor(self):
        if self._sp is None:
            if self.model_bytes is None:
                raise RuntimeError("SentencePieceTokenizer is not trained: call setup(texts) or pass sp_model")
            import sentencepiece as spm
            self._sp = spm.SentencePieceProcessor(model_proto=self.model_bytes)
        return self._sp

    def __call__(self, texts: Iterable[str]) -> Iterator[list[str]]:
        sp = self._processor()
        specials = {SPACE + s: s for s in self.special_toks}
        for t in texts:
            yield [specials.get(p, p) for p in sp.encode(str(t), out_type=str)]

    def save(self, path: str | os.PathLike) -> None:
        """Write the trained model (a ``.model`` file SentencePiece itself can load)."""
        if self.model_bytes is None:
            raise RuntimeError("nothing to save: the SentencePiece model is not trained")
        tmp = f"{os.fspath(path)}.tmp"
        Path(tmp).write_bytes(self.model_bytes)
        os.replace(tmp, path)

    def model_key(self) -> str:
        """Identifies the trained model (part of corpus cache keys)."""
        if self.model_bytes is None:
            raise RuntimeError("an untrained SentencePiece model has no key yet: call setup first")
        return hashlib.sha256(self.model_bytes).hexdigest()[:16]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_sp"} | {"_sp": None}


def detokenize_pieces(pieces: Iterable[str], special_toks: Sequence[str] = SPECIAL_TOKENS) -> str:
    """Text of SentencePiece pieces (``▁`` marks a space); special tokens are words of their own."""
    specials = set(special_toks)
    return "".join(f" {p}" if p in specials else p.replace(SPACE, " ") for p in pieces).strip()
