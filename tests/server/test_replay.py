"""Replayed decisions are exactly what deciding again would give: a hold, a release, a
reload and the next policy date each end a replay at once; every replay is logged."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from devicegate.adapters import forward_auth as fa
from devicegate.model import Signals
from devicegate.policy.engine import HELD_RULE
from devicegate.server import DevicegateApp
from tests.server.conftest import TestClient, make_app
from tests.server.procs import TOKEN
from tests.server.scenario import (
    ANDROID_CHROME,
    ANDROID_EAS,
    IPHONE_SAFARI,
    OPS,
    WINDOWS_EDGE,
    plain_eas,
)

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def eas(client: TestClient, device: str) -> int:
    headers = {
        "X-Devicegate-User": OPS,
        "User-Agent": ANDROID_EAS,
        "X-Original-URI": plain_eas(device, "Android"),
    }
    return client.get("/v1/forward-auth/email", headers=headers).status_code


def test_hold_and_release_end_replays(client: TestClient, app: DevicegateApp) -> None:
    assert eas(client, "R1") == 200
    assert eas(client, "R1") == 200  # replayed
    ref = app.service.store.hold(
        (("activesync_id", "R1"),), resource="email", rule="operator", reason="lost", user=OPS
    )
    app.service.state.reload()  # what the refresher thread does within --state-refresh
    held = client.get(
        "/v1/forward-auth/email",
        headers={
            "X-Devicegate-User": OPS,
            "User-Agent": ANDROID_EAS,
            "X-Original-URI": plain_eas("R1", "Android"),
        },
    )
    assert held.status_code == 403 and held.json()["rule"] == HELD_RULE
    assert client.post(f"/v1/admin/devices/{ref}/release", headers=ADMIN).status_code == 200
    assert eas(client, "R1") == 200
    assert app.service.store.count("decisions") == 4  # replays are logged too


def test_reload_ends_replays(client: TestClient, app: DevicegateApp, tmp_path: Path) -> None:
    headers = {"X-Devicegate-User": OPS, "User-Agent": WINDOWS_EDGE}
    first = client.get("/v1/forward-auth/web", headers=headers)
    assert first.headers["x-devicegate-action"] == "warn"
    policy = app.service.config.policy[0]
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("notice: 30d", "notice: 1d"), encoding="utf-8")
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200
    after = client.get("/v1/forward-auth/web", headers=headers)
    assert after.headers["x-devicegate-action"] == "allow"  # out of the shorter notice
    assert after.headers["x-devicegate-policy"] != first.headers["x-devicegate-policy"]


def test_next_policy_date_ends_replays(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    app = make_app(tmp_path, *scenario)

    async def run() -> None:
        await app.startup()
        try:
            service = app.service
            prepared, batch = service.prepare(
                OPS, "web", Signals(user_agent=WINDOWS_EDGE), adapter=fa.ADAPTER
            )
            await service.log.wait(batch)
            assert prepared.decision.action.value == "warn"  # in the notice period
            start = service.snapshot.rules_by_id["windows-soon"].start
            assert prepared.valid_until == start  # the rule takes effect then
            assert service.replay_if_valid(prepared, start - 1) is not None
            assert service.replay_if_valid(prepared, start) is None
            # deciding at that moment gives another answer: the replay had to end
            later = datetime.fromtimestamp(start, UTC)
            again, _ = service.prepare(
                OPS, "web", Signals(user_agent=WINDOWS_EDGE), adapter=fa.ADAPTER, at=later
            )
            assert again.decision.action.value == "block"
            assert service.replay_if_valid(again, time.time()) is None  # an `at` never replays
        finally:
            await app.shutdown()

    asyncio.run(run())
    assert app.service.store.count("decisions") == 3


def test_unrelated_header_changes_still_replay(client: TestClient, app: DevicegateApp) -> None:
    """Page URIs and other headers are not part of the key; the log still gets each one."""
    for page in ("/a", "/b?x=1", "/c"):
        headers = {"X-Devicegate-User": OPS, "User-Agent": ANDROID_CHROME, "X-Original-URI": page}
        assert client.get("/v1/forward-auth/web", headers=headers).status_code == 200
    assert len(app.forward_auth._answers) == 1
    assert app.service.store.count("decisions") == 3


def test_postfix_answers_replay_and_log_the_sighting_used(
    client: TestClient, app: DevicegateApp
) -> None:
    """SMTP decides from the newest sighting; the decision row says which one (`basis`)."""
    import json

    import sqlalchemy as sa

    from devicegate.adapters.postfix import PolicyRequest, PostfixPolicyServer
    from devicegate.store import tables as t

    headers = {"X-Devicegate-User": OPS, "User-Agent": WINDOWS_EDGE}
    assert client.get("/v1/forward-auth/web", headers=headers).status_code == 200  # a sighting
    server = PostfixPolicyServer(app.service, "127.0.0.1", 0)
    request = PolicyRequest("smtpd_access_policy", OPS, "198.51.100.7", "RCPT")

    async def submit() -> list[str]:
        actions = [server.answer(request) for _ in range(3)]
        await app.service.durable()
        return actions

    actions = client._run(submit())
    assert len(set(actions)) == 1 and len(server.answers) == 1  # decided once, replayed
    with app.service.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.decision_log).where(t.decision_log.c.adapter == "postfix")
        ).all()
    assert len(rows) == 3
    detail = json.loads(rows[0].detail) if isinstance(rows[0].detail, str) else rows[0].detail
    assert "forward-auth sighting" in detail["basis"] and "Windows" in detail["basis"]


def test_a_new_sighting_ends_a_postfix_replay_at_once(
    client: TestClient, app: DevicegateApp
) -> None:
    """An iPhone seen on the web counts for the very next submission, not 5 s later: the
    decision logged for it names the new sighting."""
    import json

    import sqlalchemy as sa

    from devicegate.adapters.postfix import PolicyRequest, PostfixPolicyServer
    from devicegate.store import tables as t

    server = PostfixPolicyServer(app.service, "127.0.0.1", 0, sighting_ttl=60)
    request = PolicyRequest("smtpd_access_policy", OPS, "198.51.100.7", "RCPT")

    async def submit() -> None:
        server.answer(request)
        await app.service.durable()

    def submit_after(agent: str) -> str:
        headers = {"X-Devicegate-User": OPS, "User-Agent": agent}
        client.get("/v1/forward-auth/web", headers=headers)  # a sighting
        client._run(submit())
        with app.service.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.decision_log.c.detail)
                .where(t.decision_log.c.adapter == "postfix")
                .order_by(t.decision_log.c.id.desc())
                .limit(1)
            ).one()
        detail = row.detail if isinstance(row.detail, dict) else json.loads(row.detail)
        return str(detail["basis"])

    assert "Windows" in submit_after(WINDOWS_EDGE)
    assert "Apple" in submit_after(IPHONE_SAFARI)


def test_replays_and_a_full_replay_cache_show_on_metrics(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """`--replay-cache` bounds each endpoint's kept answers; /metrics counts the replays and
    the clears a cache too small for its requests makes (docs/scale.md)."""
    from tests.server.test_asgi_paths import counter

    app = make_app(tmp_path, *scenario, replay_cache=2)
    with TestClient(app) as client:
        # M1 decided, replayed twice; M2 decided (2 kept); M3 finds the cache full: emptied,
        # decided, kept; its second request replays
        for device in ("M1", "M1", "M1", "M2", "M3", "M3"):
            assert eas(client, device) == 200
        replayed = counter(client, "devicegate_replayed_decisions_total", adapter="forward-auth")
        clears = counter(client, "devicegate_replay_cache_clears_total", adapter="forward-auth")
        text = client.get("/metrics").text
    assert (replayed, clears) == (3, 1)
    assert 'devicegate_replay_cache_entries{adapter="forward-auth"} 1.0' in text
    assert 'devicegate_replay_cache_entries{adapter="dovecot"} 0.0' in text
    assert len(app.forward_auth._answers) == 1 and app.service.store.count("decisions") == 6
