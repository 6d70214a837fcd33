"""Fields of experiments/tabular.py's configs (UCI Adult); every former command-line option is one."""

from __future__ import annotations

from ml_collections import ConfigDict, config_dict


def base() -> ConfigDict:
    c = ConfigDict()
    c.data_dir = ""  # folder with adult.data/adult.test (or adult.csv for the lesson split); '' = bundled copy
    c.split = "official"  # official (adult.data -> adult.test) | valid (20% of adult.data) | lesson (rows 800..999)
    c.seeds = (0, 1, 2)
    c.epochs = 5
    c.lr = 1e-2
    c.wd = config_dict.placeholder(float)  # None: the learner's default (fastai's 0.01)
    c.bs = 64
    c.layers = (200, 100)
    c.schedule = "one_cycle"  # one_cycle | fit (the lesson's constant-rate fit)
    c.max_train_rows = config_dict.placeholder(int)  # keep the first N training rows (smoke runs)
    c.checkpoint_every_steps = 0  # with --workdir: checkpoint every N steps too (0: each epoch only)
    return c
