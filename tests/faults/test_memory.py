"""What the soak's memory figure found: every hold or release anywhere ends every replay
(the device-state generation changes), and each decision made again used to become a new
template — a copy of its decision and sighting rows kept by the server's id set and by the
writer process until 200,000 had piled up. A decision made again with the same content now
reuses its template."""

from __future__ import annotations

from pathlib import Path

from devicegate.model import DeviceState
from tests.faults.population import ANDROID_CHROME, ops, write_world
from tests.server.conftest import TestClient, make_app


def test_decisions_made_again_reuse_their_templates(tmp_path: Path) -> None:
    policy, directory = write_world(tmp_path / "world", users=10)
    app = make_app(tmp_path, policy, directory)
    service = app.service
    with TestClient(app) as client:
        for round_no in range(50):
            for i in range(10):
                headers = {"X-Devicegate-User": ops(i), "User-Agent": ANDROID_CHROME.format(i)}
                assert client.get("/v1/forward-auth/web", headers=headers).status_code == 200
            # a hold on some other device: the generation changes, nothing is replayed
            service.state.put([("eas_device_id", f"ELSEWHERE{round_no}")], DeviceState())
    # 10 distinct decisions (and their sightings) → 10 templates, not 500
    assert len(service.log._sent) <= 10
