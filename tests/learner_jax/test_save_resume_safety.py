"""learn.save/load keep a whole copy at every instant; resume checks what it resumes; bad fit arguments are
refused before training."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

from learner_jax import CheckpointCallback
from learner_jax.checkpoint import CheckpointMismatchError
from tests.learner_jax.tiny import toy_dls, toy_learner


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def assert_same(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_save_never_deletes_the_only_whole_copy(tmp_path):
    learn = toy_learner(path=tmp_path)
    learn.fit(1, 1e-2)
    learn.save("m")
    first = learn.state
    models = tmp_path / "models"
    os.replace(models / "m", models / "m.old")  # an earlier save died between its two renames: only .old is whole
    (models / "m.saving").mkdir()  # and a later one died while writing
    learn.fit(1, 1e-2)
    learn.load("m")  # loads .old, with the optimizer state its own meta.json describes
    assert_same(learn.state.params, first.params)
    assert_same(learn.state.opt_state, first.opt_state)
    learn.fit(1, 1e-2)
    second = learn.state
    learn.save("m")
    assert sorted(p.name for p in models.iterdir()) == ["m"]
    learn.fit(1, 1e-2)
    learn.load("m")
    assert_same(learn.state.params, second.params)


def test_load_missing_or_garbage_meta_names_the_file(tmp_path):
    learn = toy_learner(path=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no saved model at .*nope.*learn.save"):
        learn.load("nope")
    learn.save("m")
    (tmp_path / "models" / "m" / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"meta.json is unreadable"):
        learn.load("m")
    (tmp_path / "models" / "m" / "meta.json").write_text('"a string"')
    with pytest.raises(ValueError, match=r"meta.json does not hold a learn.save record"):
        learn.load("m")


def test_load_into_a_different_model_is_refused(tmp_path):
    learn = toy_learner(path=tmp_path)
    learn.save("m")
    from flax import nnx

    from learner_jax import CrossEntropyLossFlat, Learner
    from tests.learner_jax.tiny import MLP

    other = Learner(toy_dls(), MLP(nnx.Rngs(0), n_hidden=8), CrossEntropyLossFlat(), path=tmp_path, progress=False)
    with pytest.raises(CheckpointMismatchError, match="shape"):
        other.load("m")


def test_resume_from_a_missing_folder_is_refused(tmp_path):
    learn = toy_learner()
    with pytest.raises(FileNotFoundError, match=r"resume_from=.*chekpoints.*no such folder"):
        learn.fit(1, 1e-2, resume_from=tmp_path / "chekpoints")
    assert not (tmp_path / "chekpoints").exists()


def test_resume_from_an_empty_folder_warns_and_starts(tmp_path):
    (tmp_path / "ckpt").mkdir()
    learn = toy_learner()
    with pytest.warns(UserWarning, match="holds no checkpoint yet"):
        learn.fit(1, 1e-2, resume_from=tmp_path / "ckpt")
    assert int(learn.state.step) == 16


def test_resume_with_other_data_or_loader_seed_is_refused(tmp_path):
    ckpt = tmp_path / "ckpt"
    toy_learner().fit(1, 1e-2, cbs=[CheckpointCallback(ckpt)])
    bigger = toy_learner()
    bigger.dls = toy_dls(n=1280)
    with pytest.raises(CheckpointMismatchError, match="16 training batches of 32, these loaders give 32 of 32"):
        bigger.fit(1, 1e-2, resume_from=ckpt)
    reseeded = toy_learner()
    reseeded.dls.train.seed = 7  # what seed=None gives a rerun: another shuffle
    with pytest.raises(CheckpointMismatchError, match="shuffled with seed 0, these loaders with 7"):
        reseeded.fit(1, 1e-2, resume_from=ckpt)
    with pytest.raises(CheckpointMismatchError, match="different fit call"):
        toy_learner().fit(2, 1e-2, resume_from=ckpt)


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path):
    ckpt = tmp_path / "ckpt"
    full = toy_learner()
    full.fit_one_cycle(2, 1e-2, cbs=[CheckpointCallback(ckpt, keep=3)])
    for f in (ckpt / "32" / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    resumed = toy_learner()
    with pytest.warns(UserWarning, match=r"checkpoint 32 in .* is unreadable.*falling back"):
        resumed.fit_one_cycle(2, 1e-2, cbs=[CheckpointCallback(ckpt, keep=3)], resume_from=ckpt)
    assert_same(resumed.state.params, full.state.params)
    assert_same(resumed.state.opt_state, full.state.opt_state)
    assert (ckpt / "unreadable-32").is_dir() and (ckpt / "32").is_dir()  # set aside, then saved again


def test_checkpoint_folder_of_another_run_is_refused(tmp_path):
    ckpt = tmp_path / "ckpt"
    toy_learner().fit(2, 1e-2, cbs=[CheckpointCallback(ckpt)])
    with pytest.raises(ValueError, match=r"holds step 32, beyond this run's step 0.*resume_from"):
        toy_learner().fit(1, 1e-2, cbs=[CheckpointCallback(ckpt)])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_epoch": -1}, r"n_epoch=-1"),
    ({"n_epoch": 1.5}, r"n_epoch=1.5"),
    ({"n_epoch": 1, "lr": -1e-2}, r"learning rate .*-0.01.*>= 0"),
    ({"n_epoch": 1, "lr": float("nan")}, r"learning rate .*nan.*finite"),
])
def test_bad_fit_arguments_are_refused(kwargs, match):
    learn = toy_learner()
    with pytest.raises(ValueError, match=match):
        learn.fit(**kwargs)
    with pytest.raises(ValueError, match=match):
        learn.fit_one_cycle(kwargs["n_epoch"], kwargs.get("lr"))
    assert int(learn.state.step) == 0


@pytest.mark.parametrize("kwargs, match", [({"every_n_steps": 0}, "every_n_steps=0"),
                                           ({"every_n_steps": 2.5}, "every_n_steps=2.5"), ({"keep": 0}, "keep=0")])
def test_bad_checkpoint_callback_arguments_are_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CheckpointCallback(tmp_path, **kwargs)
