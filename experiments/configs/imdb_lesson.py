"""ULMFiT as in the lesson, for a GPU or TPU: fastai's WT103 weights, the full IMDB (LM on train+unsup, classifier
on all of train, validated on all of test), the full AWD-LSTM, the lesson's epochs (1 frozen + 10 unfrozen LM
epochs; classifier 1/1/1 + 2) and bs 64. Downloads WT103 and IMDB when online, or reads
$LESSON4_DATA/imdb/aclImdb_v1_text.tar.gz.

    python -m experiments.ulmfit --config experiments/configs/imdb_lesson.py --workdir runs/imdb_lesson
    python -m experiments.ulmfit --config experiments/configs/imdb_lesson.py --config.lm.lr=1e-2 --workdir DIR
"""

from experiments.configs.base_imdb import base


def get_config():
    c = base()
    c.protocol = "lesson"
    c.size = "full"
    c.lm.docs, c.clas.train, c.clas.test = None, None, None
    c.lm.frozen_epochs, c.lm.epochs = 1, 10
    c.clas.epochs, c.clas.final_epochs = 1, 2
    c.scratch.enabled = False
    c.ref_python = ""  # fastai's side of the lesson is its published notebook; set a path to run it here
    c.checkpoint_every_steps = 500
    return c
