"""The lesson's tabular cells: adult_sample (fastai's adult.csv when data_dir has it, else UCI adult.data in its
layout), its 6 categorical + 3 continuous columns, rows 800..999 as validation, tabular_learner(layers=[200, 100],
metrics=accuracy), fit(1, 1e-2). Runs anywhere; the same command on a GPU or TPU.

    python -m experiments.tabular --config experiments/configs/adult_lesson.py --workdir runs/adult_lesson
"""

from experiments.configs.base_adult import base


def get_config():
    c = base()
    c.split, c.seeds, c.epochs, c.lr, c.schedule = "lesson", (0,), 1, 1e-2, "fit"
    return c
