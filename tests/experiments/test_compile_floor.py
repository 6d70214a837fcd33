"""The compile-floor programs are real training programs: each lowers a full epoch and lowers the loss."""

import pytest

from experiments.bench import compile_floor


@pytest.mark.parametrize("form", ["scan", "step"])
@pytest.mark.parametrize("name", ["collab", "tabular"])
def test_floor_program_trains(name, form):
    out = compile_floor.floor(name, form)
    assert out["loss_after"] < out["loss_before"]
    assert out["compile_wall_s"] > 0 and len(out["epoch_s"]) == {"collab": 5, "tabular": 3}[name]
    assert out["train_rows"] == {"collab": 80_000 // 64 * 64 * 5, "tabular": 26_049 // 64 * 64 * 3}[name]
