"""Build the AWD-LSTM parity fixture with fastai itself (run with the reference interpreter, never with JAX):

    /work/refenv/bin/python experiments/make_parity_fixture.py [--out tests/fixtures]

Writes, for a tiny configuration (emb 16, hidden 32, 3 layers, vocab 50) with a fixed seed:
  * ``awd_lstm_parity.npz``: fastai's LM state dict (``lm/<key>``), two consecutive token batches and fastai's
    logits for them in eval mode (the hidden state carried from the first batch to the second), and the same for
    a text classifier (``clas/<key>``, a ``pad_input_chunk`` batch longer than ``max_len``, eval-mode logits);
  * ``awd_lstm_tiny.pth`` (zip format), ``awd_lstm_tiny_legacy.pth`` (PyTorch's legacy format, wrapped as
    ``{'model': ..., 'opt': None}`` with fastai v1's extra ``module.weight_hh_l0`` keys) and ``itos_tiny.pkl``
    (the vocabulary list), for the weight-import tests.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
import torch
from fastai.text.all import AWD_LSTM, get_language_model, get_text_classifier, pad_chunk

VOCAB = 50
LM_CONFIG = dict(emb_sz=16, n_hid=32, n_layers=3, pad_token=1, bidir=False, output_p=0.1, hidden_p=0.15,
                 input_p=0.25, embed_p=0.02, weight_p=0.2, tie_weights=True, out_bias=True)
CLAS_CONFIG = dict(emb_sz=16, n_hid=32, n_layers=3)
CLAS = dict(n_class=3, seq_len=5, max_len=15, lin_ftrs=[8])
DOC_LENGTHS = [23, 17, 9, 4]  # pad_input_chunk batch; none shorter than 23 % seq_len (fastai's last-pool quirk)


def _np_state(sd) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in sd.items()}


def build(out: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    itos = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]
    itos += [f"w{i}" for i in range(VOCAB - len(itos))]

    lm = get_language_model(AWD_LSTM, VOCAB, config=dict(LM_CONFIG))
    with torch.no_grad():  # a non-zero decoder bias, so the test sees it
        lm[1].decoder.bias.copy_(torch.randn(VOCAB) * 0.5)
    lm.eval()
    lm.reset()
    x1 = torch.from_numpy(rng.integers(0, VOCAB, (3, 12)))
    x2 = torch.from_numpy(rng.integers(0, VOCAB, (3, 12)))
    with torch.no_grad():
        logits1 = lm(x1)[0].numpy()
        logits2 = lm(x2)[0].numpy()  # hidden state carried from x1, as in LM validation

    clas = get_text_classifier(AWD_LSTM, VOCAB, CLAS["n_class"], seq_len=CLAS["seq_len"], config=dict(CLAS_CONFIG),
                               lin_ftrs=CLAS["lin_ftrs"], max_len=CLAS["max_len"])
    with torch.no_grad():
        for i in (0, 1):
            bn = clas[1].layers[i][0]
            bn.running_mean.copy_(torch.randn(bn.num_features) * 0.3)
            bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
            bn.weight.copy_(torch.rand(bn.num_features) + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features) * 0.1)
    clas.eval()
    docs = [torch.from_numpy(rng.integers(2, VOCAB, n)) for n in DOC_LENGTHS]
    xc = torch.stack([pad_chunk(d, pad_idx=1, pad_first=True, seq_len=CLAS["seq_len"], pad_len=max(DOC_LENGTHS))
                      for d in docs])
    with torch.no_grad():
        clas_logits = clas(xc)[0].numpy()

    arrays = {f"lm/{k}": v for k, v in _np_state(lm.state_dict()).items()}
    arrays |= {f"clas/{k}": v for k, v in _np_state(clas.state_dict()).items()}
    arrays |= dict(lm_x1=x1.numpy().astype(np.int32), lm_x2=x2.numpy().astype(np.int32), lm_logits1=logits1,
                   lm_logits2=logits2, clas_x=xc.numpy().astype(np.int32), clas_logits=clas_logits)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "awd_lstm_parity.npz", **arrays)

    torch.save(lm.state_dict(), out / "awd_lstm_tiny.pth")
    legacy = {k: v.clone() for k, v in lm.state_dict().items()}
    for i in range(LM_CONFIG["n_layers"]):  # fastai v1 also saved the dropped copy of W_hh
        legacy[f"0.rnns.{i}.module.weight_hh_l0"] = legacy[f"0.rnns.{i}.weight_hh_l0_raw"] * 0.5
    torch.save({"model": legacy, "opt": None}, out / "awd_lstm_tiny_legacy.pth", _use_new_zipfile_serialization=False)
    with open(out / "itos_tiny.pkl", "wb") as f:
        pickle.dump(itos, f)
    print(f"wrote {out}/awd_lstm_parity.npz, awd_lstm_tiny.pth, awd_lstm_tiny_legacy.pth, itos_tiny.pkl")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
    build(Path(ap.parse_args().out))
