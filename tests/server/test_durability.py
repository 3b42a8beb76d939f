"""Crash test: concurrent requests, `kill -9`, every acknowledged decision is in the store.
The crash lands while the decision-log writer holds a batch it has not committed
(`log_writer.HOLD_ENV`), so requests are in flight every time: a server that answered before
the commit loses what it acknowledged, whatever the timing. And two servers sharing one real
PostgreSQL: both log, a quarantine set through one is enforced by the other within the
state-refresh bound."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from devicegate.store import open_store
from devicegate.store import tables as t
from tests.server import procs
from tests.server.hold import WriterHold
from tests.server.scenario import (
    ANDROID_EAS,
    IPHONE_SAFARI,
    OPS,
    base64_eas,
    plain_eas,
    write_scenario,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def hammer(
    url: str, prefix: str, acked: list[str], stop: threading.Event, limit: int, replay: bool
) -> None:
    """Requests until stopped; `replay`: one user per thread, so all but the first are
    answered by the HTTP protocol's replay path (`server/protocol.py`)."""
    with httpx.Client(base_url=url, timeout=5) as client:
        for i in range(limit):
            if stop.is_set():
                return
            user = f"{prefix}@crash.example" if replay else f"{prefix}-{i}@crash.example"
            try:
                response = client.get(
                    "/v1/forward-auth/web",
                    headers={"X-Devicegate-User": user, "User-Agent": IPHONE_SAFARI},
                )
            except httpx.HTTPError:
                return  # the server died under us: this one was never acknowledged
            if response.status_code in (200, 403):
                acked.append(user)


def logged_users(store_url: str) -> Counter[str]:
    """How many decisions the store holds for each user."""
    store = open_store(store_url)
    with store.engine.connect() as conn:
        users = Counter(conn.execute(sa.select(t.decision_log.c.user)).scalars())
    store.engine.dispose()
    return users


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def crash_and_check(tmp_path: Path, store_url: str, *, replay: bool = False) -> tuple[int, int]:
    policy, directory = write_scenario(tmp_path / "scenario")
    hold = WriterHold(tmp_path / "hold")
    server = procs.start_devicegate(tmp_path, policy, directory, store_url, env=hold.env())
    acked: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=hammer, args=(server.url, f"t{n}", acked, stop, 5000, replay))
        for n in range(16)
    ]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        hold.engage()
        _, held = hold.wait()  # a batch of answered-or-not requests, not committed
        assert held >= 1
        # Durable: nothing decided from now on can be acknowledged. A server that answers
        # before the commit goes on answering: give it the time to answer many.
        mark, until = len(acked), time.monotonic() + 1.0
        while len(acked) < mark + 200 and time.monotonic() < until:
            time.sleep(0.01)
        # the server and its log writer together, as a crash of the machine would: a writer
        # left alive would commit what it was sent, hiding an answer sent before its commit
        writers = children(server.proc.pid)
        assert writers, "no decision-log writer process found"
        for pid in (server.proc.pid, *writers):
            os.kill(pid, signal.SIGKILL)
        server.proc.wait(10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        procs.stop(server.proc)
        hold.release()
    # restart on the same store: it must open (WAL recovery) and serve
    with (
        procs.devicegate(tmp_path, policy, directory, store_url) as again,
        again.client() as client,
    ):
        ok = client.get(
            "/v1/forward-auth/web", headers={"X-Devicegate-User": OPS, "User-Agent": IPHONE_SAFARI}
        )
        assert ok.status_code == 403
    users = logged_users(store_url)
    missing = Counter(acked) - users  # acknowledged more often than logged
    assert len(acked) > 100, "too few requests acknowledged to test anything"
    assert not missing, f"{missing.total()} acknowledged decisions lost, e.g. {missing}"
    return len(acked), users.total()


def test_kill9_loses_no_acknowledged_decision_sqlite(tmp_path: Path) -> None:
    acked, logged = crash_and_check(tmp_path, f"sqlite:///{tmp_path}/crash.db")
    assert logged >= acked


def test_kill9_loses_no_acknowledged_replayed_decision(tmp_path: Path) -> None:
    acked, logged = crash_and_check(tmp_path, f"sqlite:///{tmp_path}/crash.db", replay=True)
    assert logged >= acked


def test_two_servers_share_postgres(tmp_path: Path) -> None:
    policy, directory = write_scenario(tmp_path / "scenario")
    with (
        procs.postgres(tmp_path / "pg") as url,
        procs.devicegate(tmp_path, policy, directory, url) as a,
        procs.devicegate(tmp_path, policy, directory, url) as b,
        a.client() as ca,
        b.client() as cb,
    ):
        headers = {"X-Devicegate-User": OPS, "User-Agent": ANDROID_EAS}
        clean = {**headers, "X-Original-URI": plain_eas("PGDEV", "Android")}
        assert cb.get("/v1/forward-auth/email", headers=clean).status_code == 200
        spoofed = ca.get(
            "/v1/forward-auth/email",
            headers={**headers, "X-Original-URI": base64_eas("PGDEV", "iPhone")},
        )
        assert spoofed.status_code == 403 and spoofed.json()["action"] == "quarantine"
        held_at = time.monotonic()
        while cb.get("/v1/forward-auth/email", headers=clean).status_code != 403:
            assert time.monotonic() - held_at < 3.0, "hold not enforced by the other server in time"
            time.sleep(0.05)
        propagation = time.monotonic() - held_at
        assert propagation < 0.5 + 1.0  # --state-refresh 0.5 plus one store query and slack
        ref = ca.get("/v1/admin/devices?restricted=1", headers=a.admin()).json()["devices"][0][
            "device_ref"
        ]
        assert cb.post(f"/v1/admin/devices/{ref}/release", headers=b.admin()).status_code == 200
        released_at = time.monotonic()
        while ca.get("/v1/forward-auth/email", headers=clean).status_code != 200:
            assert time.monotonic() - released_at < 3.0, "release not seen by the other server"
            time.sleep(0.05)
        with procs.devicegate(tmp_path, policy, directory, url) as c, c.client() as cc:
            cc.get(
                "/v1/forward-auth/web",
                headers={"X-Devicegate-User": OPS, "User-Agent": IPHONE_SAFARI},
            )
        store = open_store(url)
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.decision_log.c.action, sa.func.count()).group_by(
                    t.decision_log.c.action
                )
            ).all()
            ids = conn.execute(sa.select(t.decisions.c.request_id)).scalars().all()
        store.engine.dispose()
        servers = {request_id.rsplit("-", 1)[0] for request_id in ids}
        assert len(servers) == 3  # a, b and c each logged their own decisions
        counts = dict(rows)
        assert counts["quarantine"] >= 2 and counts["allow"] >= 2 and counts["block"] == 1


def test_kill9_loses_no_acknowledged_decision_postgres(tmp_path: Path) -> None:
    with procs.postgres(tmp_path / "pg") as url:
        acked, logged = crash_and_check(tmp_path, url)
        assert logged >= acked
