"""Fields of experiments/collab.py's configs (MovieLens 100k); every former command-line option is one."""

from __future__ import annotations

from ml_collections import ConfigDict, config_dict


def base() -> ConfigDict:
    c = ConfigDict()
    c.data_dir = ""  # folder holding ml-100k/ ('' = $LESSON4_DATA)
    c.source = "movielens"  # movielens | generated (low-rank ratings with a known structure, for smoke runs)
    c.generated = ConfigDict({"n_users": 300, "n_items": 250, "rank": 4, "density": 0.25, "noise": 0.3})
    c.split = "random"  # random (80/20, seed 42) | u1..u5, ua, ub (official splits)
    c.members = ("dot", "nn", "hybrid", "dot_l2")  # experiments.collab.MEMBERS
    c.epochs = config_dict.placeholder(int)  # None: each member's own epochs
    c.seed = 0
    c.download = False  # fetch ML-100k from GroupLens (checked) when no local copy is found
    c.checkpoint_every_steps = 0  # with --workdir: checkpoint every N steps too (0: each epoch only)
    return c
