"""The recommended UCI recipe's feature engineering and split (experiments/tabular.py), without training."""

import numpy as np
import pandas as pd
import pytest

from experiments.tabular import recipe_frame, recipe_names, uci_dls


def test_recipe_frame_copies_capital_columns_as_categories_and_logs_the_numbers():
    df = pd.DataFrame({"capital-gain": [0, 7688], "capital-loss": [1902, 0], "age": [30, 40]})
    out = recipe_frame(df)
    assert out["capital-gain_cat"].tolist() == [0, 7688] and out["capital-loss_cat"].tolist() == [1902, 0]
    np.testing.assert_allclose(out["capital-gain"], np.log1p([0, 7688]))
    assert df["capital-gain"].tolist() == [0, 7688]  # input untouched
    cats, conts = recipe_names()
    assert "capital-gain_cat" in cats and "capital-gain" in conts and len(cats) + len(conts) == 16


def test_official_split_validates_on_adult_test_only():
    dls = uci_dls(split="official")
    assert len(dls.to.train) == 32561 and len(dls.to.valid) == 16281
    assert dls.vocab == ["<=50K", ">50K"]
    assert 7688 in dls.classes["capital-gain_cat"]  # classes come from adult.data
    with pytest.raises(ValueError, match="split must be"):
        uci_dls(split="test")
