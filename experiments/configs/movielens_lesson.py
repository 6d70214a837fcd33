"""The lesson's collaborative filtering on MovieLens 100k: CollabDataLoaders.from_df (random 20%, seed 42),
collab_learner(n_factors=50, y_range=(0, 5.5)), fit_one_cycle(5, 5e-3, wd=0.1). Downloads ML-100k from GroupLens
when no local copy is found. The same command on a CPU, GPU or TPU.

    python -m experiments.collab --config experiments/configs/movielens_lesson.py --workdir runs/movielens_lesson
"""

from experiments.configs.base_movielens import base


def get_config():
    c = base()
    c.members, c.download = ("dot",), True
    return c
