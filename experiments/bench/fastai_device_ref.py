"""fastai 2.8 side of device_check (run by the reference interpreter, never with JAX): the same workloads as
``device_check.py`` on torch's device (CUDA with cuDNN's LSTM when present), fp32 and ``to_fp16``.

    python experiments/bench/fastai_device_ref.py spec.json      # prints one JSON line
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial

import numpy as np
import pandas as pd
import torch
from fastai.collab import CollabDataLoaders, collab_learner
from fastai.tabular.all import Categorify, Normalize, TabularDataLoaders, tabular_learner
from fastai.text.all import (
    AWD_LSTM,
    Callback,
    CrossEntropyLossFlat,
    DataLoaders,
    LMDataLoader,
    SortedDL,
    TensorText,
    awd_lstm_clas_config,
    awd_lstm_lm_config,
    language_model_learner,
    pad_input_chunk,
    text_classifier_learner,
)


class StepTimes(Callback):
    """Wall time of each training batch, the device synchronised so that queued kernels are counted."""

    def before_fit(self):
        self.times = []

    def before_batch(self):
        if self.training:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            self.t0 = time.perf_counter()

    def after_batch(self):
        if self.training:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            self.times.append(time.perf_counter() - self.t0)


def _vocab(n: int) -> list[str]:
    return ["xxunk", "xxpad"] + [f"w{i}" for i in range(n - 2)]


def _median_after_warmup(times: list[float]) -> float:
    return float(np.median(times[2:] if len(times) > 3 else times))


def lm(spec: dict, dev: str, fp16: bool) -> float:
    def dl(seed):
        toks = np.random.default_rng(seed).integers(2, spec["vocab"], spec["lm_tokens"]).astype(np.int64)
        return LMDataLoader([TensorText(torch.from_numpy(toks))], bs=spec["bs"], seq_len=spec["seq_len"])

    dls = DataLoaders(dl(0), dl(1), device=dev)
    dls.vocab = _vocab(spec["vocab"])
    cfg = dict(awd_lstm_lm_config) | spec.get("lm_config", {})
    learn = language_model_learner(dls, AWD_LSTM, config=cfg, drop_mult=0.3, pretrained=False)
    if fp16:
        learn = learn.to_fp16()
    cb = StepTimes()
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3, cbs=cb)
    return spec["bs"] * spec["seq_len"] / _median_after_warmup(cb.times)


def clas(spec: dict, dev: str) -> float:
    rng = np.random.default_rng(2)
    lens = np.asarray(spec["doc_lengths"])
    items = [(TensorText(torch.from_numpy(rng.integers(2, spec["vocab"], n).astype(np.int64))),
              torch.tensor(int(rng.integers(0, 2)))) for n in lens]
    kw = dict(bs=spec["bs"], before_batch=partial(pad_input_chunk, seq_len=spec["seq_len"]))
    dls = DataLoaders(SortedDL(items, shuffle=True, drop_last=True, res=lens.tolist(), **kw),
                      SortedDL(items[: spec["bs"]], res=lens[: spec["bs"]].tolist(), **kw), device=dev)
    dls.vocab = _vocab(spec["vocab"])
    cfg = dict(awd_lstm_clas_config) | spec.get("clas_config", {})
    learn = text_classifier_learner(dls, AWD_LSTM, config=cfg, drop_mult=0.5, pretrained=False, n_out=2,
                                    seq_len=spec["seq_len"], loss_func=CrossEntropyLossFlat())
    cb = StepTimes()
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, 1e-3, cbs=cb)
    n = len(cb.times) // 2
    return n * spec["bs"] / sum(cb.times[n:])


def epoch_time(learn) -> float:
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)  # warm-up epoch
        t0 = time.perf_counter()
        learn.fit(1, 1e-3)
    return time.perf_counter() - t0


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    res = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
           "cudnn": torch.backends.cudnn.is_available()}
    res["lm_fp32_tok_s"] = lm(spec, dev, False)
    res["lm_fp16_tok_s"] = lm(spec, dev, True)
    res["clas_docs_s"] = clas(spec, dev)
    ratings = pd.read_csv(spec["collab_csv"])
    cdls = CollabDataLoaders.from_df(ratings, bs=64, seed=0, device=dev)
    res["collab_epoch_s"] = epoch_time(collab_learner(cdls, n_factors=50, y_range=(0, 5.5)))
    table = pd.read_csv(spec["tabular_csv"])
    tdls = TabularDataLoaders.from_df(table, procs=[Categorify, Normalize], cat_names=spec["cats"],
                                      cont_names=spec["conts"], y_names="y", bs=64, device=dev)
    res["tabular_epoch_s"] = epoch_time(tabular_learner(tdls, layers=[200, 100]))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
