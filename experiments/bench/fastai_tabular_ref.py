"""Reference side of bench_tabular: fastai 2.8 on the exact frame and split our side uses.

Run only by a separate interpreter (``--ref-python``, the ``ref`` extra): it imports torch and fastai, which
must never share a process with JAX. Input: a JSON spec file path; output: one JSON line on stdout.
``"autocast": true`` in the spec trains under ``torch.autocast('cpu', dtype=torch.bfloat16)``.
``--split N SEED`` prints instead the validation positions of fastai's ``RandomSplitter(0.2, seed=SEED)`` over N rows.
"""

import json
import sys
import time


def main(spec_path: str) -> None:
    spec = json.loads(open(spec_path).read())
    import numpy as np
    import pandas as pd
    import torch
    from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, tabular_learner

    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    df = pd.read_pickle(spec["frame"])
    results = []
    for seed in spec["seeds"]:
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002 (fastai's shuffling reads the global state)
        dls = TabularDataLoaders.from_df(df, procs=[FillMissing, Categorify, Normalize],
                                         cat_names=spec["cat_names"], cont_names=spec["cont_names"],
                                         y_names=spec["y_name"], valid_idx=spec["valid_idx"], bs=spec["bs"])
        learn = tabular_learner(dls, layers=spec["layers"], metrics=accuracy, wd=spec.get("wd"))
        t, c = time.perf_counter(), time.process_time()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(spec.get("autocast")))
        with learn.no_bar(), learn.no_logging(), autocast:
            if spec["schedule"] == "one_cycle":
                learn.fit_one_cycle(spec["epochs"], spec["lr"])
            else:
                learn.fit(spec["epochs"], spec["lr"])
            fit_s, cpu_s = time.perf_counter() - t, time.process_time() - c
            loss, acc = learn.validate()
        results.append({"seed": seed, "fit_s": fit_s, "cpu_s": cpu_s, "accuracy": float(acc), "valid_loss": float(loss),
                        "n_train": len(dls.train_ds), "threads": torch.get_num_threads()})
    print(json.dumps(results))


def split(n: int, seed: int) -> None:
    from fastai.data.transforms import RandomSplitter

    print(json.dumps([int(i) for i in RandomSplitter(valid_pct=0.2, seed=seed)(range(n))[1]]))


if __name__ == "__main__":
    if sys.argv[1] == "--split":
        split(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main(sys.argv[1])
