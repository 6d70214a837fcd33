"""Fields of experiments/pretrain_lm.py's configs; every former command-line option is one."""

from __future__ import annotations

from ml_collections import ConfigDict, config_dict


def base() -> ConfigDict:
    c = ConfigDict()
    c.data_dir = ""  # shared datasets folder ('' = $LESSON4_DATA, else ../shared/data)
    c.wikitext103 = ""  # a WikiText-103 folder with wiki.train.tokens (GPU/TPU runs); overrides `corpus`
    c.corpus = "english"  # english | reviews | reviews+english | generated (template reviews, smoke runs)
    c.generated_docs = 200  # documents when corpus == 'generated'
    c.size = "tiny"  # tiny | small | full (experiments.pretrain_lm.SIZES)
    c.model = ConfigDict({"emb_sz": config_dict.placeholder(int), "n_hid": config_dict.placeholder(int),
                          "n_layers": config_dict.placeholder(int)})  # overrides of the size's fields
    c.epochs = 2
    c.lr = 5e-3
    c.bs = 64
    c.drop_mult = 0.1
    c.max_words = config_dict.placeholder(int)  # subsample the general English corpus
    c.english_words = 2_000_000  # general English words mixed into reviews+english
    c.heldout_reviews = 1000
    c.max_reviews = config_dict.placeholder(int)  # a random subset (seed 0) of the training reviews
    c.ship = ""  # copy the result into the package as this shipped pretrained LM name (ulmfit_jax.pretrained)
    c.max_vocab = 60000  # fastai's default; smaller is faster on a CPU
    c.ckpt_minutes = 5.0
    c.seed = 0
    c.storage = "float16"  # the shipped .npz: float16 | int8 (per-row scales; half the bytes)
    c.precision = "fp32"  # fp32 | bf16 (learn.to_bf16(): bf16 matmul inputs, float32 weights and checkpoints)
    c.init_from = ""  # continue an LM: a shipped name or an earlier run's folder ('' = from scratch)
    c.out = ""  # output folder; '' = --workdir, else models/english_lm
    return c
