"""uvicorn's httptools protocol with one addition: replayed forward-auth answers skip ASGI.

Every proxied request asks devicegate, and most ask what an earlier request with the same
header values already asked (`hotpath.ForwardAuth` keeps those answers). Measured on this
machine, what uvicorn does around an ASGI call — the scope, a `RequestResponseCycle` with its
`asyncio.Event`, a task, two `send` messages — costs about as much as the bare app's whole
request, and the durable wait adds a suspended task and a future per request. For a request
whose answer may be replayed this protocol does neither: on the headers it looks the answer
up, appends the decision record, and writes the kept response bytes from the decision log's
commit callback (`DecisionLog.when_done`). Everything else — a first request, a miss, a
body, another method, a `%`-escaped path, a request pipelined behind an unfinished one —
goes through uvicorn's own code unchanged, so it is decided, logged and answered exactly as
before and the answer is kept for the next time.

What uvicorn's protocol expects of `self.cycle` between requests (`response_complete`,
`more_body`, `body`, `message_event`, `disconnected`, `keep_alive`) is what `_Replayed`
provides; `tests/server/test_protocol.py` runs requests of both kinds, pipelined and
interleaved, through a real uvicorn server on this class.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from devicegate.server.hotpath import PREFIX, Answer, json_error
from devicegate.server.hotpath import raw_headers as encode_headers

if TYPE_CHECKING:
    from devicegate.server.hotpath import ForwardAuth

PREFIX_BYTES = PREFIX.encode()
LOG_FAILED = json_error(
    503, "the decision log could not be written", "the decision log is unavailable: failing closed"
)


class _Event:
    """The part of `asyncio.Event` uvicorn's protocol calls on a cycle (no waiter exists)."""

    __slots__ = ()

    def set(self) -> None:
        pass


_EVENT = _Event()


class _Replayed:
    """The cycle of one replayed request: what uvicorn's protocol reads while it is current,
    and the answer written once its decision record is durable."""

    __slots__ = (
        "answer",
        "body",
        "disconnected",
        "keep_alive",
        "more_body",
        "protocol",
        "response_complete",
        "started",
    )
    message_event = _EVENT

    def __init__(
        self, protocol: DevicegateHttpProtocol, answer: Answer, keep_alive: bool, started: float
    ) -> None:
        self.protocol = protocol
        self.answer = answer
        self.keep_alive = keep_alive
        self.started = started
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
            assert protocol.fast is not None
            protocol.fast.latency.observe(time.perf_counter() - self.started)
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
    it is uvicorn's protocol, unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast: ForwardAuth | None = getattr(self.app, "forward_auth", None)

    def on_headers_complete(self) -> None:
        if self.fast is not None and self.url.startswith(PREFIX_BYTES) and self._replay():
            return
        super().on_headers_complete()

    def _replay(self) -> bool:
        """Answer a replayable request here; False leaves it to uvicorn (and ASGI)."""
        url = self.url
        current = self.cycle
        if (
            (current is not None and not current.response_complete)  # keep answers in order
            or self.expect_100_continue
            or b"%" in url
            or b"#" in url
            or self.parser.get_method() != b"GET"
            or not url.isascii()
        ):
            return False
        path, _, query = url.partition(b"?")
        client = self.client
        assert self.fast is not None
        hit = self.fast.replay(path.decode("ascii"), query, client[0] if client else None,
                               self.headers)  # fmt: skip
        if hit is None:
            return False
        answer, batch = hit
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        cycle = _Replayed(self, answer, keep_alive, time.perf_counter())
        self.cycle = cycle  # type: ignore[assignment]
        log = self.fast.service.log
        if log.must_wait(batch):
            log.when_done(batch, cycle.finish)
        else:
            cycle.finish(True)
        return True

    def answer_bytes(self, answer: Answer, keep_alive: bool) -> bytes:
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
