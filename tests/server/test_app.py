"""The ASGI app in process: forward-auth, /v1/check, health, metrics, OpenAPI, admin."""

from __future__ import annotations

import html
import json
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from devicegate.policy.engine import HELD_RULE
from devicegate.server import DevicegateApp
from devicegate.store import tables as t
from tests.server.conftest import TestClient, make_app
from tests.server.hold import WriterHold
from tests.server.procs import TOKEN
from tests.server.scenario import (
    ANDROID_CHROME,
    ANDROID_EAS,
    BLOCK_MESSAGE,
    IPHONE_SAFARI,
    LAB,
    OPS,
    WINDOWS_EDGE,
    base64_eas,
    plain_eas,
)

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def fa(client: TestClient, user: str | None, ua: str, uri: str = "/", resource: str = "web"):  # type: ignore[no-untyped-def]
    headers = {"User-Agent": ua, "X-Original-URI": uri}
    if user:
        headers["X-Devicegate-User"] = user
    return client.get(f"/v1/forward-auth/{resource}", headers=headers)


def test_allow_block_warn(client: TestClient) -> None:
    allowed = fa(client, OPS, ANDROID_CHROME)
    assert allowed.status_code == 200 and allowed.headers["x-devicegate-action"] == "allow"
    blocked = fa(client, OPS, IPHONE_SAFARI)
    assert blocked.status_code == 403
    assert blocked.json() == {"action": "block", "rule": "no-apple-web", "message": BLOCK_MESSAGE}
    warned = fa(client, OPS, WINDOWS_EDGE)
    assert warned.status_code == 200
    assert warned.headers["x-devicegate-action"] == "warn"
    assert "Windows laptops leave work use" in warned.headers["x-devicegate-warning"]
    assert fa(client, LAB, IPHONE_SAFARI).status_code == 200  # not in scope


def test_every_answer_is_logged_before_it_is_sent(client: TestClient, app: DevicegateApp) -> None:
    for _ in range(5):
        fa(client, OPS, IPHONE_SAFARI)
    assert app.service.store.count("decisions") == 5
    assert app.service.store.count("sightings") == 1  # one per user/signals/interval
    with app.service.store.engine.connect() as conn:
        row = conn.execute(sa.select(t.decision_log).limit(1)).mappings().one()
    assert row["action"] == "block" and row["rule"] == "no-apple-web" and row["vendor"] == "Apple"


def test_quarantine_holds_until_released(client: TestClient, app: DevicegateApp) -> None:
    auth = {"X-Devicegate-User": OPS, "User-Agent": ANDROID_EAS}
    spoofed = client.get(
        "/v1/forward-auth/email", headers={**auth, "X-Original-URI": base64_eas("Q1", "iPhone")}
    )
    assert spoofed.status_code == 403 and spoofed.json()["action"] == "quarantine"
    assert spoofed.json()["rule"] == "spoof-hold"
    # The same device now sends consistent signals: still held.
    clean = {**auth, "X-Original-URI": plain_eas("Q1", "Android")}
    held = client.get("/v1/forward-auth/email", headers=clean)
    assert held.status_code == 403 and held.json()["rule"] == HELD_RULE
    listed = client.get("/v1/admin/devices?restricted=1", headers=ADMIN).json()["devices"]
    assert len(listed) == 1 and listed[0]["held"] == ["email"]
    ref = listed[0]["device_ref"]
    assert client.post(f"/v1/admin/devices/{ref}/release").status_code == 401
    released = client.post(f"/v1/admin/devices/{ref}/release", headers=ADMIN)
    assert released.status_code == 200
    assert client.get("/v1/forward-auth/email", headers=clean).status_code == 200
    again = client.post(f"/v1/admin/devices/{ref}/release", headers=ADMIN)
    assert again.status_code == 404 and "error" in again.json()


def test_check_matches_cli_json(client: TestClient, app: DevicegateApp) -> None:
    from devicegate.model import Request
    from devicegate.policy import decide
    from devicegate.serialize import decision_json, signals_from_json

    body = {
        "user": OPS,
        "resource": "web",
        "at": "2025-01-10T09:00",
        "signals": {"user_agent": IPHONE_SAFARI},
    }
    got = client.post("/v1/check", json=body)
    assert got.status_code == 200
    snapshot = app.service.snapshot
    from devicegate.cli.common import parse_at

    expected = decide(
        snapshot,
        Request(
            OPS, "web", parse_at(body["at"], snapshot.timezone), signals_from_json(body["signals"])
        ),  # type: ignore[arg-type]
    )
    assert got.json() == json.loads(json.dumps(decision_json(expected)))


def test_health_metrics_openapi(client: TestClient) -> None:
    fa(client, OPS, IPHONE_SAFARI)
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["rules"] == 3
    metrics = client.get("/metrics").text
    labels = 'action="block",adapter="forward-auth",resource="web",rule="no-apple-web"'
    assert f"devicegate_decisions_total{{{labels}}} 1.0" in metrics
    for name in (
        "devicegate_decision_seconds_bucket",
        "devicegate_policy_info",
        "devicegate_policy_reload_failures_total",
        "devicegate_log_batch_size_bucket",
    ):
        assert name in metrics
    spec = client.get("/openapi.json").json()
    assert "/v1/forward-auth/{resource}" in spec["paths"] and "/v1/check" in spec["paths"]


def test_admin_needs_the_token(client: TestClient) -> None:
    for method, path in (("POST", "/v1/admin/reload"), ("GET", "/v1/admin/devices")):
        assert client.request(method, path).status_code == 401
        wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]


def test_admin_off_without_a_token(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    from tests.server.conftest import make_app

    app = make_app(tmp_path, *scenario, admin_token=None)
    with TestClient(app) as client:
        assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 401


def test_reload_refuses_a_broken_policy(
    client: TestClient, app: DevicegateApp, scenario: tuple[Path, Path]
) -> None:
    policy, _ = scenario
    old = app.service.snapshot.version
    good = policy.read_text()
    policy.write_text(good + "  - id: broken\n    effect: explode\n")
    refused = client.post("/v1/admin/reload", headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["policy_version"] == old
    assert fa(client, OPS, IPHONE_SAFARI).status_code == 403  # old policy still enforced
    assert "devicegate_policy_reload_failures_total 1.0" in client.get("/metrics").text
    policy.write_text(
        good.replace('effect: block\n    message: "Apple', 'effect: warn\n    message: "Apple')
    )
    accepted = client.post("/v1/admin/reload", headers=ADMIN)
    assert accepted.status_code == 200 and accepted.json()["policy_version"] != old
    assert fa(client, OPS, IPHONE_SAFARI).headers["x-devicegate-action"] == "warn"


def test_the_block_page_says_what_the_policy_says(client: TestClient) -> None:
    """The page's text comes from the policy by rule id, never from the request: a caller
    cannot make the official page carry a sentence of its own."""
    phishing = "Your%20account%20expired%3A%20log%20in%20at%20evil.example"
    page = client.get(
        "/v1/block-page", headers={"X-Devicegate-Message": phishing, "X-Devicegate-Rule": "r"}
    )
    assert page.status_code == 403
    assert "evil.example" not in page.text and "rule: r" not in page.text
    assert "not allowed" in page.text  # the generic sentence for a rule the policy lacks
    page = client.get(
        "/v1/block-page?rule=no-apple-web", headers={"X-Devicegate-Message": phishing}
    )
    assert "Apple devices may no longer be used for work" in html.unescape(page.text)
    assert "evil.example" not in page.text and "rule: no-apple-web" in page.text
    page = client.get("/v1/block-page", headers={"X-Devicegate-Rule": "builtin%3Aquarantine-hold"})
    assert "quarantined" in page.text


def test_log_failure_fails_closed(client: TestClient, app: DevicegateApp) -> None:
    """The writer process really fails to insert (the table is gone): 503, counted; and
    once the table is back the same request is answered again."""
    import sqlalchemy as sa

    engine = app.service.store.engine
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE decisions RENAME TO decisions_away"))
    answer = fa(client, OPS, ANDROID_CHROME)
    assert answer.status_code == 503 and answer.json()["error"]
    assert "devicegate_log_write_failures_total 1.0" in client.get("/metrics").text
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE decisions_away RENAME TO decisions"))
    assert fa(client, OPS, ANDROID_CHROME).status_code == 200


def test_writer_process_death_refuses_the_batch_in_flight_then_recovers(
    tmp_path: Path, scenario: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 of the writer while it holds the batch with the request in it (held by
    `log_writer.HOLD_ENV`: no timing involved): that request is refused — 503, never the 200 an
    Android phone gets — for a request decided now and for one replayed from a kept answer,
    and nothing of it is logged; a new writer takes the next batch."""
    hold = WriterHold(tmp_path / "hold")
    for name, value in hold.env().items():
        monkeypatch.setenv(name, value)
    app = make_app(tmp_path, *scenario)
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        assert fa(client, OPS, ANDROID_CHROME).status_code == 200
        logged = app.service.store.count("decisions")
        for agent in (WINDOWS_EDGE, ANDROID_CHROME):  # decided now; replayed (kept above)
            hold.engage()
            pending = pool.submit(fa, client, OPS, agent)
            _, records = hold.wait()  # the writer has the batch and has not committed it
            writer = app.service.log._proc
            assert writer is not None and records == 1
            writer.send_signal(signal.SIGKILL)
            writer.wait(10)
            hold.release()
            refused = pending.result(timeout=20)
            assert refused.status_code == 503, (agent, refused.status_code)
            assert "decision log" in refused.json()["error"]
            assert "x-devicegate-action" not in refused.headers
            assert app.service.store.count("decisions") == logged
            assert fa(client, OPS, agent).status_code == 200  # a new writer commits it
            logged += 1
            assert app.service.log._proc is not None and app.service.log._proc.pid != writer.pid
        assert app.service.store.count("decisions") == logged


def test_sightings_read_back_through_the_store(client: TestClient, app: DevicegateApp) -> None:
    """Rows written by the tuple writer are what the store's own API reads (types included)."""
    from datetime import timedelta

    fa(client, OPS, IPHONE_SAFARI)
    seen = app.service.recent_sighting(OPS, window=timedelta(minutes=5))
    assert seen is not None
    assert seen.adapter == "forward-auth" and seen.signals.user_agent == IPHONE_SAFARI
    assert seen.profile.vendor == "Apple" and seen.at.tzinfo is not None
    assert app.service.recent_sighting(LAB, window=timedelta(minutes=5)) is None
