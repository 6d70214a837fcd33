"""The ULMFiT benchmark scripts: FLOP counts agree with each other and the layer benchmark runs (tiny shapes)."""

from __future__ import annotations

import pytest

from experiments.bench.bench_lstm_layer import layer_flops
from experiments.bench.bench_lstm_layer import main as bench_layer
from experiments.bench.bench_ulmfit import encoder_token_flops, lm_step_flops


def test_flop_counts_agree():
    cfg = dict(emb_sz=400, n_hid=1152, n_layers=3)
    sizes = [400, 1152, 1152, 400]
    per_token = sum(layer_flops(1, 1, sizes[i], sizes[i + 1]) for i in range(3))
    assert encoder_token_flops(cfg) == pytest.approx(per_token)
    assert per_token == pytest.approx(3 * 2 * 4 * (1152 * 1552 + 1152 * 2304 + 400 * 1552))
    assert lm_step_flops(cfg, 30000) == pytest.approx(per_token + 3 * 2 * 400 * 30000)


def test_layer_bench_runs_without_reference(tmp_path):
    out = tmp_path / "layer.json"
    res = bench_layer(["--steps", "3", "--bs", "2", "--n-in", "4", "--n-hid", "8", "--repeats", "1",
                       "--ref-python", "", "--out", str(out)])
    assert res["ours_s"] > 0 and "torch" not in res and out.is_file() and res["ours_dtype"] == "fp32"
    res = bench_layer(["--steps", "3", "--bs", "2", "--n-in", "4", "--n-hid", "8", "--repeats", "1",
                       "--ref-python", "", "--bf16"])
    assert res["ours_s"] > 0 and res["ours_dtype"] == "bf16"
