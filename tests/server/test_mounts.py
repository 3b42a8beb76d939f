"""The Dovecot endpoint is a bare ASGI path in front of the framework: it answers in
Dovecot's shape, logs every login (replayed ones too), and refuses what it cannot read."""

from __future__ import annotations

from pathlib import Path

from tests.server.conftest import TestClient, make_app
from tests.server.scenario import OPS

IOS_MAIL_ID = '("name" "iPhone Mail" "version" "20C65" "os" "iOS" "os-version" "16.2 (20C65)")'
THUNDERBIRD_ID = '("name" "Thunderbird" "version" "115.6.0")'
URL = "/v1/dovecot/auth-policy?command=allow"


def login(client: TestClient, device_id: str | None, session: str) -> dict[str, object]:
    body: dict[str, object] = {"login": OPS, "remote": "198.51.100.1", "protocol": "imap"}
    body["session_id"] = session
    if device_id is not None:
        body["device_id"] = device_id
    response = client.post(URL, json=body)
    assert response.status_code == 200
    data = response.json()
    assert isinstance(data, dict)
    return data


def test_dovecot_path_decides_and_logs_replays(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    app = make_app(tmp_path, *scenario)
    with TestClient(app) as client:
        # this scenario bans Apple on the web only: iOS Mail on email is allowed here (the
        # refusals are pinned through real Dovecot in tests/mail)
        first = login(client, IOS_MAIL_ID, "s1")
        again = login(client, IOS_MAIL_ID, "s2")  # same device, new session: replayed
        assert first == again == {"status": 0, "msg": ""}
        assert len(app.dovecot._answers) == 1
        assert login(client, THUNDERBIRD_ID, "s3") == {"status": 0, "msg": ""}
        report = client.post("/v1/dovecot/auth-policy?command=report", json={"login": OPS})
        assert report.json() == {"status": 0, "msg": ""}
        garbage = client.post(URL, content=b"\xff{not json")
        assert garbage.status_code == 200 and garbage.json()["status"] == -1
        assert client.post("/v1/dovecot/auth-policy?command=nope", json={}).status_code == 400
        assert client.get(URL).status_code == 405
        huge = client.post(URL, content=b"x" * (64 * 1024 + 1))
        assert huge.status_code == 413 and huge.json()["error"]
    assert app.service.store.count("decisions") == 3  # both iOS logins and Thunderbird
