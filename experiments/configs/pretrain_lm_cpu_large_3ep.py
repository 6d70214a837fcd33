"""A third epoch for english-large: the shipped two-epoch LM (runs/english_large_more, from
pretrain_lm_cpu_large_more.py) trained one more epoch on the same corpus (vocabulary kept, every layer trained),
under a one-cycle schedule with a lower peak again (2e-3, after 5e-3 and 3e-3) and a third shuffle (seed 2).
Measured against the shipped LM before it may replace it: the second epoch took the few-label transfer at 1,000
labels from 79.3 to 82.9 (tf-idf: 84.45) and the probe from 77.0 to 82.0 (bag of words: 84.8); this run asks
whether a third closes the rest. ``ship`` stays off until it has (experiments/results/pretrained_lm.md).

    nice -n 10 python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu_large_3ep.py \
        --config.data_dir=../shared/data --workdir runs/english_large_3ep
"""

from experiments.configs.pretrain_lm_cpu_large_more import get_config as two_epoch_config


def get_config():
    c = two_epoch_config()  # english-large's corpus, sizes, vocabulary, batch size, precision and storage
    c.init_from = "runs/english_large_more"  # the second epoch's run folder (its lm.npz is the shipped english-large)
    c.epochs, c.lr, c.seed = 1, 2e-3, 2
    c.ship = ""
    return c
