"""A larger CPU-pretrained LM, "english-medium": AWD-LSTM 128/512/3, vocabulary 15k, all IMDB train+unsup
reviews (never test; minus 1,000 held out) + 1M words of general English, one epoch, bs 128, lr 6e-3;
checkpointed every 5 minutes (a rerun of the same command continues where it stopped, also in a later
session); ``ship`` copies the result into the package as ``english-medium``.

    nice -n 10 python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu_medium.py \
        --config.data_dir=../shared/data --workdir runs/english_medium
"""

from experiments.configs.base_pretrain_lm import base


def get_config():
    c = base()
    c.corpus, c.size, c.max_vocab = "reviews+english", "tiny", 15000
    c.model.emb_sz, c.model.n_hid, c.model.n_layers = 128, 512, 3
    c.english_words = 1_000_000
    c.epochs, c.bs, c.lr = 1, 128, 6e-3
    c.ship = "english-medium"
    return c
