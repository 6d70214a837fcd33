"""english-large's second epoch (shipped as english-large from 2026-12-06 until its third epoch,
pretrain_lm_cpu_large_3ep.py, replaced it the same day): the one-epoch run's LM (runs/english_large, from
pretrain_lm_cpu_large.py) trained one more epoch (``init_from``: its vocabulary kept, every layer trained) on the
same corpus under a new one-cycle schedule with a lower peak (3e-3, against the first epoch's 5e-3) and another
shuffle (seed 1). The second epoch took the IMDB held-out perplexity from 60.1 to 51.5 and the few-label protocol's
transfer from 74.6 to 79.5 (experiments/results/pretrained_lm.md, ulmfit_few_label.md). Run the first epoch, then this:

    nice -n 10 python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu_large.py \
        --config.data_dir=../shared/data --workdir runs/english_large
    nice -n 10 python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu_large_more.py \
        --config.data_dir=../shared/data --workdir runs/english_large_more

Checkpointed every ~5 minutes like the first epoch (a rerun continues where it stopped). ``ship`` is off: the third
epoch continues this run's folder and ships.
"""

from experiments.configs.pretrain_lm_cpu_large import get_config as large_config


def get_config():
    c = large_config()  # english-large's corpus, sizes, vocabulary size, batch size, precision and storage
    c.init_from = "runs/english_large"  # the one-epoch run's folder (its lm.npz, vocab.json)
    c.epochs, c.lr, c.seed = 1, 3e-3, 1
    c.ship = ""  # the second of english-large's three epochs: pretrain_lm_cpu_large_3ep.py ships
    return c
