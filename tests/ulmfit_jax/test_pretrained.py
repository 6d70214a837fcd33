"""Shipped pretrained LMs (ulmfit_jax.pretrained): the code-free format, checksums, config read off the weights,
fastai export, and the files that ship in the package."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ulmfit_jax import AWD_LSTM, available_models, language_model_learner, pretrained_lm
from ulmfit_jax.pretrained import (
    MODELS_DIR,
    ChecksumError,
    config_from_state_dict,
    export_fastai_files,
    save_shipped_lm,
    sha256_of,
)
from ulmfit_jax.weights import WeightsMismatchError, load_state_dict, load_vocab

from .tiny_text import lm_dls, tiny_vocab

TINY = dict(emb_sz=16, n_hid=32, n_layers=2)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny LM written in the shipped format into a models folder with its manifest."""
    d = tmp_path_factory.mktemp("models")
    vocab = tiny_vocab()
    learn = language_model_learner(lm_dls(vocab), AWD_LSTM, pretrained=False, config=TINY, progress=False, seed=3)
    sums = save_shipped_lm(learn.model, vocab, d / "tiny.npz", d / "tiny.vocab.json", config=TINY)
    (d / "manifest.json").write_text(json.dumps({"tiny": {
        "weights": "tiny.npz", "vocab": "tiny.vocab.json", "config": TINY,
        "sha256": {"weights": sums["weights"], "vocab": sums["vocab"]}}}))
    return d, learn, vocab


def _params(learn):
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(learn.params)]


def test_pretrained_lm_object_unpacks_and_loads_in_both_config_modes(shipped):
    d, src, vocab = shipped
    lm = pretrained_lm("tiny", models_dir=d)
    weights, vocab_file = lm
    assert weights == lm.weights and vocab_file == lm.vocab and lm.config == TINY and set(lm.sha256) >= {"weights"}
    assert json.loads(vocab_file.read_text()) == vocab
    for config in (lm.config, None):  # None: the sizes are read from the weights
        learn = language_model_learner(lm_dls(vocab), AWD_LSTM, pretrained_fnames=lm, config=config, progress=False)
        assert learn.model.encoder.hidden_sizes == src.model.encoder.hidden_sizes
        for a, b in zip(_params(learn), _params(src)):  # fp16 storage: equal to half precision
            np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)
        assert learn.n_frozen > 0  # frozen after loading pretrained weights, as fastai


def test_weights_are_read_once(shipped, monkeypatch):
    """The weights file sizes the model and is loaded into it from one read (WT103's is 460 MB)."""
    import ulmfit_jax.learner as learner_mod
    import ulmfit_jax.weights as weights_mod

    d, src, vocab = shipped
    reads = []
    real = weights_mod.load_state_dict
    for mod in (learner_mod, weights_mod):
        monkeypatch.setattr(mod, "load_state_dict", lambda f: reads.append(f) or real(f))
    learn = language_model_learner(lm_dls(vocab), AWD_LSTM, pretrained_fnames=pretrained_lm("tiny", models_dir=d),
                                   progress=False)
    assert len(reads) == 1
    np.testing.assert_allclose(_params(learn)[0], _params(src)[0], rtol=2e-3, atol=2e-4)


def test_code_free_format(shipped):
    d, _, _ = shipped
    with zipfile.ZipFile(d / "tiny.npz") as z:  # arrays only: no pickled objects anywhere in the file
        assert all(n.endswith(".npy") for n in z.namelist())
    with np.load(d / "tiny.npz", allow_pickle=False) as z:
        assert all(z[k].dtype in (np.float16, np.dtype("<U40")) or z[k].dtype.kind == "U" for k in z.files)
    wgts = load_state_dict(d / "tiny.npz")
    assert wgts["1.decoder.weight"].shape == wgts["0.encoder.weight"].shape  # tied copy restored
    assert config_from_state_dict(wgts) == TINY


def test_int8_storage_halves_the_file_and_keeps_the_model(shipped, tmp_path):
    _, learn, vocab = shipped
    f16 = save_shipped_lm(learn.model, vocab, tmp_path / "h.npz", tmp_path / "h.json", config=TINY)
    i8 = save_shipped_lm(learn.model, vocab, tmp_path / "q.npz", tmp_path / "q.json", config=TINY, storage="int8")
    assert (f16["storage"], i8["storage"]) == ("float16", "int8")
    with np.load(tmp_path / "q.npz", allow_pickle=False) as z:  # matrices as int8 rows, vectors as float16
        kinds = {k: z[k].dtype for k in z.files if k != "__order__"}
        assert kinds["0.encoder.weight"] == np.int8 and kinds["__scale__.0.encoder.weight"] == np.float32
        assert all(d == np.float16 for k, d in kinds.items() if "bias" in k)
    def matrix_bytes(path):  # the stored matrices (the tiny model's file is mostly headers and vectors)
        with zipfile.ZipFile(path) as z:
            return sum(i.file_size for i in z.infolist() if "weight" in i.filename and "__scale__" not in i.filename)

    assert matrix_bytes(tmp_path / "q.npz") < 0.6 * matrix_bytes(tmp_path / "h.npz")
    full = {k: np.asarray(v, np.float32) for k, v in load_state_dict(tmp_path / "h.npz").items()}
    q = load_state_dict(tmp_path / "q.npz")
    assert list(q) == list(full) and all(q[k].dtype == np.float32 for k in q)
    for k, w in full.items():  # within half a quantization step of each row's largest weight (+ fp16 rounding)
        tol = np.abs(w).max(axis=-1, keepdims=True) / 254 + 1e-3 * np.abs(w) + 1e-6 if w.ndim == 2 else 1e-3
        assert np.all(np.abs(q[k] - w) <= tol), k
    with pytest.raises(ValueError, match="storage must be one of .*'bf8'"):
        save_shipped_lm(learn.model, vocab, tmp_path / "x.npz", tmp_path / "x.json", storage="bf8")


def test_the_format_is_deterministic(shipped, tmp_path):
    _, learn, vocab = shipped
    a = save_shipped_lm(learn.model, vocab, tmp_path / "a.npz", tmp_path / "a.json", config=TINY)
    b = save_shipped_lm(learn.model, vocab, tmp_path / "b.npz", tmp_path / "b.json", config=TINY)
    assert a == b and (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_bad_inputs(shipped, tmp_path):
    d, _, vocab = shipped
    with pytest.raises(ValueError, match=r"no pretrained language model named 'nope'.*'tiny'"):
        pretrained_lm("nope", models_dir=d)
    with pytest.raises(WeightsMismatchError, match=r"n_hid=64 \(the weights have 32\)"):
        language_model_learner(lm_dls(vocab), AWD_LSTM, pretrained_fnames=pretrained_lm("tiny", models_dir=d),
                               config=dict(TINY, n_hid=64), progress=False)
    bad = tmp_path / "models"
    bad.mkdir()
    for f in d.iterdir():
        bad.joinpath(f.name).write_bytes(f.read_bytes())
    raw = bytearray((bad / "tiny.npz").read_bytes())
    raw[-40] ^= 0xFF
    (bad / "tiny.npz").write_bytes(bytes(raw))
    lm = pretrained_lm("tiny", models_dir=bad)
    expected = lm.sha256["weights"]
    with pytest.raises(ChecksumError, match=rf"{sha256_of(bad / 'tiny.npz')}.*{expected}"):
        language_model_learner(lm_dls(vocab), AWD_LSTM, pretrained_fnames=lm, progress=False)
    with pytest.raises(ValueError, match="pretrained_fnames must be"):
        language_model_learner(lm_dls(vocab), AWD_LSTM, pretrained_fnames=str(d / "tiny.npz"), progress=False)


def test_export_to_fastai_format(shipped, tmp_path):
    d, _, vocab = shipped
    lm = pretrained_lm("tiny", models_dir=d)
    pth, pkl = export_fastai_files(lm, tmp_path / "pre.pth", tmp_path / "pre.pkl")
    assert zipfile.is_zipfile(pth) and load_vocab(pkl) == vocab
    with open(pkl, "rb") as f:
        assert pickle.load(f) == vocab
    a, b = load_state_dict(pth), load_state_dict(lm.weights)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["english-small", "english-medium", "english-large", None])
def test_the_shipped_model_is_installed_and_intact(name):
    assert {"english-small", "english-medium", "english-large"} <= set(available_models())
    lm = (pretrained_lm() if name is None else pretrained_lm(name)).verify()
    assert lm.name == (name or "english-large")  # no name: the model that transfers in the few-label protocol
    assert lm.weights.parent == MODELS_DIR and lm.weights.suffix == ".npz" and lm.vocab.suffix == ".json"
    assert sum(p.stat().st_size for p in lm) <= 25 * 2**20
    wgts = load_state_dict(lm.weights)
    assert config_from_state_dict(wgts) == {k: lm.config[k] for k in ("emb_sz", "n_hid", "n_layers")}
    assert wgts["0.encoder.weight"].shape[0] == len(load_vocab(lm.vocab))


def test_all_shipped_models_together_fit_the_package_budget():
    files = [f for name in available_models() for f in pretrained_lm(name)]
    assert sum(f.stat().st_size for f in files) + (MODELS_DIR / "manifest.json").stat().st_size <= 25 * 2**20


def test_shipped_files_are_package_data():
    import tomllib

    cfg = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"]["package-data"]["*"]
    assert "*.npz" in globs and "*.json" in globs
