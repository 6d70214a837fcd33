"""The main job leaves its pictures and results.json in its output folder and says where (tabular and collab parts,
quick; the text part's two curves go through the same plumbing)."""

from __future__ import annotations

import json

from experiments import lesson4


def test_main_job_writes_pictures_and_results_into_its_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LESSON4_DATA", raising=False)
    monkeypatch.setenv("LESSON4_XLA_CACHE", str(tmp_path / "xla"))
    monkeypatch.setenv("LESSON4_CACHE", str(tmp_path / "downloads"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("experiments.collab_lesson.locate", lambda data_dir, download: (None, "offline (test)"))
    out = tmp_path / "out"
    lesson4.main(["--part", "tabular", "--part", "collab", "--quick", "--out", str(out)])
    assert sorted(p.name for p in out.glob("*.png")) == ["collab_loss.png", "tabular_loss.png"]
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"tabular", "collab"} and results["collab"]["data"] == "generated"
    assert f"results.json are in {out}" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.png"))  # nothing dropped in the working directory


def test_main_job_passes_the_chosen_shipped_lm_to_the_text_part(tmp_path, monkeypatch):
    seen = {}

    def fake_run(data_dir=None, quick=False, plots_dir=None, pretrained="default"):
        seen["pretrained"] = pretrained
        return {"classifier_accuracy": 1.0}

    monkeypatch.setattr("experiments.text_lesson.run", fake_run)
    monkeypatch.setenv("LESSON4_XLA_CACHE", str(tmp_path / "xla"))
    lesson4.main(["--part", "text", "--pretrained", "english-medium", "--out", str(tmp_path / "a")])
    assert seen["pretrained"] == "english-medium"
    lesson4.main(["--part", "text", "--out", str(tmp_path / "b")])  # no flag: the text part's own default
    assert seen["pretrained"] == "default"
