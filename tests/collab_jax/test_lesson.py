"""The main job's collaborative-filtering part, offline with no MovieLens copy: it must say so and recover the
generated low-rank factors."""

from experiments import collab_lesson


def test_quick_offline_run_uses_generated_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LESSON4_DATA", raising=False)
    out = collab_lesson.run(data_dir=str(tmp_path), quick=True, download=False)
    printed = capsys.readouterr().out
    assert "no local copy" in printed and "GENERATED" in printed and "valid_loss" in printed
    assert out["data"] == "generated" and out["valid_mse"] < 0.6
    assert out["r2_user_factors"] > 0.6 and out["r2_item_factors"] > 0.6
