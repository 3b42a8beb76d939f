"""Every adapter fails closed when its decision cannot be logged — the first request, decided
through ASGI, and a replayed one, answered from a kept decision — over real sockets to a real
uvicorn server with the configuration `devicegate serve` uses (forward-auth, Dovecot, RADIUS,
`/v1/decide`) and to the Postfix policy listener `serve` runs beside it.

Two ways the log fails: `commit`, every INSERT of the writer process fails (its table is
gone); `writer`, the writer process dies holding the batch with the request in it (held by
`log_writer.HOLD_ENV`, killed while it holds: no timing involved). Either way the answer is the
adapter's refusal — 503 (nginx and HAProxy show their error page, Dovecot refuses the login
with `auth_policy_reject_on_fail`, rlm_rest rejects) or Postfix's `DEFER_IF_PERMIT` — never
the allow a device that is allowed would otherwise get, and nothing is logged. Once the log
works again the same request is allowed: the refusal came from the log, not the device."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devicegate.server import DevicegateApp
from devicegate.server.decision_log import FAILING_CLOSED, WRITE_FAILED
from tests.server.conftest import make_app
from tests.server.hold import WriterHold
from tests.server.scenario import ANDROID_CHROME, OPS, policy_text, write_scenario
from tests.server.wire import (
    Ports,
    dovecot,
    login,
    postfix_answers,
    postfix_request,
    read_responses,
    request,
    serving_all,
)

pytestmark = [pytest.mark.integration]

THUNDERBIRD_ID = '"name" "Thunderbird" "version" "115.5.0"'  # allowed on email
OTHER_MAC = "00:e0:4c:12:34:56"  # Realtek: says nothing, allowed on Wi-Fi


class Breaker:
    """Makes the decision log fail one way (`commit` or `writer`) and heals it."""

    def __init__(self, kind: str, app: DevicegateApp, hold: WriterHold) -> None:
        self.kind = kind
        self.app = app
        self.hold = hold
        database = app.service.store.engine.url.database
        assert database is not None
        self.database = database

    def _rename(self, old: str, new: str) -> None:
        with sqlite3.connect(self.database) as other:
            other.execute(f"ALTER TABLE {old} RENAME TO {new}")

    def arm(self) -> None:
        """Before the request: the next commit will fail, or the writer will hold it."""
        if self.kind == "commit":
            self._rename("decisions", "decisions_gone")
        else:
            self.hold.engage()

    def strike(self) -> None:
        """After the request was sent: (`writer`) kill the writer once it holds the batch."""
        if self.kind != "writer":
            return
        _, records = self.hold.wait()
        assert records >= 1, "the held batch has no record of the request"
        proc = self.app.service.log._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        self.hold.release()  # the writer started for the next batch commits

    def heal(self) -> None:
        if self.kind == "commit":
            self._rename("decisions_gone", "decisions")


@pytest.fixture
def mail_scenario(tmp_path: Path) -> tuple[Path, Path]:
    """The scenario with Apple blocked on web, email and Wi-Fi (Android, Thunderbird and
    other MACs allowed: a failure that let them through would answer an allow)."""
    policy, directory = write_scenario(tmp_path / "scenario")
    text = policy_text().replace(
        "  email: {description: ActiveSync}\n",
        "  email: {description: ActiveSync}\n  wifi: {description: office Wi-Fi}\n",
    )
    policy.write_text(text.replace("resources: [web]", "resources: [web, email, wifi]", 1))
    return policy, directory


@pytest.fixture(params=["commit", "writer"])
def served(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    mail_scenario: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[DevicegateApp, Ports, Breaker]]:
    hold = WriterHold(tmp_path / "hold")
    for name, value in hold.env().items():
        monkeypatch.setenv(name, value)  # the writer process inherits it
    app = make_app(tmp_path, *mail_scenario)
    with serving_all(app, postfix=True) as ports:
        breaker = Breaker(request.param, app, hold)
        try:
            yield app, ports, breaker
        finally:
            hold.release()


def counting_prepare(app: DevicegateApp, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the decisions made (`ServerService.prepare`): a replay makes none."""
    calls: list[int] = []
    prepare = app.service.prepare

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(app.service, "prepare", counted)
    return calls


def http(port: int, payload: bytes, during: Callable[[], None] = lambda: None) -> bytes:
    """One request on a new connection; `during` runs after it was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(payload)
        during()
        return read_responses(sock, 1)[0]


def smtp(port: int, payload: bytes, during: Callable[[], None] = lambda: None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(payload)
        during()
        return postfix_answers(sock, 1)[0]


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def refused_http(answer: bytes) -> None:
    """The one 503 of every HTTP path: JSON, the reason and the hint, and no verdict."""
    assert status(answer) == 503, answer[:200]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\ncontent-type: application/json\r\n" in head.lower() + b"\r\n", head
    assert b"x-devicegate-action" not in head.lower()
    assert json.loads(body) == {"error": WRITE_FAILED, "hint": FAILING_CLOSED}


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: devicegate\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def failing(breaker: Breaker, send: Callable[[Callable[[], None]], bytes]) -> bytes:
    """The answer to a request sent while the log fails; the log healed afterwards."""
    breaker.arm()
    try:
        return send(breaker.strike)
    finally:
        breaker.heal()


def test_forward_auth_fails_closed_first_and_replayed(
    served: tuple[DevicegateApp, Ports, Breaker], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, ports, breaker = served
    get = request(agent=ANDROID_CHROME)
    decided = counting_prepare(app, monkeypatch)
    logged = app.service.store.count("decisions")
    # the first request: parsed, decided and awaited in `ForwardAuth.answer`
    refused_http(failing(breaker, lambda during: http(ports.http, get, during)))
    assert len(decided) == 1 and app.service.store.count("decisions") == logged
    assert status(http(ports.http, get)) == 200  # decided again, logged, and kept
    # replayed by the HTTP protocol from the kept answer (`protocol._Replayed.finish`)
    before = app.forward_auth.replayed
    refused_http(failing(breaker, lambda during: http(ports.http, get, during)))
    assert app.forward_auth.replayed == before + 1 and len(decided) == 2
    # replayed through ASGI (a POST is not the protocol's to take: `ForwardAuth.__call__`)
    head = get.replace(b"GET ", b"POST ", 1)[:-2] + b"Content-Length: 0\r\n\r\n"
    refused_http(failing(breaker, lambda during: http(ports.http, head, during)))
    assert app.forward_auth.replayed == before + 1 and len(decided) == 2
    assert status(http(ports.http, head)) == 200


def test_dovecot_fails_closed_first_and_replayed(
    served: tuple[DevicegateApp, Ports, Breaker], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, ports, breaker = served
    decided = counting_prepare(app, monkeypatch)
    logged = app.service.store.count("decisions")
    # the first login: decided in `DovecotPolicy.__call__`, never `{"status": 0}` unlogged
    first = failing(
        breaker, lambda during: http(ports.http, dovecot(login("s1", THUNDERBIRD_ID)), during)
    )
    refused_http(first)
    assert b'"status": 0' not in first
    assert len(decided) == 1 and app.service.store.count("decisions") == logged
    allowed = http(ports.http, dovecot(login("s2", THUNDERBIRD_ID)))
    assert status(allowed) == 200 and b'"status": 0' in allowed
    # replayed by the HTTP protocol (another session of the same login and client)
    before = app.dovecot.replayed
    again = dovecot(login("s3", THUNDERBIRD_ID))
    refused_http(failing(breaker, lambda during: http(ports.http, again, during)))
    assert app.dovecot.replayed > before and len(decided) == 1
    # replayed through ASGI (a chunked body is not the protocol's to collect)
    chunked = dovecot(login("s4", THUNDERBIRD_ID), extra="Transfer-Encoding: chunked\r\n")
    replayed = app.dovecot.replayed
    refused_http(failing(breaker, lambda during: http(ports.http, chunked, during)))
    assert app.dovecot.replayed == replayed and len(decided) == 1
    assert b'"status": 0' in http(ports.http, chunked)


def test_postfix_fails_closed_first_and_replayed(
    served: tuple[DevicegateApp, Ports, Breaker], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, ports, breaker = served
    assert ports.postfix is not None
    ports.postfix_server.sighting_ttl = 600.0  # replays must outlast a slow machine
    decided = counting_prepare(app, monkeypatch)
    submit = postfix_request(OPS)
    deferred = failing(breaker, lambda during: smtp(ports.postfix, submit, during))
    assert deferred.startswith(b"action=DEFER_IF_PERMIT 4.3.0"), deferred
    assert len(decided) == 1
    # the answer was kept when it was decided: replayed (and logged) now the log works
    assert smtp(ports.postfix, submit) == b"action=DUNNO\n\n"
    assert len(decided) == 1
    # replayed again (within the sighting TTL) while the log fails: deferred all the same
    deferred = failing(breaker, lambda during: smtp(ports.postfix, submit, during))
    assert deferred.startswith(b"action=DEFER_IF_PERMIT 4.3.0"), deferred
    assert len(decided) == 1, "the submission was not replayed"


def test_radius_and_decide_fail_closed(served: tuple[DevicegateApp, Ports, Breaker]) -> None:
    """RADIUS and `/v1/decide` decide every request (no replay): each one fails closed."""
    app, ports, breaker = served
    attributes = {
        "User-Name": {"type": "string", "value": [OPS]},
        "Calling-Station-Id": {"type": "string", "value": [OTHER_MAC]},
        "NAS-Port-Type": {"type": "integer", "value": ["Wireless-802.11"]},
    }
    radius = post("/v1/radius/authorize", json.dumps(attributes).encode())
    decide = post(
        "/v1/decide",
        json.dumps(
            {"user": OPS, "resource": "web", "signals": {"user_agent": ANDROID_CHROME}}
        ).encode(),
    )
    logged = app.service.store.count("decisions")
    for payload in (radius, radius, decide, decide):
        refused_http(failing(breaker, lambda during, p=payload: http(ports.http, p, during)))
    assert app.service.store.count("decisions") == logged
    assert status(http(ports.http, radius)) == 200
    decided = http(ports.http, decide)
    assert status(decided) == 200 and b'"action": "allow"' in decided.replace(b'":"', b'": "')
