"""Reference side of bench_collab: fastai 2.8 (and Surprise's SVD when importable) on the exact ratings and
split our side uses.

Run only by a separate interpreter (``--ref-python``, the ``ref`` extra): it imports torch and fastai, which
must never share a process with JAX. Input: a JSON spec file path; output: one JSON line on stdout.
"""

import json
import sys
import time


def run_fastai(spec: dict, df) -> dict:
    import numpy as np
    import torch
    from fastai.collab import TabularCollab, collab_learner
    from fastai.data.block import TransformBlock
    from fastai.tabular.core import Categorify

    torch.manual_seed(spec["seed"])
    np.random.seed(spec["seed"])  # noqa: NPY002 (fastai's shuffling reads the global state)
    valid = df[spec["valid_col"]].to_numpy()
    splits = (list(np.flatnonzero(~valid)), list(np.flatnonzero(valid)))
    # what CollabDataLoaders.from_df builds, with our split instead of its RandomSplitter
    to = TabularCollab(df, [Categorify], [spec["user"], spec["item"]], y_names=[spec["rating"]],
                       y_block=TransformBlock(), splits=splits)
    dls = to.dataloaders(bs=spec["bs"])
    learn = collab_learner(dls, n_factors=spec["n_factors"], y_range=tuple(spec["y_range"]))
    rows = []

    def log(row):  # fastai's epoch table rows [epoch, train_loss, valid_loss, time]: keep them, echo to stderr
        rows.append(list(row))
        print(list(row), file=sys.stderr)

    learn.logger = log
    t = time.perf_counter()
    with learn.no_bar(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(spec.get("autocast"))):
        learn.fit_one_cycle(spec["epochs"], spec["lr"], wd=spec["wd"])
    fit_s = time.perf_counter() - t
    return {"fit_s": fit_s, "valid_mse": float(learn.validate()[0]),
            "epoch_valid_mse": [float(r[2]) for r in rows if isinstance(r[0], int)],
            "n_train": len(dls.train_ds), "threads": torch.get_num_threads()}


def run_surprise(spec: dict, df) -> dict | None:
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None
    import numpy as np

    valid = df[spec["valid_col"]].to_numpy()
    cols = [spec["user"], spec["item"], spec["rating"]]
    train = Dataset.load_from_df(df.loc[~valid, cols], Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = SVD(random_state=spec["seed"])  # Surprise's defaults: 100 factors, 20 epochs, lr 0.005, reg 0.02
    t = time.perf_counter()
    algo.fit(train)
    fit_s = time.perf_counter() - t
    test = df.loc[valid, cols]
    preds = np.array([algo.predict(u, i).est for u, i in zip(test[cols[0]], test[cols[1]])])
    return {"fit_s": fit_s, "valid_mse": float(np.mean((preds - test[cols[2]].to_numpy()) ** 2))}


def main(spec_path: str) -> None:
    import pandas as pd

    spec = json.loads(open(spec_path).read())
    df = pd.read_csv(spec["csv"])
    out = {"fastai": run_fastai(spec, df) if spec.get("fastai", True) else None, "surprise": run_surprise(spec, df)}
    if spec.get("autocast_too"):  # the same fit under torch's CPU bf16 autocast
        out["fastai_autocast"] = run_fastai(spec | {"autocast": True}, df)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
