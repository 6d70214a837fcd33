"""english-large, one more epoch: continues the one-epoch run's LM (``init_from``, its vocabulary kept, every layer
trained) on the same corpus under a new one-cycle schedule with a lower peak (3e-3, against the first epoch's 5e-3)
and another shuffle (seed 1). It starts from the shipped english-large (bit-identical to the one-epoch run's
lm.npz), so it runs on a fresh clone; should its result ever ship as english-large, pin ``init_from`` to the
one-epoch run's folder (runs/english_large) first:

    nice -n 10 python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu_large_more.py \
        --config.data_dir=../shared/data --workdir runs/english_large_more

Checkpointed every ~5 minutes like the first epoch (a rerun continues where it stopped). ``ship`` is left empty:
the result replaces english-large only once the few-label protocol measures it better.
"""

from experiments.configs.pretrain_lm_cpu_large import get_config as large_config


def get_config():
    c = large_config()  # english-large's corpus, sizes, vocabulary size, batch size, precision and storage
    c.init_from = "english-large"  # the shipped one-epoch LM (its files are runs/english_large/lm.npz, vocab.json)
    c.epochs, c.lr, c.seed = 1, 3e-3, 1
    c.ship = ""
    return c
