"""fastai weight files: torch-free restricted loading (zip and legacy formats), refusal of malicious pickles,
vocabulary matching, export to fastai's layout and the errors for files that do not fit."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from ulmfit_jax.models import AWD_LSTM, get_language_model, get_text_classifier
from ulmfit_jax.torch_pickle import (
    CheckpointFormatError,
    UnsafePickleError,
    load_checkpoint,
    load_pickle,
    save_state_dict,
)
from ulmfit_jax.weights import (
    WeightsMismatchError,
    from_fastai_state_dict,
    load_encoder_file,
    load_pretrained,
    load_state_dict,
    load_vocab,
    match_embeds,
    save_encoder_file,
    to_fastai_state_dict,
)

FIX = Path(__file__).resolve().parents[1] / "fixtures"
TINY = dict(emb_sz=16, n_hid=32)
REF_PYTHON = os.environ.get("LESSON4_REF_PYTHON", "/work/refenv/bin/python")


@pytest.fixture(scope="module")
def parity():
    f = np.load(FIX / "awd_lstm_parity.npz")
    return {k[3:]: f[k] for k in f.files if k.startswith("lm/")}, f


class _Evil:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.target}",))


def test_reads_torch_zip_checkpoint(parity):
    sd, _ = parity
    loaded = load_state_dict(FIX / "awd_lstm_tiny.pth")
    assert list(loaded) == list(sd)
    for k in sd:
        np.testing.assert_array_equal(loaded[k], sd[k])


def test_reads_legacy_checkpoint_wrapped_with_v1_keys(parity):
    sd, _ = parity
    loaded = load_state_dict(FIX / "awd_lstm_tiny_legacy.pth")  # {'model': ..., 'opt': None}, legacy format
    for k in sd:
        np.testing.assert_array_equal(loaded[k], sd[k])
    assert "0.rnns.0.module.weight_hh_l0" in loaded  # v1's dropped copy, ignored when loading into a model
    model = get_language_model(AWD_LSTM, 50, dict(TINY))
    from_fastai_state_dict(model, loaded)
    np.testing.assert_array_equal(np.asarray(model.encoder.rnns[0].weight_hh_raw[...]).T,
                                  sd["0.rnns.0.weight_hh_l0_raw"])


def test_reads_vocab_pickle():
    vocab = load_vocab(FIX / "itos_tiny.pkl")
    assert vocab[:3] == ["xxunk", "xxpad", "xxbos"] and len(vocab) == 50


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    target = tmp_path / "pwned"
    evil = tmp_path / "itos.pkl"
    evil.write_bytes(pickle.dumps(_Evil(target)))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
        load_pickle(evil)
    with pytest.raises(UnsafePickleError):
        load_vocab(evil)
    # the same payload inside a torch zip checkpoint
    pth = tmp_path / "evil.pth"
    with zipfile.ZipFile(pth, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"0.encoder.weight": _Evil(target)}, protocol=2))
    with pytest.raises(UnsafePickleError):
        load_state_dict(pth)
    # builtins.eval through a plain GLOBAL/REDUCE
    payload = b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x00print('hi')\x85R."
    (tmp_path / "eval.pkl").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        load_pickle(tmp_path / "eval.pkl")
    assert not target.exists()


def test_tensor_reading_past_its_storage_is_refused(tmp_path):
    save_state_dict({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, tmp_path / "ok.pth")
    with zipfile.ZipFile(tmp_path / "ok.pth") as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    data = files["archive/data.pkl"].replace(b"K\x02K\x03", b"K\x09K\x03")  # size (2, 3) -> (9, 3)
    assert data != files["archive/data.pkl"]
    with zipfile.ZipFile(tmp_path / "bad.pth", "w") as zf:
        for n, b in files.items():
            zf.writestr(n, data if n.endswith("data.pkl") else b)
    with pytest.raises(CheckpointFormatError, match="past its storage"):
        load_checkpoint(tmp_path / "bad.pth")
    with pytest.raises(CheckpointFormatError):
        load_checkpoint(FIX / "itos_tiny.pkl")  # a plain pickle is not a checkpoint


def test_export_round_trip_and_fastai_layout(parity, tmp_path):
    sd, f = parity
    model = get_language_model(AWD_LSTM, 50, dict(TINY))
    from_fastai_state_dict(model, sd)
    out = to_fastai_state_dict(model)
    assert list(out) == list(sd)  # same keys, same order as fastai's state_dict()
    for k in sd:
        np.testing.assert_array_equal(out[k], sd[k])
    save_state_dict(out, tmp_path / "lm.pth")
    again = load_state_dict(tmp_path / "lm.pth")
    for k in sd:
        np.testing.assert_array_equal(again[k], sd[k])
    clas = get_text_classifier(AWD_LSTM, 50, 3, seq_len=5, max_len=15, lin_ftrs=[8], config=dict(TINY))
    csd = {k[5:]: f[k] for k in f.files if k.startswith("clas/")}
    from_fastai_state_dict(clas, csd)
    cout = to_fastai_state_dict(clas)
    assert list(cout) == list(csd)
    for k in csd:
        np.testing.assert_allclose(cout[k], csd[k])


@pytest.mark.skipif(not Path(REF_PYTHON).exists(), reason="needs the fastai reference interpreter (ref extra)")
def test_torch_loads_our_export_with_weights_only(parity, tmp_path):
    sd, _ = parity
    model = get_language_model(AWD_LSTM, 50, dict(TINY))
    from_fastai_state_dict(model, sd)
    save_state_dict(to_fastai_state_dict(model), tmp_path / "lm.pth")
    code = ("import sys, torch; sd = torch.load(sys.argv[1], weights_only=True); "
            "print(len(sd), float(sd['1.decoder.bias'].sum()))")
    res = subprocess.run([REF_PYTHON, "-c", code, str(tmp_path / "lm.pth")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    n, total = res.stdout.split()
    assert int(n) == len(sd) and float(total) == pytest.approx(float(sd["1.decoder.bias"].sum()), rel=1e-5)


def test_match_embeds_copies_known_words_and_averages_new_ones(parity):
    sd, _ = parity
    old = load_vocab(FIX / "itos_tiny.pkl")
    new = ["xxunk", "xxpad", "w3", "brand-new", "w0"]
    out = match_embeds(sd, old, new)
    emb, bias = sd["0.encoder.weight"], sd["1.decoder.bias"]
    np.testing.assert_array_equal(out["0.encoder.weight"][2], emb[old.index("w3")])
    np.testing.assert_allclose(out["0.encoder.weight"][3], emb.mean(0), rtol=1e-6)
    np.testing.assert_allclose(out["1.decoder.bias"][3], bias.mean(), rtol=1e-6)
    np.testing.assert_array_equal(out["1.decoder.weight"], out["0.encoder.weight"])
    np.testing.assert_array_equal(out["0.encoder_dp.emb.weight"], out["0.encoder.weight"])
    assert out["1.decoder.bias"].shape == (5,)


def test_load_pretrained_with_new_vocab_keeps_known_word_logits(parity):
    sd, f = parity
    old = load_vocab(FIX / "itos_tiny.pkl")
    new = old[::-1] + ["zzz-new"] * 6  # shuffled order plus unseen words
    model = get_language_model(AWD_LSTM, len(new), dict(TINY))
    load_pretrained(model, FIX / "awd_lstm_tiny.pth", FIX / "itos_tiny.pkl", new)
    x_old = f["lm_x1"]
    x_new = np.array([[new.index(old[t]) for t in row] for row in x_old], np.int32)
    logits = np.asarray(model(jnp.asarray(x_new), None).preds)
    perm = [new.index(w) for w in old]
    np.testing.assert_allclose(logits[..., perm], f["lm_logits1"], atol=1e-4)


def test_mismatched_files_give_clear_errors(parity, tmp_path):
    sd, _ = parity
    bigger = get_language_model(AWD_LSTM, 50, dict(emb_sz=16, n_hid=40))
    with pytest.raises(WeightsMismatchError, match=r"'0.rnns.0.weight_hh_l0_raw' has shape \(128, 32\).*"
                                                    r"expects \(160, 40\)"):
        from_fastai_state_dict(bigger, sd)
    two_layers = get_language_model(AWD_LSTM, 50, dict(emb_sz=16, n_hid=32, n_layers=2))
    with pytest.raises(WeightsMismatchError, match="does not use"):
        from_fastai_state_dict(two_layers, sd)
    with pytest.raises(WeightsMismatchError, match="lacks"):
        from_fastai_state_dict(get_language_model(AWD_LSTM, 50, dict(TINY)),
                               {k: v for k, v in sd.items() if "rnns.1" not in k})
    enc = get_language_model(AWD_LSTM, 50, dict(TINY)).encoder
    save_encoder_file(enc, tmp_path / "enc.pth")
    other_vocab = get_text_classifier(AWD_LSTM, 64, 2, config=dict(TINY)).encoder.module
    with pytest.raises(WeightsMismatchError, match="vocabulary of 50 tokens but this model has 64"):
        load_encoder_file(other_vocab, tmp_path / "enc.pth")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pth")


def test_encoder_file_round_trip(tmp_path):
    lm = get_language_model(AWD_LSTM, 50, dict(TINY), seed=1)
    save_encoder_file(lm.encoder, tmp_path / "enc.pth")
    keys = list(load_state_dict(tmp_path / "enc.pth"))
    assert keys[:3] == ["encoder.weight", "encoder_dp.emb.weight", "rnns.0.weight_hh_l0_raw"]
    clas = get_text_classifier(AWD_LSTM, 50, 2, config=dict(TINY), seed=2)
    load_encoder_file(clas.encoder.module, tmp_path / "enc.pth")
    np.testing.assert_array_equal(clas.encoder.module.embedding[...], lm.encoder.embedding[...])
    np.testing.assert_array_equal(clas.encoder.module.rnns[2].bias_hh[...], lm.encoder.rnns[2].bias_hh[...])


def test_zip_root_folder_name_may_vary(parity, tmp_path):
    """Older torch versions name the zip's root folder after the file, not 'archive'."""
    sd, _ = parity
    src = FIX / "awd_lstm_tiny.pth"
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w") as zout:
        for n in zin.namelist():
            zout.writestr("lstm_fwd/" + n.split("/", 1)[1], zin.read(n))
    (tmp_path / "lstm_fwd.pth").write_bytes(buf.getvalue())
    loaded = load_state_dict(tmp_path / "lstm_fwd.pth")
    np.testing.assert_array_equal(loaded["1.decoder.bias"], sd["1.decoder.bias"])
    shutil.rmtree(tmp_path, ignore_errors=True)
