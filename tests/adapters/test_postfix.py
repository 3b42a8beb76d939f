"""The Postfix policy service over real TCP on 127.0.0.1, with the in-process service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devicegate.adapters import dovecot, postfix
from devicegate.adapters.base import LocalService, Sighting
from devicegate.model import Signals
from tests.mail.conftest import BANNED, IOS_MAIL, THUNDERBIRD
from tests.mail.fakes import FakeTransport


def request(user: str | None = BANNED, **extra: str) -> bytes:
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "198.51.100.7",
        "sender": BANNED,
        "recipient": "someone@example.org",
        **extra,
    }
    if user is not None:
        attrs["sasl_username"] = user
    return "".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n"


def seen(service: LocalService, user: str, imap_id: str, ago: timedelta) -> None:
    signals = Signals(imap_id=imap_id)
    profile = service.snapshot.identifier.profile(signals)
    at = datetime.now(UTC) - ago
    name = service.snapshot.canonical_user(user).lower()
    service.sightings.setdefault(name, []).append(Sighting(at, "dovecot", signals, profile))


async def ask(port: int, *payloads: bytes) -> list[bytes]:
    """Send requests on one connection; read one answer per request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    for payload in payloads:
        writer.write(payload)
        await writer.drain()
        answers.append(await asyncio.wait_for(reader.readuntil(b"\n\n"), 5))
    writer.close()
    await writer.wait_closed()
    return answers


def with_server(
    service: LocalService, talk: Callable[[int], Awaitable[list[bytes]]], **settings: Any
) -> list[bytes]:
    """Start the policy service on a free port, run `talk(port)`, always close it."""

    async def main() -> list[bytes]:
        srv = postfix.PostfixPolicyServer(
            service, "127.0.0.1", 0, window=timedelta(days=2), **settings
        )
        await srv.start()
        try:
            return await talk(srv.port)
        finally:
            await srv.close()

    return asyncio.run(main())


def test_unauthenticated_mail_is_not_devicegates_business(service: LocalService) -> None:
    assert with_server(service, lambda port: ask(port, request(None))) == [b"action=DUNNO\n\n"]
    assert service.log == []


def test_submission_is_refused_while_any_recent_device_is_banned(service: LocalService) -> None:
    """`--postfix-match any` (the default): the banned phone seen an hour ago keeps SMTP
    refused although a permitted client was seen since; the refusal names the phone."""
    seen(service, BANNED, IOS_MAIL, timedelta(hours=5))
    seen(service, BANNED, THUNDERBIRD, timedelta(hours=1))
    (answer,) = with_server(service, lambda port: ask(port, request()))
    assert answer.startswith(b"action=REJECT 5.7.1 Apple devices may no longer be used")
    assert b"(Apple iOS" in answer and b"seen via dovecot" in answer
    # no new sighting from SMTP: it carries no device data
    assert len(service.sightings["m.sokolova"]) == 2
    assert service.log[-1][0] == "postfix"


def submission(
    service: LocalService, *, match: str = "any", window: timedelta = timedelta(days=2)
) -> tuple[str, Sighting | None]:
    """The answer the policy server gives BANNED's submission, and the sighting it chose."""
    server = postfix.PostfixPolicyServer(
        service, "127.0.0.1", 0, match=match, window=window, sighting_ttl=0
    )
    sightings = service.recent_sightings(BANNED, window=window)
    _, sighting = postfix.choose(service, BANNED, sightings, match=match)
    ask = postfix.PolicyRequest("smtpd_access_policy", BANNED, "198.51.100.7", "RCPT")
    return server.answer(ask), sighting


def test_newest_match_decides_from_the_newest_sighting(service: LocalService) -> None:
    seen(service, BANNED, IOS_MAIL, timedelta(hours=5))
    seen(service, BANNED, THUNDERBIRD, timedelta(hours=1))
    action, sighting = submission(service, match="newest")
    assert sighting is not None and sighting.signals.imap_id == THUNDERBIRD
    assert action == "DUNNO"
    seen(service, BANNED, IOS_MAIL, timedelta(minutes=1))
    action, _ = submission(service, match="newest")
    assert action.startswith("REJECT")


def test_decision_names_the_sighting_used(service: LocalService) -> None:
    seen(service, BANNED, IOS_MAIL, timedelta(hours=1))
    action, sighting = submission(service, window=timedelta(days=1))
    assert sighting is not None and sighting.signals.imap_id == IOS_MAIL
    reason = postfix.describe_sighting(sighting, BANNED, timedelta(days=1))
    assert reason.startswith("smtp carries no device data: decided from the dovecot")
    assert "Apple iOS" in reason and "(Apple iOS" in action


def test_sightings_outside_the_window_are_ignored(service: LocalService) -> None:
    seen(service, BANNED, IOS_MAIL, timedelta(days=3))
    action, sighting = submission(service, window=timedelta(days=2))
    assert sighting is None and action == "DUNNO"
    reason = postfix.describe_sighting(None, BANNED, timedelta(days=2))
    assert "seen on no identified device within 2 days" in reason
    (answer,) = with_server(service, lambda port: ask(port, request()))
    assert answer == b"action=DUNNO\n\n"


def test_connection_is_reused_for_many_requests(service: LocalService) -> None:
    seen(service, BANNED, IOS_MAIL, timedelta(hours=1))
    payloads = [request(), request(None), request("k.belov@rostec.example")] * 5
    answers = with_server(service, lambda port: ask(port, *payloads))
    assert len(answers) == 15
    assert answers[0].startswith(b"action=REJECT") and answers[1] == b"action=DUNNO\n\n"
    # k.belov was never seen: rostec/cii's allow-list blocks the unidentified
    assert answers[2].startswith(b"action=REJECT 5.7.1 From 1 January 2025")


def test_quarantine_holds_the_message() -> None:
    from devicegate.model import Action, Decision, DeviceProfile

    quarantine = Decision(Action.QUARANTINE, "r", "held for\nreview", (), DeviceProfile(), "v")
    assert postfix.render(quarantine) == "HOLD held for review"
    warn = Decision(Action.WARN, "r", "from Monday", (), DeviceProfile(), "v")
    assert postfix.render(warn) == "PREPEND X-Devicegate-Warning: from Monday"


async def _raw(port: int, payload: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)  # the server closes after a bad request
    writer.close()
    return [data]


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"request=smtpd_access_policy\nno equals sign\n\n",
        b"sasl_username=a\n\n",
        b"request=smtpd_access_policy\n" + b"x=" + b"y" * 70_000 + b"\n\n",
        b"request=smtpd_access_policy\n" + b"x=" + b"y" * 5_000 + b"\n\n",
        b"request=smtpd_access_policy\n" + b"x=y\n" * 20_000 + b"\n",
    ],
)
def test_garbage_is_deferred_and_the_connection_closed(
    service: LocalService, payload: bytes
) -> None:
    (answer,) = with_server(service, lambda port: _raw(port, payload))
    assert answer == f"action={postfix.MALFORMED}\n\n".encode()
    assert service.log == []


def test_truncated_request_is_dropped_unanswered(service: LocalService) -> None:
    (answer,) = with_server(service, lambda port: _raw_eof(port, request()[:-10]))
    assert answer == b""
    assert service.log == []


async def _raw_eof(port: int, payload: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return [data]


def test_sightings_are_cached_for_a_few_seconds(service: LocalService) -> None:
    server = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, sighting_ttl=60, match="newest")
    ask_once = postfix.PolicyRequest("smtpd_access_policy", BANNED, "198.51.100.7", "RCPT")
    seen(service, BANNED, IOS_MAIL, timedelta(minutes=5))
    assert server.answer(ask_once).startswith("REJECT")
    seen(service, BANNED, THUNDERBIRD, timedelta(minutes=1))
    assert server.answer(ask_once).startswith("REJECT")  # still the cached sighting
    server.sighting_ttl = 0
    assert server.answer(ask_once) == "DUNNO"


def test_a_new_sighting_is_used_at_once_despite_the_cache(service: LocalService) -> None:
    """The cache saves store reads between sightings; a new sighting is used at once."""
    server = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, sighting_ttl=60)
    ask_once = postfix.PolicyRequest("smtpd_access_policy", BANNED, "198.51.100.7", "RCPT")
    assert server.answer(ask_once) == "DUNNO"  # seen nowhere yet
    service.decide(BANNED, "email", Signals(imap_id=IOS_MAIL), adapter=dovecot.ADAPTER)
    assert server.answer(ask_once).startswith("REJECT")


def test_pipelined_requests_in_one_segment(service: LocalService) -> None:
    seen(service, BANNED, IOS_MAIL, timedelta(hours=1))

    async def talk(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\n" + request() + request(None) + request())
        answers = [await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) for _ in range(3)]
        writer.close()
        return answers

    answers = with_server(service, talk)
    assert [a.split(b" ")[0] for a in answers] == [
        b"action=REJECT",
        b"action=DUNNO\n\n",
        b"action=REJECT",
    ]


def test_answers_wait_for_the_decision_log(service: LocalService) -> None:
    """A decided request is answered once the log has it; a verdict that arrives later still
    leaves in request order; a failed log turns the answer into a deferral."""
    seen(service, BANNED, IOS_MAIL, timedelta(hours=1))
    calls: list[str] = []

    def durable_ok(done: Callable[[bool], None]) -> bool:
        calls.append("ok")
        return True

    def durable_down(done: Callable[[bool], None]) -> bool:
        asyncio.get_running_loop().call_later(0.05, done, False)  # the commit fails
        return False

    def durable_at_once(done: Callable[[bool], None]) -> bool:
        done(False)  # e.g. the batch has already failed: the callback runs before returning
        return False

    def durable_later(done: Callable[[bool], None]) -> bool:
        asyncio.get_running_loop().call_later(0.05, done, True)
        return False

    cases = (
        (durable_ok, b"action=REJECT"),
        (durable_down, b"action=DEFER_IF"),
        (durable_at_once, b"action=DEFER_IF"),
        (durable_later, b"action=REJECT"),
    )
    for durable, first in cases:

        async def main(durable: postfix.Durable = durable) -> list[bytes]:
            srv = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, durable=durable)
            await srv.start()
            try:
                return await _pipelined(srv.port, request(), request(None), request())
            finally:
                await srv.close()

        answers = asyncio.run(main())
        assert answers[0].startswith(first)
        assert answers[1] == b"action=DUNNO\n\n"  # not decided: nothing to wait for
        assert answers[2] == answers[0]  # and yet it did not overtake the first
    assert calls == ["ok", "ok"]


async def _pipelined(port: int, *payloads: bytes) -> list[bytes]:
    """Send all requests at once on one connection; read one answer per request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(payloads))
    answers = [await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) for _ in payloads]
    writer.close()
    await writer.wait_closed()
    return answers


def test_answers_owed_are_written_after_a_half_close(service: LocalService) -> None:
    """Postfix never half-closes, but `printf … | nc` does: the answer still arrives."""

    def durable_later(done: Callable[[bool], None]) -> bool:
        asyncio.get_running_loop().call_later(0.05, done, True)
        return False

    async def main() -> list[bytes]:
        srv = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, durable=durable_later)
        await srv.start()
        try:
            return await _raw_eof(srv.port, request() + request()[:-10])
        finally:
            await srv.close()

    assert asyncio.run(main()) == [b"action=DUNNO\n\n"]


def test_idle_connections_are_closed(service: LocalService) -> None:
    """A client that connects and goes quiet is closed by the reaper (no timer per read)."""

    async def idle(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = await asyncio.wait_for(reader.read(), 5)  # EOF from the server side
        writer.close()
        return [data]

    assert with_server(service, idle, idle_timeout=0.2) == [b""]


def test_a_request_that_cannot_be_decided_is_deferred(service: LocalService) -> None:
    """The store failing under one request defers it; the connection goes on serving."""
    calls = 0

    def failing_once(user: str, *, window: timedelta) -> list[Sighting]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("store unreachable")
        return []

    service.recent_sightings = failing_once  # type: ignore[method-assign]
    answers = with_server(service, lambda port: ask(port, request(), request()))
    assert answers == [f"action={postfix.FAILED}\n\n".encode(), b"action=DUNNO\n\n"]


def test_a_connection_stops_reading_while_too_much_waits(service: LocalService) -> None:
    """Answers waiting for the log, or a client that does not read them, pause reading;
    reading resumes only when neither holds."""
    late: list[Callable[[bool], None]] = []

    def durable(done: Callable[[bool], None]) -> bool:
        late.append(done)
        return False

    server = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, durable=durable)
    transport = FakeTransport()
    connection = postfix._PolicyConnection(server)
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.data_received(request() * postfix.MAX_WAITING)
    assert not transport.reading and transport.out == []
    connection.pause_writing()  # and the client stops reading its answers
    for done in late[: postfix.MAX_WAITING // 2 + 1]:
        done(True)
    assert not transport.reading  # the queue is short again, but the client still does not read
    connection.resume_writing()
    assert transport.reading
    for done in late[postfix.MAX_WAITING // 2 + 1 :]:
        done(True)
    assert len(transport.out) == postfix.MAX_WAITING and transport.reading


def test_the_server_listens_where_it_is_told_and_stops_listening_on_close(
    service: LocalService,
) -> None:
    from tests.server.procs import free_port

    chosen = free_port()

    async def main() -> tuple[str, int, int, bool]:
        srv = postfix.PostfixPolicyServer(service, "127.0.0.1", chosen)
        await srv.start()
        assert srv._server is not None
        host = srv._server.sockets[0].getsockname()[0]
        port = srv.port
        answered = len(await ask(port, request(None)))
        await srv.close()
        try:
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
        except (ConnectionRefusedError, OSError):
            refused = True
        else:
            refused = False
        return host, port, answered, refused

    assert asyncio.run(main()) == ("127.0.0.1", chosen, 1, True)


def test_the_reaper_keeps_live_connections_and_closes_stalled_requests(
    service: LocalService,
) -> None:
    """Limits of 5 s (idle) and 1.5 s (to finish a request): a connection quiet for 2.5 s is
    kept, a request left half-sent for 3 s is cut. The margins are whole seconds: the test
    tells a reaper that closes everything, or nothing, from the right one."""

    async def main() -> tuple[list[bytes], bytes]:
        srv = postfix.PostfixPolicyServer(
            service, "127.0.0.1", 0, idle_timeout=5.0, request_timeout=1.5
        )
        await srv.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            await asyncio.sleep(2.5)  # quiet, but not for idle_timeout
            writer.write(request(None))
            kept = [await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)]
            writer.write(request(None)[:20])  # half a request, then nothing
            await asyncio.sleep(3.0)
            # b"": cut by the reaper (before the 5 s idle limit would close it anyway)
            cut = await asyncio.wait_for(reader.read(), 1.0)
            writer.close()
            return kept, cut
        finally:
            await srv.close()

    kept, cut = asyncio.run(main())
    assert kept == [b"action=DUNNO\n\n"] and cut == b""


def test_among_equally_severe_sightings_the_newest_is_named(service: LocalService) -> None:
    """`any`: two devices both refused; the refusal names the newest of them."""
    from tests.mail.test_adapters_golden import IPHONE_UA

    seen(service, BANNED, IOS_MAIL, timedelta(hours=2))
    web = Signals(user_agent=IPHONE_UA)
    at = datetime.now(UTC) - timedelta(hours=1)
    sighting = Sighting(at, "forward-auth", web, service.snapshot.identifier.profile(web))
    service.sightings["m.sokolova"].append(sighting)
    sightings = service.recent_sightings(BANNED, window=timedelta(days=1))
    decision, chosen = postfix.choose(service, BANNED, sightings)
    assert [s.adapter for s in sightings] == ["forward-auth", "dovecot"]
    assert decision.action.value == "block" and chosen is sighting
    action, _ = submission(service)
    assert action.startswith("REJECT") and "seen via forward-auth" in action


class _Clock:
    """`postfix.time` for a test: a monotonic clock it sets, and the wall clock as it is
    unless it sets `wall`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall: float | None = None

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        import time

        return time.time() if self.wall is None else self.wall


def test_the_sighting_cache_keeps_each_user_for_its_ttl_and_no_longer(
    service: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reused for `sighting_ttl` seconds (and not at the instant it ends), also below one
    second; kept per user, case-insensitively but never shared by two users whose names
    only fold alike in upper case (`straße`, `strasse`); with 0 nothing is kept."""
    clock = _Clock()
    monkeypatch.setattr(postfix, "time", clock)
    asked: list[str] = []

    def recent(user: str, *, window: timedelta) -> list[Sighting]:
        asked.append(user)
        return [user]  # type: ignore[list-item]  # a marker: whose sightings these are

    service.recent_sightings = recent  # type: ignore[method-assign]
    server = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, sighting_ttl=5)
    assert server._recent_sightings("strasse@x") == ["strasse@x"]
    clock.now += 4.9
    assert server._recent_sightings("Strasse@X") == ["strasse@x"]  # cached, one user
    assert server._recent_sightings("straße@x") == ["straße@x"]  # another user
    assert asked == ["strasse@x", "straße@x"]
    clock.now += 0.1  # exactly 5 s after the first: no longer fresh
    assert server._recent_sightings("strasse@x") == ["strasse@x"]
    assert asked == ["strasse@x", "straße@x", "strasse@x"]

    short = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, sighting_ttl=0.5)
    asked.clear()
    short._recent_sightings("bob")
    clock.now += 0.4
    short._recent_sightings("bob")
    assert asked == ["bob"]

    off = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, sighting_ttl=0)
    asked.clear()
    off._recent_sightings("bob")
    off._recent_sightings("bob")
    assert asked == ["bob", "bob"] and len(off._recent) == 0


class _Stop(Exception):
    pass


def _reap_once(server: postfix.PostfixPolicyServer, monkeypatch: pytest.MonkeyPatch) -> float:
    """Run one round of the reaper (no event loop: its sleep returns at once, then stops it);
    the period it slept."""
    from types import SimpleNamespace

    periods: list[float] = []

    async def sleep(seconds: float) -> None:
        periods.append(seconds)
        if len(periods) > 1:
            raise _Stop

    monkeypatch.setattr(postfix, "asyncio", SimpleNamespace(sleep=sleep))
    with pytest.raises(_Stop):
        server._reap_idle().send(None)
    assert periods[0] == periods[1]
    return periods[0]


def test_the_reaper_closes_exactly_the_idle_and_the_stalled(
    service: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic, one round: idle past `idle_timeout` or a request begun more than
    `request_timeout` ago is closed (at the limit itself, not yet); a connection whose
    answers wait for the decision log is kept and does not stop the round; it wakes every
    fifth of the shorter limit (at least every 50 ms)."""
    clock = _Clock()
    monkeypatch.setattr(postfix, "time", clock)
    server = postfix.PostfixPolicyServer(
        service, "127.0.0.1", 0, idle_timeout=100.0, request_timeout=50.0
    )
    transports = [FakeTransport() for _ in range(7)]
    for transport in transports:
        postfix._PolicyConnection(server).connection_made(transport)  # type: ignore[arg-type]
    order = list(server._open)  # the reaper's order: the waiting one first
    waiting, idle, live, at_idle, stalled, fresh, at_partial = order
    now = clock.now
    waiting.last = now - 1000
    waiting.waiting.append(postfix._Answer(waiting, "DUNNO", False))
    idle.last = now - 200
    live.last = now - 50
    at_idle.last = now - 100
    stalled.last, stalled.started = now, now - 100
    fresh.last, fresh.started = now, now - 10
    at_partial.last, at_partial.started = now, now - 50
    assert _reap_once(server, monkeypatch) == 10.0
    closed = [c.transport.closed for c in order]  # type: ignore[union-attr]
    assert closed == [False, True, False, False, True, False, False]
    for idle_timeout, request_timeout, period in ((0.1, 10.0, 0.05), (1.0, 10.0, 0.2)):
        server.idle_timeout, server.request_timeout = idle_timeout, request_timeout
        server._open.clear()
        assert _reap_once(server, monkeypatch) == period


def test_close_twice_is_harmless_and_leaves_no_task(service: LocalService) -> None:
    async def main() -> tuple[bool, int]:
        srv = postfix.PostfixPolicyServer(service, "127.0.0.1", 0)
        await srv.close()  # never started
        await srv.start()
        reaper = srv._reaper
        await srv.close()
        await srv.close()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        return reaper is not None and reaper.cancelled(), len(others)

    assert asyncio.run(main()) == (True, 0)


def test_eof_drops_the_partial_request(service: LocalService) -> None:
    server = postfix.PostfixPolicyServer(service, "127.0.0.1", 0)
    transport = FakeTransport()
    connection = postfix._PolicyConnection(server)
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.data_received(request()[:-10])
    assert connection.buffer
    assert connection.eof_received() is False  # nothing owed: the transport may close
    assert connection.buffer == b"" and connection.closing and transport.out == []


def test_a_kept_answer_is_replayed_until_its_ttl_or_a_new_sighting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a replaying service the answer is kept for `sighting_ttl` seconds (not at the
    instant it ends), is not used once the user was seen again, and what is replayed is the
    decision that was prepared for it."""
    from tests.mail.test_adapters_golden import ReplayingLocal, snapshot

    made: list[object] = []

    class Checked(ReplayingLocal):
        def prepare(self, *args: Any, **kwargs: Any) -> tuple[Any, object]:
            prepared = super().prepare(*args, **kwargs)
            made.append(prepared[0])
            return prepared

        def replay_if_valid(self, prepared: Any, now: float) -> object | None:
            assert any(prepared is one for one in made), "not what was prepared"
            return super().replay_if_valid(prepared, now)

    clock = _Clock()
    clock.wall = 2_000_000_000.0
    monkeypatch.setattr(postfix, "time", clock)
    local = Checked(snapshot())
    seen(local, BANNED, IOS_MAIL, timedelta(hours=1))
    server = postfix.PostfixPolicyServer(local, "127.0.0.1", 0, sighting_ttl=5)
    ask_once = postfix.PolicyRequest("smtpd_access_policy", BANNED, "198.51.100.7", "RCPT")
    steps = []
    for advance in (0.0, 4.5, 0.5, 1.0):  # 5 s after the first answer: decided anew
        clock.wall += advance
        clock.now += advance
        assert server.answer(ask_once).startswith("REJECT")
        steps.append((len(local.prepared), local.replays))
    assert steps == [(1, 0), (1, 1), (2, 1), (2, 2)]
    assert server.seen_since(BANNED, clock.wall) is False
    # a sighting recorded after the kept answer was made
    name = local.snapshot.canonical_user(BANNED).lower()
    later = datetime.fromtimestamp(clock.wall + 1, UTC)
    profile = local.snapshot.identifier.profile(Signals(imap_id=IOS_MAIL))
    local.sightings[name].append(Sighting(later, "dovecot", Signals(imap_id=IOS_MAIL), profile))
    server.answer(ask_once)
    assert (len(local.prepared), local.replays) == (3, 2)


def test_the_refusal_names_the_sighting_time_in_utc_whatever_the_zone(
    service: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    seen(service, BANNED, IOS_MAIL, timedelta(hours=1))
    (sighting,) = service.recent_sightings(BANNED, window=timedelta(days=1))
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        action, _ = submission(service)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert f"seen via dovecot {sighting.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in action


def test_an_unknown_match_is_refused_by_name(service: LocalService) -> None:
    with pytest.raises(ValueError, match=r"^unknown match `oldest`: any or newest$"):
        postfix.PostfixPolicyServer(service, "127.0.0.1", 0, match="oldest")


def test_a_submission_is_decided_for_email_on_no_signals_of_its_own() -> None:
    from devicegate.adapters.base import DecisionRequest

    ask_once = postfix.PolicyRequest("smtpd_access_policy", BANNED, None, None)
    assert ask_once.decision_request() == DecisionRequest(BANNED, "email", Signals())
    assert postfix.PolicyRequest("smtpd_access_policy", None, None, None).decision_request() is None


def test_a_failed_decision_is_logged_with_its_cause(
    service: LocalService, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(user: str, *, window: timedelta) -> list[Sighting]:
        raise OSError("store unreachable")

    service.recent_sightings = failing  # type: ignore[method-assign]
    server = postfix.PostfixPolicyServer(service, "127.0.0.1", 0, sighting_ttl=0)
    transport = FakeTransport()
    connection = postfix._PolicyConnection(server)
    connection.connection_made(transport)  # type: ignore[arg-type]
    with caplog.at_level("ERROR", logger="devicegate.adapters.postfix"):
        connection.data_received(request())
    assert transport.out == [f"action={postfix.FAILED}\n\n".encode()]
    (record,) = caplog.records
    assert record.getMessage() == "postfix: deciding a policy request failed"
    assert record.exc_info is not None and "store unreachable" in str(record.exc_info[1])


def test_the_answers_are_kept_in_the_cache_the_service_offers(service: LocalService) -> None:
    """`serve`'s service empties its answer caches on a reload (a kept answer holds its
    snapshot alive): the policy server must keep its answers in the one the service makes."""
    made: list[Any] = []

    class Offering(LocalService):
        def answer_cache(self, size: int) -> Any:
            from devicegate.boundedcache import BoundedCache

            made.append(BoundedCache(size))
            return made[-1]

    offering = Offering(service.snapshot)
    server = postfix.PostfixPolicyServer(offering, "127.0.0.1", 0, replay_cache=7)
    assert made and server.answers is made[0] and made[0].size == 7
