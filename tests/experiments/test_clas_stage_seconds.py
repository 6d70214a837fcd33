"""The classifier's per-stage A/B bench runs end to end and its two options change what they name: one training
width vs one per length bucket, the frozen layers' backward skipped vs computed."""

import numpy as np

from experiments.bench import clas_stage_seconds


def _corpus(root, n=40, seed=0):
    """Short and long reviews (half each), so that length buckets give several training widths."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for c, word in (("pos", "great"), ("neg", "awful")):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                reps = int(rng.integers(2, 10) if i % 2 else rng.integers(60, 90))
                (d / f"{i}.txt").write_text(" ".join([f"The film was {word}."] * reps))
    return root


def test_stage_seconds_and_its_options(tmp_path):
    argv = ["--reviews", str(_corpus(tmp_path)), "--labels", "64", "--test", "8", "--pretrained", "english-small",
            "--rounds", "1"]
    shipped = clas_stage_seconds.main(argv)
    (rnd,) = shipped["rounds"]
    assert len(rnd["stages"]) == 4 and len(rnd["test"]) == 2 and all(s["wall"] > 0 for s in rnd["stages"])
    assert len(shipped["train_widths"]) == 1 and shipped["frozen_to_model"] is True
    other = clas_stage_seconds.main(argv + ["--widths", "buckets", "--frozen-backward", "full"])
    assert len(other["train_widths"]) > 1 and other["frozen_to_model"] is False
