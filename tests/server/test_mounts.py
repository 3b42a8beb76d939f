"""The mail adapters' routes are mounted when their modules exist (a fake stands in until
the real ones land) and go through the same service, log and durability wait."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from devicegate.adapters.base import DecisionService
from devicegate.model import Signals
from tests.server.conftest import TestClient, make_app
from tests.server.scenario import IPHONE_SAFARI, OPS


def _fake_dovecot() -> types.ModuleType:
    module = types.ModuleType("devicegate.adapters.dovecot")

    def handle(
        service: DecisionService, body: bytes, params: Mapping[str, str]
    ) -> tuple[int, dict[str, object]]:
        data = json.loads(body)
        decision = service.decide(
            data["login"], "web", Signals(user_agent=IPHONE_SAFARI), adapter="dovecot"
        )
        return 200, {
            "status": 0 if decision.allowed else -1,
            "msg": decision.message,
            "params": dict(params),
        }

    module.handle = handle  # type: ignore[attr-defined]
    return module


@pytest.fixture
def fake_dovecot() -> Iterator[None]:
    name = "devicegate.adapters.dovecot"
    if importlib.util.find_spec(name) is not None:
        yield  # the real adapter is installed: test through it instead
        return
    sys.modules[name] = _fake_dovecot()
    try:
        yield
    finally:
        del sys.modules[name]


def test_dovecot_route_mounted(
    fake_dovecot: None, tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    app = make_app(tmp_path, *scenario)
    with TestClient(app) as client:
        response = client.post(
            "/v1/dovecot/auth-policy?command=allow",
            json={"login": OPS, "remote": "198.51.100.1", "protocol": "imap"},
        )
        assert response.status_code == 200
        if "params" in response.json():  # only the fake echoes params
            assert response.json()["status"] == -1
            assert response.json()["params"] == {"command": "allow"}
    assert app.service.store.count("decisions") == 1
