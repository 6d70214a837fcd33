"""Every learner trained one epoch on tiny data, in a subprocess: the scaling tests compare its results across
device counts (XLA_FLAGS decides them), sharded and replicated tables, and one process vs several.

usage: python -m tests.learner_jax.scale_run OUT.npz [--learners collab,tabular,lm,clas,collab_sharded]
       [--coordinator HOST:PORT --num-processes N --process-id I] [--ckpt DIR]
Several processes: each joins through ``learner_jax.distributed.initialize``; process 0 writes OUT.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

ALL = ("collab", "collab_sharded", "tabular", "tabular_sharded", "lm", "clas")


def text_corpus(n_docs: int, seed: int, sizes: tuple[int, int] = (6, 30)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ids, offsets and labels of documents in the tiny LM language (ordered runs = 1, random words = 0)."""
    rng = np.random.default_rng(seed)
    docs, labels = [], []
    for _ in range(n_docs):
        size, ordered = int(rng.integers(*sizes)), rng.random() < 0.5
        doc = 9 + (rng.integers(0, 37) + np.arange(size)) % 37 if ordered else rng.integers(9, 46, size)
        docs.append(np.concatenate([[2], doc]).astype(np.int32))
        labels.append(int(ordered))
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    return np.concatenate(docs), offsets, np.asarray(labels, np.int32)


def run_collab(out: dict, shard: bool, ckpt: Path | None) -> None:
    from collab_jax import CollabDataLoaders, collab_learner
    from collab_jax.synthetic import low_rank_ratings
    from learner_jax.sharding import per_device_bytes

    syn = low_rank_ratings(45, 30, rank=3, density=0.4, noise=0.2, seed=0)
    dls = CollabDataLoaders.from_df(syn.ratings[["user", "item", "rating"]], seed=0, bs=64)
    kw = {"path": ckpt} if ckpt is not None else {}
    learn = collab_learner(dls, n_factors=8, y_range=(0.5, 5.5), progress=False, shard_tables=shard, **kw)
    learn.fit_one_cycle(1, 5e-3)
    tag = "collab_sharded" if shard else "collab"
    n_u, n_i = dls.n_users, dls.n_items
    p = learn.params
    out[f"{tag}/tables"] = np.concatenate([to_np(p["u_weight"]["embedding"])[:n_u].ravel(),
                                           to_np(p["i_weight"]["embedding"])[:n_i].ravel(),
                                           to_np(p["u_bias"]["embedding"])[:n_u].ravel(),
                                           to_np(p["i_bias"]["embedding"])[:n_i].ravel()])
    out[f"{tag}/valid"] = np.asarray(learn.validate())
    out[f"{tag}/preds"] = learn.get_preds()[0]
    out[f"{tag}/max_device_bytes"] = np.asarray(max(per_device_bytes(p).values()))
    out[f"{tag}/total_bytes"] = np.asarray(sum(x.nbytes for x in _leaves(p)))
    if ckpt is not None and not shard:  # weights saved by all processes, loaded into a fresh learner
        learn.save("collab")
        fresh = collab_learner(dls, n_factors=8, y_range=(0.5, 5.5), progress=False, path=ckpt, seed=5)
        out["collab/reloaded_valid"] = np.asarray(fresh.load("collab").validate())


def run_tabular(out: dict, shard: bool = False) -> None:
    from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, tabular_learner
    from tabular_jax.models import get_emb_sz
    from tests.tabular_jax.conftest import make_toy

    dls = TabularDataLoaders.from_df(make_toy(320, seed=1), procs=[FillMissing, Categorify, Normalize],
                                     cat_names=["color", "shape"], cont_names=["x", "noise", "age"], y_names="label",
                                     valid_idx=list(range(256, 320)), bs=32)
    learn = tabular_learner(dls, layers=[16, 8], metrics=accuracy, progress=False, shard_tables=shard)
    learn.fit_one_cycle(1, 1e-2)
    tag = "tabular_sharded" if shard else "tabular"
    out[f"{tag}/valid"] = np.asarray(learn.validate())
    embeds = learn.params["embeds"]  # {0: {"embedding": ...}, 1: ...}; compared without the padding rows
    out[f"{tag}/tables"] = np.concatenate([to_np(embeds[i]["embedding"])[:n].ravel()
                                           for i, (n, _) in enumerate(get_emb_sz(dls))])
    out[f"{tag}/n_sharded"] = np.asarray(len(learn.table_shapes))
    if not shard:
        out["tabular/params"] = np.concatenate([to_np(x).ravel() for x in _leaves(learn.params)])


def _lm_learner(dls, path):
    from ulmfit_jax import AWD_LSTM, language_model_learner

    return language_model_learner(dls, AWD_LSTM, drop_mult=0.3, pretrained=False, config=dict(emb_sz=16, n_hid=24),
                                  path=path, progress=False, unroll=1)


def run_lm(out: dict, ckpt: Path | None) -> None:
    from learner_jax import CheckpointCallback
    from learner_jax.data import DataLoaders
    from tests.ulmfit_jax.tiny_text import tiny_vocab
    from ulmfit_jax.text_loaders import LMDataLoader

    ids, offsets, _ = text_corpus(120, seed=3)
    n_train = 90
    dls = DataLoaders(LMDataLoader(ids, offsets, np.arange(n_train), bs=8, seq_len=10, shuffle=True, seed=0),
                      LMDataLoader(ids, offsets, np.arange(n_train, 120), bs=8, seq_len=10))
    dls.vocab = tiny_vocab()
    path = ckpt if ckpt is not None else Path(tempfile.mkdtemp())
    learn = _lm_learner(dls, path)
    cbs = [CheckpointCallback(str(path / "lm_ckpt"), every_epoch=True)] if ckpt is not None else []
    learn.fit_one_cycle(1, 1e-2, cbs=cbs)
    out["lm/params"] = np.concatenate([to_np(x).ravel() for x in _leaves(learn.params)])
    out["lm/carry"] = np.concatenate([to_np(x).ravel() for x in _leaves(learn.state.carry)])
    out["lm/valid"] = np.asarray(learn.validate())
    if ckpt is not None:  # a fresh learner resumes the finished fit from the multi-process training checkpoint
        fresh = _lm_learner(dls, path)
        fresh.fit_one_cycle(1, 1e-2, resume_from=str(path / "lm_ckpt"))
        out["lm/resumed_params"] = np.concatenate([to_np(x).ravel() for x in _leaves(fresh.params)])
        out["lm/resumed_carry"] = np.concatenate([to_np(x).ravel() for x in _leaves(fresh.state.carry)])


def run_clas(out: dict) -> None:
    from learner_jax.data import DataLoaders
    from tests.ulmfit_jax.tiny_text import tiny_vocab
    from ulmfit_jax import AWD_LSTM, text_classifier_learner
    from ulmfit_jax.text_loaders import SortedDL

    ids, offsets, labels = text_corpus(96, seed=4, sizes=(9, 16))  # one padded width: one compile
    tr, va = np.arange(64), np.arange(64, 96)
    dls = DataLoaders(SortedDL(ids, offsets, tr, labels[tr], bs=16, seq_len=8, shuffle=True, seed=0),
                      SortedDL(ids, offsets, va, labels[va], bs=16, seq_len=8))
    dls.vocab, dls.classes = tiny_vocab(), ["random", "ordered"]
    learn = text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, seq_len=8, config=dict(emb_sz=16, n_hid=24),
                                    pretrained=False, progress=False, unroll=1, path=tempfile.mkdtemp())
    learn.fit_one_cycle(1, 1e-2)
    out["clas/params"] = np.concatenate([to_np(x).ravel() for x in _leaves(learn.params)])
    out["clas/valid"] = np.asarray(learn.validate())


def _leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


def to_np(x) -> np.ndarray:
    from learner_jax.sharding import to_host

    return np.asarray(to_host(x))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--learners", default=",".join(ALL))
    ap.add_argument("--coordinator")
    ap.add_argument("--num-processes", type=int)
    ap.add_argument("--process-id", type=int)
    ap.add_argument("--ckpt")
    args = ap.parse_args()
    from learner_jax.distributed import initialize, is_main_process

    initialize(args.coordinator, args.num_processes, args.process_id)
    import jax

    ckpt = Path(args.ckpt) if args.ckpt else None
    out: dict = {"n_devices": np.asarray(len(jax.devices())), "n_processes": np.asarray(jax.process_count())}
    for name in args.learners.split(","):
        if name in ("collab", "collab_sharded"):
            run_collab(out, name == "collab_sharded", ckpt)
        elif name in ("tabular", "tabular_sharded"):
            run_tabular(out, name == "tabular_sharded")
        elif name == "lm":
            run_lm(out, ckpt)
        elif name == "clas":
            run_clas(out)
        else:
            raise SystemExit(f"unknown learner {name!r}: pick from {ALL}")
    if is_main_process():
        np.savez(args.out, **out)


if __name__ == "__main__":
    main()
