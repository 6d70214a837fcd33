"""The linear probe (experiments/bench/probe_encoder.py) scores all four feature sets on a review corpus and
keeps every score in its JSON (the model's name once overwrote the pretrained encoder's score)."""

from __future__ import annotations

import json

from experiments.bench import probe_encoder
from tests.test_few_label import _corpus


def test_probe_scores_bag_of_words_and_three_encoders(tmp_path):
    src = _corpus(tmp_path / "reviews", n_train=30, n_test=10, unsup=20)
    out = tmp_path / "probe.json"
    res = probe_encoder.main(["--reviews", str(src), "--labels", "20", "--test", "20", "--lm-docs", "20",
                              "--lm-epochs", "1", "--lm-bs", "2", "--bs", "8", "--max-len", "72", "--out", str(out),
                              "--pretrained", "english-small", "--bf16"])
    saved = json.loads(out.read_text())
    for name in ("random", "pretrained", "fine_tuned"):  # each encoder: a logistic regression per C
        assert set(saved[name]["by_C"]) == {str(c) for c in probe_encoder.PROBE_CS}
        assert saved[name]["accuracy"] == max(saved[name]["by_C"].values()) == res[name]["accuracy"]
    assert saved["pretrained_lm"] == "english-small" and saved["config"]["emb_sz"] == 64
    assert saved["precision"] == "bf16" and saved["command"].endswith("--pretrained english-small --bf16")
    assert saved["bag_of_words"]["accuracy"] >= 0.9  # the corpus's words decide its labels


def test_linear_probe_ties_go_to_the_strongest_prior_and_flag_the_grids_edge():
    """Separable features score 1.0 under every C: the smallest C wins (first in the grid) and, being the grid's
    edge, is flagged so that the next reading extends the grid."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    x = np.c_[4.0 * y + 0.1 * rng.normal(size=80), rng.normal(size=(80, 3))]
    res = probe_encoder.linear_probe(x[::2], y[::2], x[1::2], y[1::2], cs=(0.03, 0.1, 1.0))
    assert res["by_C"] == {"0.03": 1.0, "0.1": 1.0, "1.0": 1.0}
    assert res["C"] == 0.03 and res["best_C_at_edge"] is True
