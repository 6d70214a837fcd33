"""Kill-and-resume at every checkpoint interval: a run killed (SIGKILL, or SIGTERM as on a preempted machine) and
resumed ends with bit-identical parameters, optimizer state and step to one never interrupted, in the per-batch
and the on-device epoch paths. The killed runs are forked children of one subprocess; resumes run in this process."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.learner_jax.resume_run import final_leaves, train

ROOT = Path(__file__).resolve().parents[2]
# (every_n_steps, every_epoch, kill after this many steps, how); 16 steps an epoch, 2 epochs
CASES = {
    "every1-mid-epoch": (1, True, 21, "after"),
    "every3-killed-in-save": (3, True, 18, "in-save"),
    "every4-last-batch-ckpt-killed-before-epoch-end": (4, False, 16, "after"),
    "every4-epoch-saves-killed-before-epoch-end": (4, True, 16, "after"),
    "every5-mid-epoch": (5, True, 26, "after"),
    "every16-last-batch-ckpt-then-mid-epoch": (16, False, 20, "after"),
    "every4-sigterm": (4, True, 10, "sigterm"),
}
PATHS = {"per-batch": False, "on-device": True}


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Run every killed case (one subprocess forking a child per case); yields {id: (ckpt, exit status, log)}."""
    root = tmp_path_factory.mktemp("killed")
    cases = [{"id": f"{case}-{path}", "ckpt": str(root / f"{case}-{path}"), "every": every, "every_epoch": every_epoch,
              "device_epoch": device, "kill_at": kill_at, "mode": mode}
             for case, (every, every_epoch, kill_at, mode) in CASES.items() for path, device in PATHS.items()]
    (root / "cases.json").write_text(json.dumps(cases))
    done = subprocess.run([sys.executable, "-m", "tests.learner_jax.resume_run", str(root / "cases.json"), str(root)],
                          cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads((root / "status.json").read_text())
    return {c["id"]: (Path(c["ckpt"]), status[c["id"]], (root / f"{c['id']}.log").read_text()) for c in cases}


@functools.cache
def uninterrupted(device: bool) -> list[np.ndarray]:
    return final_leaves(train(None, 1, True, device))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CASES)
def test_killed_then_resumed_is_bit_identical(killed, case, path):
    every, every_epoch, kill_at, mode = CASES[case]
    ckpt, rc, err = killed[f"{case}-{path}"]
    assert rc == (143 if mode == "sigterm" else -9), (rc, err[-3000:])
    if mode == "sigterm":
        assert "Traceback" not in err and "SIGTERM: checkpoint of step" in err, err[-3000:]
        saved = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
        assert saved[-1] == (kill_at if not PATHS[path] else 16)  # on device: the epoch's end, where it is known
    resumed = train(ckpt, every, every_epoch, PATHS[path], resume=True)
    want = uninterrupted(PATHS[path])
    got = final_leaves(resumed)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"leaf {i}")
