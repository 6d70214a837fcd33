"""LM pretraining smoke run: generated template reviews, a very small AWD-LSTM, one epoch (seconds).

    python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_smoke.py --workdir /tmp/lm_smoke
"""

from experiments.configs.base_pretrain_lm import base


def get_config():
    c = base()
    c.corpus, c.generated_docs = "generated", 120
    c.model.emb_sz, c.model.n_hid, c.model.n_layers = 8, 16, 2
    c.epochs, c.bs, c.max_vocab, c.lr = 1, 8, 200, 1e-2
    c.heldout_reviews = 0
    return c
