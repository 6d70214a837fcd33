"""The tabular recipe we recommend (experiments/tabular.py) on UCI Adult's official split, 3 seeds, as measured
on a 2-core CPU: all 14 features plus the capital columns as categories, layers [200, 100], wd 0.1,
fit_one_cycle(5, 1e-2), bs 64.

    python -m experiments.tabular --config experiments/configs/adult_cpu.py --workdir runs/adult_cpu
    python -m experiments.tabular --config experiments/configs/adult_cpu.py --config.split=valid   # the 20% split
"""

from experiments.configs.base_adult import base


def get_config():
    c = base()
    c.wd = 0.1
    return c
