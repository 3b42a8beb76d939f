"""uvicorn's httptools protocol with one addition: replayed answers skip ASGI.

Every proxied request asks devicegate, and most ask what an earlier request with the same
header values already asked (`forward_auth_endpoint.ForwardAuth` keeps those answers);
every IMAP login asks Dovecot's policy question again (`dovecot_endpoint.DovecotPolicy` keeps
those, by body).
Measured on this machine, what uvicorn does around an ASGI call — the scope, a
`RequestResponseCycle` with its `asyncio.Event`, a task, two `send` messages — costs about as
much as the bare app's whole request, and the durable wait adds a suspended task and a future
per request. For a request whose answer may be replayed this protocol does neither: on the
headers it looks the answer up, appends the decision record, and writes the kept response
bytes from the decision log's commit callback (`DecisionLog.when_done`). Everything
else — a first request, a miss, a body on forward-auth, another method, a `%`-escaped path,
a request pipelined behind an unfinished one — goes through uvicorn's own code unchanged,
so it is decided, logged and answered exactly as before and the answer is kept for the next
time. A Dovecot request is
held until its body is in (`_Collecting`), then replayed or handed to uvicorn as if it had
just arrived, with the body already read.

What uvicorn's protocol expects of `self.cycle` between requests (`response_complete`,
`more_body`, `body`, `message_event`, `disconnected`, `keep_alive`) is what `_Replayed`
provides; `tests/server/test_protocol.py` runs requests of both kinds, pipelined and
interleaved, through a real uvicorn server on this class.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Protocol

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from devicegate.adapters.dovecot import MAX_BODY
from devicegate.server.config import Limits
from devicegate.server.decision_log import FAILING_CLOSED, WRITE_FAILED
from devicegate.server.dovecot_endpoint import PATH as DOVECOT_PATH
from devicegate.server.forward_auth_endpoint import PREFIX, json_error
from devicegate.server.forward_auth_endpoint import raw_headers as encode_headers
from devicegate.server.trust import SECRET_HEADER_BYTES

if TYPE_CHECKING:
    from devicegate.server.decision_log import Batch
    from devicegate.server.dovecot_endpoint import DovecotPolicy
    from devicegate.server.forward_auth_endpoint import ForwardAuth
    from devicegate.server.metrics import LatencyHistogram

PREFIX_BYTES = PREFIX.encode()
DOVECOT_URLS = (DOVECOT_PATH.encode(), DOVECOT_PATH.encode() + b"?command=allow")
#: a Dovecot body the protocol collects itself (uvicorn pauses reading past 64 KiB)
BODY_MAX = min(MAX_BODY, HIGH_WATER_LIMIT)
LOG_FAILED = json_error(503, WRITE_FAILED, FAILING_CLOSED)


class Replayable(Protocol):
    """A kept answer (`forward_auth_endpoint.Answer`, `dovecot_endpoint.Answer`): its parts
    and wire bytes."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    wire: tuple[object, bytes, bytes] | None


class _Event:
    """The part of `asyncio.Event` uvicorn's protocol calls on a cycle (no waiter exists)."""

    __slots__ = ()

    def set(self) -> None:
        pass


_EVENT = _Event()


class _Collecting:
    """The cycle of a Dovecot request while its body arrives (`on_body` appends to it)."""

    __slots__ = ("body", "disconnected", "keep_alive", "more_body", "started")
    message_event = _EVENT
    response_complete = False

    def __init__(self, keep_alive: bool, started: float) -> None:
        self.keep_alive = keep_alive
        self.started = started
        self.body = bytearray()
        self.more_body = True
        self.disconnected = False


class _Replayed:
    """The cycle of one replayed request: what uvicorn's protocol reads while it is current,
    and the answer written once its decision record is durable."""

    __slots__ = (
        "answer",
        "body",
        "disconnected",
        "keep_alive",
        "latency",
        "more_body",
        "protocol",
        "response_complete",
        "started",
    )
    message_event = _EVENT

    def __init__(
        self,
        protocol: DevicegateHttpProtocol,
        answer: Replayable,
        keep_alive: bool,
        started: float,
        latency: LatencyHistogram,
    ) -> None:
        self.protocol = protocol
        self.answer = answer
        self.keep_alive = keep_alive
        self.started = started
        self.latency = latency
        self.body = bytearray()
        self.more_body = True
        self.disconnected = False
        self.response_complete = False

    def finish(self, committed: bool) -> None:
        """Write the answer (or, if its record could not be written, a 503: fail closed)."""
        protocol = self.protocol
        transport = protocol.transport
        self.response_complete = True
        if self.disconnected or transport.is_closing():
            return
        if committed:
            self.latency.observe(time.perf_counter() - self.started)
            transport.write(protocol.answer_bytes(self.answer, self.keep_alive))
        else:
            status, headers, body = LOG_FAILED
            raw = encode_headers(headers, body)
            transport.write(protocol.wire(status, raw, body, self.keep_alive))
        if not self.keep_alive:
            transport.close()
        protocol.on_response_complete()


class DevicegateHttpProtocol(HttpToolsProtocol):
    """`uvicorn.Config(http=DevicegateHttpProtocol)`; with any app other than devicegate's
    it is uvicorn's protocol with the limits below.

    Limits (`config.Limits`), which uvicorn's own protocol does not set: a connection must send
    a complete request head within `header_timeout` of opening or of starting a request (a
    connection that sends nothing, or half a head, is closed); a head longer than `max_head`
    bytes is refused with 431 as soon as it is seen, not read whole; beyond `max_connections`
    open connections a new one is closed at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast: ForwardAuth | None = getattr(self.app, "forward_auth", None)
        self.dovecot: DovecotPolicy | None = getattr(self.app, "dovecot", None)
        self.limits: Limits = getattr(self.app, "limits", None) or Limits()
        # One timer a connection, armed at most once a `header_timeout`: a request records
        # when its head began, and the timer, when it fires, closes the connection if that
        # head is still incomplete and late, or waits out the rest (no timer per request).
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_partial = False  # a request head began and is not complete
        self._head_began = 0.0  # when (loop time) the connection opened or that head began
        self._head_bytes = 0  # bytes read since, in later reads than the one it began in

    # ---- limits ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._closed("too-many")
            transport.close()
            return
        self._head_began = self.loop.time()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_partial:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head:
                self._refuse_head()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_partial = True
        self._head_bytes = 0
        self._head_began = self.loop.time()
        if self._head_timer is None:
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        """Fire `header_timeout` after the head in progress (or the connection) began."""
        when = self._head_began + self.limits.header_timeout
        self._head_timer = self.loop.call_at(when, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        """`header_timeout` after the head the timer was armed for began: close a connection
        that is half-way through a head begun that long ago, or that never sent one (a
        request already being answered is left alone); wait for a later head that is still
        coming in."""
        self._head_timer = None
        if self.transport.is_closing() or not (self._head_partial or self.cycle is None):
            return
        left = self._head_began + self.limits.header_timeout - self.loop.time()
        if left > 0:  # a head begun after the one this timer was armed for
            self._arm_head_timer()
            return
        self._closed("head-timeout")
        self.transport.close()

    def _refuse_head(self) -> None:
        self._head_partial = False
        self._cancel_head_timer()
        self._closed("head-too-large")
        status, headers, body = json_error(
            431, f"the request head is longer than {self.limits.max_head} bytes"
        )
        self.transport.write(self.wire(status, encode_headers(headers, body), body, False))
        self.transport.close()

    def _closed(self, reason: str) -> None:
        if self.fast is not None:
            self.fast.service.metrics.closed_connections.labels("http", reason).inc()

    # ---- replayed answers --------------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._head_partial = False  # the timer, left armed, now closes nothing
        if self.fast is not None and self._may_take():
            url = self.url
            if url.startswith(PREFIX_BYTES):
                if self._replay_forward_auth():
                    return
            elif url in DOVECOT_URLS and self._collect_dovecot():
                return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, _Collecting):
            self._dovecot_complete(cycle)
        else:
            super().on_message_complete()

    def _may_take(self) -> bool:
        """Whether this request may be answered here at all: not behind an unfinished one
        (answers stay in order), no `Expect: 100-continue`."""
        current = self.cycle
        return (current is None or current.response_complete) and not self.expect_100_continue

    def _keep_alive(self) -> bool:
        return self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()

    def _replay_forward_auth(self) -> bool:
        """Answer a replayable forward-auth request here; False leaves it to uvicorn."""
        url = self.url
        if b"%" in url or b"#" in url or not url.isascii() or self.parser.get_method() != b"GET":
            return False
        path, _, query = url.partition(b"?")
        client = self.client
        assert self.fast is not None
        hit = self.fast.replay(path.decode("ascii"), query, client[0] if client else None,
                               self.headers)  # fmt: skip
        if hit is None:
            return False
        self._answer(*hit, self._keep_alive(), time.perf_counter(), self.fast.latency)
        return True

    def _collect_dovecot(self) -> bool:
        """Take a `command=allow` policy request whose body fits, to decide on its body."""
        if self.dovecot is None or self.parser.get_method() != b"POST":
            return False
        length = -1
        for name, value in self.headers:
            if name == b"content-length":
                length = int(value) if value.isdigit() and len(value) < 7 else -1
            elif name == b"transfer-encoding":
                return False
        if not 0 < length <= BODY_MAX:
            return False
        self.cycle = _Collecting(self._keep_alive(), time.perf_counter())  # type: ignore[assignment]
        return True

    def _dovecot_complete(self, cycle: _Collecting) -> None:
        """The body is in: replay the kept answer, or give the request to uvicorn and the
        ASGI path now, exactly as if it had not been held (the body already read)."""
        assert self.dovecot is not None
        body = bytes(cycle.body)
        hit = None
        if not cycle.disconnected:
            secret = None  # the headers are searched only when a proxy secret is set
            if self.dovecot.service.trust.secret is not None:
                secret = dict(self.headers).get(SECRET_HEADER_BYTES)
            hit = self.dovecot.replay(body, self.client[0] if self.client else None, secret)
        if hit is not None:
            self._answer(*hit, cycle.keep_alive, cycle.started, self.dovecot.latency)
            return
        self.cycle = None  # type: ignore[assignment]
        super().on_headers_complete()
        self.cycle.body = bytearray(body)
        self.cycle.keep_alive &= cycle.keep_alive  # a shutdown meanwhile ends the connection
        super().on_message_complete()

    def _answer(
        self,
        answer: Replayable,
        batch: Batch,
        keep_alive: bool,
        started: float,
        latency: LatencyHistogram,
    ) -> None:
        """Make the replay the current cycle; write it once its record is durable."""
        cycle = _Replayed(self, answer, keep_alive, started, latency)
        self.cycle = cycle  # type: ignore[assignment]
        assert self.fast is not None
        if self.fast.service.log.answer_now(batch, cycle.finish):
            cycle.finish(True)

    def answer_bytes(self, answer: Replayable, keep_alive: bool) -> bytes:
        """`wire` of a kept answer, built once per answer and server default headers."""
        defaults = self.server_state.default_headers
        kept = answer.wire
        if kept is None or kept[0] is not defaults:
            kept = answer.wire = (
                defaults,
                self.wire(answer.status, answer.headers, answer.body, True),
                self.wire(answer.status, answer.headers, answer.body, False),
            )
        return kept[1] if keep_alive else kept[2]

    def wire(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool
    ) -> bytes:
        """The response as uvicorn's `send` would write it: status line, the server's
        default headers, the answer's, `connection: close` when the connection ends."""
        parts = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            parts += (name, b": ", value, b"\r\n")
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", body)
        return b"".join(parts)
