"""Text loaders (fastai v2 LM streaming, sortish classifier batches) and the TextDataLoaders constructors."""

from __future__ import annotations

import tarfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ulmfit_jax.text_data as text_data
from ulmfit_jax.text_data import TextDataLoaders
from ulmfit_jax.text_loaders import LMDataLoader, SortedDL, bucket_len, pad_chunk_layout, sortish_order
from ulmfit_jax.tokenize import tokenize1

WORDS = ("the movie was great and the acting superb but plot thin ending odd music loud cast fine "
         "story slow camera nice dialogue poor effects cheap").split()


def random_corpus(seed, n_docs=40, max_len=60):
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, max_len, n_docs)
    ids = rng.integers(0, 50, int(lens.sum())).astype(np.int32)
    return ids, np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)


def fastai_lm_batches(docs, bs, seq_len):
    """fastai 2.8 LMDataLoader's batches over documents already in stream order (the reference)."""
    stream = np.concatenate(docs)
    bl = ((len(stream) - 1) // bs * bs) // bs
    n_batches = bl // seq_len + int(bl % seq_len != 0)
    last_len = bl - (n_batches - 1) * seq_len
    out = []
    for b in range(n_batches):
        sl = last_len if b == n_batches - 1 else seq_len
        rows = [stream[r * bl + b * seq_len: r * bl + b * seq_len + sl + 1] for r in range(bs)]
        out.append((np.stack([t[:-1] for t in rows]), np.stack([t[1:] for t in rows])))
    return out


# ---- LM loader ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bs,seq_len,backwards", [(4, 7, False), (3, 5, True), (1, 11, False)])
def test_lm_batches_equal_fastai_stream(bs, seq_len, backwards):
    ids, offsets = random_corpus(0)
    dl = LMDataLoader(ids, offsets, bs=bs, seq_len=seq_len, shuffle=True, seed=3, backwards=backwards)
    for epoch in (0, 1):
        order = dl.doc_order(epoch)
        docs = [ids[offsets[d]:offsets[d + 1]] for d in order]
        ref = fastai_lm_batches([d[::-1] for d in docs] if backwards else docs, bs, seq_len)
        got = list(dl.batches(epoch))
        full = [r for r in ref if r[0].shape[1] == seq_len]  # fastai's short last batch is dropped
        assert len(got) == len(full) == len(dl) >= len(ref) - 1
        for (x, y, w), (rx, ry) in zip(got, full):
            assert x.dtype == np.int32 and x.shape == (bs, seq_len) and w.tolist() == [1.0] * bs
            np.testing.assert_array_equal(x, rx)
            np.testing.assert_array_equal(y, ry)


def test_lm_loader_is_pure_in_seed_and_epoch_and_resumable():
    ids, offsets = random_corpus(1)
    a = LMDataLoader(ids, offsets, bs=4, seq_len=6, shuffle=True, seed=5)
    b = LMDataLoader(ids, offsets, bs=4, seq_len=6, shuffle=True, seed=5)
    e0 = [x for x, _, _ in a.batches(0)]
    assert all((u == v).all() for u, v in zip(e0, [x for x, _, _ in b.batches(0)]))
    assert not all((u == v).all() for u, v in zip(e0, [x for x, _, _ in a.batches(1)]))
    assert all((u == v).all() for u, v in zip(e0[2:], [x for x, _, _ in a.batches(0, start=2)]))
    valid = LMDataLoader(ids, offsets, bs=4, seq_len=6)
    assert (valid.doc_order(0) == valid.doc_order(7)).all()


def test_lm_rows_continue_across_batches():
    ids = np.arange(1000, dtype=np.int32)
    dl = LMDataLoader(ids, np.array([0, 400, 1000]), bs=4, seq_len=10)
    b0, b1 = list(dl.batches(0))[:2]
    np.testing.assert_array_equal(b0[0][:, -1] + 1, b1[0][:, 0])
    assert dl.bl == 999 // 4 and len(dl) == dl.bl // 10


def test_lm_remap_and_too_small_corpus():
    ids, offsets = random_corpus(2)
    remap = (np.arange(50) * 2).astype(np.int32)
    x, _, _ = LMDataLoader(ids, offsets, remap=remap, bs=2, seq_len=5).one_batch()
    x0, _, _ = LMDataLoader(ids, offsets, bs=2, seq_len=5).one_batch()
    np.testing.assert_array_equal(x, x0 * 2)
    with pytest.raises(ValueError, match="too few"):
        LMDataLoader(np.zeros(10, np.int32), np.array([0, 10]), bs=4, seq_len=5)


# ---- classifier loader ----------------------------------------------------------------------------------
def test_bucket_widths_are_few_and_cover():
    widths = {bucket_len(n, 72) for n in range(1, 3000)}
    assert len(widths) <= 12 and all(w % 72 == 0 for w in widths)
    assert all(bucket_len(n, 72) >= n for n in range(1, 3000))


def test_pad_chunk_layout_matches_fastai():
    # fastai pad_chunk: (pad // seq_len) * seq_len pads in front, pad % seq_len at the end
    assert pad_chunk_layout(10, 30, 8) == (16, 4)
    assert pad_chunk_layout(30, 30, 8) == (0, 0)
    assert pad_chunk_layout(10, 30, 8, pad_first=False) == (0, 20)


def test_sorted_dl_valid_sorted_and_padded():
    ids, offsets = random_corpus(3, n_docs=13, max_len=40)
    ids = ids + 2  # no pad ids inside texts
    lens = np.diff(offsets)
    dl = SortedDL(ids, offsets, None, np.arange(13), bs=4, seq_len=8)
    seen = []
    for x, y, w in dl.batches(0):
        assert x.shape[1] % 8 == 0 and x.shape[0] == 4
        longest = int(lens[y].max())
        # fastai's pad_input_chunk layout for the batch's longest text, shifted right by whole pad chunks so that
        # the longest text ends in the last chunk
        shift = x.shape[1] - (-(-longest // 8)) * 8
        assert shift % 8 == 0 and shift >= 0
        # the encoder runs only chunks holding a real token: as many as fastai's exact-width batch has
        busy = (x[:int(w.sum())] != 1).reshape(-1, x.shape[1] // 8, 8).any(axis=(0, 2))
        assert busy.sum() == -(-longest // 8)
        for r in range(int(w.sum())):
            n = lens[y[r]]
            front = shift + pad_chunk_layout(n, longest, 8)[0]
            assert front % 8 == 0  # every text starts on a chunk boundary
            assert (x[r, :front] == 1).all() and (x[r, front + n:] == 1).all()
            np.testing.assert_array_equal(x[r, front:front + n], ids[offsets[y[r]]:offsets[y[r] + 1]])
            seen.append(int(y[r]))
    # without buckets the batch is exactly fastai's: width = longest length, pad_chunk layout
    xe, ye, _ = SortedDL(ids, offsets, None, np.arange(13), bs=4, seq_len=8, buckets=False).one_batch()
    assert xe.shape[1] == lens.max()
    for r in range(4):
        front, _ = pad_chunk_layout(lens[ye[r]], xe.shape[1], 8)
        np.testing.assert_array_equal(xe[r, front:front + lens[ye[r]]], ids[offsets[ye[r]]:offsets[ye[r] + 1]])
    assert w.tolist() == [1, 0, 0, 0]  # 13 = 3 * 4 + 1: weight-0 padding rows
    assert seen == np.argsort(-lens, kind="stable").tolist()


def test_sortish_training_order():
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 500, 1000)
    order = sortish_order(lens, bs=8, rng=np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(1000))
    assert order[0] == np.argmax(lens)  # the longest document comes first
    batches = order[:992].reshape(-1, 8)
    assert all((np.diff(lens[b]) <= 0).all() for b in batches)  # rows of a batch by decreasing length
    ids, offsets = np.zeros(int(lens.sum()), np.int32), np.concatenate([[0], np.cumsum(lens)])
    dl = SortedDL(ids, offsets, None, np.zeros(1000), bs=8, seq_len=72, shuffle=True, seed=4)
    assert len(dl) == 125 and (dl.order(0) == dl.order(0)).all() and not (dl.order(0) == dl.order(1)).all()
    assert len({x.shape for x, _, _ in dl.batches(0)}) <= 8


def test_sorted_dl_max_len_and_backwards():
    ids = np.arange(2, 102, dtype=np.int32)
    dl = SortedDL(ids, np.array([0, 100]), None, np.zeros(1), bs=1, seq_len=8, max_len=20, backwards=True)
    x, _, _ = dl.one_batch()
    assert x.shape == (1, 24)  # the reversed document's last 20 tokens: the original's first 20, reversed
    np.testing.assert_array_equal(x[0, :20], ids[:20][::-1])
    fwd = SortedDL(ids, np.array([0, 100]), None, np.zeros(1), bs=1, seq_len=8, max_len=20)
    np.testing.assert_array_equal(fwd.one_batch()[0][0, :20], ids[-20:])


def test_training_batches_of_cut_documents_share_one_width():
    rng = np.random.default_rng(5)
    lens = rng.integers(3, 60, 64)
    ids, offsets = (rng.integers(2, 50, int(lens.sum())).astype(np.int32),
                    np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
    kw = dict(bs=8, seq_len=8, max_len=40)
    train = SortedDL(ids, offsets, None, np.arange(64), shuffle=True, **kw)
    assert train.one_width and {x.shape[1] for x, _, _ in train.batches(0)} == {bucket_len(40, 8)}
    bucketed = SortedDL(ids, offsets, None, np.arange(64), shuffle=True, one_width=False, **kw)
    assert len({x.shape[1] for x, _, _ in bucketed.batches(0)}) > 1
    for (x1, y1, _), (x2, y2, _) in zip(train.batches(0), bucketed.batches(0)):
        np.testing.assert_array_equal(y1, y2)  # the same rows; the wider batch only has more whole pad chunks
        extra = x1.shape[1] - x2.shape[1]
        assert extra % 8 == 0 and (x1[:, :extra] == 1).all()
        np.testing.assert_array_equal(x1[:, extra:], x2)
    # evaluation stays bucketed, and so does training without a max_len cut (widths up to the longest document)
    assert not SortedDL(ids, offsets, None, np.arange(64), **kw).one_width
    assert not SortedDL(ids, offsets, None, np.arange(64), shuffle=True, bs=8, seq_len=8).one_width
    # a corpus whose documents are all shorter than max_len gets the width of its own longest document
    short = SortedDL(ids, offsets, None, np.arange(64), shuffle=True, bs=8, seq_len=8, max_len=1000)
    assert {x.shape[1] for x, _, _ in short.batches(1)} == {bucket_len(int(lens.max()), 8)}
    with pytest.raises(ValueError, match="one_width=True needs buckets=True"):
        SortedDL(ids, offsets, None, np.arange(64), one_width=True, buckets=False, **kw)


# ---- TextDataLoaders ------------------------------------------------------------------------------------
def review(rng, n=30):
    return " ".join(rng.choice(WORDS, n)).capitalize() + "."


@pytest.fixture
def imdb_like(tmp_path):
    """A tiny aclImdb-style tree (with unsup and the url/metadata files) and a .tar.gz of it."""
    rng = np.random.default_rng(0)
    root = tmp_path / "aclImdb"
    for split, n in (("train", 40), ("test", 20)):
        for label in ("neg", "pos"):
            d = root / split / label
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}_{label}.txt").write_text(review(rng, int(rng.integers(5, 80))) + f" {label}!")
        (root / split / f"urls_{split}.txt").write_text("http://www.imdb.com/title/tt0000001/usercomments\n")
    (root / "train" / "unsup").mkdir()
    for i in range(30):
        (root / "train" / "unsup" / f"{i}_0.txt").write_text(review(rng, 50))
    (root / "imdbEr.txt").write_text("0.1\n0.2\n")
    tgz = tmp_path / "aclImdb.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(root, arcname="aclImdb")
    return root, tgz


def test_lesson_flow_folder(imdb_like, tmp_path):
    root, _ = imdb_like
    cache = tmp_path / "cache"
    dls_lm = TextDataLoaders.from_folder(root, is_lm=True, valid_pct=0.1, bs=4, seq_len=16, cache_dir=cache)
    assert dls_lm.is_lm and dls_lm.c == len(dls_lm.vocab) and len(dls_lm.vocab) % 8 == 0
    n_docs = len(dls_lm.train.docs) + len(dls_lm.valid.docs)
    assert n_docs == 150 and len(dls_lm.valid.docs) == 15  # reviews + unsup, no url/metadata files
    x, y, w = dls_lm.train.one_batch()
    assert x.shape == y.shape == (4, 16) and x.dtype == np.int32 and (x[:, 1:] == y[:, :-1]).all()

    dls_clas = TextDataLoaders.from_folder(root, valid="test", text_vocab=dls_lm.vocab, bs=8, cache_dir=cache)
    assert dls_clas.vocab == dls_lm.vocab and dls_clas.classes == ["neg", "pos"] and dls_clas.c == 2
    assert len(dls_clas.train.docs) == 80 and len(dls_clas.valid.docs) == 40
    x, y, w = dls_clas.valid.one_batch()
    assert x.shape[0] == 8 and x.shape[1] % 72 == 0 and y.dtype == np.int32
    # the texts end with their label: the label column lines up with the documents
    texts = [dls_clas.decode(x[r]) for r in range(8)]
    assert all(t.split()[-2] == dls_clas.classes[int(y[r])] for r, t in enumerate(texts))
    assert len(list(cache.iterdir())) == 1  # one tokenized corpus serves both


def test_folder_and_archive_agree_and_cache_is_reused(imdb_like, tmp_path, monkeypatch):
    root, tgz = imdb_like
    a = TextDataLoaders.from_folder(root, valid="test", bs=8, cache_dir=tmp_path / "c1")
    b = TextDataLoaders.from_folder(tgz, valid="test", bs=8, cache_dir=tmp_path / "c2")
    assert a.vocab == b.vocab and a.classes == b.classes
    np.testing.assert_array_equal(a.train.one_batch()[0], b.train.one_batch()[0])

    def no_build(*args, **kwargs):
        raise AssertionError("the cached corpus should have been used")

    monkeypatch.setattr(text_data, "build_corpus", no_build)
    c = TextDataLoaders.from_folder(tgz, valid="test", bs=8, cache_dir=tmp_path / "c2")
    assert c.vocab == b.vocab


def test_folder_errors(imdb_like, tmp_path):
    root, _ = imdb_like
    with pytest.raises(ValueError, match="'valid' folder"):
        TextDataLoaders.from_folder(root, cache_dir=False)
    with pytest.raises(FileNotFoundError):
        TextDataLoaders.from_folder(tmp_path / "nope")


def test_undecodable_bytes_are_replaced_and_reported(imdb_like):
    root, _ = imdb_like
    (root / "train" / "pos" / "bad.txt").write_bytes(b"great \xff\xfe movie")
    with pytest.warns(UserWarning, match="1 file"):
        dls = TextDataLoaders.from_folder(root, valid="test", bs=8, cache_dir=False)
    assert len(dls.train.docs) == 81


def sample_df(n=120, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(["negative", "positive"], n)
    return pd.DataFrame({"label": labels, "text": [review(rng) + f" {lab}" for lab in labels],
                         "is_valid": np.arange(n) >= n * 0.8})


def test_from_df_and_csv(tmp_path):
    df = sample_df()
    df.to_csv(tmp_path / "texts.csv", index=False)
    dls = TextDataLoaders.from_csv(tmp_path, "texts.csv", text_col="text", label_col="label", valid_col="is_valid",
                                   bs=16)
    assert len(dls.train.docs) == 96 and len(dls.valid.docs) == 24 and dls.classes == ["negative", "positive"]
    shown = dls.show_batch(max_n=3, show=False)
    assert list(shown.columns) == ["text", "category"] and shown.text[0].startswith("xxbos")
    lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, bs=4, seq_len=10)
    assert list(lm.show_batch(max_n=2, show=False).columns) == ["text", "text_"]
    assert len(lm.valid.docs) == int(0.2 * 120)


def test_vocab_counts_training_split_only():
    df = sample_df()
    df.loc[df.is_valid, "text"] = "zebra zebra zebra zebra, zebra."
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8)
    assert "zebra" not in dls.vocab
    x, _, _ = dls.valid.one_batch()
    assert (x == 0).any()  # unknown in the training vocabulary -> xxunk


def test_text_vocab_accepts_fastai_classifier_pair():
    df = sample_df()
    lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, bs=4, seq_len=10)
    clas = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid",
                                   text_vocab=[lm.vocab, ["negative", "positive"]], bs=8)
    assert clas.vocab == lm.vocab


def test_multi_column_text_marks_fields():
    df = pd.DataFrame({"title": ["Great", "Awful"] * 40, "body": ["loved it", "hated it"] * 40,
                       "y": ["pos", "neg"] * 40})
    dls = TextDataLoaders.from_df(df, text_col=["title", "body"], label_col="y", bs=8, min_freq=1)
    row = dls.decode(dls.valid.one_batch()[0][0])
    assert row.startswith("xxbos xxfld 1 xxmaj") and "xxfld 2" in row


def test_regression_targets():
    df = sample_df()
    df["score"] = np.linspace(0, 1, len(df))
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="score", y_block="regression", bs=8)
    _, y, _ = dls.train.one_batch()
    assert y.dtype == np.float32 and dls.c == 1 and dls.classes is None


def test_bad_frames():
    df = sample_df()
    with pytest.raises(KeyError, match="'review'.*columns are"):
        TextDataLoaders.from_df(df, text_col="review", label_col="label")
    with pytest.raises(KeyError, match="label_col='y'"):
        TextDataLoaders.from_df(df, text_col="text", label_col="y")
    df2 = df.copy()
    df2.loc[df2.index[-1], "label"] = "neutral"  # a validation-only label
    with pytest.raises(ValueError, match="neutral"):
        TextDataLoaders.from_df(df2, text_col="text", label_col="label", valid_col="is_valid")
    df3 = df.copy()
    df3.loc[3, "text"] = np.nan
    df3.loc[4, "text"] = ""
    with pytest.warns(UserWarning, match="1 missing text"):
        dls = TextDataLoaders.from_df(df3, text_col="text", label_col="label", valid_col="is_valid", bs=8)
    assert (dls.train.lens >= 1).all()  # empty documents are just xxbos


def test_test_dl_keeps_input_order():
    df = sample_df()
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=8)
    texts = ["short", "a much longer review than the other one, really much longer", "mid length one"]
    x, y, w = dls.test_dl(texts).one_batch()
    assert w.tolist() == [1, 1, 1] + [0] * 5
    known = set(dls.vocab)
    for r, t in enumerate(texts):
        assert dls.decode(x[r]).split() == [tok if tok in known else "xxunk" for tok in tokenize1(t)]


def test_million_token_document():
    rng = np.random.default_rng(0)
    big = " ".join(rng.choice(WORDS, 1_000_000))
    df = pd.DataFrame({"text": [big] + [review(rng) for _ in range(300)], "label": ["a", "b"] * 150 + ["a"]})
    dls = TextDataLoaders.from_df(df, text_col="text", is_lm=True, bs=8, seq_len=72, valid_pct=0.1)
    assert dls.train.n_tokens + dls.valid.n_tokens > 1_000_000
    x, _, _ = next(dls.train.batches(0, start=len(dls.train) - 1))
    assert x.shape == (8, 72)
    clas = TextDataLoaders.from_df(df, text_col="text", label_col="label", bs=4, max_len=72 * 20,
                                   text_vocab=dls.vocab, valid_pct=0.0)
    assert max(x.shape[1] for x, _, _ in clas.train.batches(0)) <= 72 * 24


@pytest.mark.realdata
def test_imdb_sample_csv(shared_data):
    path = shared_data("imdb", "imdb_sample")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dls = TextDataLoaders.from_csv(path, "texts.csv", text_col="text", label_col="label", valid_col="is_valid")
    assert len(dls.train.docs) == 800 and len(dls.valid.docs) == 200
    assert dls.classes == ["negative", "positive"] and dls.vocab[:3] == ["xxunk", "xxpad", "xxbos"]
    assert len(dls.vocab) % 8 == 0 and 5000 < len(dls.vocab) < 8000


def test_sentencepiece_tokenizer(tmp_path):
    df = sample_df(200)
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid",
                                  tok_tfm="sentencepiece", bs=8, min_freq=1)
    assert dls.vocab[:3] == ["xxunk", "xxpad", "xxbos"]
    x, _, _ = dls.valid.one_batch()
    assert (x[:, :][x != 1] != 0).mean() > 0.9 and (x == 2).sum() >= 1  # xxbos kept whole, few unknowns
    toks = dls.tokenizer.tokenize1("The movie WAS great")
    assert toks[:2] == ["xxbos", "xxmaj"] and "xxup" in toks
    dls.tokenizer.tok.save(tmp_path / "sp.model")
    assert Path(tmp_path / "sp.model").stat().st_size > 1000


def test_from_tfds_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=48):
        dls = TextDataLoaders.from_tfds("imdb_reviews", bs=8, min_freq=1)
    assert dls.classes == ["neg", "pos"] and len(dls.train.docs) == 48 and len(dls.valid.docs) == 48
    x, y, w = dls.train.one_batch()
    assert x.shape[0] == 8 and set(y.tolist()) <= {0, 1} and (x[:, :][x != 1] == 2).sum() >= 1
