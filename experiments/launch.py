"""Command line of the config-driven scripts: an ``ml_collections`` config file plus absl flags, in the shape of
Flax's examples and big_vision::

    python -m experiments.ulmfit --config experiments/configs/imdb_lesson.py --config.lm.lr=1e-2 --workdir DIR

and what such a script logs first on a TPU VM or a GPU box (process, host and devices).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ml_collections import ConfigDict

CONFIGS = Path(__file__).parent / "configs"


def load_config(path: str | os.PathLike) -> ConfigDict:
    """``get_config()`` of a config file (what ``--config PATH`` loads), for tests and notebooks."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found (the configs are in {CONFIGS})")
    spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def parse_flags(argv: Sequence[str], default_config: str | os.PathLike) -> tuple[ConfigDict, Path | None]:
    """(config, workdir) from ``--config FILE [--config.a.b=v ...] [--workdir DIR]``; own ``FlagValues`` per call,
    so several scripts (and tests) parse in one process. ``-h``/``--help`` prints the flags and exits."""
    from absl import flags
    from ml_collections import config_flags

    argv = [sys.argv[0] if sys.argv else "prog", *argv]
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", str(default_config), "a config file in experiments/configs/ "
                                    "(override fields with --config.field=value)", flag_values=fv, sys_argv=argv)
    flags.DEFINE_string("workdir", None, "folder for the config used, metrics (JSON lines, TensorBoard), plots and "
                        "checkpoints; rerunning with the same folder resumes", flag_values=fv)
    if any(a in ("-h", "--help", "-help") for a in argv[1:]):
        print(fv.get_help())
        raise SystemExit(0)
    rest = fv(argv)
    if len(rest) > 1:
        raise SystemExit(f"unexpected arguments {rest[1:]}: options are --config FILE, --config.FIELD=VALUE and "
                         "--workdir DIR")
    return fv.config, (Path(fv.workdir) if fv.workdir else None)


def host_info() -> dict:
    """Process, host and device facts worth a line in every log of a multi-device run."""
    import jax

    devices = jax.devices()
    return {"hostname": socket.gethostname(), "process_index": jax.process_index(),
            "process_count": jax.process_count(), "platform": devices[0].platform, "jax": jax.__version__,
            "device_count": len(devices), "local_device_count": jax.local_device_count(),
            "devices": [str(d) for d in jax.local_devices()], "cpu_count": os.cpu_count()}


def log_host_info() -> dict:
    info = host_info()
    print(f"process {info['process_index']}/{info['process_count']} on {info['hostname']}: "
          f"{info['local_device_count']} local of {info['device_count']} {info['platform']} devices "
          f"{info['devices']} (JAX {info['jax']})", flush=True)
    return info


def run_script(run: Callable[[ConfigDict, Path | None], dict], default_config: str | os.PathLike,
               argv: Sequence[str] | None = None) -> dict:
    """Parse the flags, log the host, call ``run(config, workdir)``; print its result's scalars as JSON."""
    config, workdir = parse_flags(sys.argv[1:] if argv is None else argv, default_config)
    log_host_info()
    result = run(config, workdir)
    print(json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float, str))}, indent=1), flush=True)
    return result
