"""Runs in subprocesses: 8 simulated devices vs 1, and SIGKILL mid-epoch then resume."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def run_toy(out: Path, *args: str, devices: int = 1) -> subprocess.CompletedProcess:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "tests.learner_jax.toy_run", str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def load(out: Path):
    z = np.load(out)
    return [z[f"arr_{i}"] for i in range(len([k for k in z.files if k.startswith("arr_")]))], z


def test_eight_devices_match_one(tmp_path):
    one = run_toy(tmp_path / "one.npz", devices=1)
    eight = run_toy(tmp_path / "eight.npz", devices=8)
    assert one.returncode == 0, one.stderr[-3000:]
    assert eight.returncode == 0, eight.stderr[-3000:]
    p1, z1 = load(tmp_path / "one.npz")
    p8, z8 = load(tmp_path / "eight.npz")
    assert int(z1["n_devices"]) == 1 and int(z8["n_devices"]) == 8
    for a, b in zip(p1, p8):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(z1["valid"], z8["valid"], atol=1e-5)


def test_sigkill_mid_epoch_then_resume_is_identical(tmp_path):
    full = run_toy(tmp_path / "full.npz")
    assert full.returncode == 0, full.stderr[-3000:]
    ckpt = tmp_path / "ckpt"
    killed = run_toy(tmp_path / "never.npz", "--ckpt", str(ckpt), "--kill-at", "28")  # epoch 1 of 3 (16/epoch)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-3000:])
    assert not (tmp_path / "never.npz").exists()
    steps = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
    assert steps and max(steps) == 25  # the last checkpoint before the kill: saved every 5 steps done
    resumed = run_toy(tmp_path / "resumed.npz", "--ckpt", str(ckpt), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    pf, zf = load(tmp_path / "full.npz")
    pr, zr = load(tmp_path / "resumed.npz")
    for a, b in zip(pf, pr):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(zf["valid"], zr["valid"])
