"""The few-label ULMFiT protocol (experiments/few_label.py): its draws are exactly as defined (balanced, seeded,
the same test set for every draw, no test text anywhere in training), it runs end to end on a corpus laid out
as train/<class>, test/<class> without an unsup folder, and its results are kept across reruns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import few_label

WORDS = {"pos": ["great", "superb", "lovely", "moving", "fun"], "neg": ["awful", "dull", "boring", "weak", "bad"]}


def _corpus(root, n_train=40, n_test=20, unsup=0, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for c, words in WORDS.items():
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                body = " ".join(f"The film was {rng.choice(words)} and the cast {rng.choice(words)}." for _ in range(6))
                (d / f"{i}_{c}.txt").write_text(f"{split} {c} review {i}. {body}")
    if unsup:
        d = root / "train" / "unsup"
        d.mkdir()
        for i in range(unsup):
            (d / f"{i}_0.txt").write_text(f"unsup review {i}. The film was " + " ".join(rng.choice(WORDS["pos"], 5)))
    return root


def test_draws_are_balanced_seeded_and_never_leak_the_test_set(tmp_path):
    reviews = few_label.read_reviews(_corpus(tmp_path, unsup=30))
    lm1, df1 = few_label.make_draw(reviews, labels=10, n_test=8, lm_docs=12, seed=1, max_words=5)
    lm2, df2 = few_label.make_draw(reviews, labels=10, n_test=8, lm_docs=12, seed=2, max_words=5)
    for df in (df1, df2):
        assert df[~df.is_valid].label.value_counts().to_dict() == {"neg": 5, "pos": 5}
        assert df[df.is_valid].label.value_counts().to_dict() == {"neg": 4, "pos": 4}
        assert all(len(t.split()) <= 5 for t in df.text)  # the last max_words words, for every method
    assert df1[df1.is_valid].text.tolist() == df2[df2.is_valid].text.tolist()  # one test set for all draws
    assert df1[~df1.is_valid].text.tolist() != df2[~df2.is_valid].text.tolist()
    for lm, df in ((lm1, df1), (lm2, df2)):
        assert len(lm) == 12 + 10 and set(df[~df.is_valid].text) <= set(lm)
        assert not any(t.startswith("test") or "test " in t for t in lm)
    again = few_label.make_draw(reviews, labels=10, n_test=8, lm_docs=12, seed=1, max_words=5)
    assert again[0] == lm1 and again[1].equals(df1)


def test_bad_corpus_and_impossible_draws(tmp_path):
    with pytest.raises(ValueError, match="train/<class>"):
        few_label.read_reviews(tmp_path)
    reviews = few_label.read_reviews(_corpus(tmp_path / "c", n_train=3))
    with pytest.raises(ValueError, match="cannot draw 10 reviews balanced"):
        few_label.make_draw(reviews, labels=10, n_test=4, lm_docs=4, seed=0, max_words=None)


def test_summary_table():
    runs = [{"labels": 200, "seed": s, "pretrained": "lm-a", "ours": {"transfer_accuracy": a, "scratch_accuracy": 0.6,
                                                                      "transfer_seconds": 600, "seconds": 900},
             "tfidf": {"accuracy": 0.7}} for s, a in ((0, 0.8), (1, 0.84), (2, 0.82))]
    other = dict(runs[0], pretrained="lm-b", ours=dict(runs[0]["ours"], transfer_accuracy=0.5))
    (row, row_b) = few_label.summarize(runs + [other])  # one row per pretrained LM and label count
    assert row["transfer"] == {"mean": pytest.approx(0.82), "min": 0.8, "max": 0.84, "n": 3}
    assert (row_b["pretrained"], row_b["draws"], row_b["transfer"]["mean"]) == ("lm-b", 1, 0.5)
    assert "fastai" not in row
    table = few_label.markdown_table([row, row_b])
    assert ("| lm-a | 200 | 3 | 82.0 (80.0–84.0) | 60.0 (60.0–60.0) | 70.0 (70.0–70.0) | — | 15.0 (15.0–15.0) |"
            in table)
    assert "| lm-b | 200 | 1 | 50.0 | 60.0 | 70.0 | — | 15.0 |" in table


def test_the_protocol_starts_from_a_shipped_lm_by_default():
    from ulmfit_jax import pretrained_lm

    assert pretrained_lm(few_label.DEFAULT_PRETRAINED).verify().config["emb_sz"] > 0
    # the issue's protocol calls pretrained_lm() with no name: it must be the model our results are for
    assert pretrained_lm().name == few_label.DEFAULT_PRETRAINED == "english-large"


def test_precision_defaults_to_bf16_where_the_hardware_has_it(monkeypatch):
    import learner_jax.precision as precision

    for native, expected in ((True, "bf16"), (False, "float32")):
        monkeypatch.setattr(precision, "bf16_is_native", lambda device=None, native=native: native)
        a = few_label.parse(["--labels", "200"])
        assert (a.precision, a.bf16) == (expected, native)
        assert few_label.parse(["--precision", "float32"]).bf16 is False  # explicit choices win over the hardware
        assert few_label.parse(["--bf16"]).precision == "bf16"  # the older flag, kept
    with pytest.raises(SystemExit):
        few_label.parse(["--precision", "float16"])


def test_protocol_end_to_end_on_a_corpus_without_unsup(tmp_path):
    src = _corpus(tmp_path / "reviews", n_train=60, n_test=20)
    out = tmp_path / "res.json"
    argv = ["--reviews", str(src), "--labels", "64", "--test", "16", "--lm-docs", "40", "--seeds", "0",
            "--no-scratch", "--xla-cache", "none", "--out", str(out), "--bs", "32", "--lm-bs", "8",
            "--pretrained", "english-small", "--precision", "float32"]  # the smallest shipped LM: a quick test
    data = few_label.main(argv)
    (run,) = data["runs"]
    assert run["labels"] == 64 and 0.0 <= run["ours"]["transfer_accuracy"] <= 1.0
    assert run["tfidf"]["accuracy"] >= 0.9  # the classes are separable by their words
    assert run["ours"]["lm_train_tokens"] > 0 and "scratch_accuracy" not in run["ours"]
    saved = json.loads(out.read_text())
    assert saved["runs"][0]["ours"] == run["ours"]
    assert few_label.main(argv)["runs"] == saved["runs"]  # a rerun skips the finished draw
    assert out.with_suffix(".table.md").read_text().startswith("| pretrained LM | labels |")
    both = few_label.main(argv + ["--bf16"])["runs"]  # mixed precision: its own run and row, fp32's kept
    assert len(both) == 2 and both[1]["precision"] == "bf16" and both[0] == saved["runs"][0]
    assert 0.0 <= both[1]["ours"]["transfer_accuracy"] <= 1.0
    assert "| english-small bf16 | 64 | 1 |" in out.with_suffix(".table.md").read_text()
