"""Vocabularies exactly as fastai v2's ``make_vocab``, numericalization and vocab files."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ulmfit_jax.text_rules import SPECIAL_TOKENS
from ulmfit_jax.vocab import (
    check_vocab,
    decode,
    load_vocab,
    make_vocab,
    make_vocab_from_counts,
    numericalize,
    remap_ids,
    save_vocab,
    token_to_id,
)


def fastai_make_vocab(count, min_freq=3, max_vocab=60000, special_toks=SPECIAL_TOKENS):
    """fastai 2.8's make_vocab, restated here as the reference."""
    vocab = [o for o, c in count.most_common(max_vocab) if c >= min_freq]
    for o in reversed(special_toks):
        if o in vocab:
            vocab.remove(o)
        vocab.insert(0, o)
    vocab = vocab[:max_vocab]
    return vocab + ["xxfake" for _ in range(0, 8 - len(vocab) % 8)]


def random_counter(seed, n_tokens=3000, n_types=400):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n_types)] + ["xxbos", "xxmaj", "xxup"]
    toks = rng.choice(words, size=n_tokens, p=None)
    return Counter(toks.tolist())


@pytest.mark.parametrize("seed,min_freq,max_vocab", [(0, 3, 60000), (1, 1, 50), (2, 2, 100), (3, 5, 7)])
def test_make_vocab_equals_fastai(seed, min_freq, max_vocab):
    c = random_counter(seed)
    assert make_vocab(c, min_freq, max_vocab) == fastai_make_vocab(c, min_freq, max_vocab)


def test_specials_first_and_extra_eight_quirk():
    c = Counter({f"t{i}": 5 for i in range(15)})  # 9 specials + 15 = 24: a multiple of 8 gets 8 more
    v = make_vocab(c)
    assert v[:9] == list(SPECIAL_TOKENS) and len(v) == 32 and v[24:] == ["xxfake"] * 8
    assert len(make_vocab(Counter({f"t{i}": 5 for i in range(100)}), max_vocab=60)) == 64


def test_counts_arrays_equal_counter_path():
    c = random_counter(7)
    itos = list(c)  # insertion (first appearance) order, as corpus ids are numbered
    counts = np.array([c[t] for t in itos])
    assert make_vocab_from_counts(itos, counts, 3, 200) == make_vocab(c, 3, 200)


def test_ties_keep_first_appearance_order():
    c = Counter(["b", "a", "c", "a", "b", "c", "d"] * 3)
    assert make_vocab(c, 1)[9:13] == ["b", "a", "c", "d"]


def test_numericalize_unknown_and_fake_to_zero():
    v = make_vocab(Counter({"hello": 5, "world": 4}))
    ids = numericalize(["xxbos", "hello", "nope", "xxfake", "world"], v)
    assert ids.dtype == np.int32 and ids.tolist() == [2, 9, 0, 0, 10]
    assert "xxfake" not in token_to_id(v)
    assert decode(np.array([2, 9, 1, 10]), v) == ["xxbos", "hello", "world"]


def test_remap_ids():
    v = make_vocab(Counter({"a": 5, "b": 4}))
    table = remap_ids(["b", "zz", "a", "xxpad"], v)
    assert table.tolist() == [10, 0, 9, 1]


def test_save_load_roundtrip(tmp_path):
    v = make_vocab(Counter({"é": 5, "b": 4}))
    save_vocab(tmp_path / "vocab.json", v)
    assert load_vocab(tmp_path / "vocab.json") == v


def test_bad_vocabularies_are_refused(tmp_path):
    with pytest.raises(ValueError, match="xxunk"):
        check_vocab(["a", "b"])
    with pytest.raises(TypeError, match="list of token strings"):
        check_vocab("xxunk xxpad")
    with pytest.raises(ValueError, match="embedding has 16 rows"):
        check_vocab(make_vocab(Counter({"a": 9})) + ["x"] * 8, n_tokens=16)
    (tmp_path / "v.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="JSON list"):
        load_vocab(tmp_path / "v.json")
    with pytest.raises(ValueError, match="min_freq"):
        make_vocab(Counter(), min_freq=0)
