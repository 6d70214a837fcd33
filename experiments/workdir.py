"""A script's working folder (``--workdir``) on a TPU VM or a GPU box: the config used, metrics, plots, checkpoints.

Layout::

    config.json, config.py.txt   the config as run (JSON, and ml_collections' own repr)
    host.json                    process/host/device facts of the run
    metrics.jsonl                one JSON line per epoch: stage, epoch, step, train/valid loss, metrics
    tensorboard/                 the same scalars as TensorBoard events (tensorboardX, when installed)
    plots/*.png                  loss curves and other pictures
    checkpoints/<stage>/         orbax training states, one folder per fit call (stage)
    results.json                 the script's final numbers

Metrics, plots, config and results are written by process 0 only. Checkpoints go through the engine's
``CheckpointCallback``: orbax coordinates a multi-process save itself (each array written once, metadata by the
primary process), so every process must call it. Rerun with the same folder and each stage restores its last
checkpoint: finished stages are skipped with their final state, an interrupted one continues where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ml_collections import ConfigDict

from experiments.preemption import Preemption, SaveOnPreemption
from experiments.pretrain_lm import atomic_write_text
from learner_jax.callbacks import Callback, CheckpointCallback


class MetricWriter:
    """JSON lines plus, when ``tensorboardX`` is installed, TensorBoard scalars; a no-op off process 0."""

    def __init__(self, directory: Path | None, enabled: bool = True):
        self.path = directory / "metrics.jsonl" if directory and enabled else None
        self.tb = None
        if self.path is not None:
            try:  # optional: TensorBoard events when the writer is installed
                from tensorboardX import SummaryWriter

                self.tb = SummaryWriter(str(directory / "tensorboard"))
            except ImportError:
                self.tb = None

    def rows(self) -> list[dict]:
        if self.path is None or not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill mid-write
                break
        return out

    def drop_after(self, stage: str, step: int) -> None:
        """Forget the stage's rows past ``step`` (a resumed stage writes them again)."""
        rows = self.rows()
        kept = [r for r in rows if not (r["stage"] == stage and r["step"] > step)]
        if self.path is not None and len(kept) != len(rows):
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, row: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, float):
                    self.tb.add_scalar(f"{row['stage']}/{k}", v, row["step"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class MetricsCallback(Callback):
    """One metrics row per epoch of a stage (the epoch table's numbers, with the global step)."""

    order = 19  # before the epoch's checkpoint: a kill in between re-writes the row, never loses it

    def __init__(self, writer: MetricWriter, stage: str):
        self.writer, self.stage = writer, stage

    def before_fit(self, learn):
        self.writer.drop_after(self.stage, int(learn.state.step))

    def after_epoch(self, learn):
        names = learn.recorder.metric_names[1:-1]  # drop "epoch" and "time"
        row = {"stage": self.stage, "epoch": learn.epoch, "step": int(learn.state.step), "time": time.time()}
        self.writer.write(row | {n: float(v) for n, v in zip(names, learn.recorder.values[-1])})


class Workdir:
    """The folder of one run; ``None`` as path keeps nothing (plain runs without ``--workdir``)."""

    def __init__(self, path: str | os.PathLike | None, config: ConfigDict | None = None,
                 host: dict | None = None, ckpt_every_n_steps: int | None = None):
        import jax

        self.path = Path(path) if path else None
        self.primary = jax.process_index() == 0
        self.ckpt_every_n_steps = ckpt_every_n_steps
        self.preemption = Preemption()
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "plots").mkdir(exist_ok=True)
            if self.primary and config is not None:
                self.write_json("config.json", json.loads(config.to_json_best_effort()))
                atomic_write_text(self.path / "config.py.txt", str(config))
            if self.primary and host is not None:
                self.write_json("host.json", host)
        self.metrics = MetricWriter(self.path, enabled=self.primary)

    def __enter__(self) -> Workdir:
        if self.path is not None:
            self.preemption.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.path is not None:
            self.preemption.__exit__(*exc)
        self.metrics.close()

    def fit_kwargs(self, stage: str) -> dict:
        """``cbs`` and ``resume_from`` for one fit call: metrics rows, checkpoints under ``checkpoints/<stage>``
        (resumed from when present) and the SIGTERM save."""
        if self.path is None:
            return {}
        ckpt_dir = self.path / "checkpoints" / stage
        resume = ckpt_dir if ckpt_dir.is_dir() and any(ckpt_dir.iterdir()) else None
        if resume is not None:
            print(f"[{stage}] resuming from {ckpt_dir}", flush=True)
        ckpt = CheckpointCallback(ckpt_dir, every_n_steps=self.ckpt_every_n_steps, every_epoch=True)
        return {"cbs": [MetricsCallback(self.metrics, stage), ckpt, SaveOnPreemption(self.preemption, ckpt)],
                "resume_from": resume}

    def plot(self, name: str) -> str | None:
        """File name for a picture under ``plots/`` (process 0), else None (nothing to draw)."""
        if self.path is None or not self.primary:
            return None
        return str(self.path / "plots" / name)

    def plot_loss(self, learn, name: str) -> str | None:
        """The learner's loss curve of its last fit as ``plots/<name>`` (nothing when that fit was restored)."""
        fname = self.plot(name)
        if fname is None or len(learn.recorder.losses) < 2:
            return None
        return learn.recorder.plot_loss(skip_start=0, fname=fname)

    def write_json(self, name: str, obj: dict) -> Path | None:
        if self.path is None or not self.primary:
            return None
        atomic_write_text(self.path / name, json.dumps(obj, indent=1, default=_jsonable))
        return self.path / name


def _jsonable(x):
    """NumPy scalars and arrays, paths and tuples in results."""
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)
