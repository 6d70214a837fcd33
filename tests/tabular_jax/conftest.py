"""Small synthetic tables whose labels depend on known columns (so learning and importance are checkable)."""

import numpy as np
import pandas as pd
import pytest


def make_toy(n: int = 512, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n)
    x = rng.normal(size=n)
    noise_cat = rng.choice(["p", "q"], n)
    noise = rng.normal(size=n)
    score = (color == "red") * 2.0 - (color == "blue") * 2.0 + 1.5 * x
    label = np.where(score > 0, "yes", "no")
    df = pd.DataFrame({"color": color, "shape": noise_cat, "x": x, "noise": noise, "age": rng.integers(18, 90, n),
                       "label": label, "target": score + 0.1 * rng.normal(size=n)})
    df.loc[rng.choice(n, 20, replace=False), "x"] = np.nan
    return df


@pytest.fixture
def toy():
    return make_toy()
