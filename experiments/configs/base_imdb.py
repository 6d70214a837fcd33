"""Fields of experiments/ulmfit.py's configs (the IMDB ULMFiT protocol); every former command-line option is one."""

from __future__ import annotations

from ml_collections import ConfigDict, config_dict

DEFAULT_REF = "/work/refenv/bin/python"


def base() -> ConfigDict:
    c = ConfigDict()
    c.protocol = "cpu"  # cpu: needs `pretrained`; lesson: fastai's WT103 weights; smoke: no pretrained weights
    c.data_dir = ""  # shared datasets folder (imdb/aclImdb_v1_text.tar.gz); '' = $LESSON4_DATA, else download
    c.source = "imdb"  # imdb | generated (template reviews, for smoke runs offline)
    c.generated_reviews = 0  # how many generated reviews when source == 'generated'
    c.pretrained = ""  # folder with lm.pth + itos.pkl (experiments/pretrain_lm)
    c.size = "tiny"  # AWD-LSTM size: tiny | small | full (experiments.pretrain_lm.SIZES)
    c.model = ConfigDict({"emb_sz": config_dict.placeholder(int), "n_hid": config_dict.placeholder(int),
                          "n_layers": config_dict.placeholder(int)})  # overrides of the size's fields
    c.max_vocab = 60000  # LM vocabulary cap (fastai's default)
    c.review_words = config_dict.placeholder(int)  # keep each classifier review's last N words (None: all)
    c.bs = 64
    c.lm = ConfigDict()
    c.lm.docs = config_dict.placeholder(int)  # LM fine-tuning reviews from train+unsup (None: all)
    c.lm.frozen_epochs = 1
    c.lm.epochs = 2  # unfrozen epochs
    c.lm.lr = 1e-2  # frozen stage
    c.lm.unfrozen_lr = 1e-3
    c.lm.bs = config_dict.placeholder(int)  # None: `bs`
    c.clas = ConfigDict()
    c.clas.train = config_dict.placeholder(int)  # classifier reviews from train/ (None: all)
    c.clas.test = config_dict.placeholder(int)  # validation reviews from test/ (None: all)
    c.clas.epochs = 1  # each of the three first stages (frozen, freeze_to(-2), freeze_to(-3))
    c.clas.final_epochs = 2  # unfrozen stage
    c.clas.lr_mult = 1.0  # multiplies the lesson's stage rates 2e-2, 1e-2, 5e-3, 1e-3
    c.clas.gradual = True  # all four stages; False: the frozen and the unfrozen stage only
    c.scratch = ConfigDict()
    c.scratch.enabled = True  # also train the classifier from scratch (ours only)
    c.scratch.lrs = (1e-2,)  # several: each is run, the best reported
    c.only = ""  # '' (ours then fastai) | ours | fastai | scratch
    c.xla_cache = ""  # persistent XLA cache folder; '' = the lesson's default; 'none' disables
    c.ref_python = DEFAULT_REF  # interpreter with fastai for the reference side ('' skips it)
    c.out = ""  # also write the results JSON here
    c.checkpoint_every_steps = 0  # with --workdir: checkpoint every N steps too (0: each epoch only)
    return c
