"""Export spaCy's English tokenizer tables to ``ulmfit_jax/spacy_en_tokenizer.json`` (run with a Python that has spaCy).

Our pure-Python word tokenizer (``ulmfit_jax.word_tokenizer``) runs spaCy's tokenization algorithm over these
tables, so it reproduces ``spacy.blank('en')`` (fastai's base tokenizer) without spaCy installed. The tables are
spaCy's English language data (MIT licence, (c) ExplosionAI GmbH); the JSON keeps that notice.

    /work/refenv/bin/python experiments/bench/export_spacy_tables.py ulmfit_jax/spacy_en_tokenizer.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def export(out_path: str) -> dict:
    """Read the blank English pipeline's tokenizer settings and write them as JSON (atomically)."""
    import spacy
    from spacy.symbols import ORTH

    tok = spacy.blank("en").tokenizer

    def pattern(fn):
        return None if fn is None else {"pattern": fn.__self__.pattern, "flags": int(fn.__self__.flags)}

    rules = {s: [d[ORTH] for d in subs] for s, subs in sorted(tok.rules.items())}
    tables = {
        "source": f"spaCy {spacy.about.__version__} spacy.blank('en').tokenizer",
        "license": "MIT License, Copyright (C) 2016-2024 ExplosionAI GmbH, 2016 spaCy GmbH, 2015 Matthew Honnibal",
        "faster_heuristics": bool(tok.faster_heuristics),
        "prefix": pattern(tok.prefix_search),
        "suffix": pattern(tok.suffix_search),
        "infix": pattern(tok.infix_finditer),
        "token_match": pattern(tok.token_match),
        "url_match": pattern(tok.url_match),
        "rules": rules,
    }
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out_path)), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(tables, f, ensure_ascii=True, indent=0, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out_path)
    return tables


if __name__ == "__main__":
    t = export(sys.argv[1] if len(sys.argv) > 1 else "ulmfit_jax/spacy_en_tokenizer.json")
    print(f"wrote {len(t['rules'])} special cases from {t['source']}")
