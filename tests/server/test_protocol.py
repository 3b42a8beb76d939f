"""The HTTP protocol's own fast path (`server/protocol.py`) answers replayed forward-auth
requests byte for byte as the ASGI path does, in order on a connection, and fails closed
when the decision cannot be logged. Every test runs a real uvicorn server on 127.0.0.1 with
the configuration `devicegate serve` uses, and speaks raw HTTP/1.1 to it."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicegate.server import DevicegateApp
from tests.server.conftest import make_app
from tests.server.scenario import ANDROID_CHROME, IPHONE_SAFARI, WINDOWS_EDGE
from tests.server.wire import (
    dovecot,
    exchange,
    login,
    one_by_one,
    read_responses,
    request,
    serving,
)


@pytest.fixture
def app(tmp_path: Path, scenario: tuple[Path, Path]) -> DevicegateApp:
    return make_app(tmp_path, *scenario)


AGENTS = (ANDROID_CHROME, IPHONE_SAFARI, WINDOWS_EDGE)  # allow, block, warn


def test_replayed_answers_are_the_asgi_answers_byte_for_byte(app: DevicegateApp) -> None:
    replayed = {}
    with serving(app) as port:
        for agent in AGENTS:
            before = app.forward_auth.replayed
            first, replayed[agent] = one_by_one(port, request(agent=agent), request(agent=agent))
            assert app.forward_auth.replayed == before + 1  # the second, not the first
            assert first == replayed[agent]
    assert app.service.store.count("decisions") == 6  # every replay is logged
    with serving(app, protocol=False) as port:  # what uvicorn's own `send` writes
        stock = {agent: exchange(port, request(agent=agent), 1)[0] for agent in AGENTS}
    assert stock == replayed
    assert [a.split(b"\r\n", 1)[0] for a in stock.values()] == [
        b"HTTP/1.1 200 OK", b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 200 OK"
    ]  # fmt: skip


def test_pipelined_requests_are_answered_in_order(app: DevicegateApp) -> None:
    """Replayable and not (a new user agent, a POST) pipelined on one connection: the answers
    come back in request order, whichever path produced them. The first is replayed; the
    others arrive while it waits for its commit, so uvicorn queues them for ASGI."""
    with serving(app) as port:
        exchange(port, request(agent=IPHONE_SAFARI) + request(agent=WINDOWS_EDGE), 2)
        mixed = [
            request(agent=IPHONE_SAFARI),  # replayed: 403
            request(agent=ANDROID_CHROME),  # first time: decided through ASGI, 200
            request(agent=WINDOWS_EDGE),  # replayed: 200 with a warning
            request(agent=IPHONE_SAFARI, method="POST", extra="Content-Length: 0\r\n"),
            request(agent=ANDROID_CHROME),  # replayed now
        ]
        before = app.forward_auth.replayed
        answers = exchange(port, b"".join(mixed), len(mixed))
        assert app.forward_auth.replayed == before + 1
    statuses = [a.split(b"\r\n", 1)[0] for a in answers]
    assert statuses == [b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK",
                        b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 200 OK"]  # fmt: skip
    assert b"x-devicegate-action: warn" in answers[2].lower()


def test_connection_close_and_http10_end_the_connection(app: DevicegateApp) -> None:
    with serving(app) as port:
        exchange(port, request(), 1)
        for payload in (request(extra="Connection: close\r\n"), request(version="1.0")):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                before = app.forward_auth.replayed
                sock.sendall(payload)
                (answer,) = read_responses(sock, 1)
                assert app.forward_auth.replayed == before + 1
                assert b"connection: close" in answer.lower()
                assert sock.recv(100) == b""  # the server closed it


def test_a_replay_whose_record_cannot_be_written_fails_closed(app: DevicegateApp) -> None:
    with serving(app) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request())
            read_responses(sock, 1)
            database = app.service.store.engine.url.database
            assert database is not None
            with sqlite3.connect(database) as other:  # the writer's next INSERT fails
                other.execute("ALTER TABLE decisions RENAME TO decisions_gone")
            before = app.forward_auth.replayed
            sock.sendall(request())
            (answer,) = read_responses(sock, 1)
            assert app.forward_auth.replayed == before + 1
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"decision log" in answer


def test_a_client_gone_before_the_commit_costs_nothing(app: DevicegateApp) -> None:
    with serving(app) as port:
        exchange(port, request(), 1)
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(request())  # and close without reading
        assert exchange(port, request(), 1)[0].startswith(b"HTTP/1.1 200")


def test_other_apps_get_uvicorns_protocol_unchanged() -> None:
    async def hello(scope: dict[str, object], receive: object, send: object) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"content-length", b"2")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    with serving(hello) as port:
        answers = exchange(port, request() * 2, 2)
    assert all(a.startswith(b"HTTP/1.1 200") and a.endswith(b"ok") for a in answers)


IOS_ID = '"name" "iPhone Mail" "os" "iOS" "os-version" "16.2 (20C65)"'
THUNDERBIRD_ID = '"name" "Thunderbird" "version" "115.5.0"'


@pytest.fixture
def mail_app(tmp_path: Path, scenario: tuple[Path, Path]) -> DevicegateApp:
    """The scenario with Apple blocked on email too (IMAP logins of iOS Mail refused)."""
    policy, directory = scenario
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("resources: [web]", "resources: [web, email]", 1), "utf-8")
    return make_app(tmp_path, policy, directory)


def test_dovecot_replays_match_asgi_and_a_new_session_still_replays(
    mail_app: DevicegateApp,
) -> None:
    app = mail_app
    replayed: dict[str, bytes] = {}
    with serving(app) as port:
        for agent_id in (IOS_ID, THUNDERBIRD_ID):
            before = app.dovecot.replayed
            first, again = one_by_one(
                port, dovecot(login("s1", agent_id)), dovecot(login("s2", agent_id))
            )
            assert app.dovecot.replayed == before + 1  # session ids differ: still replayed
            assert first == again
            replayed[agent_id] = again
        not_json = exchange(port, dovecot(b"{not json"), 1)[0]
        chunked = exchange(
            port, dovecot(login("s3", IOS_ID), extra="Transfer-Encoding: chunked\r\n"), 1
        )[0]
    assert app.service.store.count("decisions") == 5  # two pairs and the chunked one
    with serving(app, protocol=False) as port:
        stock = {i: exchange(port, dovecot(login("s4", i)), 1)[0] for i in replayed}
    assert stock == replayed
    assert b'"status": -1' in replayed[IOS_ID] and b'"status": 0' in replayed[THUNDERBIRD_ID]
    assert not_json.startswith(b"HTTP/1.1 200") and b'"status": -1' in not_json
    assert chunked == replayed[IOS_ID]  # through ASGI, same answer


def test_dovecot_requests_pipelined_with_forward_auth_keep_their_order(
    mail_app: DevicegateApp,
) -> None:
    app = mail_app
    with serving(app) as port:
        exchange(port, dovecot(login("a", IOS_ID)), 1)
        answers = exchange(
            port,
            dovecot(login("b", IOS_ID))  # replayed, waits for its commit
            + request(agent=IPHONE_SAFARI)  # then these, through ASGI, in order
            + dovecot(login("c", THUNDERBIRD_ID))
            + dovecot(b"[]"),
            4,
        )
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK",
            b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]  # fmt: skip
    assert [b'"status": 0' in a for a in answers] == [False, False, True, False]


POOL = (
    request(),
    request(agent=IPHONE_SAFARI),
    request(agent=WINDOWS_EDGE),
    request(user="bob@lab.example", agent=IPHONE_SAFARI),
    request(user="nobody@else.example"),
    request(agent=IPHONE_SAFARI, path="/v1/forward-auth/web/deep/page"),
    request(agent=IPHONE_SAFARI, path="/v1/forward-auth/web?x=%41"),
    request(path="/v1/forward-auth/nonexistent"),
    request(method="POST", extra="Content-Length: 0\r\n"),
    b"GET /v1/forward-auth/web HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n",  # no user
    dovecot(login("p1", IOS_ID)),
    dovecot(login("p2", THUNDERBIRD_ID)),
    dovecot(login("p3", IOS_ID), query="?command=report"),
    dovecot(b'{"login": 5}'),
)


def test_any_sequence_is_answered_as_uvicorns_own_protocol_answers_it(
    tmp_path: Path, scenario: tuple[Path, Path]
) -> None:
    """Random sequences from a pool of replayable, first-time and refused requests, pipelined
    or one by one, to devicegate's protocol and to uvicorn's (two apps, same policy): the
    same bytes come back, in the same order."""
    apps = []
    for name in ("fast", "stock"):
        (tmp_path / name).mkdir()
        apps.append(make_app(tmp_path / name, *scenario))
    with serving(apps[0]) as fast, serving(apps[1], protocol=False) as stock:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.sampled_from(POOL), min_size=1, max_size=10), st.booleans())
        def check(requests: list[bytes], pipelined: bool) -> None:
            if pipelined:
                got = [exchange(port, b"".join(requests), len(requests)) for port in (fast, stock)]
            else:
                got = [one_by_one(port, *requests) for port in (fast, stock)]
            assert got[0] == got[1]

        check()
        # whatever the examples were, the fast paths were taken (not only uvicorn's)
        twice = [request(), request(), dovecot(login("p9", IOS_ID)), dovecot(login("p9", IOS_ID))]
        assert len(one_by_one(fast, *twice)) == 4
    assert apps[0].forward_auth.replayed > 0 and apps[0].dovecot.replayed > 0


HEADER_VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)


def test_hostile_requests_on_the_fast_paths_get_an_answer_and_never_a_500(
    app: DevicegateApp,
) -> None:
    """Random header values and paths under the forward-auth prefix, random Dovecot bodies —
    each sent twice, so that the second may be replayed: every one gets a well-formed answer
    below 500 on the same connection, and the server keeps serving."""
    with serving(app) as port:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            st.sampled_from(["web", "email", "web/x/y", "nope", "web?q=1", "web%2Fa", "web#f"]),
            HEADER_VALUE,
            HEADER_VALUE,
            HEADER_VALUE,
            st.binary(max_size=200),
        )
        def check(path: str, user: str, agent: str, uri: str, body: bytes) -> None:
            head = (
                f"GET /v1/forward-auth/{path} HTTP/1.1\r\nHost: x\r\nX-Devicegate-User: {user}"
                f"\r\nUser-Agent: {agent}\r\nX-Original-URI: {uri}\r\n\r\n"
            ).encode("latin-1")
            payloads = [head, head, dovecot(body), dovecot(body)]
            answers = one_by_one(port, *payloads)
            for answer in answers:
                status = int(answer.split(b" ", 2)[1])
                assert 200 <= status < 500, answer[:300]

        check()
        # the server still serves, and the fast path is taken (not only uvicorn's)
        assert exchange(port, request(), 1)[0].startswith(b"HTTP/1.1 200")
        assert exchange(port, request(), 1)[0].startswith(b"HTTP/1.1 200")
    assert app.forward_auth.replayed > 0
