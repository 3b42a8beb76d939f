"""The decision corpus (tests/corpus/cases.yaml) through the HTTP API: `POST /v1/check`
answers exactly the JSON of `devicegate check --json` / `decide`, for every case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicegate.policy import decide
from devicegate.serialize import decision_json
from devicegate.server import ServerConfig, create_app
from tests.corpus.loader import (
    DEVICES,
    DIRECTORY,
    POLICY,
    Case,
    cases,
    check_expectation,
    corpus_snapshot,
)
from tests.server.conftest import TestClient

CASES = cases()
SNAPSHOT = corpus_snapshot()


@pytest.fixture(scope="module")
def corpus_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("corpus")
    config = ServerConfig(
        policy=(POLICY,), directory=DIRECTORY, devices=DEVICES, store_url=f"sqlite:///{tmp}/s.db"
    )
    with TestClient(create_app(config)) as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_http_check_matches_decide(corpus_client: TestClient, case: Case) -> None:
    body = {
        "user": case.user,
        "resource": case.resource,
        "at": case.at.isoformat(),
        "signals": case.signals,
    }
    response = corpus_client.post("/v1/check", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    check_expectation(case, got)
    assert got == json.loads(json.dumps(decision_json(decide(SNAPSHOT, case.request()))))
    service = corpus_client.app.service
    if got["action"] == "quarantine":  # a rule's quarantine holds the device: release it so
        for record in service.store.list_devices(only_restricted=True):  # cases stay independent
            service.store.release(record.device_ref)
        service.state.reload()
