"""MetaEncoder: one-hot, standardised and flag features; unknown ids get zeros; bad metadata is refused."""

import numpy as np
import pandas as pd
import pytest

from collab_jax.metadata import MetaEncoder

USERS = pd.DataFrame({"user": [1, 2, 3], "gender": ["M", "F", "M"], "age": [20.0, 30.0, np.nan],
                      "drama": [1, 0, 1]})


def test_features():
    enc = MetaEncoder.from_df(USERS, "user", cat_names=["gender"], cont_names=["age"], flag_names=["drama"])
    assert enc.columns == ("gender=F", "gender=M", "age", "drama")
    f = enc.features([3, 1, 42])
    np.testing.assert_allclose(f, [[0, 1, 0, 1], [0, 1, -1, 1], [0, 0, 0, 0]])
    assert enc.known([1, 42]).tolist() == [True, False]


@pytest.mark.parametrize("df, kw, match", [
    (USERS, {"cat_names": ["job"]}, "column 'job' is not in the metadata frame"),
    (pd.concat([USERS, USERS.iloc[:1]]), {}, "must be unique per row; 1 appears"),
    (USERS.assign(age=["x", 1, 2]), {"cont_names": ["age"]}, "non-numeric 'x'"),
    (USERS.assign(drama=[0, 2, 1]), {"flag_names": ["drama"]}, "only 0/1"),
])
def test_bad_metadata(df, kw, match):
    with pytest.raises(ValueError, match=match):
        MetaEncoder.from_df(df, "user", **kw)
