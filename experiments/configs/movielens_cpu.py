"""The collaborative-filtering recipe and the per-model numbers behind it (experiments/collab.py), as measured on
a 2-core CPU: dot, nn, hybrid and dot_l2 on the random 80/20 split, then the recipe's ensemble (dot_l2 + hybrid).

    python -m experiments.collab --config experiments/configs/movielens_cpu.py --config.data_dir=../shared/data \
        --workdir runs/movielens_cpu
    python -m experiments.collab --config experiments/configs/movielens_cpu.py --config.split=u1   # official u1
    python -m experiments.collab --config experiments/configs/movielens_cpu.py --config.members="('dot_l2', 'hybrid')"
"""

from experiments.configs.base_movielens import base


def get_config():
    return base()
