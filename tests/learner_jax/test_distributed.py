"""learner_jax.distributed: single-process runs stay single-process; incomplete configurations fail clearly.
(Two real processes run in test_subprocess_runs.)"""

import pytest

from learner_jax import distributed


def test_nothing_configured_stays_single_process(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_NTASKS",
                 "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.cluster_detected()
    assert distributed.initialize() is False
    assert distributed.is_main_process()


def test_cluster_detection_from_environment(monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert distributed.cluster_detected()
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "w0,w1")
    assert distributed.cluster_detected()


@pytest.mark.parametrize("kwargs, match", [
    (dict(coordinator_address="localhost:1234"), "all three"),
    (dict(coordinator_address="localhost:1234", num_processes=2, process_id=2), "outside 0..1"),
])
def test_incomplete_or_bad_configuration_names_the_problem(monkeypatch, kwargs, match):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=match):
        distributed.initialize(**kwargs)


def test_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES"):
        distributed.initialize()
