"""``python -m experiments.bench``: the table's medians and ratios, the compile hook, one quick part end to end
(our side only: CI has no fastai interpreter)."""

from __future__ import annotations

import json
import sys
import types
from argparse import Namespace

from experiments.bench import __main__ as bench


def test_rows_give_medians_and_ratio_or_difference():
    speed = bench.Row("collab", "ratings/s", ours=[300.0, 100.0, 200.0], fastai=[50.0, 150.0, 100.0])
    mse = bench.Row("collab", "valid MSE", ours=[0.80, 0.82], fastai=[0.85, 0.85], quality=True)
    alone = bench.Row("lm", "tokens/s", ours=[10.0])
    assert speed.medians() == (200.0, 100.0) and speed.compare() == "2.00x"
    assert mse.compare() == "-0.0400" and alone.compare() == "-"
    text = bench.table([speed, mse, alone])
    assert "2.00x" in text and "-0.0400" in text and len(text.splitlines()) == 4


def test_compile_hook_says_when_the_module_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None)
    assert bench.part_compile(Namespace(repeats=1, ref_python=None, data_dir=None, raw={})) == []
    assert "bench_compile.py is missing" in capsys.readouterr().out


def test_compile_hook_calls_the_module_and_takes_its_rows(monkeypatch):
    seen = []
    fake = types.ModuleType("experiments.bench.bench_compile")
    fake.main = lambda argv: seen.append(argv) or {"rows": {"collab first fit s": {"ours": 2.0, "fastai": 4.0}}}
    monkeypatch.setitem(sys.modules, "experiments.bench.bench_compile", fake)
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: object())
    a = Namespace(repeats=2, ref_python=None, data_dir="/data", raw={})
    rows = bench.part_compile(a)
    assert seen == [["--repeats", "2", "--ref-python", "none", "--data-dir", "/data"]]
    assert rows[0].medians() == (2.0, 4.0) and a.raw["compile"]["rows"]


def test_quick_collab_part_writes_the_table_and_machine(tmp_path, monkeypatch):
    monkeypatch.delenv("LESSON4_DATA", raising=False)
    out = tmp_path / "bench.json"
    res = bench.main(["collab", "--quick", "--repeats", "1", "--ref-python", "none", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["machine"]["cpu_count"] and "loadavg_end" in saved["machine"] and saved["repeats"] == 1
    metrics = [r["metric"] for r in saved["rows"]]
    assert metrics == ["generated ratings/s, first fit", "generated ratings/s, compiled fit", "generated valid MSE"]
    assert all(len(r["ours"]) == 1 and r["fastai"] == [] for r in saved["rows"])
    assert res["table"] == saved["table"]
