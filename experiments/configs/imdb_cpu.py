"""ULMFiT CPU protocol as measured on a shared 2-core CPU (experiments/results/ulmfit_cpu_protocol.md): our
transfer and from-scratch classifiers and fastai's transfer, same texts, same pretrained weights.

    python -m experiments.pretrain_lm --config experiments/configs/pretrain_lm_cpu.py   # the pretrained LM first
    python -m experiments.ulmfit --config experiments/configs/imdb_cpu.py \
        --config.pretrained=runs/english_small --config.data_dir=../shared/data --workdir runs/imdb_cpu
    # one side per process: --config.only=ours | fastai | scratch
"""

from experiments.configs.base_imdb import base


def get_config():
    c = base()
    c.protocol = "cpu"
    c.size = "tiny"
    c.lm.docs, c.lm.epochs = 3000, 1
    c.max_vocab = 10000
    c.clas.train, c.clas.test = 5000, 5000
    c.review_words = 150
    c.clas.final_epochs = 1
    return c
