"""Small in-memory validation sets run as one device batch; the numbers equal the batch-by-batch loop."""

import numpy as np

import learner_jax.learner as learner_mod
from tests.learner_jax.tiny import toy_learner


def test_whole_set_validation_equals_the_batched_loop(monkeypatch):
    learn = toy_learner(bs=32)
    learn.fit(1, 1e-2)
    assert learn._whole_set(learn.dls.valid) is not None
    whole = learn.validate()
    monkeypatch.setattr(learner_mod, "WHOLE_SET_ROWS", 0)  # force the loop over padded batches
    assert learn._whole_set(learn.dls.valid) is None
    looped = learn.validate()
    np.testing.assert_allclose(whole, looped, rtol=1e-5)


def test_large_inputs_keep_the_batched_loop(monkeypatch):
    learn = toy_learner(bs=32)
    monkeypatch.setattr(learner_mod, "WHOLE_SET_BYTES", 16)
    assert learn._whole_set(learn.dls.valid) is None
