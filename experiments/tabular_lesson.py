"""Lesson 4, tabular part: the lesson's cells with our names, then two measured variations.

    python -m experiments.lesson4 --part tabular [--quick] [--data-dir ../shared/data]

1. The lesson: ``adult_sample`` (fastai's ``adult.csv`` if ``data_dir`` has it, else UCI ``adult.data`` in that
   layout: from ``data_dir/adult`` or the copy bundled in ``tabular_jax/datasets``), 6 categorical + 3
   continuous columns, rows 800-999 as validation, ``fit(1, 1e-2)``; then ``predict`` on one row.
2. (full run) the same features on a random 20% split (seed 42) with ``fit_one_cycle(3, 1e-2)``.
3. (full run) the recommended recipe on the official UCI split, all 14 features (see experiments/tabular.py).
``quick=True`` runs part 1 only.
"""

from __future__ import annotations

import time
from pathlib import Path

from experiments.tabular import fit_recipe, uci_dls
from tabular_jax import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, adult_sample, tabular_learner
from tabular_jax.adult import LESSON_CAT_NAMES, LESSON_CONT_NAMES

PROCS = [FillMissing, Categorify, Normalize]


def _fit_timed(learn, fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def run(data_dir: str | None = None, quick: bool = False, plots_dir: Path | None = None) -> dict:
    """Run the tabular part and return its key numbers; with ``plots_dir``, the lesson fit's loss curve there."""
    df = adult_sample(data_dir)
    print(f"adult_sample: {len(df)} rows x {df.shape[1]} columns, from {df.attrs.get('source', '?')}")

    print("\n-- the lesson: valid rows 800..999, fit(1, 1e-2)")
    dls = TabularDataLoaders.from_df(df, procs=PROCS, cat_names=LESSON_CAT_NAMES, cont_names=LESSON_CONT_NAMES,
                                     y_names="salary", valid_idx=list(range(800, 1000)), seed=0)
    dls.show_batch(max_n=3)
    learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)
    lesson_s = _fit_timed(learn, learn.fit, 1, 1e-2)
    lesson_acc = learn.validate()[1]
    if plots_dir is not None:
        learn.recorder.plot_loss(fname=str(plots_dir / "tabular_loss.png"))
    row, clas, probs = learn.predict(df.iloc[0])
    shown = [round(float(p), 3) for p in probs]
    print(f"predict(df.iloc[0]) -> {row['salary'].iloc[0]!r} (class {clas}, probabilities {shown}); "
          f"true {df['salary'].iloc[0]!r}")
    out = {"lesson_accuracy": lesson_acc, "lesson_fit_s": lesson_s}
    if quick:
        return out

    print("\n-- random 20% split (seed 42), fit_one_cycle(3, 1e-2)")
    dls = TabularDataLoaders.from_df(df, procs=PROCS, cat_names=LESSON_CAT_NAMES, cont_names=LESSON_CONT_NAMES,
                                     y_names="salary", valid_pct=0.2, seed=42)
    learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)
    split_s = _fit_timed(learn, learn.fit_one_cycle, 3, 1e-2)
    n_rows = 3 * len(dls.train) * dls.train.bs
    out |= {"split_accuracy": learn.validate()[1], "split_fit_s": split_s, "split_rows_per_s": n_rows / split_s}
    print("permutation importance (validation set):")
    print(learn.feature_importance(n_repeats=1).to_string(index=False, float_format="%.4f"))

    print("\n-- recommended recipe: UCI official split (adult.data -> adult.test), all 14 features")
    res = fit_recipe(uci_dls(data_dir, "official"), seed=0)
    out |= {"uci_test_accuracy": res["accuracy"], "uci_fit_s": res["fit_s"]}
    print(f"\ntabular summary: lesson accuracy {lesson_acc:.4f} (fastai v1 lesson: 0.820 on its adult.csv); "
          f"random split {out['split_accuracy']:.4f} in {split_s:.1f}s ({out['split_rows_per_s']:,.0f} rows/s "
          f"incl. compile); UCI test {res['accuracy']:.4f} (published MLPs 0.852-0.859)")
    return out
