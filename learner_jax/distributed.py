"""Multi-host start-up: ``jax.distributed.initialize`` when the run is configured for several processes.

Sources, first match wins: explicit arguments; the environment (``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, as ``jax.distributed`` itself reads them); a cluster JAX detects on
its own (a TPU VM pod slice, SLURM with several tasks), for which ``initialize()`` needs no argument. A single
process with none of these stays single-process (nothing to initialize). Call it once, before any other JAX
call; afterwards ``jax.devices()`` lists every process's devices and the learners' mesh spans them all.
"""

from __future__ import annotations

import os

import jax

COORDINATOR_ENV, NUM_PROCESSES_ENV, PROCESS_ID_ENV = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def cluster_detected() -> bool:
    """Whether JAX's own cluster detection applies: a TPU VM pod slice or a SLURM job with several tasks."""
    slurm = _int_env("SLURM_NTASKS") or 1
    tpu_pod = bool(os.environ.get("TPU_WORKER_HOSTNAMES", "").count(","))
    return slurm > 1 or tpu_pod or bool(os.environ.get("MEGASCALE_COORDINATOR_ADDRESS"))


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids: list[int] | None = None) -> bool:
    """Join the multi-process run if one is configured; returns whether it is multi-process.

    ``coordinator_address`` is ``host:port`` of process 0. On CPU the cross-process collectives are gloo's
    (JAX's CPU default; set explicitly so that an older default cannot silently leave them unimplemented)."""
    coordinator_address = coordinator_address or os.environ.get(COORDINATOR_ENV) or None
    num_processes = num_processes if num_processes is not None else _int_env(NUM_PROCESSES_ENV)
    process_id = process_id if process_id is not None else _int_env(PROCESS_ID_ENV)
    explicit = coordinator_address is not None or num_processes is not None or process_id is not None
    if not explicit and not cluster_detected():
        return False
    if explicit and (coordinator_address is None or num_processes is None or process_id is None):
        raise ValueError("a multi-process run needs all three of coordinator_address (host:port of process 0), "
                         f"num_processes and process_id (or {COORDINATOR_ENV}, {NUM_PROCESSES_ENV}, "
                         f"{PROCESS_ID_ENV}); got {coordinator_address!r}, {num_processes!r}, {process_id!r}")
    if explicit and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id {process_id} is outside 0..{num_processes - 1}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if explicit:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   local_device_ids=local_device_ids)
    else:
        jax.distributed.initialize(local_device_ids=local_device_ids)
    return jax.process_count() > 1


def is_main_process() -> bool:
    """Process 0 writes logs, metrics tables and plots; every process takes part in computing them."""
    return jax.process_index() == 0


__all__ = ["cluster_detected", "initialize", "is_main_process"]
