"""Tabular smoke run: the recipe on 2,000 rows of the bundled adult.data, one seed, one epoch (seconds).

    python -m experiments.tabular --config experiments/configs/adult_smoke.py --workdir /tmp/adult_smoke
"""

from experiments.configs.base_adult import base


def get_config():
    c = base()
    c.split, c.seeds, c.epochs, c.wd = "valid", (0,), 1, 0.1
    c.max_train_rows = 2000
    return c
