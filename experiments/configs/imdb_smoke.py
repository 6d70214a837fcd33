"""ULMFiT smoke run: generated reviews, a very small AWD-LSTM, no pretrained weights, no fastai side (seconds).

    python -m experiments.ulmfit --config experiments/configs/imdb_smoke.py --workdir /tmp/imdb_smoke
"""

from experiments.configs.base_imdb import base


def get_config():
    c = base()
    c.protocol = "smoke"
    c.source, c.generated_reviews = "generated", 100
    c.model.emb_sz, c.model.n_hid, c.model.n_layers = 8, 16, 1
    c.max_vocab, c.bs = 200, 8
    c.review_words = 30  # one chunk per review: one compiled classifier program per stage
    c.lm.epochs = 1
    c.clas.final_epochs, c.clas.gradual = 1, False
    c.scratch.enabled = False
    c.ref_python = ""
    return c
