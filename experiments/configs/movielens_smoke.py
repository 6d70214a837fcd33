"""Collaborative-filtering smoke run: the lesson's EmbeddingDotBias on generated low-rank ratings, one epoch.

    python -m experiments.collab --config experiments/configs/movielens_smoke.py --workdir /tmp/movielens_smoke
"""

from experiments.configs.base_movielens import base


def get_config():
    c = base()
    c.source, c.members, c.epochs = "generated", ("dot",), 1
    return c
