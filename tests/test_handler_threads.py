"""How many threads of a worker run chat turns when AIGUILLAGE_WORKER_THREADS is unset
(Settings.handler_threads): the cores per worker for turns computed locally, many for turns that wait
on a network service, and always the operator's value when set."""

from __future__ import annotations

import pytest

from assistant.config import Settings


def settings(**values) -> Settings:
    return Settings(_env_file=None, worker_threads=None, **values)


@pytest.mark.parametrize(("cpus", "workers", "threads"), [(2, 1, 2), (2, 2, 1), (2, 4, 1), (8, 2, 4), (1, 1, 1)])
def test_local_turns_get_the_cores_of_their_worker(cpus, workers, threads):
    assert settings().handler_threads(workers, cpus=cpus) == threads


def test_the_configured_number_of_workers_is_used_when_none_is_given():
    assert settings(workers=2).handler_threads(cpus=2) == 1


@pytest.mark.parametrize("network", [{"llm_base_url": "http://127.0.0.1:9/v1"}, {"embedding_backend": "openai"}])
def test_turns_that_wait_on_a_network_service_keep_many_threads(network):
    assert settings(**network).handler_threads(2, cpus=2) == 40


def test_the_operator_value_wins():
    chosen = Settings(_env_file=None, worker_threads=6, llm_base_url="http://127.0.0.1:9/v1")
    assert chosen.handler_threads(2, cpus=2) == 6
    assert Settings(_env_file=None, worker_threads=3).handler_threads(2, cpus=2) == 3
