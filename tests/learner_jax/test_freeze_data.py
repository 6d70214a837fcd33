"""Freezing as data (``Learner.freeze_as_data``): one compiled step for every freeze stage, frozen parameters
untouched, norm layers still trained, and the same numbers as compiling a step per stage."""

from __future__ import annotations

import jax
import numpy as np

from .tiny import toy_learner


def _chain(learn):
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    frozen_l1 = np.asarray(learn.params["l1"]["kernel"]).copy()
    learn.unfreeze()
    learn.fit_one_cycle(1, 1e-2)
    return frozen_l1, jax.device_get(learn.params)


def test_freeze_as_data_compiles_once_and_matches_per_stage_steps():
    by_stage = toy_learner(seed=1, device_epoch=False)
    start = np.asarray(by_stage.params["l1"]["kernel"]).copy()
    bn_start = np.asarray(by_stage.params["bn"]["scale"]).copy()
    frozen_a, params_a = _chain(by_stage)
    as_data = toy_learner(seed=1, device_epoch=False)
    as_data.freeze_as_data = True
    as_data.freeze_to(0)  # the optimizer state gets its frozen-groups mask
    frozen_b, params_b = _chain(as_data)
    np.testing.assert_array_equal(frozen_b, start)  # frozen group untouched (weight decay included)
    np.testing.assert_array_equal(frozen_a, start)
    assert not np.allclose(np.asarray(params_b["bn"]["scale"]), bn_start)  # train_bn: norms train while frozen
    assert by_stage.n_traces["train"] == 2 and as_data.n_traces["train"] == 1
    for a, b in zip(jax.tree_util.tree_leaves(params_a), jax.tree_util.tree_leaves(params_b)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
