"""ULMFiT's first step at the paper's scale, for a GPU or TPU: the full AWD-LSTM (400/1152/3) on WikiText-103's
training articles, fastai's 60k vocabulary, 10 epochs (fastai's published WT103 weights came from this recipe).

    python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_lesson.py \
        --config.wikitext103=PATH/wikitext-103 --workdir runs/wt103_full
"""

from experiments.configs.base_pretrain_lm import base


def get_config():
    c = base()
    c.size, c.epochs, c.bs, c.lr, c.max_vocab = "full", 10, 64, 5e-3, 60000
    c.ckpt_minutes = 15.0
    return c
