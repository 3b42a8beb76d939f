"""Postfix policy delegation (`check_policy_service inet:HOST:PORT`) for SMTP submission.

The protocol (Postfix SMTPD_POLICY_README): the client sends `name=value` lines ending with
an empty line; the server answers `action=…` and an empty line; Postfix keeps the connection
open and sends the next request on it. devicegate reads `request`, `sasl_username`,
`client_address` and `protocol_state`.

SMTP carries no device data at all, so an authenticated submission is decided from the
device *sightings* of the same user on other adapters (IMAP ID, ActiveSync, web, RADIUS)
within `window` (24 hours by default). With `match="any"` (the default) every distinct
identified device the user was seen on counts, and the most severe of their decisions
stands: a deny rule matches when any identified sighting supports it, an allow-list must be
met by all of them — the conflict rule (docs/semantics.md rule 8) applied to SMTP. So a user
whose banned phone still reaches work services keeps being refused submission until it has
not been seen for `window`. With `match="newest"` only the newest identified sighting counts.
A request that identified no device (an IMAP login with a malformed ID, a VPN login whose
Calling-Station-Id is an address) is no sighting and never hides one that did. The
decision's first reason names the sighting used; without any the request is decided on no
device signals (each rule's `on_unidentified`). Decisions map to actions:

    allow → DUNNO                       warn → PREPEND X-Devicegate-Warning: <message>
    block → REJECT 5.7.1 <message>      quarantine → HOLD <message> (kept for IT review)

Fail modes: an unauthenticated request (no `sasl_username`) is not devicegate's business and
gets DUNNO. A malformed request (a line without `=`, no `request=smtpd_access_policy`, a line
over `MAX_LINE` or a request over `MAX_REQUEST` octets) gets `DEFER_IF_PERMIT` and the
connection is closed, since the stream cannot be trusted to resynchronise; a request cut
off by EOF is dropped unanswered. If devicegate is down, Postfix itself answers
`451 4.3.5 Server configuration problem` (a deferral, never an accept). A peer that is not a
trusted proxy (`serve --trusted-proxy`) is disconnected at once; a connection idle for
`idle_timeout`, or that takes longer than `request_timeout` to finish a request it began, is
closed, and connections beyond `max_connections` are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from devicegate.adapters.base import (
    Adapter,
    DecisionRequest,
    DecisionService,
    Replayable,
    ReplayingService,
    Sighting,
)
from devicegate.boundedcache import BoundedCache
from devicegate.defaults import POSTFIX_MATCH, POSTFIX_MATCHES, POSTFIX_WINDOW, REPLAY_CACHE
from devicegate.errors import SignalError
from devicegate.model import SEVERITY, Action, Decision, Signals
from devicegate.policy.schema import parse_duration

log = logging.getLogger("devicegate.adapters.postfix")

#: SMTP carries no device data: a submission is decided from earlier sightings and is never
#: recorded as one itself.
ADAPTER = Adapter("postfix", carries_device_data=False)
RESOURCE = "email"
DEFAULT_WINDOW = parse_duration(POSTFIX_WINDOW)
MAX_LINE = 4096
MAX_REQUEST = 64 * 1024
MAX_ATTRIBUTES = 200
MAX_MESSAGE = 300
#: Seconds a user's sightings are reused: a message to many recipients asks once per
#: recipient, and a sighting a few seconds old decides the same. 0 disables the cache.
SIGHTING_TTL = 5.0
MAX_CACHED_USERS = 100_000
IDLE_TIMEOUT = 300.0  # seconds; Postfix closes its idle policy connections after 300 s
REQUEST_TIMEOUT = 10.0  # seconds to finish a request once its first byte arrived
MAX_CONNECTIONS = 1024
MAX_WAITING = 256  # answers waiting for the decision log before a connection stops reading
MALFORMED = "DEFER_IF_PERMIT 4.7.1 devicegate: malformed policy request"
UNAVAILABLE = "DEFER_IF_PERMIT 4.3.0 devicegate: decision log unavailable"
FAILED = "DEFER_IF_PERMIT 4.3.0 devicegate: the request could not be decided"


#: a submission's own signals: none (Signals are immutable, so one serves every request)
NO_SIGNALS = Signals()


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """The attributes of one Postfix policy request devicegate uses."""

    request: str
    sasl_username: str | None
    client_address: str | None
    protocol_state: str | None

    def decision_request(self) -> DecisionRequest | None:
        """The submission to decide — with no signals of its own (they come from the user's
        sightings) — or None for unauthenticated mail, which is not devicegate's business."""
        if self.sasl_username is None:
            return None
        return DecisionRequest(self.sasl_username, RESOURCE, NO_SIGNALS)


def parse_request(lines: list[bytes]) -> PolicyRequest:
    """Attribute lines (without the final empty line) → PolicyRequest; SignalError if malformed.

    Works on bytes and decodes only the attributes devicegate reads (UTF-8, invalid bytes
    replaced): a submission carries a dozen attributes, and decoding each was a measurable
    part of the per-request cost."""
    if len(lines) > MAX_ATTRIBUTES:
        raise SignalError(f"postfix policy request has more than {MAX_ATTRIBUTES} attributes")
    attrs: dict[bytes, bytes] = {}
    for raw in lines:
        name, sep, value = raw.partition(b"=")
        if not sep or not name:
            raise SignalError("postfix policy request has a line without `name=value`")
        attrs.setdefault(name.strip().lower(), value)
    if _value(attrs, b"request") != "smtpd_access_policy":
        raise SignalError("postfix policy request is not `request=smtpd_access_policy`")
    return PolicyRequest(
        request="smtpd_access_policy",
        sasl_username=_value(attrs, b"sasl_username").strip() or None,
        client_address=_value(attrs, b"client_address") or None,
        protocol_state=_value(attrs, b"protocol_state") or None,
    )


def _value(attrs: dict[bytes, bytes], name: bytes) -> str:
    raw = attrs.get(name)
    return "" if raw is None else raw.rstrip(b"\r\n").decode("utf-8", errors="replace")


def _one_line(text: str) -> str:
    clean = " ".join(text.split())
    return clean[:MAX_MESSAGE]


def _span(window: timedelta) -> str:
    """`24 hours`, `7 days`, `90 minutes`: a window as an operator wrote it."""
    seconds = int(window.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def describe_sighting(sighting: Sighting | None, user: str, window: timedelta) -> str:
    """The reason naming the sighting an SMTP decision was made from."""
    if sighting is None:
        return (
            f"smtp carries no device data and `{user}` was seen on no identified device "
            f"within {_span(window)}: decided on no device signals"
        )
    return (
        f"smtp carries no device data: decided from the {sighting.adapter} sighting of "
        f"{sighting.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({sighting.profile.label})"
    )


def choose(
    service: DecisionService,
    user: str,
    sightings: list[Sighting],
    *,
    match: str = POSTFIX_MATCH,
    at: datetime | None = None,
) -> tuple[Decision, Sighting | None]:
    """Which sighting an SMTP submission is decided from, and the decision it gets (a dry
    run: nothing is recorded). `any`: the most severe decision over every sighting (the
    newest among equals); `newest`: the newest sighting's."""
    candidates = sightings[:1] if match == "newest" else sightings
    best: tuple[Decision, Sighting | None] | None = None
    for sighting in candidates:
        decision = service.check(user, RESOURCE, sighting.signals, at=at)
        if best is None or SEVERITY[decision.action] > SEVERITY[best[0].action]:
            best = (decision, sighting)
    if best is None:
        return service.check(user, RESOURCE, Signals(), at=at), None
    return best


def render(decision: Decision) -> str:
    """A decision as a Postfix action (without the `action=` prefix)."""
    message = _one_line(decision.message) or "access refused by device policy"
    if decision.action is Action.BLOCK:
        return f"REJECT 5.7.1 {message}"
    if decision.action is Action.QUARANTINE:
        return f"HOLD {message}"
    if decision.action is Action.WARN:
        return f"PREPEND X-Devicegate-Warning: {message}"
    return "DUNNO"


#: `durable(done)`: True when what was decided so far may be answered at once; False when
#: `done(committed)` is called instead, on the loop thread, later or before `durable`
#: returns. `done(False)` (the log could not commit) turns the answer into a deferral.
Durable = Callable[[Callable[[bool], None]], bool]


class PostfixPolicyServer:
    """An asyncio TCP policy service; one connection serves many requests, in order.

    Each connection is an `asyncio.Protocol` (`_PolicyConnection`) that answers from
    `data_received`: no task, no stream reader and no coroutine per request. An answer that
    must wait for the decision log is queued and written from the log's commit callback, so
    answers to pipelined requests still leave in the order the requests came."""

    def __init__(
        self,
        service: DecisionService,
        host: str,
        port: int,
        *,
        window: timedelta = DEFAULT_WINDOW,
        match: str = POSTFIX_MATCH,
        sighting_ttl: float = SIGHTING_TTL,
        durable: Durable | None = None,
        trusted: Callable[[str | None], bool] | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        replay_cache: int = REPLAY_CACHE,
    ) -> None:
        if match not in POSTFIX_MATCHES:
            raise ValueError(f"unknown match `{match}`: " + " or ".join(POSTFIX_MATCHES))
        self.service = service
        self.host = host
        self.port = port
        self.window = window
        self.match = match
        self.sighting_ttl = sighting_ttl
        #: who may connect (a trusted proxy's address); None: anyone (tests, embedding)
        self.trusted = trusted
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        #: Asked before answering a decided request whether the decision log holds it (or,
        #: with `--log-ack buffered`, will); see `Durable`.
        self.durable = durable
        # user → (monotonic time, wall time, sightings): `recent_sightings`, for `sighting_ttl`
        self._recent: BoundedCache[str, tuple[float, float, list[Sighting]]] = BoundedCache(
            MAX_CACHED_USERS
        )
        # With a replaying service: user → (expiry, prepared decision, action), for
        # `sighting_ttl` seconds — the same span the sighting itself is cached.
        self._replaying = isinstance(service, ReplayingService)
        # a server's service empties its answer caches on reload (each answer holds its
        # snapshot alive): take the cache from it when it offers one
        make_cache = getattr(service, "answer_cache", BoundedCache)
        self.answers: BoundedCache[str, tuple[float, float, Replayable, str]] = make_cache(
            replay_cache
        )
        self._server: asyncio.AbstractServer | None = None
        # open connections; a reaper closes the idle ones, so no request pays for arming
        # and cancelling a timer of its own
        self._open: set[_PolicyConnection] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; with port 0 the chosen port is stored in `self.port`."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _PolicyConnection(self), self.host, self.port)
        self._server = server
        self._reaper = asyncio.create_task(self._reap_idle())
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end open connections (Postfix reconnects)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
        for connection in list(self._open):
            connection.end()
        if server is not None:
            await server.wait_closed()

    def answer(self, request: PolicyRequest) -> str:
        """The action for one well-formed request."""
        replaying = cast(ReplayingService, self.service) if self._replaying else None
        if replaying is not None and request.sasl_username is not None:
            # an answer kept under the user (`decision_request().user`) is looked up before
            # the request is built: most submissions are replays
            user = request.sasl_username
            now = time.time()
            hit = self.answers.get(user)
            if (
                hit is not None
                and now < hit[0]
                and not self.seen_since(user, hit[1])
                and replaying.replay_if_valid(hit[2], now) is not None
            ):
                return hit[3]
        decided = request.decision_request()
        if decided is None:
            return "DUNNO"
        user = decided.user
        recent = self._recent_sightings(user)
        if len(recent) < 2:  # the choice whatever the match: no dry run needed
            sighting = recent[0] if recent else None
        else:
            sighting = choose(self.service, user, recent, match=self.match)[1]
        signals = sighting.signals if sighting is not None else Signals()
        prepared = None
        if replaying is not None:
            basis = describe_sighting(sighting, user, self.window)
            prepared = replaying.prepare(user, RESOURCE, signals, adapter=ADAPTER, basis=basis)[0]
            decision = prepared.decision
        else:
            decision = self.service.decide(user, RESOURCE, signals, adapter=ADAPTER)
        if log.isEnabledFor(logging.INFO):  # the reason is built only when it is logged
            log.info(
                "postfix: %s from %s at %s -> %s (%s; %s)",
                user,
                request.client_address or "?",
                request.protocol_state or "?",
                decision.action.value,
                decision.rule or "default",
                describe_sighting(sighting, user, self.window),
            )
        action = render(decision)
        if sighting is not None and not decision.allowed:
            action += f" ({sighting.seen})"
        if prepared is not None:
            made = time.time()
            self.answers.put(user, (made + self.sighting_ttl, made, prepared, action))
        return action

    def _recent_sightings(self, user: str) -> list[Sighting]:
        """The service's `recent_sightings`, answered from a cache for `sighting_ttl` seconds
        unless the user was sighted again since."""
        key = user.lower()
        now = time.monotonic()
        cached = self._recent.get(key)
        if (
            cached is not None
            and now - cached[0] < self.sighting_ttl
            and not self.seen_since(user, cached[1])
        ):
            return cached[2]
        made = time.time()
        sightings = self.service.recent_sightings(user, window=self.window)
        if self.sighting_ttl > 0:
            self._recent.put(key, (now, made, sightings))
        return sightings

    def seen_since(self, user: str, made: float) -> bool:
        """Whether the service recorded a sighting of `user` at or after `made` (epoch): a
        cached sighting or answer older than that is not used, so a login from a new device
        counts for the very next submission, not `sighting_ttl` later."""
        seen = self.service.seen_at(user)
        return seen is not None and seen >= made

    async def _reap_idle(self) -> None:
        """Close connections idle for `idle_timeout` (Postfix closes its own after 300 s;
        this frees what a vanished client left open) and those that began a request and did
        not finish it within `request_timeout` (a slow or hostile peer)."""
        period = max(0.05, min(self.idle_timeout, self.request_timeout) / 5)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            idle_cutoff = now - self.idle_timeout
            partial_cutoff = now - self.request_timeout
            for connection in list(self._open):
                if connection.waiting:
                    continue
                started = connection.started
                if connection.last < idle_cutoff or (started and started < partial_cutoff):
                    connection.end()


class _Answer:
    """One answer in a connection's queue; `ready` once the decision log has answered."""

    __slots__ = ("action", "connection", "ready")

    def __init__(self, connection: _PolicyConnection, action: str, ready: bool) -> None:
        self.connection = connection
        self.action = action
        self.ready = ready

    def done(self, committed: bool) -> None:
        """The decision log's verdict (called once, on the loop thread)."""
        if self.ready:
            return
        if not committed:
            self.action = UNAVAILABLE
        self.ready = True
        self.connection.release()


class _PolicyConnection(asyncio.Protocol):
    """One Postfix connection: frames requests, answers them in order, fails closed.

    Framing reads the bytes as they arrive and splits on the empty line, so a request costs
    one `data_received` (or less, when Postfix pipelines) rather than one await per line."""

    def __init__(self, server: PostfixPolicyServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = b""  # the start of a request whose end has not arrived
        self.waiting: deque[_Answer] = deque()  # answers not yet written, oldest first
        self.closing = False  # no more requests: close once `waiting` is written
        self.paused = False  # reading is paused: the client does not read, or too much waits
        self.write_blocked = False  # the transport's buffer is over its high-water mark
        self.last = time.monotonic()
        self.started = 0.0  # monotonic time the unfinished request in `buffer` began; 0: none

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        server = self.server
        trusted = server.trusted
        if trusted is not None:
            peer = self.transport.get_extra_info("peername")
            address = peer[0] if isinstance(peer, tuple) and peer else None
            if not trusted(address):
                log.warning("postfix: refused a connection from %s: not a trusted proxy", address)
                self.closing = True
                self.transport.close()
                return
        if len(server._open) >= server.max_connections:
            log.warning("postfix: refused a connection: %d are open", len(server._open))
            self.closing = True
            self.transport.close()
            return
        server._open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._open.discard(self)
        self.transport = None
        self.closing = True
        self.waiting.clear()  # a late verdict finds nothing to write

    def eof_received(self) -> bool:
        """A request cut off by EOF is dropped unanswered; answers already owed are still
        written (half-close), then the connection ends."""
        self.closing = True
        self.buffer = b""
        return bool(self.waiting)  # True keeps the transport open until they are written

    def pause_writing(self) -> None:  # the client stopped reading: stop reading it too
        self.write_blocked = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_blocked = False
        self._flow()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last = time.monotonic()
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        start, size = 0, len(data)
        while start < size:
            while data[start : start + 1] == b"\n":
                start += 1  # a stray empty line between requests: tolerated
            end = data.find(b"\n\n", start)
            if end < 0:
                break
            if end + 2 - start > MAX_REQUEST:
                self._malformed(f"the request is longer than {MAX_REQUEST} octets")
                return
            lines = data[start:end].split(b"\n")
            # no line can be over MAX_LINE when the whole request is not (the usual case)
            if end - start > MAX_LINE and any(len(line) > MAX_LINE for line in lines):
                self._malformed(f"a line is longer than {MAX_LINE} octets")
                return
            start = end + 2
            try:
                request = parse_request(lines)
            except SignalError as exc:
                self._malformed(exc.message)
                return
            self._respond(request)
            if self.closing:
                return
        rest = data[start:]
        if rest:
            problem = _framing_problem(rest)
            if problem is not None:
                self._malformed(problem)
                return
            if not self.started or start:  # a new request began in this read
                self.started = self.last
            self.buffer = rest
        else:
            self.started = 0.0

    # ---- answering -------------------------------------------------------------------------
    def _respond(self, request: PolicyRequest) -> None:
        server = self.server
        try:
            action = server.answer(request)
        except Exception:  # a store failure must not leave Postfix without an answer
            log.exception("postfix: deciding a policy request failed")
            action = FAILED
        durable = server.durable
        if durable is None or request.sasl_username is None or action == FAILED:
            if self.waiting:
                self.waiting.append(_Answer(self, action, True))
            else:
                self._write(action)
            return
        entry = _Answer(self, action, False)
        self.waiting.append(entry)  # first: `durable` may call `entry.done` at once
        if durable(entry.done):
            entry.done(True)
        elif len(self.waiting) >= MAX_WAITING:
            self._flow()

    def release(self) -> None:
        """Write the answers at the head of the queue that are ready, in order."""
        waiting = self.waiting
        while waiting and waiting[0].ready:
            self._write(waiting.popleft().action)
        if self.closing and not waiting:
            self.end()
        elif self.paused:
            self._flow()

    def _write(self, action: str) -> None:
        if self.transport is not None:
            self.transport.write(b"action=" + action.encode() + b"\n\n")

    def _malformed(self, problem: str) -> None:
        """Answer `MALFORMED` after what is owed, then close: the stream cannot be trusted
        to resynchronise."""
        log.warning("postfix: malformed policy request: %s", problem)
        self.closing = True
        self.buffer = b""
        self.waiting.append(_Answer(self, MALFORMED, True))
        self.release()

    def end(self) -> None:
        """Close after the bytes already written (what is still waiting is dropped)."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _flow(self) -> None:
        """Read only while the client reads its answers and fewer than `MAX_WAITING` wait
        for the decision log (resumed below half of that, so a queue at the limit does not
        flip reading on and off with every verdict)."""
        if self.transport is None:
            return
        limit = MAX_WAITING // 2 if self.paused else MAX_WAITING
        stop = self.write_blocked or len(self.waiting) >= limit
        if stop and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        elif not stop and self.paused:
            self.paused = False
            self.transport.resume_reading()


def _framing_problem(buffer: bytes) -> str | None:
    """Why an incomplete request can never become a valid one (None: keep reading)."""
    if len(buffer) > MAX_REQUEST:
        return f"the request is longer than {MAX_REQUEST} octets"
    first = buffer.find(b"\n")
    if first < 0:
        return f"a line is longer than {MAX_LINE} octets" if len(buffer) > MAX_LINE else None
    if b"=" not in buffer[:first]:
        return "a line without `name=value`"
    return None
