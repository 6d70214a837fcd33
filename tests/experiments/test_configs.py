"""The experiment configs and scripts: every config loads and names its command line, every smoke config runs
end to end into a workdir, a rerun resumes from the checkpoints, SIGTERM saves one, the few-label protocol is
forwarded."""

from __future__ import annotations

import ast
import json
import os
import signal
import sys
import types

import pytest
from ml_collections import ConfigDict

from experiments import collab, pretrain_lm, tabular, ulmfit
from experiments.launch import CONFIGS, load_config, parse_flags
from experiments.preemption import EXIT_CODE
from experiments.workdir import Workdir
from learner_jax.callbacks import Callback

SCRIPTS = {"imdb": ("ulmfit", ulmfit.run), "adult": ("tabular", tabular.run),
           "movielens": ("collab", collab.run_config), "pretrain_lm": ("pretrain_lm", pretrain_lm.run)}
CONFIG_FILES = sorted(p for p in CONFIGS.glob("*.py") if not p.name.startswith(("_", "base_")))


def _app(path) -> str:
    return next(a for a in SCRIPTS if path.stem.startswith(a + "_"))


def _rows(workdir) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_config_loads_and_its_docstring_holds_the_command(path):
    c = load_config(path)
    assert isinstance(c, ConfigDict)
    script = SCRIPTS[_app(path)][0]
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert f"python -m experiments.{script} --config experiments/configs/{path.name}" in doc


@pytest.mark.parametrize("app", sorted(SCRIPTS))
def test_every_application_has_smoke_cpu_and_lesson_variants(app):
    assert {f"{app}_{v}.py" for v in ("smoke", "cpu", "lesson")} <= {p.name for p in CONFIG_FILES}


@pytest.mark.parametrize("path", [p for p in CONFIG_FILES if p.stem.endswith("_smoke")], ids=lambda p: p.stem)
def test_smoke_config_runs_into_its_workdir(path, tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON4_XLA_CACHE", str(tmp_path / "xla"))
    monkeypatch.delenv("LESSON4_DATA", raising=False)
    workdir = tmp_path / "run"
    SCRIPTS[_app(path)][1](load_config(path), workdir)
    assert json.loads((workdir / "config.json").read_text()) == json.loads(load_config(path).to_json_best_effort())
    assert json.loads((workdir / "host.json").read_text())["process_count"] == 1
    rows = _rows(workdir)
    assert rows and all({"stage", "epoch", "step", "train_loss", "valid_loss"} <= set(r) for r in rows)
    assert any((workdir / "checkpoints").iterdir())
    if _app(path) == "pretrain_lm":
        assert (workdir / "lm.npz").is_file() and (workdir / "report.json").is_file()
    else:
        assert (workdir / "results.json").is_file() and list((workdir / "plots").glob("*.png"))
    if pytest.importorskip("tensorboardX"):
        assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))


class _SigtermAt(Callback):
    """Sends this process SIGTERM after training step ``step`` (a preempted VM)."""

    def __init__(self, step: int):
        self.step = step

    def after_batch(self, learn, metrics):
        if int(metrics["step"]) + 1 == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_a_checkpoint_and_a_rerun_resumes(tmp_path, monkeypatch):
    c = load_config(CONFIGS / "adult_smoke.py")
    c.epochs = 2
    workdir = tmp_path / "run"
    plain = Workdir.fit_kwargs

    def with_sigterm(self, stage):
        kw = plain(self, stage)
        return kw | {"cbs": [*kw["cbs"], _SigtermAt(3)]}

    monkeypatch.setattr(Workdir, "fit_kwargs", with_sigterm)
    old_handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        tabular.run(c, workdir)
    assert stop.value.code == EXIT_CODE and signal.getsignal(signal.SIGTERM) == old_handler
    steps = sorted(int(p.name) for p in (workdir / "checkpoints" / "seed_0").iterdir() if p.name.isdigit())
    assert steps  # on-device epochs: saved at the end of the epoch the signal arrived in
    # the engine saves before validating that epoch: its metrics row is written when the rerun validates it
    assert not (workdir / "metrics.jsonl").exists() or [r["epoch"] for r in _rows(workdir)] in ([], [0])

    counter = _CountBatches()
    monkeypatch.setattr(Workdir, "fit_kwargs", lambda self, stage: (kw := plain(self, stage))
                        | {"cbs": [*kw["cbs"], counter]})
    res = tabular.run(c, workdir)
    rows = _rows(workdir)
    assert [r["epoch"] for r in rows] == [0, 1] and rows[1]["step"] == 2 * rows[0]["step"]
    assert counter.n == rows[0]["step"]  # only epoch 1 was trained again: epoch 0 came from the checkpoint
    assert 0.5 < res["median"] <= 1


class _CountBatches(Callback):
    def __init__(self):
        self.n = 0

    def after_batch(self, learn, metrics):
        self.n += 1


def test_flags_override_config_fields_and_keep_the_workdir(tmp_path):
    c, workdir = parse_flags(["--config", str(CONFIGS / "imdb_lesson.py"), "--config.lm.lr=0.02",
                              "--config.scratch.lrs=(0.001, 0.003)", "--workdir", str(tmp_path)],
                             CONFIGS / "imdb_cpu.py")
    assert c.lm.lr == 0.02 and tuple(c.scratch.lrs) == (0.001, 0.003) and c.size == "full"
    assert workdir == tmp_path
    with pytest.raises(SystemExit, match="unexpected arguments"):
        parse_flags(["stray"], CONFIGS / "imdb_cpu.py")


def test_collab_main_parses_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON4_XLA_CACHE", str(tmp_path / "xla"))
    out = collab.main(["--config", str(CONFIGS / "movielens_smoke.py"), "--config.epochs=2",
                       "--workdir", str(tmp_path / "run")])
    assert out["split"] == "generated" and [r["epoch"] for r in _rows(tmp_path / "run")] == [0, 1]


@pytest.mark.parametrize("argv", [["--protocol", "few-label", "--labels", "200", "--seeds", "0"],
                                  ["--labels", "200", "--protocol=few-label", "--seeds", "0"]])
def test_few_label_protocol_is_forwarded(argv, monkeypatch):
    seen = []
    fake = types.ModuleType("experiments.few_label")
    fake.main = lambda args: seen.append(args) or {"forwarded": True}
    monkeypatch.setitem(sys.modules, "experiments.few_label", fake)
    import experiments

    monkeypatch.setattr(experiments, "few_label", fake, raising=False)
    assert ulmfit.main(argv) == {"forwarded": True}
    assert seen == [["--labels", "200", "--seeds", "0"]]


def test_unknown_protocol_names_the_config_it_looked_for():
    with pytest.raises(SystemExit, match="imdb_bogus.py"):
        ulmfit.main(["--protocol", "bogus"])
