"""Tabular in mixed precision: from the same init, bfloat16 ends within 0.5% of float32's accuracy; predict
works and BatchNorm statistics stay float32."""

import jax
import jax.numpy as jnp
import pytest

from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, tabular_learner

from .conftest import make_toy


def test_bf16_accuracy_within_half_a_percent_of_float32():
    df = make_toy(2048, seed=2)
    dls = TabularDataLoaders.from_df(df, procs=[FillMissing, Categorify, Normalize], cat_names=["color", "shape"],
                                     cont_names=["x", "noise", "age"], y_names="label",
                                     valid_idx=list(range(1024, 2048)), bs=64)
    acc = {}
    for bf16 in (False, True):
        learn = tabular_learner(dls, layers=[32, 16], metrics=accuracy, progress=False, seed=0)
        if bf16:
            learn.to_bf16()
        learn.fit_one_cycle(3, 1e-2)
        acc[bf16] = learn.validate()[1]
    assert acc[True] == pytest.approx(acc[False], abs=0.005)
    assert learn.compute_dtype is jnp.bfloat16
    assert {a.dtype for a in jax.tree_util.tree_leaves(learn.state.model_state)} == {jnp.dtype("float32")}
    _, idx, probs = learn.predict(df.iloc[0])
    assert probs.dtype == "float32" and probs.sum() == pytest.approx(1, abs=1e-5)
