"""The shipped "english-small" LM exactly as pretrained on a 2-core CPU (experiments/results/pretrained_lm.md):
28,000 IMDB train+unsup reviews (never test) + 0.5M words of general English, AWD-LSTM tiny (64/256/3),
vocabulary 15k, one epoch, bs 128, lr 8e-3; checkpointed every 5 minutes, a rerun of the same command continues
where it stopped; ``ship`` copies the result into the package as ``english-small``.

    python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu.py \
        --config.data_dir=../shared/data --workdir runs/english_small
"""

from experiments.configs.base_pretrain_lm import base


def get_config():
    c = base()
    c.corpus, c.size, c.max_vocab = "reviews+english", "tiny", 15000
    c.english_words, c.max_reviews = 500_000, 28_000
    c.epochs, c.bs, c.lr = 1, 128, 8e-3
    c.ship = "english-small"
    return c
