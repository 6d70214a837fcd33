"""experiments/lesson4.ipynb runs end to end in smoke mode (small sizes, no downloads) and is committed clean."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[2] / "experiments" / "lesson4.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_in_smoke_mode_with_pictures_inline(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSON4_NOTEBOOK_SMOKE", "1")
    monkeypatch.delenv("LESSON4_DATA", raising=False)
    monkeypatch.setenv("LESSON4_CACHE", str(tmp_path / "downloads"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "smoke mode: True" in text and "GENERATED" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    files = list(tmp_path.rglob("*.png"))
    # the tabular, collab and classifier loss curves: inline once the recorder shows figures in a kernel (issue 15,
    # item 3); until then written as PNG files beside the notebook
    assert len(images) >= 3 or files
    assert (tmp_path / "models" / "fine_tuned_enc.pth").is_file()  # save_encoder wrote under the notebook's folder
