"""What a fastai user trips over first: data offline (untar_data points at $LESSON4_DATA) and the bare
``TextDataLoaders.from_csv(path, 'texts.csv')`` whose positional defaults pick the label column as text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from learner_jax.download import DownloadError, RemoteArchive, untar_data
from ulmfit_jax import TextDataLoaders

UNREACHABLE = RemoteArchive("NOWHERE", "http://127.0.0.1:9/nowhere.tgz", 10, "0" * 32, "tgz", "nowhere")


def test_untar_data_uses_a_local_copy_under_lesson4_data(tmp_path, monkeypatch):
    (tmp_path / "shared" / "text" / "nowhere").mkdir(parents=True)
    monkeypatch.setenv("LESSON4_DATA", str(tmp_path / "shared"))
    assert untar_data(UNREACHABLE, cache_dir=tmp_path / "cache", quiet=True) == tmp_path / "shared" / "text" / "nowhere"


def test_untar_data_offline_says_where_data_can_go(tmp_path, monkeypatch):
    monkeypatch.delenv("LESSON4_DATA", raising=False)
    with pytest.raises(DownloadError) as e:
        untar_data(UNREACHABLE, cache_dir=tmp_path, quiet=True, timeout=2)
    msg = str(e.value)
    assert "$LESSON4_DATA" in msg and str(tmp_path / "data" / "nowhere") in msg and "nowhere.tgz" in msg


def test_bare_from_csv_on_label_text_is_valid_explains_the_columns(tmp_path):
    rng = np.random.default_rng(0)
    words = "great awful movie plot acting film cast slow superb boring".split()
    df = pd.DataFrame({"label": rng.choice(["negative", "positive"], 40),
                       "text": [" ".join(rng.choice(words, 30)) + f" {i}" for i in range(40)],
                       "is_valid": np.arange(40) >= 32})
    df.to_csv(tmp_path / "texts.csv", index=False)
    with pytest.raises(ValueError, match="text_col='text', label_col='label', valid_col='is_valid'"):
        TextDataLoaders.from_csv(tmp_path, "texts.csv")
    dls = TextDataLoaders.from_csv(tmp_path, "texts.csv", text_col="text", label_col="label", valid_col="is_valid",
                                   bs=8, min_freq=1)
    assert dls.classes == ["negative", "positive"]
