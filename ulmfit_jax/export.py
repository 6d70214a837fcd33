"""Export of text learners (``learner_jax.export``): vocabulary, classes, loader settings and the tokenizer (its
rules by name, the base tokenizer's kind, a SentencePiece model's bytes), rebuilt into ``TextDataLoaders`` with
no corpus, so ``predict`` and ``test_dl`` tokenize new text exactly as the training data was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from learner_jax.data import DataLoader
from learner_jax.export import learner_settings, plain_list, restore_metrics
from learner_jax.metrics import accuracy, error_rate, mae, mse, perplexity, rmse
from ulmfit_jax import text_rules
from ulmfit_jax.sentencepiece_tok import SentencePieceTokenizer
from ulmfit_jax.text_rules import SPECIAL_TOKENS
from ulmfit_jax.tokenize import Tokenizer
from ulmfit_jax.word_tokenizer import SpacyTokenizer, WordTokenizer

METRICS = {m.name: m for m in (accuracy, error_rate, mae, mse, rmse, perplexity)}


def _rule_name(rule: Any) -> str:
    """A rule is exported by name: only the functions of ``ulmfit_jax.text_rules`` (fastai's rules) qualify."""
    name = getattr(rule, "__name__", None)
    if getattr(rule, "__module__", None) != text_rules.__name__ or getattr(text_rules, name or "", None) is not rule:
        raise TypeError(f"cannot export the tokenizer rule {rule!r}: only fastai's rules in ulmfit_jax.text_rules "
                        "can be exported (a custom function would have to travel as code)")
    return name


def _rule(name: str) -> Any:
    rule = getattr(text_rules, name, None)
    if not callable(rule) or getattr(rule, "__module__", None) != text_rules.__name__:
        raise ValueError(f"unknown tokenizer rule {name!r} in the exported file")
    return rule


def tokenizer_state(tok: Tokenizer, extra: dict[str, np.ndarray]) -> dict:
    base = tok.tok
    state = {"rules": [_rule_name(r) for r in tok.rules], "post_rules": [_rule_name(r) for r in tok.post_rules],
             "special_toks": list(getattr(base, "special_toks", SPECIAL_TOKENS))}
    if isinstance(base, WordTokenizer):
        return state | {"base": "word"}
    if isinstance(base, SpacyTokenizer):
        return state | {"base": "spacy", "lang": getattr(base, "lang", "en")}
    if isinstance(base, SentencePieceTokenizer):
        if base.model_bytes is None:
            raise ValueError("the SentencePiece tokenizer is not trained: nothing to export")
        extra["sentencepiece_model"] = np.frombuffer(base.model_bytes, np.uint8)
        return state | {"base": "sentencepiece", "lang": base.lang}
    raise TypeError(f"cannot export the base tokenizer {type(base).__name__}: export knows WordTokenizer, "
                    "SpacyTokenizer and SentencePieceTokenizer")


def tokenizer_from_state(s: dict, extra: dict[str, np.ndarray]) -> Tokenizer:
    rules, post = [_rule(n) for n in s["rules"]], [_rule(n) for n in s["post_rules"]]
    specials = tuple(s["special_toks"])
    if s["base"] == "word":
        tok = Tokenizer(None, rules, post)
        if specials != tuple(tok.tok.special_toks):
            tok.tok = WordTokenizer(special_toks=specials, post_rules=tok.post_rules)
        return tok
    if s["base"] == "spacy":
        return Tokenizer("spacy", rules, post)
    if s["base"] == "sentencepiece":
        sp = SentencePieceTokenizer(lang=s["lang"], special_toks=specials)
        sp.model_bytes = extra["sentencepiece_model"].tobytes()
        return Tokenizer(sp, rules, post)
    raise ValueError(f"unknown base tokenizer {s['base']!r} in the exported file")


def export_meta(learn: Any) -> tuple[dict, dict[str, np.ndarray]]:
    args = getattr(learn, "_export_args", None)
    if args is None:
        raise TypeError(f"this {type(learn).__name__} was not made by language_model_learner or "
                        "text_classifier_learner: export needs the model's settings")
    dls, extra = learn.dls, {}
    tokenizer = getattr(dls, "tokenizer", None)
    if tokenizer is None:
        raise TypeError("export needs TextDataLoaders (their vocab and tokenizer)")
    classes = getattr(learn, "classes", None)
    data = {"vocab": list(dls.vocab), "is_lm": bool(dls.is_lm), "seq_len": int(dls.seq_len),
            "backwards": bool(dls.backwards), "is_regression": bool(dls.is_regression),
            "classes": None if classes is None else plain_list(classes, "the class labels"),
            "pad_idx": int(dls.pad_idx), "max_len": dls.max_len, "n_workers": dls.n_workers,
            "bs": int(dls.train.bs), "val_bs": int(dls.valid.bs), "tokenizer": tokenizer_state(tokenizer, extra)}
    return {"data": data, "model": args, "learner": learner_settings(learn)}, extra


def from_export(meta: dict, extra: dict[str, np.ndarray], path: Path, mesh: Any) -> Any:
    from ulmfit_jax.learner import language_model_learner, text_classifier_learner
    from ulmfit_jax.text_data import TextDataLoaders

    d, m, ls = meta["data"], meta["model"], meta["learner"]
    empty = [DataLoader(np.zeros((0, d["seq_len"]), np.int32), np.zeros(0, np.int32), bs=b)
             for b in (d["bs"], d["val_bs"])]
    dls = TextDataLoaders(*empty, vocab=d["vocab"], is_lm=d["is_lm"], seq_len=d["seq_len"], backwards=d["backwards"],
                          classes=d["classes"], is_regression=d["is_regression"],
                          tokenizer=tokenizer_from_state(d["tokenizer"], extra), pad_idx=d["pad_idx"],
                          n_workers=d["n_workers"], max_len=d["max_len"])
    common = dict(config=m["config"] or None, drop_mult=m["drop_mult"], pretrained=False, backwards=m["backwards"],
                  seed=ls["seed"], alpha=m["alpha"], beta=m["beta"], unroll=m["unroll"], lr=ls["lr"], wd=ls["wd"],
                  moms=ls["moms"], path=path, model_dir=ls["model_dir"], mesh=mesh,
                  metrics=restore_metrics(ls["metrics"], _metrics(m["kind"])))
    if m["kind"] == "lm":
        return language_model_learner(dls, **common)
    y_range = None if m["y_range"] is None else tuple(m["y_range"])
    return text_classifier_learner(dls, lin_ftrs=m["lin_ftrs"], ps=m["ps"], seq_len=m["seq_len"],
                                   max_len=m["max_len"], y_range=y_range, n_out=m["n_out"], **common)


def _metrics(kind: str) -> dict[str, Any]:
    if kind == "lm":
        from ulmfit_jax.lm_head import lm_accuracy

        return {"accuracy": lm_accuracy, "perplexity": perplexity}
    return METRICS
