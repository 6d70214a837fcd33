"""The Learner: freezing, per-group learning rates, no recompilation, lr_find, callbacks, persistence."""

import jax
import numpy as np
import pytest
from flax import nnx

from learner_jax import (
    CrossEntropyLossFlat,
    DataLoader,
    DataLoaders,
    EarlyStoppingCallback,
    Learner,
    NonFiniteLossError,
    NormLoggerCallback,
    SaveModelCallback,
    accuracy,
)
from learner_jax.learner import valley
from tests.learner_jax.tiny import MLP, CarryModel, splitter, toy_data, toy_dls, toy_learner


def leaves_by_path(learn):
    return dict(zip(learn.param_paths, jax.tree_util.tree_leaves(learn.params)))


def test_loss_falls_and_metrics():
    learn = toy_learner()
    before = learn.validate()
    learn.fit_one_cycle(3, 1e-2)
    after = learn.validate()
    assert after[0] < before[0] and after[1] > 0.85
    assert len(learn.recorder.values) == 3 and len(learn.recorder.values[0]) == 3  # train, valid, accuracy
    assert learn.recorder.values[-1][1:] == pytest.approx(after)


def test_groups_and_decay_mask():
    learn = toy_learner()
    info = {p: (g, d, n) for p, g, d, n in zip(learn.param_paths, learn.groups, learn.decay, learn.is_norm)}
    assert info[("l1", "kernel")] == (0, True, False)
    assert info[("l2", "bias")] == (1, False, False)
    assert info[("bn", "scale")] == (0, False, True)
    assert info[("l2", "kernel")] == (1, True, False)
    assert learn.n_groups == 2


def test_frozen_groups_bit_identical_batchnorm_trains():
    learn = toy_learner()
    learn.freeze()
    before = leaves_by_path(learn)
    learn.fit(1, 1e-2)
    after = leaves_by_path(learn)
    for path in [("l1", "kernel")]:
        np.testing.assert_array_equal(np.asarray(before[path]), np.asarray(after[path]))
    for path in [("bn", "scale"), ("bn", "bias"), ("l2", "kernel")]:
        assert not np.array_equal(np.asarray(before[path]), np.asarray(after[path])), path
    learn.unfreeze()
    learn.fit(1, 1e-2)
    assert not np.array_equal(np.asarray(after[("l1", "kernel")]), np.asarray(leaves_by_path(learn)[("l1", "kernel")]))


def test_freeze_to_resets_optimizer_state():
    learn = toy_learner()
    learn.fit(1, 1e-2)
    count = jax.tree_util.tree_leaves(learn.state.opt_state)[0]
    assert int(count) > 0
    learn.freeze_to(1)
    assert all(float(np.abs(np.asarray(x)).sum()) == 0 for x in jax.tree_util.tree_leaves(learn.state.opt_state))


def test_no_recompile_when_lr_moms_wd_change():
    learn = toy_learner()
    learn.fit(1, 1e-3)
    learn.fit_one_cycle(1, 1e-2, moms=(0.8, 0.7), wd=0.1)
    learn.fit_one_cycle(1, slice(1e-4, 1e-2), pct_start=0.5, div=10, div_final=1e3)
    learn.fit(1, slice(1e-3), wd=0.0)
    assert learn.n_traces["train"] == 1
    assert learn.n_traces["eval"] == 1
    learn.freeze()  # a new freeze stage compiles once more, and only once
    learn.fit(1, 1e-3)
    learn.fit_one_cycle(1, 1e-2)
    assert learn.n_traces["train"] == 2


def test_recorder_follows_schedule_and_discriminative_lrs():
    learn = toy_learner()
    n = len(learn.dls.train)
    learn.fit_one_cycle(2, slice(1e-3, 1e-2), moms=(0.8, 0.7))
    r = learn.recorder
    assert len(r.lrs) == len(r.moms) == len(r.losses) == 2 * n
    np.testing.assert_allclose(r.lrs[0], [1e-3 / 25, 1e-2 / 25], rtol=1e-5)
    assert r.moms[0] == pytest.approx(0.8) and min(r.moms) == pytest.approx(0.7, abs=2e-3)
    peak = int(0.25 * 2 * n)
    np.testing.assert_allclose(r.lrs[peak], [1e-3, 1e-2], rtol=1e-3)


def test_same_seed_same_run_bit_for_bit():
    runs = []
    for _ in range(2):
        learn = toy_learner(seed=3)
        learn.fit_one_cycle(2, 1e-2)
        runs.append([np.asarray(x) for x in jax.tree_util.tree_leaves(learn.params)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    other = toy_learner(seed=4)
    other.fit_one_cycle(2, 1e-2)
    assert not np.array_equal(runs[0][-1], np.asarray(jax.tree_util.tree_leaves(other.params)[-1]))


def test_distinct_batch_shapes_compile_once_each():
    x, y = toy_data(256)
    dls = DataLoaders(DataLoader(x[:128], y[:128], bs=32, shuffle=True), DataLoader(x[128:], y[128:], bs=32))
    learn = Learner(dls, MLP(nnx.Rngs(0)), CrossEntropyLossFlat(), progress=False)
    learn.fit(1, 1e-3)
    learn.dls = DataLoaders(DataLoader(x[:128], y[:128], bs=16, shuffle=True), dls.valid)
    learn.fit(1, 1e-3)
    learn.dls = dls
    learn.fit(1, 1e-3)
    assert learn.n_traces["train"] == 2


def test_uneven_last_batch_metrics_exact():
    learn = toy_learner()
    x, y = toy_data(101, seed=5)
    dl = DataLoader(x, y, bs=32)  # 4 batches, last one has 5 real rows and 27 padding rows
    loss, acc = learn.validate(dl)
    preds, targs = learn.get_preds(dl=dl)
    assert preds.shape == (101, 2) and targs.shape == (101,)
    np.testing.assert_allclose(acc, np.mean(preds.argmax(1) == y), rtol=1e-6)
    np.testing.assert_allclose(loss, np.mean(-np.log(preds[np.arange(101), y])), rtol=1e-4)


def test_lr_find_restores_weights_and_suggests():
    learn = toy_learner()
    before = [np.asarray(x) for x in jax.tree_util.tree_leaves(learn.params)]
    res = learn.lr_find(num_it=40, show_plot=False)
    after = [np.asarray(x) for x in jax.tree_util.tree_leaves(learn.params)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert 1e-7 < res.valley < 10
    lrs = learn.recorder.lrs
    np.testing.assert_allclose(lrs[0], 1e-7, rtol=1e-4)
    np.testing.assert_allclose(lrs[1] / lrs[0], (10 / 1e-7) ** (1 / 40), rtol=1e-3)
    assert len(lrs) <= 40


def test_valley_matches_fastai_rule():
    losses = np.array([5, 4, 4.5, 3, 2.5, 2, 1.8, 3, 1.5, 6, 9.0])
    lrs = np.logspace(-5, 0, len(losses))
    lr, (_, loss) = valley(lrs, losses, 100)
    # longest decreasing subsequence 5,4,3,2.5,2,1.8,1.5 ends at index 8, length 7 -> start 1, idx 1+2+1 = 4
    assert lr == pytest.approx(lrs[4]) and loss == 2.5


def test_save_load_roundtrip_and_save_model_callback(tmp_path):
    learn = toy_learner(path=tmp_path)
    learn.fit(1, 1e-2, cbs=[SaveModelCallback(fname="best")])
    assert (tmp_path / "models" / "best" / "meta.json").exists()
    ref = learn.validate()
    learn.save("m1")
    learn.fit(1, 1e-1)
    learn.load("m1")
    assert learn.validate() == pytest.approx(ref)
    with pytest.raises(FileNotFoundError):
        learn.load("nope")


def test_early_stopping():
    learn = toy_learner()
    learn.fit(20, 1e-7, cbs=[EarlyStoppingCallback(monitor="accuracy", min_delta=0.5, patience=2)])
    assert len(learn.recorder.values) == 3  # epoch 0 sets the best, epochs 1 and 2 fail to improve


def test_nan_guard_names_step_and_keeps_last_good_state():
    x, y = toy_data(128)
    x = x.copy()
    x[70] = np.nan  # second batch of the (unshuffled) training loader
    dls = DataLoaders(DataLoader(x, y, bs=32, shuffle=False, drop_last=True), DataLoader(x[:32], y[:32], bs=32))
    learn = Learner(dls, MLP(nnx.Rngs(0)), CrossEntropyLossFlat(), progress=False)
    with pytest.raises(NonFiniteLossError, match="at step 2"):
        learn.fit(1, 1e-3)
    assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree_util.tree_leaves(learn.params))
    assert int(learn.state.step) == 2


def test_norm_logger_records_norms():
    learn = toy_learner()
    learn.fit(1, 1e-2, cbs=[NormLoggerCallback()])
    n = len(learn.dls.train)
    assert len(learn.recorder.grad_norms) == n and all(g > 0 for g in learn.recorder.grad_norms)


def test_device_epoch_trains_and_matches_loop_on_equal_order():
    learn = toy_learner(device_epoch=True)
    learn.fit_one_cycle(3, 1e-2)
    assert learn.n_traces["epoch"] == 1 and learn.n_traces["train"] == 0
    assert learn.validate()[1] > 0.85
    assert len(learn.recorder.losses) == 3 * len(learn.dls.train)


def test_stateful_carry_reset_and_aux_loss_excluded_from_record():
    x, y = toy_data(128)
    dls = DataLoaders(DataLoader(x, y, bs=32, shuffle=False, drop_last=True), DataLoader(x[:64], y[:64], bs=32))
    plain = Learner(dls, CarryModel(nnx.Rngs(0), aux=0.0), CrossEntropyLossFlat(), progress=False,
                    init_carry=lambda bs: np.zeros((bs, 1), np.float32))
    aux = Learner(dls, CarryModel(nnx.Rngs(0), aux=5.0), CrossEntropyLossFlat(), progress=False,
                  init_carry=lambda bs: np.zeros((bs, 1), np.float32))
    plain.fit(1, 1e-3)
    aux.fit(1, 1e-3)
    # a constant aux loss has no gradient: same weights, and the recorded loss leaves it out
    assert plain.recorder.losses == pytest.approx(aux.recorder.losses)
    expected = sum(x[i * 32:(i + 1) * 32].mean(1, keepdims=True) for i in range(4))
    np.testing.assert_allclose(np.asarray(plain.state.carry), expected, rtol=1e-5)


def test_plots_write_png(tmp_path):
    learn = toy_learner()
    learn.fit_one_cycle(1, 1e-2)
    for fn in (learn.recorder.plot_loss, learn.recorder.plot_sched):
        out = fn(fname=str(tmp_path / f"{fn.__name__}.png"))
        assert (tmp_path / f"{fn.__name__}.png").stat().st_size > 1000 and out


def test_bad_batch_size_for_devices_and_empty_train():
    x, y = toy_data(10)
    dls = DataLoaders(DataLoader(x, y, bs=4, shuffle=False), DataLoader(x, y, bs=4))
    learn = Learner(dls, MLP(nnx.Rngs(0)), CrossEntropyLossFlat(), progress=False)
    learn.dls = DataLoaders(DataLoader(x[:0] if False else x, y, bs=20, shuffle=False, drop_last=False), dls.valid)
    learn.fit(1, 1e-3)  # a padded single batch still trains
    with pytest.raises(ValueError, match="drop_last"):
        DataLoader(x, y, bs=20, shuffle=True)
    assert splitter(("l2", "kernel")) == 1 and accuracy.name == "accuracy"
    assert toy_dls().train.bs == 32


def test_readme_custom_loop_with_pure_steps():
    from learner_jax import make_eval_step, make_train_step

    learn = toy_learner()
    learn.fit(1, 1e-2)  # sets a constant schedule in the state
    train_step = jax.jit(make_train_step(learn.spec))
    eval_step = jax.jit(make_eval_step(learn.spec))
    state = learn.state
    losses = []
    for epoch in range(2):
        for batch in learn.dls.train.batches(epoch):
            state, metrics = train_step(state, batch, learn.rng)
            losses.append(float(metrics["loss"]))
    assert int(state.step) == int(learn.state.step) + 2 * len(learn.dls.train)
    _, stats = eval_step(state, learn.dls.valid.one_batch())
    assert float(stats["loss_n"]) == learn.dls.valid.bs and np.isfinite(losses).all()
