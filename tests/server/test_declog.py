"""The decision log's two acknowledgement modes, through the app and its real writer process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from devicegate.adapters.forward_auth import ADAPTER as FORWARD_AUTH
from tests.server.conftest import TestClient, make_app
from tests.server.scenario import ANDROID_CHROME, IPHONE_SAFARI, OPS
from tests.server.test_cli import run


def fa(client: TestClient, ua: str) -> int:
    headers = {"X-Devicegate-User": OPS, "User-Agent": ua}
    return client.get("/v1/forward-auth/web", headers=headers).status_code


def test_buffered_answers_then_commits_everything(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    app = make_app(tmp_path, *scenario, log_ack="buffered")
    with TestClient(app) as client:
        codes = [fa(client, ua) for ua in (ANDROID_CHROME, IPHONE_SAFARI) * 20]
        assert codes == [200, 403] * 20
        assert "devicegate_log_pending_records" in client.get("/metrics").text
    assert app.service.log.pending == 0
    assert app.service.store.count("decisions") == 40  # shutdown drained the buffer


def test_buffered_fails_closed_once_the_log_fails(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    app = make_app(tmp_path, *scenario, log_ack="buffered")
    engine = app.service.store.engine
    with TestClient(app) as client:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE decisions RENAME TO decisions_away"))
        codes: list[int] = []
        for _ in range(200):  # the first failed batch switches every request to waiting
            codes.append(fa(client, ANDROID_CHROME))
            if codes[-1] == 503:
                break
            time.sleep(0.01)
        assert codes[-1] == 503, codes
        assert fa(client, ANDROID_CHROME) == 503  # still failing: still refused
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE decisions_away RENAME TO decisions"))
        assert fa(client, ANDROID_CHROME) == 200  # waited for its own, successful commit
        assert not app.service.log._failing


def test_unknown_ack_mode_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nname: x\n", encoding="utf-8")
    assert run(["serve", "--policy", str(policy), "--log-ack", "sometimes"]) == 2
    assert run(["serve", "--policy", str(policy), "--postfix-window", "soon"]) == 2


@pytest.mark.parametrize("ack", ["durable", "buffered"])
def test_replays_are_logged_in_both_modes(
    tmp_path: Path, scenario: tuple[Path, Path], ack: str
) -> None:
    app = make_app(tmp_path, *scenario, log_ack=ack)
    with TestClient(app) as client:
        for _ in range(10):
            assert fa(client, IPHONE_SAFARI) == 403
    assert app.service.store.count("decisions") == 10


def test_a_sighting_counts_before_it_is_committed(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """With `buffered`, SMTP right after an IMAP/web access must still see that device."""
    from datetime import timedelta

    from devicegate.model import Signals

    app = make_app(tmp_path, *scenario, log_ack="buffered")
    with TestClient(app) as client:

        async def access_then_ask() -> tuple[int, str | None, str | None]:
            service = app.service
            service.prepare(OPS, "web", Signals(user_agent=IPHONE_SAFARI), adapter=FORWARD_AUTH)
            pending = service.log.pending  # not committed yet
            seen = service.recent_sighting(OPS, window=timedelta(minutes=5))
            return pending, seen and seen.adapter, seen and seen.signals.user_agent

        pending, adapter, agent = client._run(access_then_ask())
    assert pending >= 1 and adapter == "forward-auth" and agent == IPHONE_SAFARI
