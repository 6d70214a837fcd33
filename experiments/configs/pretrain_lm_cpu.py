"""The shipped "english-small" LM as pretrained on a 2-core CPU (experiments/results/pretrained_lm.md): IMDB
train+unsup reviews (never test) + 2M words of general English, AWD-LSTM tiny (64/256/3), vocabulary 15k, one
epoch, bs 128, lr 8e-3; checkpointed every 5 minutes, a rerun of the same command continues where it stopped.

    nice -n 10 python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu.py \
        --config.data_dir=../shared/data --workdir runs/english_small
"""

from experiments.configs.base_pretrain_lm import base


def get_config():
    c = base()
    c.corpus, c.size, c.max_vocab, c.english_words = "reviews+english", "tiny", 15000, 2_000_000
    c.epochs, c.bs, c.lr = 1, 128, 8e-3
    return c
