"""fastai side of bench_ulmfit and experiments/ulmfit (run by the reference interpreter, never with JAX):

    /work/refenv/bin/python experiments/bench/fastai_ulmfit_ref.py spec.json out.json

``what == bench`` (driven by bench_ulmfit over stdin/stdout): builds fastai 2.8's AWD-LSTM language model and
classifier on the synthetic workload of the spec and trains/validates them through fastai's own ``Learner.fit``
/ ``validate``, but *in lock-step* with our side: before each batch it prints ``@@step`` and waits for ``go``
(or ``stop``) on stdin, after it prints ``@@done <seconds>``. The two libraries' steps therefore alternate on the
same machine at the same moment, so a noisy shared CPU slows both alike (validation batches inside ``fit`` are
gated too, so they never overlap with our steps).
``spec["precisions"]`` (default ``["fp32"]``) repeats the phases, ``bf16`` under torch's CPU bf16 autocast, the
phase names suffixed ``_bf16``.
``what == protocol``: the ULMFiT protocol of experiments/ulmfit.py with fastai's own data pipeline and
learners, on the same texts and the same pretrained weights file; reports accuracies.
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial

import numpy as np
import torch
from fastai.text.all import (
    AWD_LSTM,
    Callback,
    CancelFitException,
    CancelValidException,
    CrossEntropyLossFlat,
    DataLoaders,
    LMDataLoader,
    SortedDL,
    TensorText,
    language_model_learner,
    pad_input_chunk,
    text_classifier_learner,
)

OUT = sys.__stdout__


def _say(msg: str) -> None:
    OUT.write(f"@@{msg}\n")
    OUT.flush()


class LockStep(Callback):
    """Wait for the driver's ``go`` before each gated batch; report the batch's wall time after it."""

    def __init__(self, train: bool = True, valid: bool = False):
        self.gate_train, self.gate_valid = train, valid

    def _gated(self) -> bool:
        return self.gate_train if self.training else self.gate_valid

    def before_batch(self):
        if not self._gated():
            return
        _say("step train" if self.training else "step valid")
        cmd = sys.stdin.readline().strip()
        if cmd != "go":
            raise CancelFitException() if self.training else CancelValidException()
        self.t0 = time.perf_counter()

    def after_batch(self):
        if self._gated():
            _say(f"done {time.perf_counter() - self.t0:.6f}")


def _vocab(n: int) -> list[str]:
    return ["xxunk", "xxpad"] + [f"w{i}" for i in range(n - 2)]


def _lm_dl(spec: dict, seed: int) -> LMDataLoader:
    tokens = np.random.default_rng(seed).integers(2, spec["vocab"], spec["lm_tokens"]).astype(np.int64)
    return LMDataLoader([TensorText(torch.from_numpy(tokens))], bs=spec["bs"], seq_len=spec["seq_len"])


def _precision(p: str):
    """fp32: nothing; bf16: ``torch.autocast('cpu', dtype=torch.bfloat16)``, the fairest mixed precision a fastai
    user has on a CPU (fastai's ``to_fp16`` is for CUDA)."""
    import contextlib

    return torch.autocast("cpu", dtype=torch.bfloat16) if p == "bf16" else contextlib.nullcontext()


def bench(spec: dict) -> dict:
    res: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    for p in spec.get("precisions", ["fp32"]):
        with _precision(p):
            _bench(spec, "" if p == "fp32" else f"_{p}")
    return res


def _bench(spec: dict, suffix: str) -> None:
    if "lm" in spec["what_bench"]:
        dls = DataLoaders(_lm_dl(spec, 0), _lm_dl(spec, 1), device="cpu")
        dls.vocab = _vocab(spec["vocab"])
        learn = language_model_learner(dls, AWD_LSTM, config=spec["lm_config"], drop_mult=spec["drop_mult"],
                                       pretrained=False)
        _say(f"phase lm_train{suffix}")
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(LockStep(train=True, valid=True)):
            learn.fit(1, 1e-3)
        _say(f"phase lm_valid{suffix}")
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(LockStep(train=False, valid=True)):
            learn.validate()
    if "clas" in spec["what_bench"]:
        rng = np.random.default_rng(2)
        lens = np.asarray(spec["doc_lengths"])
        items = [(TensorText(torch.from_numpy(rng.integers(2, spec["vocab"], n).astype(np.int64))),
                  torch.tensor(int(rng.integers(0, 2)))) for n in lens]
        kw = dict(bs=spec["bs"], before_batch=partial(pad_input_chunk, seq_len=spec["seq_len"]))
        train = SortedDL(items, shuffle=True, drop_last=True, res=lens.tolist(), **kw)
        valid = SortedDL(items[: spec["bs"]], res=lens[: spec["bs"]].tolist(), **kw)
        dls = DataLoaders(train, valid, device="cpu")
        dls.vocab = _vocab(spec["vocab"])
        learn = text_classifier_learner(dls, AWD_LSTM, config=spec["clas_config"], drop_mult=spec["drop_mult"],
                                        pretrained=False, n_out=2, seq_len=spec["seq_len"],
                                        loss_func=CrossEntropyLossFlat())
        _say(f"phase clas_train{suffix}")
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(LockStep(train=True, valid=True)):
            learn.fit(spec["clas_epochs"], 1e-3)


def gradual_unfreezing(clas, schedule) -> None:
    """The lesson's stages: (freeze_to stage or None for the first / 0 for unfreeze, epochs, top lr)."""
    with clas.no_bar():
        for stage, epochs, lr in schedule:
            if stage is not None:
                clas.freeze_to(stage) if stage != 0 else clas.unfreeze()
            clas.fit_one_cycle(epochs, lr if stage is None else slice(lr / 2.6 ** 4, lr), moms=(0.8, 0.7, 0.8))


def protocol(spec: dict) -> dict:
    import pandas as pd
    from fastai.text.all import (
        ColReader,
        DataBlock,
        Perplexity,
        RandomSplitter,
        TextBlock,
        TextDataLoaders,
        accuracy,
        awd_lstm_clas_config,
        awd_lstm_lm_config,
    )

    path = spec["path"]
    lm_df, clas_df = pd.read_parquet(spec["lm"]), pd.read_parquet(spec["clas"])
    t0 = time.perf_counter()
    # TextDataLoaders.from_df silently drops max_vocab (it never reaches TextBlock): build its DataBlock ourselves
    block = TextBlock.from_df("text", is_lm=True, seq_len=72, max_vocab=spec.get("max_vocab", 60000))
    dblock = DataBlock(blocks=[block], get_x=ColReader("text"), splitter=RandomSplitter(0.1, seed=0))
    dls_lm = TextDataLoaders.from_dblock(dblock, lm_df, path=path, seq_len=72, bs=spec.get("lm_bs") or spec["bs"])
    lm_cfg = dict(awd_lstm_lm_config) | spec["config"]  # get_language_model replaces the dict: give it whole
    learn = language_model_learner(dls_lm, AWD_LSTM, config=lm_cfg, drop_mult=0.3, pretrained_fnames=["pre", "pre"],
                                   metrics=[accuracy, Perplexity()])
    with learn.no_bar():
        learn.fit_one_cycle(spec["lm_frozen_epochs"], spec.get("lm_lr", 1e-2), moms=(0.8, 0.7, 0.8))
        learn.unfreeze()
        learn.fit_one_cycle(spec["lm_epochs"], spec.get("lm_unfrozen_lr", 1e-3), moms=(0.8, 0.7, 0.8))
    _, acc, ppl = learn.validate()
    learn.save_encoder("fine_tuned_enc")
    res = {"lm_accuracy": float(acc), "lm_perplexity": float(ppl), "lm_seconds": time.perf_counter() - t0,
           "lm_vocab": len(dls_lm.vocab)}
    t0 = time.perf_counter()
    dls = TextDataLoaders.from_df(clas_df, path=path, text_col="text", label_col="label", valid_col="is_valid",
                                  text_vocab=dls_lm.vocab, bs=spec["bs"], seed=0)
    clas = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, pretrained=False, metrics=accuracy,
                                   config=dict(awd_lstm_clas_config) | spec["config"])
    clas.load_encoder("fine_tuned_enc")
    gradual_unfreezing(clas, spec["schedule"])
    res["clas_accuracy"] = float(clas.validate()[1])
    res["clas_seconds"] = time.perf_counter() - t0
    return res


def few_label(spec: dict) -> dict:
    """experiments/few_label.py's protocol with fastai's own pipeline: LM fine-tuning from the shipped weights
    (exported to fastai's format as models/pre.pth + pre.pkl), gradual unfreezing, accuracy on the whole test
    set measured once at the end (the epoch tables monitor the first ``monitor`` test reviews)."""
    import pandas as pd
    from fastai.text.all import TextDataLoaders, accuracy, awd_lstm_clas_config, awd_lstm_lm_config

    path = spec["path"]
    lm_df = pd.read_json(spec["lm"], orient="records", lines=True)
    clas_df = pd.read_json(spec["clas"], orient="records", lines=True)
    t_all = t0 = time.perf_counter()
    dls_lm = TextDataLoaders.from_df(lm_df, path=path, text_col="text", is_lm=True, valid_pct=0.1, seed=0,
                                     bs=spec["lm_bs"])
    lm_cfg = dict(awd_lstm_lm_config) | spec["config"]
    learn = language_model_learner(dls_lm, AWD_LSTM, config=lm_cfg, drop_mult=0.3, pretrained_fnames=["pre", "pre"],
                                   metrics=[accuracy])
    with learn.no_bar():
        learn.fit_one_cycle(1, 1e-2, moms=(0.8, 0.7, 0.8))
        learn.unfreeze()
        learn.fit_one_cycle(2, 1e-3, moms=(0.8, 0.7, 0.8))
    loss, acc = learn.validate()
    learn.save_encoder("fine_tuned_enc")
    res = {"lm_accuracy": float(acc), "lm_perplexity": float(np.exp(loss)), "lm_vocab": len(dls_lm.vocab),
           "lm_seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    train, test = clas_df[~clas_df.is_valid], clas_df[clas_df.is_valid]
    dls = TextDataLoaders.from_df(pd.concat([train, test.iloc[: spec["monitor"]]]), path=path, text_col="text",
                                  label_col="label", valid_col="is_valid", text_vocab=dls_lm.vocab, bs=spec["bs"],
                                  seed=0)
    clas = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, pretrained=False, metrics=accuracy,
                                   config=dict(awd_lstm_clas_config) | spec["config"], max_len=spec["max_len"])
    clas.load_encoder("fine_tuned_enc")
    gradual_unfreezing(clas, spec["schedule"])
    test_dl = clas.dls.test_dl(test, with_labels=True)
    res["clas_accuracy"] = float(clas.validate(dl=test_dl)[1])
    res["clas_seconds"] = time.perf_counter() - t0
    res["seconds"] = time.perf_counter() - t_all
    return res


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    torch.manual_seed(0)
    out = {"protocol": protocol, "few_label": few_label}.get(spec["what"], bench)(spec)
    with open(sys.argv[2], "w") as f:
        json.dump({"torch": torch.__version__} | out, f)
    _say("end")


if __name__ == "__main__":
    main()
